//! Probes: `/healthz` (the process answers) and `/readyz` (the store answers too).

use super::AppState;
use actix_web::{web, HttpResponse};
use serde_json::json;

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let store = state.services.store.kind();
    match state.services.store.ping().await {
        Ok(()) => HttpResponse::Ok().json(json!({"status": "ready", "store": store})),
        Err(e) => {
            tracing::warn!(error = &e as &dyn std::error::Error, "readiness check failed");
            HttpResponse::ServiceUnavailable().json(json!({"status": "unavailable", "store": store}))
        }
    }
}
