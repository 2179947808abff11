//! The operator's API under `/admin/v1`: tenants, settings, money and tokens. Plain JSON
//! resources with HTTP statuses; every route needs `Authorization: Bearer <admin.token>`.

use super::AppState;
use crate::domain::{Credits, LedgerEntry, PhoneNumber, SenderUsername, Tenant, TenantId, TenantSettings, TokenRecord};
use crate::secrets::ApiToken;
use crate::service::{NewTenant, ReportError, SenderError, SettingsPatch, TenantError};
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError, Scope};
use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::future::{ready, Ready};
use std::time::Duration;
use subtle::ConstantTimeEq;

pub fn scope() -> Scope {
    web::scope("/admin/v1")
        .app_data(web::PayloadConfig::new(64 * 1024))
        // A query string that does not parse is the client's mistake, answered like the rest.
        .app_data(web::QueryConfig::default().error_handler(|e, _| AdminError::Invalid(e.to_string()).into()))
        .route("/tenants", web::post().to(create_tenant))
        .route("/tenants", web::get().to(list_tenants))
        .route("/tenants/{id}", web::get().to(get_tenant))
        .route("/tenants/{id}", web::patch().to(update_tenant))
        .route("/tenants/{id}/balance", web::post().to(add_credit))
        .route("/tenants/{id}/ledger", web::get().to(ledger))
        .route("/tenants/{id}/tokens", web::get().to(list_tokens))
        .route("/tenants/{id}/tokens", web::post().to(issue_token))
        .route("/tenants/{id}/tokens/{token}", web::delete().to(revoke_token))
        .route("/tenants/{id}/tokens/{token}/rotate", web::post().to(rotate_token))
        .route("/tenants/{id}/tokens/{token}/ip_allow", web::put().to(set_ip_allow))
        .route("/tenants/{id}/limits/explain", web::post().to(explain_limits))
        .route("/tenants/{id}/reports/dead", web::get().to(dead_reports))
        .route("/tenants/{id}/reports/dead/{dead}/replay", web::post().to(replay_dead_report))
        .route("/tenants/{id}/senders/{username}", web::put().to(put_sender))
        .route("/tenants/{id}/senders/{username}", web::delete().to(remove_sender))
        .route("/senders", web::get().to(list_accounts))
        .route("/delivery/backlog", web::get().to(delivery_backlog))
        .route("/senders", web::post().to(add_account))
        .route("/senders/{account}/pause", web::post().to(pause_account))
        .route("/senders/{account}/resume", web::post().to(resume_account))
        .route("/senders/{account}", web::delete().to(remove_account))
        .default_service(web::route().to(not_found))
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or wrong admin token")]
    Unauthorized,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the store is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl AdminError {
    pub(super) fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::Invalid(_) => "invalid",
            Self::Conflict(_) => "conflict",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(ErrorBody { error: self.code(), message: &self.to_string() })
    }
}

/// The body of every admin (and sandbox) error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ErrorBody<'a> {
    /// What kind of error: fixed by the HTTP status.
    pub(super) error: &'a str,
    /// For people: what was wrong.
    pub(super) message: &'a str,
}

impl From<TenantError> for AdminError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::NotFound => Self::NotFound("no such tenant".into()),
            TenantError::TokenNotFound => Self::NotFound("no such token".into()),
            TenantError::Invalid(msg) => Self::Invalid(msg.into()),
            e @ TenantError::WouldGoNegative { .. } => Self::Conflict(e.to_string()),
            TenantError::Store(e) if e.is_transient() => {
                tracing::warn!(error = &e as &dyn std::error::Error, "store unavailable");
                Self::Unavailable
            }
            TenantError::Store(e) => {
                tracing::error!(error = &e as &dyn std::error::Error, "admin operation failed");
                Self::Internal
            }
        }
    }
}

impl From<SenderError> for AdminError {
    fn from(e: SenderError) -> Self {
        match e {
            SenderError::NotFound => Self::NotFound("no such sender account".into()),
            SenderError::Invalid(msg) => Self::Invalid(msg.into()),
            e @ SenderError::Exists => Self::Conflict(e.to_string()),
            SenderError::Store(e) => TenantError::Store(e).into(),
        }
    }
}

impl From<ReportError> for AdminError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::TenantNotFound => Self::NotFound("no such tenant".into()),
            ReportError::NotFound => Self::NotFound("no such dead letter".into()),
            e @ ReportError::NotAcknowledged(_) => Self::Conflict(e.to_string()),
            ReportError::Store(e) => TenantError::Store(e).into(),
        }
    }
}

/// Proof that the request carries the admin token (compared in constant time, over hashes so
/// the length does not leak either).
pub struct Admin;

impl FromRequest for Admin {
    type Error = AdminError;
    type Future = Ready<Result<Self, AdminError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let expected = req.app_data::<web::Data<AppState>>().and_then(|s| s.admin_token.clone());
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim().to_owned());
        let ok = match (expected, presented) {
            (Some(e), Some(p)) => bool::from(Sha256::digest(e.as_bytes()).ct_eq(&Sha256::digest(p.as_bytes()))),
            _ => false,
        };
        ready(if ok { Ok(Admin) } else { Err(AdminError::Unauthorized) })
    }
}

type AdminResult = Result<HttpResponse, AdminError>;

fn tenant_id(raw: &str) -> Result<TenantId, AdminError> {
    TenantId::parse(raw).map_err(|_| AdminError::NotFound("no such tenant".into()))
}

/// A tenant: a business that calls the Gateway API.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Tenant)]
pub(super) struct TenantView {
    #[schema(format = "uuid")]
    id: String,
    name: String,
    balance: Credits,
    settings: TenantSettings,
    /// Unix seconds.
    created_at: i64,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            id: t.id.to_string(),
            name: t.name,
            balance: t.balance,
            settings: t.settings,
            created_at: t.created_at.secs(),
        }
    }
}

/// An API token's record (never the token itself).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Token)]
pub(super) struct TokenView {
    #[schema(example = "tok_0123456789abcdef")]
    id: String,
    /// Neither revoked nor past `expires_at`.
    active: bool,
    /// Unix seconds.
    created_at: i64,
    /// Unix seconds: when a rotated-away token stops working.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    expires_at: Option<i64>,
    /// Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    revoked_at: Option<i64>,
    /// Client addresses (CIDR blocks) the token may be used from; empty: anywhere.
    #[schema(value_type = Vec<String>, example = json!(["203.0.113.0/24"]))]
    ip_allow: Vec<IpNet>,
}

fn token_view(t: &TokenRecord, state: &AppState) -> TokenView {
    TokenView {
        id: t.id.clone(),
        active: t.is_live(state.services.clock.now()),
        created_at: t.created_at.secs(),
        expires_at: t.expires_at.map(|at| at.secs()),
        revoked_at: t.revoked_at.map(|at| at.secs()),
        ip_allow: t.ip_allow.clone(),
    }
}

/// A token shown once: its text beside its record.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct IssuedToken {
    /// The API token: shown only here.
    token: String,
    token_id: String,
    #[serde(flatten)]
    record: TokenView,
}

fn issued(token: &ApiToken, record: &TokenRecord, state: &AppState) -> IssuedToken {
    IssuedToken { token: token.expose().to_owned(), token_id: record.id.clone(), record: token_view(record, state) }
}

/// One line of a tenant's balance history.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = LedgerEntry)]
pub(super) struct LedgerView {
    /// Unix seconds.
    at: i64,
    kind: crate::domain::LedgerKind,
    /// Signed change of the balance: a charge is negative.
    amount: Credits,
    balance_after: Credits,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    request_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    note: Option<String>,
}

impl From<LedgerEntry> for LedgerView {
    fn from(e: LedgerEntry) -> Self {
        Self {
            at: e.at.secs(),
            kind: e.kind,
            amount: e.amount,
            balance_after: e.balance_after,
            request_id: e.request_id,
            note: e.note,
        }
    }
}

fn parse_phone(p: Option<String>) -> Result<Option<PhoneNumber>, AdminError> {
    p.filter(|p| !p.is_empty())
        .map(|p| PhoneNumber::parse(&p).map_err(|_| AdminError::Invalid("phone_number must be an E.164 number".into())))
        .transpose()
}

/// A new tenant. Absent settings fall back to the server's configuration.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CreateTenant {
    /// 1 to 128 bytes (surrounding spaces are trimmed).
    #[schema(min_length = 1, max_length = 128, example = "Acme")]
    name: String,
    /// The opening balance (not negative; default 0).
    #[serde(default)]
    balance: Option<Credits>,
    /// The tenant's own number (E.164): sends to it are free.
    #[serde(default)]
    #[schema(pattern = r"^(\+?[1-9][0-9]{7,14})?$")]
    phone_number: Option<String>,
    /// Price of one message (not negative), over the server's price table.
    #[serde(default)]
    price: Option<Credits>,
    /// Wrong codes allowed per request.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10)]
    max_attempts: Option<u8>,
    #[serde(default)]
    templates: BTreeMap<String, String>,
    #[serde(default)]
    limits: BTreeMap<crate::domain::LimitKind, crate::domain::Rate>,
    #[serde(default)]
    countries: Option<crate::domain::CountryRule>,
    #[serde(default)]
    daily_spend_cap: Option<Credits>,
}

async fn create_tenant(_: Admin, body: web::Bytes, state: web::Data<AppState>) -> AdminResult {
    let body: CreateTenant = json_object(&body)?;
    let settings = TenantSettings {
        price: body.price,
        max_attempts: body.max_attempts,
        phone_number: parse_phone(body.phone_number)?,
        senders: BTreeMap::new(),
        templates: body.templates,
        limits: body.limits,
        countries: body.countries,
        daily_spend_cap: body.daily_spend_cap,
    };
    let new = NewTenant { name: body.name, balance: body.balance.unwrap_or_default(), settings };
    let (tenant, token, record) = state.services.create_tenant(new).await?;
    Ok(HttpResponse::Created().json(Created {
        tenant: tenant.into(),
        token: token.expose().to_owned(),
        token_id: record.id,
    }))
}

/// A new tenant, with its first API token (shown once).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TenantCreated)]
pub(super) struct Created {
    #[serde(flatten)]
    tenant: TenantView,
    /// The API token: shown only here.
    token: String,
    token_id: String,
}

async fn list_tenants(_: Admin, state: web::Data<AppState>) -> AdminResult {
    let tenants: Vec<TenantView> = state.services.tenants().await?.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(tenants))
}

async fn get_tenant(_: Admin, id: web::Path<String>, state: web::Data<AppState>) -> AdminResult {
    let tenant = state.services.tenant(&tenant_id(&id)?).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(tenant)))
}

/// A body that must be a JSON object of the expected fields (serde would also take a struct
/// from an array; an admin API should not).
fn json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| AdminError::Invalid(e.to_string()))?;
    if !value.is_object() {
        return Err(AdminError::Invalid("the body must be a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| AdminError::Invalid(e.to_string()))
}

/// A JSON object body that may be left out entirely (then every field takes its default).
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, AdminError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json_object(body)
}

/// Distinguishes a field that is absent (`None`) from one that is `null` (`Some(None)`).
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// A partial update of a tenant's settings: an absent field is left alone, `null` clears it.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UpdateTenant {
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Credits>)]
    price: Option<Option<Credits>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<u8>, minimum = 1, maximum = 10)]
    max_attempts: Option<Option<u8>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, pattern = r"^(\+?[1-9][0-9]{7,14})?$")]
    phone_number: Option<Option<String>>,
    /// Replaces the tenant's templates (`null` or `{}` removes them).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    templates: Option<Option<BTreeMap<String, String>>>,
    /// Replaces the tenant's own rate limits (`null` or `{}`: the server's apply).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<BTreeMap<crate::domain::LimitKind, crate::domain::Rate>>)]
    limits: Option<Option<BTreeMap<crate::domain::LimitKind, crate::domain::Rate>>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<crate::domain::CountryRule>)]
    countries: Option<Option<crate::domain::CountryRule>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Credits>)]
    daily_spend_cap: Option<Option<Credits>>,
}

async fn update_tenant(_: Admin, id: web::Path<String>, body: web::Bytes, state: web::Data<AppState>) -> AdminResult {
    let body: UpdateTenant = json_object(&body)?;
    let patch = SettingsPatch {
        price: body.price,
        max_attempts: body.max_attempts,
        phone_number: body.phone_number.map(parse_phone).transpose()?,
        templates: body.templates.map(Option::unwrap_or_default),
        limits: body.limits.map(Option::unwrap_or_default),
        countries: body.countries,
        daily_spend_cap: body.daily_spend_cap,
    };
    let tenant = state.services.update_settings(&tenant_id(&id)?, patch).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(tenant)))
}

/// Money added (or, negative, taken): never to a balance below zero.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AddCredit {
    /// Not zero.
    amount: Credits,
    /// Kept in the ledger (at most 256 characters are kept).
    #[serde(default)]
    note: Option<String>,
}

/// The balance after a change.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Balance {
    balance: Credits,
}

async fn add_credit(_: Admin, id: web::Path<String>, body: web::Bytes, state: web::Data<AppState>) -> AdminResult {
    let body: AddCredit = json_object(&body)?;
    let balance = state.services.add_credit(&tenant_id(&id)?, body.amount, body.note).await?;
    Ok(HttpResponse::Ok().json(Balance { balance }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct LedgerQuery {
    /// At most this many entries (default 100, at most 10,000).
    limit: Option<usize>,
}

async fn ledger(
    _: Admin,
    id: web::Path<String>,
    query: web::Query<LedgerQuery>,
    state: web::Data<AppState>,
) -> AdminResult {
    let limit = query.limit.unwrap_or(100).min(10_000);
    let entries: Vec<LedgerView> =
        state.services.ledger(&tenant_id(&id)?, limit).await?.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(entries))
}

/// A send to explain: to which number, from which client address, with which token.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct ExplainLimits {
    #[schema(pattern = r"^\+?[1-9][0-9]{7,14}$", example = "+15551234567")]
    phone_number: String,
    /// An IPv4 or IPv6 address.
    #[serde(default)]
    #[schema(value_type = Option<String>, example = "203.0.113.7")]
    ip: Option<std::net::IpAddr>,
    #[serde(default)]
    token_id: Option<String>,
}

async fn explain_limits(_: Admin, id: web::Path<String>, body: web::Bytes, state: web::Data<AppState>) -> AdminResult {
    let body: ExplainLimits = json_object(&body)?;
    let phone =
        parse_phone(Some(body.phone_number))?.ok_or_else(|| AdminError::Invalid("phone_number is required".into()))?;
    let explained = state.services.explain_limits(&tenant_id(&id)?, &phone, body.ip, body.token_id).await?;
    Ok(HttpResponse::Ok().json(explained))
}

/// A dead letter as operators see it (never its signing key).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DeadReport)]
pub(super) struct DeadReportView {
    id: String,
    request_id: String,
    url: String,
    /// The report's JSON body, as it would be sent.
    #[schema(value_type = Object)]
    body: serde_json::Value,
    attempts: u32,
    last_error: Option<String>,
    failed_at: i64,
}

impl From<crate::domain::DeadReport> for DeadReportView {
    fn from(d: crate::domain::DeadReport) -> Self {
        Self {
            id: d.id,
            request_id: d.request_id.to_string(),
            url: d.url,
            body: serde_json::from_str(&d.body).unwrap_or(serde_json::Value::String(d.body)),
            attempts: d.attempts,
            last_error: d.last_error,
            failed_at: d.failed_at.secs(),
        }
    }
}

async fn dead_reports(_: Admin, id: web::Path<String>, state: web::Data<AppState>) -> AdminResult {
    let dead: Vec<DeadReportView> =
        state.services.dead_reports(&tenant_id(&id)?).await?.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(dead))
}

async fn replay_dead_report(_: Admin, path: web::Path<(String, String)>, state: web::Data<AppState>) -> AdminResult {
    let (id, dead) = path.into_inner();
    state.services.replay_dead_report(&tenant_id(&id)?, &dead).await?;
    Ok(HttpResponse::Ok().json(Replayed { replayed: dead }))
}

/// A dead letter sent again, and acknowledged.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Replayed {
    /// The dead letter's id.
    replayed: String,
}

async fn list_tokens(_: Admin, id: web::Path<String>, state: web::Data<AppState>) -> AdminResult {
    let tokens = state.services.tokens(&tenant_id(&id)?).await?;
    let views: Vec<TokenView> = tokens.iter().map(|t| token_view(t, &state)).collect();
    Ok(HttpResponse::Ok().json(views))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct IssueToken {
    /// Client addresses (CIDR blocks) the token may be used from; empty: anywhere.
    #[serde(default)]
    #[schema(value_type = Vec<String>, example = json!(["203.0.113.0/24"]))]
    ip_allow: Vec<IpNet>,
}

async fn issue_token(_: Admin, id: web::Path<String>, body: web::Bytes, state: web::Data<AppState>) -> AdminResult {
    let body: IssueToken = optional_json(&body)?;
    let (token, record) = state.services.issue_token(&tenant_id(&id)?, body.ip_allow).await?;
    Ok(HttpResponse::Created().json(issued(&token, &record, &state)))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RotateToken {
    /// Seconds the old token keeps working (default `tokens.rotation_overlap`).
    #[serde(default)]
    overlap: Option<u64>,
}

async fn rotate_token(
    _: Admin,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AdminResult {
    let (id, token_id) = path.into_inner();
    let overlap = optional_json::<RotateToken>(&body)?.overlap.map(Duration::from_secs);
    let (token, record, old) = state.services.rotate_token(&tenant_id(&id)?, &token_id, overlap).await?;
    Ok(HttpResponse::Created()
        .json(Rotated { new: issued(&token, &record, &state), previous: token_view(&old, &state) }))
}

/// The successor token (shown once) and the old token's record.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Rotated {
    #[serde(flatten)]
    new: IssuedToken,
    previous: TokenView,
}

async fn revoke_token(_: Admin, path: web::Path<(String, String)>, state: web::Data<AppState>) -> AdminResult {
    let (id, token_id) = path.into_inner();
    let token = state.services.revoke_token(&tenant_id(&id)?, &token_id).await?;
    Ok(HttpResponse::Ok().json(token_view(&token, &state)))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct IpAllow {
    /// Client addresses (CIDR blocks) the token may be used from; empty: anywhere.
    #[schema(value_type = Vec<String>, example = json!(["203.0.113.0/24"]))]
    ip_allow: Vec<IpNet>,
}

async fn set_ip_allow(
    _: Admin,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AdminResult {
    let (id, token_id) = path.into_inner();
    let token =
        state.services.set_token_ip_allow(&tenant_id(&id)?, &token_id, json_object::<IpAllow>(&body)?.ip_allow).await?;
    Ok(HttpResponse::Ok().json(token_view(&token, &state)))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PutSender {
    /// Whether the channel is verified (default `false`).
    #[serde(default)]
    verified: bool,
}

fn username(raw: &str) -> Result<SenderUsername, AdminError> {
    SenderUsername::parse(raw).map_err(|_| AdminError::Invalid("not a Telegram username".into()))
}

async fn put_sender(
    _: Admin,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AdminResult {
    let (id, name) = path.into_inner();
    let verified = optional_json::<PutSender>(&body)?.verified;
    let tenant = state.services.put_sender(&tenant_id(&id)?, &username(&name)?, verified).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(tenant)))
}

async fn remove_sender(_: Admin, path: web::Path<(String, String)>, state: web::Data<AppState>) -> AdminResult {
    let (id, name) = path.into_inner();
    let tenant = state.services.remove_sender(&tenant_id(&id)?, &username(&name)?).await?;
    Ok(HttpResponse::Ok().json(TenantView::from(tenant)))
}

async fn not_found(_: Admin) -> AdminResult {
    Err(AdminError::NotFound("no such admin resource".into()))
}

async fn list_accounts(_: Admin, state: web::Data<AppState>) -> AdminResult {
    Ok(HttpResponse::Ok().json(state.services.sender_accounts().await?))
}

async fn delivery_backlog(_: Admin, state: web::Data<AppState>) -> AdminResult {
    Ok(HttpResponse::Ok().json(state.services.delivery_backlog().await?))
}

/// A sender account to add to the pool.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AddAccount {
    /// 1-64 of `A-Z a-z 0-9 _ -`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$", example = "sandbox1")]
    id: String,
    kind: crate::domain::AccountKind,
    /// Telegram accounts: the `api_id` from my.telegram.org and the account's phone number.
    #[serde(default)]
    api_id: Option<i32>,
    #[serde(default)]
    #[schema(pattern = r"^(\+?[1-9][0-9]{7,14})?$")]
    phone_number: Option<String>,
    /// Development: the address of a local peer (`verigram-dev-telegram`) the account lives on.
    #[serde(default)]
    dev_peer: Option<String>,
}

async fn add_account(_: Admin, body: web::Bytes, state: web::Data<AppState>) -> AdminResult {
    let body: AddAccount = json_object(&body)?;
    match body.kind {
        crate::domain::AccountKind::Sandbox => {
            Ok(HttpResponse::Created().json(state.services.add_sandbox_account(&body.id).await?))
        }
        crate::domain::AccountKind::Telegram => {
            let phone = parse_phone(body.phone_number)?
                .ok_or_else(|| AdminError::Invalid("phone_number is required".into()))?;
            if let Some(peer) = body.dev_peer {
                let peer = peer
                    .parse()
                    .map_err(|_| AdminError::Invalid("dev_peer is the peer's address, e.g. 127.0.0.1:4430".into()))?;
                let account = state.services.add_dev_telegram_account(&body.id, &phone, peer).await?;
                return Ok(HttpResponse::Created().json(account));
            }
            let api_id = body.api_id.ok_or_else(|| AdminError::Invalid("api_id is required".into()))?;
            Ok(HttpResponse::Created().json(state.services.add_telegram_account(&body.id, api_id, &phone).await?))
        }
    }
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PauseAccount {
    /// Why (kept as the account's `reason`; at most 256 characters are kept).
    #[serde(default)]
    note: Option<String>,
}

async fn pause_account(_: Admin, id: web::Path<String>, body: web::Bytes, state: web::Data<AppState>) -> AdminResult {
    let note = optional_json::<PauseAccount>(&body)?.note;
    Ok(HttpResponse::Ok().json(state.services.pause_account(&id, note).await?))
}

async fn resume_account(_: Admin, id: web::Path<String>, state: web::Data<AppState>) -> AdminResult {
    Ok(HttpResponse::Ok().json(state.services.resume_account(&id).await?))
}

async fn remove_account(_: Admin, id: web::Path<String>, state: web::Data<AppState>) -> AdminResult {
    state.services.remove_account(&id).await?;
    Ok(HttpResponse::Ok().json(Removed { removed: id.into_inner() }))
}

/// A sender account removed from the pool.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Removed {
    /// The account's id.
    removed: String,
}
