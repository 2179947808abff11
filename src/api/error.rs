//! The one place Gateway errors become strings and HTTP statuses.

use crate::config::ErrorStatus;
use crate::service::ServiceError;
use actix_web::http::StatusCode;
use std::borrow::Cow;

/// Every error a Gateway method can answer (spec §5), plus transport failures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    AccessTokenRequired,
    AccessTokenInvalid,
    UnknownMethod,
    PhoneNumberInvalid,
    PhoneNumberNotFound,
    PhoneNumberMismatch,
    RequestIdRequired,
    RequestIdInvalid,
    MessageAlreadySent,
    CodeInvalid,
    CodeLengthInvalid,
    CodeLengthRequired,
    TtlInvalid,
    PayloadInvalid,
    CallbackUrlInvalid,
    SenderUsernameInvalid,
    SenderNotVerified,
    SenderNotOwned,
    BalanceNotEnough,
    /// Rate limited: the limit that fired and when to come back.
    FloodWait(crate::domain::Refusal),
    /// The request itself is unreadable: malformed or oversized body, unsupported media type,
    /// an HTTP method other than GET or POST.
    BadRequest,
    /// A failure of ours; details are in the server log only.
    Internal,
    /// The store cannot be reached: nothing was sent, charged or verified.
    ServiceUnavailable,
}

impl GatewayError {
    /// The error string of the answer.
    pub fn code(&self) -> Cow<'static, str> {
        match self {
            GatewayError::FloodWait(refusal) => Cow::Owned(format!("FLOOD_WAIT_{}", refusal.retry_after_secs())),
            other => Cow::Borrowed(other.name()),
        }
    }

    /// The error's name, without the wait of a `FLOOD_WAIT_<s>` (a bounded metrics label).
    pub fn name(&self) -> &'static str {
        use GatewayError::*;
        match self {
            AccessTokenRequired => "ACCESS_TOKEN_REQUIRED",
            AccessTokenInvalid => "ACCESS_TOKEN_INVALID",
            UnknownMethod => "UNKNOWN_METHOD",
            PhoneNumberInvalid => "PHONE_NUMBER_INVALID",
            PhoneNumberNotFound => "PHONE_NUMBER_NOT_FOUND",
            PhoneNumberMismatch => "PHONE_NUMBER_MISMATCH",
            RequestIdRequired => "REQUEST_ID_REQUIRED",
            RequestIdInvalid => "REQUEST_ID_INVALID",
            MessageAlreadySent => "MESSAGE_ALREADY_SENT",
            CodeInvalid => "CODE_INVALID",
            CodeLengthInvalid => "CODE_LENGTH_INVALID",
            CodeLengthRequired => "CODE_LENGTH_REQUIRED",
            TtlInvalid => "TTL_INVALID",
            PayloadInvalid => "PAYLOAD_INVALID",
            CallbackUrlInvalid => "CALLBACK_URL_INVALID",
            SenderUsernameInvalid => "SENDER_USERNAME_INVALID",
            SenderNotVerified => "SENDER_NOT_VERIFIED",
            SenderNotOwned => "SENDER_NOT_OWNED",
            BalanceNotEnough => "BALANCE_NOT_ENOUGH",
            FloodWait(_) => "FLOOD_WAIT",
            BadRequest => "BAD_REQUEST",
            Internal => "INTERNAL_ERROR",
            ServiceUnavailable => "SERVICE_UNAVAILABLE",
        }
    }

    /// The HTTP status under `api.error_status`. Our own failures are 5xx in either mode, so
    /// load balancers and retries see them for what they are.
    pub fn status(&self, mode: ErrorStatus) -> StatusCode {
        use GatewayError::*;
        match self {
            Internal => return StatusCode::INTERNAL_SERVER_ERROR,
            ServiceUnavailable => return StatusCode::SERVICE_UNAVAILABLE,
            _ if mode == ErrorStatus::Ok => return StatusCode::OK,
            _ => {}
        }
        match self {
            AccessTokenRequired | AccessTokenInvalid => StatusCode::UNAUTHORIZED,
            UnknownMethod | RequestIdInvalid => StatusCode::NOT_FOUND,
            BalanceNotEnough => StatusCode::PAYMENT_REQUIRED,
            FloodWait(_) => StatusCode::TOO_MANY_REQUESTS,
            _ => StatusCode::BAD_REQUEST,
        }
    }
}

impl From<ServiceError> for GatewayError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::AccessTokenInvalid => Self::AccessTokenInvalid,
            ServiceError::PhoneNumberNotFound => Self::PhoneNumberNotFound,
            ServiceError::PhoneNumberMismatch => Self::PhoneNumberMismatch,
            ServiceError::RequestIdInvalid => Self::RequestIdInvalid,
            ServiceError::MessageAlreadySent => Self::MessageAlreadySent,
            ServiceError::SenderNotOwned => Self::SenderNotOwned,
            ServiceError::SenderNotVerified => Self::SenderNotVerified,
            ServiceError::BalanceNotEnough => Self::BalanceNotEnough,
            ServiceError::CallbackUrlInvalid => Self::CallbackUrlInvalid,
            ServiceError::RateLimited(refusal) => Self::FloodWait(refusal),
            ServiceError::Store(e) if e.is_transient() => {
                tracing::warn!(error = &e as &dyn std::error::Error, "store unavailable");
                Self::ServiceUnavailable
            }
            other => {
                tracing::error!(error = &other as &dyn std::error::Error, "internal error");
                Self::Internal
            }
        }
    }
}
