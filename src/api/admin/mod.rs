//! The operator's API under `/admin/v1`: tenants, settings, money and tokens. Plain JSON
//! resources with HTTP statuses; every route needs `Authorization: Bearer <admin.token>`.
//! The route table, the token check and what every resource shares live here, so the table
//! reads as one list; each resource's handlers and bodies are in a file of their own.

mod audit;
mod balance;
mod limits;
mod reports;
mod senders;
mod tenants;
mod tokens;

// The OpenAPI document (`openapi/routes.rs`) names the bodies by these paths.
pub(super) use balance::{AddCredit, Balance, LedgerQuery, LedgerView};
pub(super) use limits::ExplainLimits;
pub(super) use reports::{DeadReportView, Replayed};
pub(super) use senders::{AddAccount, BacklogView, PauseAccount, Removed};
pub(super) use tenants::{CreateTenant, Created, PutSender, TenantView, UpdateTenant};
pub(super) use tokens::{IpAllow, IssueToken, IssuedToken, RotateToken, Rotated, TokenView};

use super::{auth, AppState};
use crate::domain::{PhoneNumber, TenantId};
use crate::service::throttle::Surface;
use crate::service::{ReportError, SenderError, TenantError};
use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError, Scope};
use serde::Serialize;
use std::future::{ready, Ready};

pub fn scope() -> Scope<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::scope("/admin/v1")
        .wrap_fn(audit::record)
        .app_data(web::PayloadConfig::new(64 * 1024))
        // A query string that does not parse is the client's mistake, answered like the rest.
        .app_data(web::QueryConfig::default().error_handler(|e, _| AdminError::Invalid(e.to_string()).into()))
        .route("/tenants", web::post().to(tenants::create_tenant))
        .route("/tenants", web::get().to(tenants::list_tenants))
        .route("/tenants/{id}", web::get().to(tenants::get_tenant))
        .route("/tenants/{id}", web::patch().to(tenants::update_tenant))
        .route("/tenants/{id}/balance", web::post().to(balance::add_credit))
        .route("/tenants/{id}/ledger", web::get().to(balance::ledger))
        .route("/tenants/{id}/tokens", web::get().to(tokens::list_tokens))
        .route("/tenants/{id}/tokens", web::post().to(tokens::issue_token))
        .route("/tenants/{id}/tokens/{token}", web::delete().to(tokens::revoke_token))
        .route("/tenants/{id}/tokens/{token}/rotate", web::post().to(tokens::rotate_token))
        .route("/tenants/{id}/tokens/{token}/ip_allow", web::put().to(tokens::set_ip_allow))
        .route("/tenants/{id}/limits/explain", web::post().to(limits::explain_limits))
        .route("/tenants/{id}/reports/dead", web::get().to(reports::dead_reports))
        .route("/tenants/{id}/reports/dead/{dead}/replay", web::post().to(reports::replay_dead_report))
        .route("/tenants/{id}/senders/{username}", web::put().to(tenants::put_sender))
        .route("/tenants/{id}/senders/{username}", web::delete().to(tenants::remove_sender))
        .route("/senders", web::get().to(senders::list_accounts))
        .route("/delivery/backlog", web::get().to(senders::delivery_backlog))
        .route("/senders", web::post().to(senders::add_account))
        .route("/senders/{account}/pause", web::post().to(senders::pause_account))
        .route("/senders/{account}/resume", web::post().to(senders::resume_account))
        .route("/senders/{account}", web::delete().to(senders::remove_account))
        .default_service(web::route().to(not_found))
}

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("missing or wrong admin token")]
    Unauthorized,
    #[error("too many failed authentications from this address: retry in {} s", .0.retry_after_secs())]
    Throttled(crate::domain::Refusal),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the store is unavailable")]
    Unavailable,
    #[error("internal error")]
    Internal,
}

impl AdminError {
    pub(super) fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::Throttled(_) => "too_many_requests",
            Self::NotFound(_) => "not_found",
            Self::Invalid(_) => "invalid",
            Self::Conflict(_) => "conflict",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Invalid(_) => StatusCode::BAD_REQUEST,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        if let Self::Throttled(refusal) = self {
            response.insert_header((header::RETRY_AFTER, refusal.retry_after_secs()));
        }
        response.json(ErrorBody { error: self.code(), message: &self.to_string() })
    }
}

/// The body of every admin (and sandbox) error answer.
#[derive(Serialize, utoipa::ToSchema)]
pub(super) struct ErrorBody<'a> {
    /// What kind of error: fixed by the HTTP status.
    pub(super) error: &'a str,
    /// For people: what was wrong.
    pub(super) message: &'a str,
}

impl From<TenantError> for AdminError {
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::NotFound => Self::NotFound("no such tenant".into()),
            TenantError::TokenNotFound => Self::NotFound("no such token".into()),
            TenantError::Invalid(msg) => Self::Invalid(msg.into()),
            e @ (TenantError::WouldGoNegative { .. } | TenantError::WouldPassMax { .. }) => {
                Self::Conflict(e.to_string())
            }
            TenantError::Store(e) if e.is_transient() => {
                tracing::warn!(error = &e as &dyn std::error::Error, "store unavailable");
                Self::Unavailable
            }
            TenantError::Store(e) => {
                tracing::error!(error = &e as &dyn std::error::Error, "admin operation failed");
                Self::Internal
            }
        }
    }
}

impl From<SenderError> for AdminError {
    fn from(e: SenderError) -> Self {
        match e {
            SenderError::NotFound => Self::NotFound("no such sender account".into()),
            SenderError::Invalid(msg) => Self::Invalid(msg.into()),
            e @ SenderError::Exists => Self::Conflict(e.to_string()),
            SenderError::Store(e) => TenantError::Store(e).into(),
        }
    }
}

impl From<ReportError> for AdminError {
    fn from(e: ReportError) -> Self {
        match e {
            ReportError::TenantNotFound => Self::NotFound("no such tenant".into()),
            ReportError::NotFound => Self::NotFound("no such dead letter".into()),
            e @ ReportError::NotAcknowledged(_) => Self::Conflict(e.to_string()),
            ReportError::Store(e) => TenantError::Store(e).into(),
        }
    }
}

/// Proof that the request carries the admin token. A wrong or missing token is logged (with
/// the client's address, never what was presented) and counts against the address's
/// `limits.auth_failures` budget; once that is used up, the address is answered 429 before its
/// token is compared.
pub struct Admin;

impl FromRequest for Admin {
    type Error = AdminError;
    type Future = Ready<Result<Self, AdminError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let Some(state) = req.app_data::<web::Data<AppState>>() else {
            return ready(Err(AdminError::Unauthorized));
        };
        ready(auth::admit(req, state, &state.admin_token, Surface::Admin).map(|()| Admin).map_err(|refused| {
            match refused {
                Some(refusal) => AdminError::Throttled(refusal),
                None => AdminError::Unauthorized,
            }
        }))
    }
}

type AdminResult = Result<HttpResponse, AdminError>;

fn tenant_id(raw: &str) -> Result<TenantId, AdminError> {
    TenantId::parse(raw).map_err(|_| AdminError::NotFound("no such tenant".into()))
}

fn parse_phone(p: Option<String>) -> Result<Option<PhoneNumber>, AdminError> {
    p.filter(|p| !p.is_empty())
        .map(|p| PhoneNumber::parse(&p).map_err(|_| AdminError::Invalid("phone_number must be an E.164 number".into())))
        .transpose()
}

/// A body that must be a JSON object of the expected fields (serde would also take a struct
/// from an array; an admin API should not).
fn json_object<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| AdminError::Invalid(e.to_string()))?;
    if !value.is_object() {
        return Err(AdminError::Invalid("the body must be a JSON object".into()));
    }
    serde_json::from_value(value).map_err(|e| AdminError::Invalid(e.to_string()))
}

/// A JSON object body that may be left out entirely (then every field takes its default).
fn optional_json<T: serde::de::DeserializeOwned + Default>(body: &[u8]) -> Result<T, AdminError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    json_object(body)
}

/// Anything else on the admin listener (which needs no token to say so: nothing is there).
pub(super) async fn not_found_here() -> AdminResult {
    Err(AdminError::NotFound("no such admin resource".into()))
}

async fn not_found(_: Admin) -> AdminResult {
    not_found_here().await
}
