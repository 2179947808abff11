//! `/metrics`: the Prometheus text exposition, behind `metrics.token` when one is set.

use super::admin::AdminError;
use super::{auth, AppState};
use crate::service::throttle::Surface;
use actix_web::http::header;
use actix_web::ResponseError;
use actix_web::{web, HttpRequest, HttpResponse};

pub async fn scrape(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if state.metrics_token.is_some() {
        match auth::admit(&req, &state, &state.metrics_token, Surface::Metrics) {
            Ok(()) => {}
            Err(Some(refusal)) => return AdminError::Throttled(refusal).error_response(),
            Err(None) => {
                return HttpResponse::Unauthorized().insert_header((header::WWW_AUTHENTICATE, "Bearer")).finish()
            }
        }
    }
    match state.services.metrics_text().await {
        Ok(text) => HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text),
        Err(e) => {
            tracing::error!(error = &e as &dyn std::error::Error, "cannot render the metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}
