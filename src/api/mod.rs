//! HTTP: the Gateway methods, the admin API, the sandbox inbox and health probes.

mod admin;
mod auth;
mod envelope;
pub mod error;
mod gateway;
mod health;
mod metrics;
mod openapi;
mod params;
mod sandbox;

use crate::config::{ErrorStatus, Role};
use crate::service::Services;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::{web, HttpMessage};
use std::borrow::Cow;
use std::sync::Arc;
use tracing::Instrument;

/// What handlers share, handed to them as `web::Data`.
pub struct AppState {
    pub services: Arc<Services>,
    pub error_status: ErrorStatus,
    pub body_limit: usize,
    /// `None`: the admin API is off.
    pub admin_token: Option<secrecy::SecretString>,
    /// `None`: `/metrics` asks for no token.
    pub metrics_token: Option<secrecy::SecretString>,
    /// The sandbox inbox asks for the admin token (it is served on a non-loopback address).
    pub sandbox_guarded: bool,
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
        .route("/readyz", web::get().to(health::readyz))
        .route("/openapi.json", web::get().to(openapi::serve));
    if state.services.settings.metrics.own_listener().is_none() {
        cfg.route("/metrics", web::get().to(metrics::scrape));
    }
    if state.admin_token.is_some() && state.role.serves_api() && state.services.settings.admin.own_listener().is_none()
    {
        cfg.service(admin::scope());
    }
    // The sandbox inbox lives where messages are sent: in processes that run workers.
    if state.services.sender.sandbox().is_some() && state.role.runs_workers() {
        cfg.service(sandbox::scope());
    }
    if state.role.serves_api() {
        // Each method's own path first: a static path is matched by comparing strings, where
        // `/{method}` takes a regex match (it cost a status check a tenth of its CPU). The
        // pattern still serves the names spelt in another case, and unknown ones.
        for method in gateway::GatewayMethod::ALL {
            cfg.route(
                &format!("/{}", method.as_str()),
                web::route().to(move |req, payload, state| gateway::dispatch_method(method, req, payload, state)),
            );
        }
        cfg.route("/{method}", web::route().to(gateway::dispatch));
    }
    cfg.default_service(web::route().to(gateway::unknown_method));
}

/// The OpenAPI document of the HTTP API, as pretty JSON (`verigram openapi`).
pub fn openapi_json() -> Result<String, serde_json::Error> {
    openapi::document().to_pretty_json()
}

/// The separate admin listener's routes (`admin.listen`): the admin API and the probes.
pub fn configure_admin(cfg: &mut web::ServiceConfig, state: &web::Data<AppState>) {
    cfg.app_data(state.clone()).route("/healthz", web::get().to(health::healthz));
    if state.admin_token.is_some() {
        cfg.service(admin::scope());
    }
    cfg.default_service(web::route().to(admin::not_found_here));
}

/// The separate metrics listener's routes (`metrics.listen`).
pub fn configure_metrics(cfg: &mut web::ServiceConfig, state: &web::Data<AppState>) {
    cfg.app_data(state.clone()).route("/metrics", web::get().to(metrics::scrape));
}

/// Wraps an app so that every request has a trace id (in a tracing span around its handling
/// and in the `X-Request-Id` response header) and is counted and timed in the metrics.
pub fn with_trace_id<S, B>(
    req: actix_web::dev::ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + 'static
where
    S: Service<actix_web::dev::ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
{
    let started = std::time::Instant::now();
    let metrics = req.app_data::<web::Data<AppState>>().map(|state| Arc::clone(&state.services.metrics));
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
        if let Some(metrics) = metrics {
            let (method, outcome) = labels(&res);
            metrics.api_requests.with_label_values(&[&method, outcome]).inc();
            metrics.api_duration.with_label_values(&[&method, outcome]).observe(started.elapsed().as_secs_f64());
        }
        if let Ok(value) = HeaderValue::from_str(&id) {
            res.headers_mut().insert(X_REQUEST_ID, value);
        }
        Ok(res)
    }
    .instrument(span)
}

/// The bounded labels of a request: a Gateway method (or the route's pattern) and how it
/// ended (`ok`, a Gateway error name, or the HTTP status class).
fn labels<B>(res: &ServiceResponse<B>) -> (Cow<'static, str>, &'static str) {
    let named = res.response().extensions().get::<gateway::MethodLabel>().map(|m| m.0);
    let method = match named.map_or_else(|| res.request().match_pattern(), |_| None) {
        Some(pattern) if pattern == "/{method}" => {
            let name = res.request().match_info().get("method").unwrap_or_default();
            Cow::Borrowed(gateway::GatewayMethod::parse(name).map_or("unknown", gateway::GatewayMethod::as_str))
        }
        // The admin, sandbox and probe routes: the route table is a closed set.
        Some(pattern) => Cow::Owned(pattern),
        None => Cow::Borrowed(named.unwrap_or("unknown")),
    };
    let outcome = match res.response().extensions().get::<envelope::Outcome>() {
        Some(outcome) => outcome.0,
        None => match res.status().as_u16() {
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        },
    };
    (method, outcome)
}
