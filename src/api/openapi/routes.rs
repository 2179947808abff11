//! The fixed routes in the document: the admin API, the sandbox inbox, the probes, the
//! metrics and the document itself. Their handlers are in `admin/`, `sandbox.rs`,
//! `health.rs` and `metrics.rs`; `tests/openapi.rs` checks that this list and the route tables
//! agree, both ways. Only the functions' `#[utoipa::path]` descriptions are used.
#![allow(dead_code)]

use crate::api::admin::{
    AddAccount, AddCredit, BacklogView, Balance, CreateTenant, Created, DeadReportView, ErrorBody, ExplainLimits,
    IpAllow, IssueToken, IssuedToken, LedgerQuery, LedgerView, PauseAccount, PutSender, Removed, Replayed, RotateToken,
    Rotated, TenantView, TokenView, UpdateTenant,
};
use crate::api::health::{Health, Readiness};
use crate::api::sandbox::{InboxMessageDoc, MessagesQuery, ReadAnswer};
use crate::domain::SenderAccount;
use crate::service::Explanation;

#[utoipa::path(get, path = "/healthz", tag = "Operations", operation_id = "healthz",
    responses((status = 200, description = "The process answers.", body = Health)))]
pub(super) fn healthz() {}

#[utoipa::path(get, path = "/readyz", tag = "Operations", operation_id = "readyz",
    responses(
        (status = 200, description = "The store answers.", body = Readiness),
        (status = 503, description = "The store does not answer.", body = Readiness),
    ))]
pub(super) fn readyz() {}

#[utoipa::path(get, path = "/metrics", tag = "Operations", operation_id = "metrics",
    description = "The Prometheus text exposition (version 0.0.4). Served here unless `metrics.listen` gives metrics a listener of their own.",
    responses(
        (status = 200, description = "The metrics.", body = String, content_type = "text/plain"),
        (status = 500, description = "The metrics could not be rendered (no body)."),
    ))]
pub(super) fn metrics() {}

#[utoipa::path(get, path = "/openapi.json", tag = "Operations", operation_id = "openapi",
    responses((status = 200, description = "This document (OpenAPI 3.1).", body = Object, content_type = "application/json")))]
pub(super) fn openapi() {}

const TENANT_ID: &str = "The tenant's id (a UUID; anything else is an unknown tenant: 404).";

#[utoipa::path(post, path = "/admin/v1/tenants", tag = "Admin", operation_id = "createTenant",
    request_body = CreateTenant,
    responses(
        (status = 201, description = "The tenant, with its first API token (shown once).", body = Created),
        (status = 400, description = "The body is not a JSON object of these fields, or a value is out of range.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn create_tenant() {}

#[utoipa::path(get, path = "/admin/v1/tenants", tag = "Admin", operation_id = "listTenants",
    responses((status = 200, description = "Every tenant.", body = Vec<TenantView>)),
    security(("adminToken" = [])))]
pub(super) fn list_tenants() {}

#[utoipa::path(get, path = "/admin/v1/tenants/{id}", tag = "Admin", operation_id = "getTenant",
    params(("id" = String, Path, description = TENANT_ID)),
    responses(
        (status = 200, description = "The tenant.", body = TenantView),
        (status = 404, description = "No such tenant.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn get_tenant() {}

#[utoipa::path(patch, path = "/admin/v1/tenants/{id}", tag = "Admin", operation_id = "updateTenant",
    params(("id" = String, Path, description = TENANT_ID)),
    request_body = UpdateTenant,
    responses(
        (status = 200, description = "The tenant as changed.", body = TenantView),
        (status = 400, description = "The body is not a JSON object of these fields, or a value is out of range.", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn update_tenant() {}

#[utoipa::path(post, path = "/admin/v1/tenants/{id}/balance", tag = "Admin", operation_id = "addCredit",
    params(("id" = String, Path, description = TENANT_ID)),
    request_body = AddCredit,
    responses(
        (status = 200, description = "The new balance.", body = Balance),
        (status = 400, description = "The body is not a JSON object of these fields, or the amount is zero.", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
        (status = 409, description = "The balance would go below zero (nothing changed).", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn add_credit() {}

#[utoipa::path(get, path = "/admin/v1/tenants/{id}/ledger", tag = "Admin", operation_id = "ledger",
    params(("id" = String, Path, description = TENANT_ID), LedgerQuery),
    responses(
        (status = 200, description = "The tenant's balance history.", body = Vec<LedgerView>),
        (status = 400, description = "The query string does not parse.", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn ledger() {}

#[utoipa::path(get, path = "/admin/v1/tenants/{id}/tokens", tag = "Admin", operation_id = "listTokens",
    params(("id" = String, Path, description = TENANT_ID)),
    responses(
        (status = 200, description = "The tenant's API tokens (never their text).", body = Vec<TokenView>),
        (status = 404, description = "No such tenant.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn list_tokens() {}

#[utoipa::path(post, path = "/admin/v1/tenants/{id}/tokens", tag = "Admin", operation_id = "issueToken",
    params(("id" = String, Path, description = TENANT_ID)),
    request_body(content = Option<IssueToken>, description = "Optional: an empty body issues a token usable from anywhere."),
    responses(
        (status = 201, description = "A new token (shown once).", body = IssuedToken),
        (status = 400, description = "The body is not a JSON object of these fields.", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn issue_token() {}

#[utoipa::path(delete, path = "/admin/v1/tenants/{id}/tokens/{token}", tag = "Admin", operation_id = "revokeToken",
    params(("id" = String, Path, description = TENANT_ID), ("token" = String, Path, description = "The token's id.")),
    responses(
        (status = 200, description = "The token, revoked (at once).", body = TokenView),
        (status = 404, description = "No such tenant or token.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn revoke_token() {}

#[utoipa::path(post, path = "/admin/v1/tenants/{id}/tokens/{token}/rotate", tag = "Admin", operation_id = "rotateToken",
    params(("id" = String, Path, description = TENANT_ID), ("token" = String, Path, description = "The token's id.")),
    request_body(content = Option<RotateToken>, description = "Optional."),
    responses(
        (status = 201, description = "The successor (shown once, with the same address list) and the old token, which works until its `expires_at`.", body = Rotated),
        (status = 400, description = "The body is not a JSON object of these fields, or the token is already revoked or expired.", body = ErrorBody),
        (status = 404, description = "No such tenant or token.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn rotate_token() {}

#[utoipa::path(put, path = "/admin/v1/tenants/{id}/tokens/{token}/ip_allow", tag = "Admin", operation_id = "setTokenIpAllow",
    params(("id" = String, Path, description = TENANT_ID), ("token" = String, Path, description = "The token's id.")),
    request_body = IpAllow,
    responses(
        (status = 200, description = "The token with its new address list.", body = TokenView),
        (status = 400, description = "The body is not a JSON object of these fields.", body = ErrorBody),
        (status = 404, description = "No such tenant or token.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn set_ip_allow() {}

#[utoipa::path(post, path = "/admin/v1/tenants/{id}/limits/explain", tag = "Admin", operation_id = "explainLimits",
    description = "Which rate limits and spending budgets a send to the number would count against, and where each stands; counts nothing.",
    params(("id" = String, Path, description = TENANT_ID)),
    request_body = ExplainLimits,
    responses(
        (status = 200, description = "The limits.", body = Explanation),
        (status = 400, description = "The body is not a JSON object of these fields, or the number is not E.164.", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn explain_limits() {}

#[utoipa::path(get, path = "/admin/v1/tenants/{id}/reports/dead", tag = "Admin", operation_id = "deadReports",
    params(("id" = String, Path, description = TENANT_ID)),
    responses(
        (status = 200, description = "Delivery reports that exhausted their retries (the newest 1,000).", body = Vec<DeadReportView>),
        (status = 404, description = "No such tenant.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn dead_reports() {}

#[utoipa::path(post, path = "/admin/v1/tenants/{id}/reports/dead/{dead}/replay", tag = "Admin", operation_id = "replayDeadReport",
    description = "Sends the dead letter again, once, now (signed afresh); removes it when acknowledged.",
    params(("id" = String, Path, description = TENANT_ID), ("dead" = String, Path, description = "The dead letter's id.")),
    responses(
        (status = 200, description = "Acknowledged and removed.", body = Replayed),
        (status = 404, description = "No such tenant or dead letter.", body = ErrorBody),
        (status = 409, description = "The receiver did not acknowledge it (it stays).", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn replay_dead_report() {}

#[utoipa::path(put, path = "/admin/v1/tenants/{id}/senders/{username}", tag = "Admin", operation_id = "putSender",
    description = "Registers a channel the tenant may send on behalf of (`sender_username`), or changes whether it is verified.",
    params(("id" = String, Path, description = TENANT_ID), ("username" = String, Path, pattern = "^@?[A-Za-z][A-Za-z0-9_]{4,31}$", description = "The channel's username (with or without `@`; 5-32 of `A-Z a-z 0-9 _`, starting with a letter; anything else: 400).")),
    request_body(content = Option<PutSender>, description = "Optional: an empty body registers the channel unverified."),
    responses(
        (status = 200, description = "The tenant.", body = TenantView),
        (status = 400, description = "Not a Telegram username, or the body is not a JSON object of these fields.", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn put_sender() {}

#[utoipa::path(delete, path = "/admin/v1/tenants/{id}/senders/{username}", tag = "Admin", operation_id = "removeSender",
    params(("id" = String, Path, description = TENANT_ID), ("username" = String, Path, pattern = "^@?[A-Za-z][A-Za-z0-9_]{4,31}$", description = "The channel's username (with or without `@`; 5-32 of `A-Z a-z 0-9 _`, starting with a letter; anything else: 400).")),
    responses(
        (status = 200, description = "The tenant (removing a channel it does not have changes nothing).", body = TenantView),
        (status = 400, description = "Not a Telegram username.", body = ErrorBody),
        (status = 404, description = "No such tenant.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn remove_sender() {}

#[utoipa::path(get, path = "/admin/v1/senders", tag = "Admin", operation_id = "listSenderAccounts",
    responses((status = 200, description = "The pool of sender accounts.", body = Vec<SenderAccount>)),
    security(("adminToken" = [])))]
pub(super) fn list_accounts() {}

#[utoipa::path(get, path = "/admin/v1/delivery/backlog", tag = "Admin", operation_id = "deliveryBacklog",
    responses((status = 200, description = "The delivery jobs not yet done.", body = BacklogView)),
    security(("adminToken" = [])))]
pub(super) fn delivery_backlog() {}

#[utoipa::path(post, path = "/admin/v1/senders", tag = "Admin", operation_id = "addSenderAccount",
    description = "A `sandbox` account joins the pool at once. A `telegram` account needs `phone_number` and `api_id`, and stays `disabled` (`NOT_SIGNED_IN`) until `verigram sender login` signs it in; with `dev_peer` (and the Telegram sender) it lives on a local development peer and is active at once.",
    request_body = AddAccount,
    responses(
        (status = 201, description = "The account.", body = SenderAccount),
        (status = 400, description = "The body is not a JSON object of these fields, or a value is invalid or missing.", body = ErrorBody),
        (status = 409, description = "An account with this id exists.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn add_account() {}

#[utoipa::path(post, path = "/admin/v1/senders/{account}/pause", tag = "Admin", operation_id = "pauseSenderAccount",
    params(("account" = String, Path, description = "The account's id.")),
    request_body(content = Option<PauseAccount>, description = "Optional."),
    responses(
        (status = 200, description = "The account, out of the pool until resumed.", body = SenderAccount),
        (status = 400, description = "The body is not a JSON object of these fields.", body = ErrorBody),
        (status = 404, description = "No such account.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn pause_account() {}

#[utoipa::path(post, path = "/admin/v1/senders/{account}/resume", tag = "Admin", operation_id = "resumeSenderAccount",
    params(("account" = String, Path, description = "The account's id.")),
    responses(
        (status = 200, description = "The account, back in the pool whatever parked it.", body = SenderAccount),
        (status = 404, description = "No such account.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn resume_account() {}

#[utoipa::path(delete, path = "/admin/v1/senders/{account}", tag = "Admin", operation_id = "removeSenderAccount",
    params(("account" = String, Path, description = "The account's id.")),
    responses(
        (status = 200, description = "Removed.", body = Removed),
        (status = 404, description = "No such account.", body = ErrorBody),
    ),
    security(("adminToken" = [])))]
pub(super) fn remove_account() {}

#[utoipa::path(get, path = "/sandbox", tag = "Sandbox", operation_id = "sandboxPage",
    responses(
        (status = 200, description = "The inbox as a page a person can read (newest 100 messages).", body = String, content_type = "text/html"),
        (status = 401, description = "Served on a non-loopback address (`sandbox.public`) and the admin token (Bearer, or the password of Basic authentication) is missing or wrong (`unauthorized`).", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address (`too_many_requests`); see Retry-After.", body = ErrorBody),
    ))]
pub(super) fn sandbox_page() {}

#[utoipa::path(get, path = "/sandbox/", tag = "Sandbox", operation_id = "sandboxPageSlash",
    responses(
        (status = 200, description = "The same page as `/sandbox`.", body = String, content_type = "text/html"),
        (status = 401, description = "Served on a non-loopback address (`sandbox.public`) and the admin token (Bearer, or the password of Basic authentication) is missing or wrong (`unauthorized`).", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address (`too_many_requests`); see Retry-After.", body = ErrorBody),
    ))]
pub(super) fn sandbox_page_slash() {}

#[utoipa::path(get, path = "/sandbox/v1/messages", tag = "Sandbox", operation_id = "sandboxMessages",
    params(MessagesQuery),
    responses(
        (status = 200, description = "Messages, newest first (without `phone_number`: the newest 100 to anyone).", body = Vec<InboxMessageDoc>),
        (status = 400, description = "`phone_number` is not E.164 (`phone_number_invalid`), or the query string does not parse (`invalid`).", body = ErrorBody),
        (status = 401, description = "Served on a non-loopback address (`sandbox.public`) and the admin token (Bearer, or the password of Basic authentication) is missing or wrong (`unauthorized`).", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address (`too_many_requests`); see Retry-After.", body = ErrorBody),
    ))]
pub(super) fn sandbox_messages() {}

#[utoipa::path(post, path = "/sandbox/v1/messages/{request_id}/read", tag = "Sandbox", operation_id = "sandboxRead",
    description = "The recipient reads the message: the request's `delivery_status` becomes `read` (reported to its `callback_url`).",
    params(("request_id" = String, Path, description = "The message's request.")),
    responses(
        (status = 200, description = "Read (now, or already).", body = ReadAnswer),
        (status = 401, description = "Served on a non-loopback address (`sandbox.public`) and the admin token (Bearer, or the password of Basic authentication) is missing or wrong (`unauthorized`).", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address (`too_many_requests`); see Retry-After.", body = ErrorBody),
        (status = 403, description = "Sent by a page of another site (`Sec-Fetch-Site` or `Origin` says so): refused (`forbidden`).", body = ErrorBody),
        (status = 404, description = "No such message in the inbox (`not_found`).", body = ErrorBody),
        (status = 409, description = "The message was deleted (`deleted`).", body = ErrorBody),
        (status = 503, description = "The read could not be recorded (`unavailable`).", body = ErrorBody),
    ))]
pub(super) fn sandbox_read() {}
