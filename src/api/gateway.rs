//! The four Gateway methods at `/{methodName}`: GET or POST, names in any case.

use super::error::GatewayError;
use super::params::{GatewayParams, Param};
use super::{envelope, AppState};
use crate::domain::{
    CallbackUrl, Code, CodeLength, Payload, PhoneNumber, RequestId, RequestStatusView, SenderUsername, Ttl,
};
use crate::secrets::ApiToken;
use crate::service::{Caller, CodeSpec, EnteredCode, SendCommand};
use actix_web::http::{header, Method};
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

/// `Authorization: Bearer <token>` or `access_token`. Both given and different: invalid.
async fn authenticate(req: &HttpRequest, params: &GatewayParams, state: &AppState) -> Result<Caller, GatewayError> {
    let from_header = req.headers().get(header::AUTHORIZATION).map(|value| {
        let text = value.to_str().ok()?;
        let (scheme, token) = text.split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
    });
    let from_param = match params.get("access_token") {
        Param::Absent => None,
        Param::Text(t) => Some(Some(t)),
        Param::Invalid => Some(None),
    };
    let text = match (from_header, from_param) {
        (None, None) => return Err(GatewayError::AccessTokenRequired),
        (Some(Some(h)), Some(Some(p))) if h != p => return Err(GatewayError::AccessTokenInvalid),
        (Some(Some(t)), _) | (None, Some(Some(t))) => t,
        _ => return Err(GatewayError::AccessTokenInvalid),
    };
    let token = ApiToken::parse(text).ok_or(GatewayError::AccessTokenInvalid)?;
    let client = client_address(req, &state.services.settings.limits.trusted_proxies);
    Ok(state.services.authenticate(&token, client).await?)
}

/// The client's address: the connection's, or, when that is a trusted proxy, the nearest
/// address in `X-Forwarded-For` that is not one (read from the right: the left part is the
/// client's own claim and could be anything). A hop that cannot be read gives no address (the
/// per-address limit is then skipped, and a token's address allow-list refuses): never the
/// proxy's own, which would put everyone behind it in one bucket.
fn client_address(req: &HttpRequest, trusted: &[ipnet::IpNet]) -> Option<std::net::IpAddr> {
    let peer = req.peer_addr()?.ip().to_canonical();
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let lines: Vec<_> = req.headers().get_all("x-forwarded-for").collect();
    let mut nearest = peer;
    for value in lines.into_iter().rev() {
        for hop in value.to_str().ok()?.rsplit(',').map(str::trim) {
            let ip = hop
                .parse::<std::net::IpAddr>()
                .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|a| a.ip()))
                .ok()?
                .to_canonical();
            nearest = ip;
            if !is_trusted(&ip) {
                return Some(ip);
            }
        }
    }
    Some(nearest)
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
