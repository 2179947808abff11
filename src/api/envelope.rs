//! The Gateway's answer envelope: `{"ok":true,"result":…}` or `{"ok":false,"error":"…"}`.

use super::error::GatewayError;
use crate::config::ErrorStatus;
use actix_web::http::{header, StatusCode};
use actix_web::HttpResponse;
use serde::Serialize;

#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<&'a T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

/// How a Gateway call ended, for the request metrics: `ok` or the error's name.
#[derive(Debug, Clone, Copy)]
pub struct Outcome(pub &'static str);

pub fn ok<T: Serialize>(result: &T) -> HttpResponse {
    let mut response = json(StatusCode::OK, &Envelope { ok: true, result: Some(result), error: None });
    response.extensions_mut().insert(Outcome("ok"));
    response
}

pub fn error(e: &GatewayError, mode: ErrorStatus) -> HttpResponse {
    let code = e.code();
    let mut response = json(e.status(mode), &Envelope::<()> { ok: false, result: None, error: Some(&code) });
    response.extensions_mut().insert(Outcome(e.name()));
    if let GatewayError::FloodWait(refusal) = e {
        // Retry-After, and the limit that fired in the IETF RateLimit header fields
        // (draft-ietf-httpapi-ratelimit-headers): its policy (quota `q` per window `w` seconds)
        // and its state (`r` left, `t` seconds until it allows again).
        let secs = refusal.retry_after_secs();
        let name = refusal.kind.as_str();
        let headers = [
            (header::RETRY_AFTER, secs.to_string()),
            (
                header::HeaderName::from_static("ratelimit-policy"),
                format!("\"{name}\";q={};w={}", refusal.rate.rate, refusal.rate.per),
            ),
            (header::HeaderName::from_static("ratelimit"), format!("\"{name}\";r=0;t={secs}")),
        ];
        for (name, value) in headers {
            if let Ok(value) = header::HeaderValue::from_str(&value) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    response
}

pub fn respond<T: Serialize>(result: Result<T, GatewayError>, mode: ErrorStatus) -> HttpResponse {
    match result {
        Ok(value) => ok(&value),
        Err(e) => error(&e, mode),
    }
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => HttpResponse::build(status).content_type("application/json").body(bytes),
        Err(_) => HttpResponse::InternalServerError()
            .content_type("application/json")
            .body(r#"{"ok":false,"error":"INTERNAL_ERROR"}"#),
    }
}
