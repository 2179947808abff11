//! HTTP: the Gateway methods, the admin API, the sandbox inbox and health probes.

mod admin;
mod envelope;
pub mod error;
mod gateway;
mod health;
mod params;
mod sandbox;

use crate::config::{ErrorStatus, Role};
use crate::service::Services;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpMessage};
use std::sync::Arc;
use tracing::Instrument;

/// What handlers share, handed to them as `web::Data`.
pub struct AppState {
    pub services: Arc<Services>,
    pub error_status: ErrorStatus,
    pub body_limit: usize,
    /// `None`: the admin API is off.
    pub admin_token: Option<String>,
    pub role: Role,
}

/// The trace id of one HTTP request (not a Gateway `request_id`).
#[derive(Debug, Clone)]
pub struct TraceId(pub String);

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Registers every route. Routes of optional parts exist only while the part is on.
pub fn configure(cfg: &mut web::ServiceConfig, state: &web::Data<AppState>) {
    cfg.app_data(state.clone())
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz));
    if state.admin_token.is_some() && state.role.serves_api() {
        cfg.service(admin::scope());
    }
    // The sandbox inbox lives where messages are sent: in processes that run workers.
    if state.services.sender.sandbox().is_some() && state.role.runs_workers() {
        cfg.service(sandbox::scope());
    }
    if state.role.serves_api() {
        cfg.route("/{method}", web::route().to(gateway::dispatch));
    }
    cfg.default_service(web::route().to(gateway::unknown_method));
}

/// Wraps an app so that every request has a trace id: in a tracing span around its handling
/// and in the `X-Request-Id` response header.
pub fn with_trace_id<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static
where
    S: Service<actix_web::dev::ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let id = uuid::Uuid::new_v4().simple().to_string();
    let span = tracing::info_span!("http", request_id = %id, method = %req.method(), path = %req.path());
    req.extensions_mut().insert(TraceId(id.clone()));
    let fut = {
        let _entered = span.enter();
        srv.call(req)
    };
    async move {
        let mut res = fut.await?;
        tracing::info!(status = res.status().as_u16(), "request finished");
        if let Ok(value) = HeaderValue::from_str(&id) {
            res.headers_mut().insert(X_REQUEST_ID, value);
        }
        Ok(res)
    }
    .instrument(span)
}
