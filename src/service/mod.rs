//! Use cases: what the Gateway methods, the admin API and the sandbox do, in domain terms.
//! No HTTP here: handlers parse input into domain values, call one method, map the result.

mod gateway;
mod limits;
mod reports;
mod senders;
mod tenants;

pub use gateway::{Caller, CodeSpec, EnteredCode, SendCommand};
pub use limits::{Explanation, LimitExplained};
pub use reports::{ReportError, ReportRound};
pub use senders::SenderError;
pub use tenants::{NewTenant, SettingsPatch, TenantError};

use crate::config::Settings;
use crate::delivery::Sender;
use crate::domain::Clock;
use crate::secrets::{CodeHasher, CodeSealer, HashError, TokenKeys};
use crate::store::{Retention, Store, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// Why a Gateway call failed, in the domain's words; the API maps each to the spec's string.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("unknown, revoked or disallowed token")]
    AccessTokenInvalid,
    #[error("the number cannot receive codes")]
    PhoneNumberNotFound,
    #[error("the phone number differs from the checked one")]
    PhoneNumberMismatch,
    #[error("no such request for this tenant")]
    RequestIdInvalid,
    #[error("a message was already sent for this request")]
    MessageAlreadySent,
    #[error("the sender username is not registered to this tenant")]
    SenderNotOwned,
    #[error("the sender username is not verified")]
    SenderNotVerified,
    #[error("the balance does not cover the fee")]
    BalanceNotEnough,
    #[error("the callback URL's host resolves to an internal address")]
    CallbackUrlInvalid,
    #[error("rate limited by the {} limit", .0.kind.as_str())]
    RateLimited(crate::domain::Refusal),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

/// Everything the use cases need, shared by all handlers and background tasks.
pub struct Services {
    pub store: Arc<Store>,
    pub hasher: CodeHasher,
    /// Seals codes for the delivery queue.
    pub sealer: CodeSealer,
    pub sender: Sender,
    pub clock: Arc<dyn Clock>,
    pub settings: Arc<Settings>,
    pub token_keys: TokenKeys,
    /// Posts delivery reports.
    pub reports: crate::callbacks::dispatch::Dispatcher,
    /// Delivery reports being sent by this process's workers (each in its own task).
    pub report_slots: Arc<tokio::sync::Semaphore>,
    /// Wakes this process's delivery workers when it queues a job.
    pub wake: Arc<tokio::sync::Notify>,
    /// Read receipts from Telegram accounts, taken by the process's receipt recorder.
    pub read_receipts:
        parking_lot::Mutex<Option<tokio::sync::mpsc::Receiver<crate::delivery::telegram::transport::ReadReceipt>>>,
}

impl Services {
    pub(crate) fn retention(&self) -> Retention {
        Retention(Duration::from_secs(self.settings.store.request_retention))
    }
}
