//! `/metrics`: the Prometheus text exposition.

use super::AppState;
use actix_web::{web, HttpResponse};

pub async fn scrape(state: web::Data<AppState>) -> HttpResponse {
    match state.services.metrics_text().await {
        Ok(text) => HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text),
        Err(e) => {
            tracing::error!(error = &e as &dyn std::error::Error, "cannot render the metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}
