//! `/metrics`: the Prometheus text exposition, behind `metrics.token` when one is set.

use super::{auth, AppState};
use crate::service::throttle::Surface;
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};

pub async fn scrape(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if state.metrics_token.is_some() {
        if let Err(refused) = auth::admit(&req, &state, &state.metrics_token, Surface::Metrics) {
            let mut response = match refused {
                Some(refusal) => {
                    let mut r = HttpResponse::TooManyRequests();
                    r.insert_header((header::RETRY_AFTER, refusal.retry_after_secs()));
                    r
                }
                None => HttpResponse::Unauthorized(),
            };
            return response.insert_header((header::WWW_AUTHENTICATE, "Bearer")).finish();
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
