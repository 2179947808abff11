//! A tenant's money: credit added or taken, and the ledger that records every change. Apart
//! from the tenant's settings because it moves on every send, not by an operator's edit.

use super::{json_object, tenant_id, Admin, AdminResult};
use crate::api::AppState;
use crate::domain::{Credits, LedgerEntry};
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};

/// Money added (or, negative, taken): never to a balance below zero.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(in crate::api) struct AddCredit {
    /// Not zero.
    amount: Credits,
    /// Kept in the ledger (at most 256 characters are kept).
    #[serde(default)]
    note: Option<String>,
}

/// The balance after a change.
#[derive(Serialize, utoipa::ToSchema)]
pub(in crate::api) struct Balance {
    balance: Credits,
}

pub(super) async fn add_credit(
    _: Admin,
    id: web::Path<String>,
    body: web::Bytes,
    state: web::Data<AppState>,
) -> AdminResult {
    let body: AddCredit = json_object(&body)?;
    let balance = state.services.add_credit(&tenant_id(&id)?, body.amount, body.note).await?;
    Ok(HttpResponse::Ok().json(Balance { balance }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(in crate::api) struct LedgerQuery {
    /// At most this many entries (default 100, at most 10,000).
    limit: Option<usize>,
}

/// One line of a tenant's balance history.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = LedgerEntry)]
pub(in crate::api) struct LedgerView {
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

pub(super) async fn ledger(
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
