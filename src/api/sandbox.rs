//! The sandbox inbox: what recipients would see on their phones. Exists only while the sandbox
//! sender is active. Whoever reaches these routes reads every code: on loopback that is the
//! developer; on any other address (`sandbox.public`) every route asks for the admin token.
//! Marking a message read refuses requests forged by other sites in either case.

use super::admin::AdminError;
use super::{auth, AppState};
use crate::delivery::sandbox::{InboxMessage, InboxStatus, ReadOutcome};
use crate::domain::{DeliveryStatus, PhoneNumber};
use crate::service::throttle::Surface;
use actix_web::http::{header, StatusCode};
use actix_web::HttpRequest;
use actix_web::ResponseError;
use actix_web::{web, HttpResponse, Scope};
use serde::{Deserialize, Serialize};

const PAGE_SIZE: usize = 100;

pub fn scope() -> Scope {
    web::scope("/sandbox")
        .app_data(web::QueryConfig::default().error_handler(|e, _| {
            let response = error(actix_web::http::StatusCode::BAD_REQUEST, "invalid", &e.to_string());
            actix_web::error::InternalError::from_response(e, response).into()
        }))
        .route("", web::get().to(page))
        .route("/", web::get().to(page))
        .route("/v1/messages", web::get().to(messages))
        .route("/v1/messages/{request_id}/read", web::post().to(read))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct MessagesQuery {
    /// Only messages to this number (E.164, with or without `+`); without it, the newest
    /// messages to anyone.
    #[param(pattern = r"^(\+?[1-9][0-9]{7,14})?$")]
    phone_number: Option<String>,
}

/// A message the sandbox delivered, as the recipient's device shows it.
#[derive(utoipa::ToSchema)]
#[schema(as = InboxMessage)]
#[allow(dead_code)] // Describes `delivery::sandbox::InboxMessage`'s JSON; tests/openapi.rs checks real answers.
pub(super) struct InboxMessageDoc {
    request_id: String,
    /// Digits only.
    phone_number: String,
    /// The message as the user sees it, code included (deleted messages show no text).
    text: String,
    status: InboxStatusDoc,
    message_id: i64,
    /// Unix seconds.
    sent_at: i64,
}

/// What the recipient's device shows of a message.
#[derive(utoipa::ToSchema)]
#[schema(as = InboxStatus)]
#[allow(dead_code)] // Describes `delivery::sandbox::InboxStatus`'s JSON; tests/openapi.rs checks real answers.
pub(super) enum InboxStatusDoc {
    #[schema(rename = "delivered")]
    Delivered,
    #[schema(rename = "read")]
    Read,
    #[schema(rename = "deleted")]
    Deleted,
}

/// The answer of a read: the message is read (now, or it already was).
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ReadAnswer {
    ok: bool,
    #[schema(value_type = String, pattern = "^read$")]
    status: &'static str,
}

const READ: ReadAnswer = ReadAnswer { ok: true, status: "read" };

fn error(status: actix_web::http::StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(super::admin::ErrorBody { error: code, message })
}

/// Lets a request in, or answers why not: the admin token on a public address (a Bearer token,
/// or the password of Basic authentication, which browsers ask for), and no cross-site writes.
fn guard(req: &HttpRequest, state: &AppState, writes: bool) -> Result<(), Box<HttpResponse>> {
    if writes && auth::cross_site(req) {
        return Err(Box::new(error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "a cross-site request cannot change the sandbox",
        )));
    }
    if !state.sandbox_guarded {
        // On loopback the developer is the only one who can connect, unless a page of another
        // site gets a name of its own pointed at 127.0.0.1 (DNS rebinding): its requests carry
        // that name as Host.
        if !auth::loopback_host(req) {
            return Err(Box::new(error(StatusCode::FORBIDDEN, "forbidden", "the sandbox answers loopback names only")));
        }
        return Ok(());
    }
    let presented = auth::bearer(req).flatten().map(str::to_owned).or_else(|| auth::basic_password(req));
    match auth::admit_presented(req, state, &state.admin_token, Surface::Sandbox, presented.as_deref()) {
        Ok(()) => Ok(()),
        Err(Some(refusal)) => Err(Box::new(AdminError::Throttled(refusal).error_response())),
        Err(None) => {
            let mut response = error(StatusCode::UNAUTHORIZED, "unauthorized", "the sandbox asks for the admin token");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"verigram sandbox\""));
            Err(Box::new(response))
        }
    }
}

/// `GET /sandbox/v1/messages?phone_number=DIGITS`: messages to that number, newest first
/// (without the parameter: the newest messages to anyone).
async fn messages(req: HttpRequest, query: web::Query<MessagesQuery>, state: web::Data<AppState>) -> HttpResponse {
    if let Err(refused) = guard(&req, &state, false) {
        return *refused;
    }
    let Some(inbox) = state.services.sender.sandbox() else {
        return error(actix_web::http::StatusCode::NOT_FOUND, "not_found", "the sandbox sender is off");
    };
    let list = match query.phone_number.as_deref().filter(|p| !p.is_empty()) {
        None => inbox.recent(PAGE_SIZE),
        Some(p) => match PhoneNumber::parse(p) {
            Ok(phone) => inbox.messages_to(&phone),
            Err(_) => {
                return error(
                    actix_web::http::StatusCode::BAD_REQUEST,
                    "phone_number_invalid",
                    "phone_number must be E.164 digits",
                )
            }
        },
    };
    HttpResponse::Ok().json(list)
}

/// `POST /sandbox/v1/messages/{request_id}/read`: the recipient reads the message.
async fn read(req: HttpRequest, path: web::Path<String>, state: web::Data<AppState>) -> HttpResponse {
    if let Err(refused) = guard(&req, &state, true) {
        return *refused;
    }
    let Some(inbox) = state.services.sender.sandbox() else {
        return error(StatusCode::NOT_FOUND, "not_found", "the sandbox sender is off");
    };
    match inbox.read(&path) {
        ReadOutcome::Read(tenant, id) => {
            match state.services.record_delivery(&tenant, id, DeliveryStatus::Read).await {
                Ok(()) => HttpResponse::Ok().json(READ),
                Err(e) => {
                    tracing::error!(error = &e as &dyn std::error::Error, "could not record a sandbox read");
                    error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the read could not be recorded")
                }
            }
        }
        ReadOutcome::AlreadyRead => HttpResponse::Ok().json(READ),
        ReadOutcome::Deleted => error(StatusCode::CONFLICT, "deleted", "the message was deleted"),
        ReadOutcome::NotFound => error(StatusCode::NOT_FOUND, "not_found", "no such message in the sandbox inbox"),
    }
}

/// `GET /sandbox`: the inbox as a page a person can read.
async fn page(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    if let Err(refused) = guard(&req, &state, false) {
        return *refused;
    }
    let messages = state.services.sender.sandbox().map(|i| i.recent(PAGE_SIZE)).unwrap_or_default();
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; connect-src 'self'",
        ))
        .body(render_page(&messages))
}

fn render_page(messages: &[InboxMessage]) -> String {
    let rows: String = if messages.is_empty() {
        "<p class=empty>No messages yet. Call <code>sendVerificationMessage</code> and they appear here.</p>".into()
    } else {
        messages.iter().map(render_message).collect()
    };
    format!(
        r#"<!doctype html>
<html lang=en><head><meta charset=utf-8><meta name=viewport content="width=device-width, initial-scale=1">
<title>verigram sandbox inbox</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;background:#f4f6f8;color:#1b1f23}}
h1{{font-size:1.3rem}} .note{{color:#57606a;font-size:.9rem}}
.msg{{background:#fff;border-radius:.6rem;padding:.8rem 1rem;margin:.7rem 0;box-shadow:0 1px 2px #0002}}
.meta{{color:#57606a;font-size:.8rem;display:flex;gap:1rem;flex-wrap:wrap}}
.text{{font-size:1.05rem;margin:.4rem 0}} .deleted .text{{color:#8c959f;font-style:italic}}
.status{{font-weight:600}} button{{font:inherit;padding:.2rem .7rem;cursor:pointer}}
</style></head><body>
<h1>verigram sandbox inbox</h1>
<p class=note>Messages the sandbox sender delivered instead of Telegram, newest first. Whoever can open this page reads every code: a development tool, never production.
<a href="">Refresh</a></p>
{rows}
<script>
document.querySelectorAll('button[data-read]').forEach(b => b.addEventListener('click', async () => {{
  b.disabled = true;
  await fetch('/sandbox/v1/messages/' + b.dataset.read + '/read', {{method: 'POST'}});
  location.reload();
}}));
</script>
</body></html>"#
    )
}

fn render_message(m: &InboxMessage) -> String {
    let (class, text, action) = match m.status {
        InboxStatus::Deleted => ("msg deleted", "message deleted".to_owned(), String::new()),
        InboxStatus::Read => ("msg", escape(&m.text), String::new()),
        InboxStatus::Delivered => {
            ("msg", escape(&m.text), format!(r#"<button data-read="{}">Mark as read</button>"#, escape(&m.request_id)))
        }
    };
    let status = match m.status {
        InboxStatus::Delivered => "delivered",
        InboxStatus::Read => "read",
        InboxStatus::Deleted => "deleted",
    };
    format!(
        r#"<div class="{class}"><div class=meta><span>to +{phone}</span><span>request {rid}</span><span class=status>{status}</span></div><div class=text>{text}</div>{action}</div>
"#,
        phone = escape(&m.phone_number),
        rid = escape(&m.request_id),
    )
}

/// Escapes text for HTML content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escapes_markup() {
        assert_eq!(escape(r#"<script>"x"&'y'</script>"#), "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;");
    }
}
