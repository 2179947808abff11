//! The audit trail: one log line (target `verigram::audit`) for every admin call that changes
//! something, whether it was let in or not: who (the client's address; there is one admin
//! token, so the address is the only name there is), what (the method and route, with the
//! tenant, token or account ids in the path) and how it ended. Never a body: bodies hold new
//! tokens, balances' reasons and sessions.

use crate::api::{auth, AppState};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::web;
use std::future::Future;

pub fn record<S>(
    req: ServiceRequest,
    srv: &S,
) -> impl Future<Output = Result<ServiceResponse, actix_web::Error>> + 'static
where
    S: Service<ServiceRequest, Response = ServiceResponse, Error = actix_web::Error>,
    S::Future: 'static,
{
    let changes = req.method() != Method::GET && req.method() != Method::HEAD;
    // Read only for what is recorded: reads (GET, HEAD) cost nothing here.
    let seen = changes.then(|| {
        let client = req
            .app_data::<web::Data<AppState>>()
            .and_then(|state| auth::client_address(req.request(), &state.services.settings.limits.trusted_proxies))
            .map(|ip| ip.to_string())
            .unwrap_or_default();
        (client, req.method().to_string(), req.path().to_owned())
    });
    let fut = srv.call(req);
    async move {
        let res = fut.await?;
        if let Some((client, method, path)) = seen {
            tracing::info!(
                target: "verigram::audit",
                client,
                method,
                path,
                route = res.request().match_pattern().unwrap_or_default(),
                status = res.status().as_u16(),
                "admin change"
            );
        }
        Ok(res)
    }
}
