//! The domain: typed values parsed from untrusted input, and the rules of a request's life.
//! Nothing here knows about HTTP or Redis.

mod account;
pub mod address;
mod backlog;
mod code;
mod credits;
mod limits;
mod phone;
mod report;
mod request;
mod send;
mod tenant;
mod time;

pub use account::{AccountFailure, AccountKind, AccountState, Pacing, SenderAccount, TelegramIdentity};
pub use backlog::{turns, Backlog, TenantBacklog};
pub use code::{Code, CodeLength, InvalidCode, InvalidCodeLength};
pub use credits::{Credits, InvalidCredits, MICROS_PER_CREDIT};
pub use limits::{gcra, Gcra, LimitCheck, LimitKind, LimitState, Rate, Refusal, SpendCheck};
pub use phone::{InvalidPhoneNumber, PhoneNumber};
pub use report::{DeadReport, PendingReport};
pub use request::{
    CodeMatch, CodeState, ContinueError, DeliveryStatus, InvalidRequestId, RequestId, RequestRecord, RequestStatusView,
    StatusAt, StatusView, VerificationStatus,
};
pub use send::{
    CallbackPolicy, CallbackUrl, InvalidCallbackUrl, InvalidPayload, InvalidSenderUsername, InvalidTtl, Payload,
    SenderUsername, Ttl,
};
pub use tenant::{
    CountryRule, InvalidTenantId, LedgerEntry, LedgerKind, SenderRegistration, Tenant, TenantId, TenantSettings,
    TokenRecord,
};
pub use time::{Clock, ManualClock, SystemClock, Timestamp};
