//! The server-wide pool of sender accounts (`/senders`) and the delivery backlog they drain:
//! capacity, not any one tenant's business (a tenant's own sender names are in `tenants.rs`).

use super::{json_object, optional_json, parse_phone, Admin, AdminError, AdminResult};
use crate::api::AppState;
use crate::service::DeliveryBacklog;
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

pub(super) async fn list_accounts(_: Admin, state: web::Data<AppState>) -> AdminResult {
    Ok(HttpResponse::Ok().json(state.services.sender_accounts().await?))
}

pub(super) async fn delivery_backlog(_: Admin, state: web::Data<AppState>) -> AdminResult {
    Ok(HttpResponse::Ok().json(BacklogView::from(state.services.delivery_backlog().await?)))
}

/// The delivery jobs not yet done, in all and per tenant with any.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Backlog)]
pub(in crate::api) struct BacklogView {
    /// Jobs in the queue: waiting for a sender account, or in a worker's hands.
    queued: u64,
    /// Jobs put off until a later time (a retry after a failure on the way).
    waiting: u64,
    /// How long the oldest queued job has waited, in seconds (0 with none).
    oldest_age_seconds: f64,
    /// Each tenant with jobs, by tenant id.
    tenants: Vec<TenantBacklogView>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = TenantBacklog)]
pub(in crate::api) struct TenantBacklogView {
    tenant: String,
    name: String,
    /// The tenant's share of the sender pool (`delivery_weight` of its settings, 1 by default).
    delivery_weight: u16,
    queued: u64,
    waiting: u64,
    oldest_age_seconds: f64,
}

impl From<DeliveryBacklog> for BacklogView {
    fn from(b: DeliveryBacklog) -> Self {
        let tenants = b
            .tenants
            .into_iter()
            .map(|t| TenantBacklogView {
                tenant: t.tenant.to_string(),
                name: t.name,
                delivery_weight: t.delivery_weight,
                queued: t.queued,
                waiting: t.waiting,
                oldest_age_seconds: t.oldest_age.as_secs_f64(),
            })
            .collect();
        Self { queued: b.queued, waiting: b.waiting, oldest_age_seconds: b.oldest_age.as_secs_f64(), tenants }
    }
}

/// A sender account to add to the pool.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct AddAccount {
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

pub(super) async fn add_account(_: Admin, body: web::Bytes, state: web::Data<AppState>) -> AdminResult {
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
pub(in crate::api) struct PauseAccount {
    /// Why (kept as the account's `reason`; at most 256 characters are kept).
    #[serde(default)]
    note: Option<String>,
}

pub(super) async fn pause_account(
    _: Admin,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AdminResult {
    let note = optional_json::<PauseAccount>(&body)?.note;
    Ok(HttpResponse::Ok().json(state.services.pause_account(&id, note).await?))
}

pub(super) async fn resume_account(_: Admin, id: web::Path<String>, state: web::Data<AppState>) -> AdminResult {
    Ok(HttpResponse::Ok().json(state.services.resume_account(&id).await?))
}

pub(super) async fn remove_account(_: Admin, id: web::Path<String>, state: web::Data<AppState>) -> AdminResult {
    state.services.remove_account(&id).await?;
    Ok(HttpResponse::Ok().json(Removed { removed: id.into_inner() }))
}

/// A sender account removed from the pool.
#[derive(Serialize, utoipa::ToSchema)]
pub(in crate::api) struct Removed {
    /// The account's id.
    removed: String,
}
