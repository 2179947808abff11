//! Use cases: what the Gateway methods, the admin API and the sandbox do, in domain terms.
//! No HTTP here: handlers parse input into domain values, call one method, map the result.

mod callers;
mod gateway;
mod limits;
mod lookups;
mod observe;
mod reports;
mod senders;
mod tenants;
pub mod throttle;

pub use callers::CallerCache;
pub use gateway::{Caller, CodeSpec, EnteredCode, SendCommand};
pub use limits::{Explanation, LimitExplained};
pub use reports::{ReportError, ReportRound};
pub use senders::{DeliveryBacklog, SenderError, TenantWork};
pub use tenants::{NewTenant, SettingsPatch, TenantError};

use crate::config::Settings;
use crate::delivery::Sender;
use crate::domain::Clock;
use crate::domain::{RequestId, RequestRecord, TenantId, Timestamp};
use crate::metrics::StatusPair;
use crate::secrets::{CodeHasher, CodeSealer, HashError, TokenKeys};
use crate::store::{Change, Retention, Store, StoreError, StoreResult};
use std::sync::Arc;

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
    /// Tokens and tenants read in the last `tokens.cache_ms`.
    pub callers: callers::CallerCache,
    /// Posts delivery reports.
    pub reports: crate::callbacks::dispatch::Dispatcher,
    /// Delivery reports being sent by this process's workers (each in its own task).
    pub report_slots: Arc<tokio::sync::Semaphore>,
    /// Wakes this process's delivery workers when it queues a job.
    pub wake: Arc<tokio::sync::Notify>,
    /// Read receipts from Telegram accounts, taken by the process's receipt recorder.
    pub read_receipts:
        parking_lot::Mutex<Option<tokio::sync::mpsc::Receiver<crate::delivery::telegram::transport::ReadReceipt>>>,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// When `/metrics` last read the store's gauges.
    pub gauge_reads: observe::GaugeReads,
    /// Failed authentications per client address.
    pub auth_throttle: throttle::AuthThrottle,
    /// Tenants whose callback hosts DNS found no address for lately.
    pub fruitless_lookups: lookups::FruitlessLookups,
}

impl Services {
    pub(crate) fn retention(&self) -> Retention {
        Retention(self.settings.store.request_retention)
    }

    /// `Store::update_request`, counting the status changes and refunds it made.
    pub async fn update_request<T, F>(
        &self,
        tenant: &TenantId,
        id: RequestId,
        retention: Retention,
        now: Timestamp,
        decide: F,
    ) -> StoreResult<Option<(RequestRecord, T)>>
    where
        F: FnMut(&RequestRecord) -> (Option<Change>, T) + Send,
        T: Send,
    {
        let updated = self.store.update_request(tenant, id, retention, now, observed(decide)).await?;
        Ok(updated.map(|(record, output)| self.count_change(tenant, record, output)))
    }

    /// `Store::update_known_request`, counting as `update_request` does.
    pub async fn update_known_request<T, F>(
        &self,
        tenant: &TenantId,
        known: RequestRecord,
        retention: Retention,
        now: Timestamp,
        decide: F,
    ) -> StoreResult<Option<(RequestRecord, T)>>
    where
        F: FnMut(&RequestRecord) -> (Option<Change>, T) + Send,
        T: Send,
    {
        let updated = self.store.update_known_request(tenant, known, retention, now, observed(decide)).await?;
        Ok(updated.map(|(record, output)| self.count_change(tenant, record, output)))
    }

    fn count_change<T>(&self, tenant: &TenantId, record: RequestRecord, seen: Observed<T>) -> (RequestRecord, T) {
        let (output, before, ledger) = seen;
        self.metrics
            .status_changed(&before, &(record.delivery.map(|d| d.status), record.verification.map(|v| v.status)));
        if let Some(amount) = ledger {
            // Ledger amounts add to the balance: a refund is positive, a fee negative.
            self.metrics.billed(tenant.as_str(), -amount);
        }
        (record, output)
    }
}

/// What a change saw: the decision's output, the statuses before it, and its ledger amount.
type Observed<T> = (T, StatusPair, Option<i64>);

/// Wraps a decision so that its caller learns what the stored change did. The store keeps
/// the outcome of the decision that was stored (a decision can run again when writers
/// collide), so what it answers is what happened.
fn observed<T, F>(mut decide: F) -> impl FnMut(&RequestRecord) -> (Option<Change>, Observed<T>) + Send
where
    F: FnMut(&RequestRecord) -> (Option<Change>, T) + Send,
{
    move |before| {
        let (change, output) = decide(before);
        let ledger = change.as_ref().and_then(|c| c.ledger.as_ref()).map(|entry| entry.amount.micros());
        let statuses = (before.delivery.map(|d| d.status), before.verification.map(|v| v.status));
        (change, (output, statuses, ledger))
    }
}
