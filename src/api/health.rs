//! Probes: `/healthz` (the process answers) and `/readyz` (the store answers too).

use super::AppState;
use actix_web::{web, HttpResponse};
use serde::Serialize;

/// The process answers.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Health {
    #[schema(pattern = "^ok$")]
    status: &'static str,
}

/// Whether the store answers (`ready`) or not (`unavailable`, with HTTP 503).
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct Readiness {
    #[schema(pattern = "^(ready|unavailable)$")]
    status: &'static str,
    /// The store's kind: `memory` or `redis`.
    #[schema(pattern = "^(memory|redis)$")]
    store: &'static str,
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = state.services.store.kind();
    match state.services.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(Readiness { status: "ready", store }),
        Err(e) => {
            tracing::warn!(error = &e as &dyn std::error::Error, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(Readiness { status: "unavailable", store })
        }
    }
}
