//! The four Gateway methods at `/{methodName}`: GET or POST, names in any case.

use super::error::GatewayError;
use super::params::{GatewayParams, Param};
use super::{auth, envelope, AppState};
use crate::domain::{
    CallbackUrl, Code, CodeLength, Payload, PhoneNumber, RequestId, RequestStatusView, SenderUsername, Ttl,
};
use crate::secrets::ApiToken;
use crate::service::throttle::Surface;
use crate::service::{Caller, CodeSpec, EnteredCode, SendCommand};
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use std::time::Duration;

/// How long a client may take to send its body.
const BODY_DEADLINE: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, Copy)]
pub(super) enum GatewayMethod {
    SendVerificationMessage,
    CheckSendAbility,
    CheckVerificationStatus,
    RevokeVerificationMessage,
}

impl GatewayMethod {
    /// Every method, in the spec's order.
    pub(super) const ALL: [GatewayMethod; 4] = [
        Self::SendVerificationMessage,
        Self::CheckSendAbility,
        Self::CheckVerificationStatus,
        Self::RevokeVerificationMessage,
    ];

    /// The method's name as the spec writes it.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::SendVerificationMessage => "sendVerificationMessage",
            Self::CheckSendAbility => "checkSendAbility",
            Self::CheckVerificationStatus => "checkVerificationStatus",
            Self::RevokeVerificationMessage => "revokeVerificationMessage",
        }
    }

    pub(super) fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "sendverificationmessage" => Some(Self::SendVerificationMessage),
            "checksendability" => Some(Self::CheckSendAbility),
            "checkverificationstatus" => Some(Self::CheckVerificationStatus),
            "revokeverificationmessage" => Some(Self::RevokeVerificationMessage),
            _ => None,
        }
    }
}

/// `/{method}`: a method's name in another case, or no method.
pub async fn dispatch(
    req: HttpRequest,
    name: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    match GatewayMethod::parse(&name) {
        Some(method) => dispatch_method(method, req, payload, state).await,
        None => envelope::error(&GatewayError::UnknownMethod, state.error_status),
    }
}

/// The method a response answered, for the request metrics (read by `api::labels`).
pub(super) struct MethodLabel(pub &'static str);

pub(super) async fn dispatch_method(
    method: GatewayMethod,
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> HttpResponse {
    let mut response = envelope::respond(handle(&req, method, payload, &state).await, state.error_status);
    response.extensions_mut().insert(MethodLabel(method.as_str()));
    response
}

/// Any path that is not a method (or a GET/POST to one) answers in the envelope too.
pub async fn unknown_method(state: web::Data<AppState>) -> HttpResponse {
    envelope::error(&GatewayError::UnknownMethod, state.error_status)
}

/// A method's `result`: a RequestStatus, or `true` for a revocation.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Answer {
    Status(RequestStatusView),
    Done(bool),
}

async fn handle(
    req: &HttpRequest,
    method: GatewayMethod,
    payload: web::Payload,
    state: &AppState,
) -> Result<Answer, GatewayError> {
    if req.method() != Method::GET && req.method() != Method::POST {
        return Err(GatewayError::BadRequest);
    }
    let params =
        GatewayParams::extract(req.query_string(), req.headers(), payload, state.body_limit, BODY_DEADLINE).await?;
    let caller = authenticate(req, &params, state).await?;
    let services = &state.services;
    let result = match method {
        GatewayMethod::SendVerificationMessage => {
            let cmd = parse_send(&params, state)?;
            Answer::Status(services.send(&caller, cmd).await?)
        }
        GatewayMethod::CheckSendAbility => {
            let phone = parse_phone(&params)?;
            Answer::Status(services.check_send_ability(&caller, phone).await?)
        }
        GatewayMethod::CheckVerificationStatus => {
            let id = parse_request_id(&params)?;
            let entered = match params.get("code") {
                Param::Absent => None,
                // Something that cannot be a code is still the user's attempt: it counts as a
                // wrong code rather than an error, so junk buys no extra guesses.
                Param::Text(t) => Some(Code::parse(t).map_or(EnteredCode::Malformed, EnteredCode::Digits)),
                Param::Invalid => Some(EnteredCode::Malformed),
            };
            Answer::Status(services.check_verification(&caller, id, entered).await?)
        }
        GatewayMethod::RevokeVerificationMessage => {
            let id = parse_request_id(&params)?;
            services.revoke(&caller, id).await?;
            Answer::Done(true)
        }
    };
    Ok(result)
}

/// `Authorization: Bearer <token>` or `access_token`. Both given and different: invalid. An
/// address whose failed attempts used up `limits.auth_failures` is refused before its token is
/// hashed or looked up.
async fn authenticate(req: &HttpRequest, params: &GatewayParams, state: &AppState) -> Result<Caller, GatewayError> {
    let found = auth::client(req, &state.services.settings.limits.trusted_proxies);
    let client = found.map(|c| c.address);
    if let Some(refusal) = auth::throttled(state, Surface::Gateway, client) {
        return Err(GatewayError::FloodWait(refusal));
    }
    let result = async {
        let text = presented_token(req, params)?;
        let token = ApiToken::parse(text).ok_or(GatewayError::AccessTokenInvalid)?;
        let vouched = found.filter(|c| c.vouched).map(|c| c.address);
        Ok(state.services.authenticate(&token, client, vouched).await?)
    }
    .await;
    if matches!(result, Err(GatewayError::AccessTokenRequired | GatewayError::AccessTokenInvalid)) {
        auth::failed(state, Surface::Gateway, client);
    }
    result
}

fn presented_token<'a>(req: &'a HttpRequest, params: &'a GatewayParams) -> Result<&'a str, GatewayError> {
    let from_param = match params.get("access_token") {
        Param::Absent => None,
        Param::Text(t) => Some(Some(t)),
        Param::Invalid => Some(None),
    };
    match (auth::bearer(req), from_param) {
        (None, None) => Err(GatewayError::AccessTokenRequired),
        (Some(Some(h)), Some(Some(p))) if h != p => Err(GatewayError::AccessTokenInvalid),
        (Some(Some(t)), _) | (None, Some(Some(t))) => Ok(t),
        _ => Err(GatewayError::AccessTokenInvalid),
    }
}

fn parse_phone(params: &GatewayParams) -> Result<PhoneNumber, GatewayError> {
    match params.get("phone_number") {
        // An unencoded `+` in a query or form decodes as a space (`phone_number=+1555…`, as
        // curl -d sends it): one leading space stands for the plus sign.
        Param::Text(t) => {
            PhoneNumber::parse(t.strip_prefix(' ').unwrap_or(t)).map_err(|_| GatewayError::PhoneNumberInvalid)
        }
        Param::Absent | Param::Invalid => Err(GatewayError::PhoneNumberInvalid),
    }
}

fn parse_request_id(params: &GatewayParams) -> Result<RequestId, GatewayError> {
    match params.get("request_id") {
        Param::Absent => Err(GatewayError::RequestIdRequired),
        Param::Text(t) => RequestId::parse(t).map_err(|_| GatewayError::RequestIdInvalid),
        Param::Invalid => Err(GatewayError::RequestIdInvalid),
    }
}

/// An optional parameter: absent, or parsed by `parse` with `error` for anything else.
fn optional<T, E>(
    params: &GatewayParams,
    name: &str,
    error: GatewayError,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<Option<T>, GatewayError> {
    match params.get(name) {
        Param::Absent => Ok(None),
        Param::Text(t) => parse(t).map(Some).map_err(|_| error),
        Param::Invalid => Err(error),
    }
}

/// Checks the parameters of a send in the Gateway's order: phone, code/code_length, then the
/// rest in the order of the spec's table.
fn parse_send(params: &GatewayParams, state: &AppState) -> Result<SendCommand, GatewayError> {
    let phone = parse_phone(params)?;
    let code = match optional(params, "code", GatewayError::CodeInvalid, Code::parse)? {
        Some(code) => CodeSpec::Given(code),
        None => CodeSpec::Generate(
            optional(params, "code_length", GatewayError::CodeLengthInvalid, CodeLength::parse)?
                .ok_or(GatewayError::CodeLengthRequired)?,
        ),
    };
    let request_id = optional(params, "request_id", GatewayError::RequestIdInvalid, RequestId::parse)?;
    let sender_username =
        optional(params, "sender_username", GatewayError::SenderUsernameInvalid, SenderUsername::parse)?;
    let policy = state.services.settings.callbacks.policy();
    let callback_url =
        optional(params, "callback_url", GatewayError::CallbackUrlInvalid, |u| CallbackUrl::parse(u, policy))?;
    let payload = optional(params, "payload", GatewayError::PayloadInvalid, Payload::parse)?;
    let ttl = optional(params, "ttl", GatewayError::TtlInvalid, Ttl::parse)?;
    Ok(SendCommand { phone, code, request_id, sender_username, callback_url, payload, ttl })
}
