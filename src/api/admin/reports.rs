//! A tenant's delivery reports that exhausted their retries (dead letters), and their replay
//! once the tenant's endpoint is fixed.

use super::{tenant_id, Admin, AdminResult};
use crate::api::AppState;
use actix_web::{web, HttpResponse};
use serde::Serialize;

/// A dead letter as operators see it (never its signing key).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = DeadReport)]
pub(in crate::api) struct DeadReportView {
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

pub(super) async fn dead_reports(_: Admin, id: web::Path<String>, state: web::Data<AppState>) -> AdminResult {
    let dead: Vec<DeadReportView> =
        state.services.dead_reports(&tenant_id(&id)?).await?.into_iter().map(Into::into).collect();
    Ok(HttpResponse::Ok().json(dead))
}

pub(super) async fn replay_dead_report(
    _: Admin,
    path: web::Path<(String, String)>,
    state: web::Data<AppState>,
) -> AdminResult {
    let (id, dead) = path.into_inner();
    state.services.replay_dead_report(&tenant_id(&id)?, &dead).await?;
    Ok(HttpResponse::Ok().json(Replayed { replayed: dead }))
}

/// A dead letter sent again, and acknowledged.
#[derive(Serialize, utoipa::ToSchema)]
pub(in crate::api) struct Replayed {
    /// The dead letter's id.
    replayed: String,
}
