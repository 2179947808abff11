//! Getting a message with a code to a user: the `Sender` interface, the sender pool, the
//! sandbox and Telegram transports, and message templates. The workers that drain the durable
//! queue through it are in `workers`.

pub mod pool;
pub mod sandbox;
pub mod telegram;
pub mod templates;

use crate::domain::{AccountFailure, PhoneNumber, RequestId, RequestRecord, TenantId, Timestamp};
use crate::metrics::Metrics;
use crate::store::StoreError;
use pool::Pool;
pub use pool::{Leased, NoAccount};
use sandbox::{SandboxInbox, TransmitError};
use std::sync::Arc;
use std::time::Duration;

/// One message to deliver. `text` holds the code: it goes to the sender and nowhere else.
#[derive(Clone)]
pub struct OutgoingMessage {
    pub tenant: TenantId,
    pub request: RequestId,
    pub phone: PhoneNumber,
    pub text: String,
}

impl OutgoingMessage {
    /// The `random_id` Telegram gets with the message: the same for every attempt at one
    /// request, in every process, and different for every request.
    pub fn random_id(&self) -> i64 {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(b"verigram message random_id\0")
            .chain_update(self.tenant.as_str().as_bytes())
            .chain_update([0])
            .chain_update(self.request.to_string().as_bytes())
            .finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        i64::from_le_bytes(first)
    }
}

impl std::fmt::Debug for OutgoingMessage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutgoingMessage")
            .field("tenant", &self.tenant)
            .field("request", &self.request)
            .field("phone", &self.phone)
            .finish_non_exhaustive()
    }
}

/// A message the sender accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentMessage {
    /// The account that sent it (a Telegram sender account; `sandbox` for the sandbox).
    pub account: String,
    /// The message's id in that account.
    pub message_id: i64,
    /// Whether acceptance is already the delivery (Telegram user accounts: there is no
    /// separate device receipt).
    pub delivered: bool,
    /// The recipient's Telegram user id, for matching read receipts.
    pub recipient: Option<i64>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The recipient cannot receive messages (no account, privacy settings): do not retry.
    #[error("the recipient cannot receive messages")]
    RecipientUnavailable,
    /// No account can send before this long (all busy, paced or flood-waiting): try then.
    #[error("no sender account can send now")]
    WaitForAccount { after: std::time::Duration },
    /// Something failed on the way (network, Telegram's 5xx, the store): try again with backoff.
    #[error("the message could not be sent now")]
    Transient,
    /// The account failed (a flood wait, a spam limit, a ban) and is parked in the pool: the
    /// message did not go out through it on this attempt.
    #[error("the sender account cannot send")]
    AccountFailed(AccountFailure),
}

/// Sends through the pool of accounts: picks an account, hands the message to the transport,
/// and lets the transport's answer drive the pool (a flood-waiting account is parked and the
/// message goes to another one).
#[derive(Clone)]
pub struct Sender {
    pool: Pool,
    transport: Transport,
    metrics: Arc<Metrics>,
}

/// What actually carries messages.
#[derive(Clone)]
pub enum Transport {
    Sandbox(Arc<SandboxInbox>),
    Telegram(Arc<telegram::transport::TelegramAccounts>),
}

/// When no account can send and none will be ready without an operator, look again this late.
const NO_ACCOUNT_RETRY: Duration = Duration::from_secs(60);

impl Sender {
    pub fn new(pool: Pool, transport: Transport, metrics: Arc<Metrics>) -> Self {
        Self { pool, transport, metrics }
    }

    /// An account that can send now, leased to this process (a worker claims a job only with
    /// one in hand), or when one will be.
    pub async fn ready_account(&self) -> Result<Result<Leased, NoAccount>, StoreError> {
        self.pool.pick(&[]).await
    }

    /// The account `id`, leased to this process if it can send now, or when it can.
    pub async fn take_account(&self, id: &str) -> Result<Result<Leased, NoAccount>, StoreError> {
        self.pool.take(id).await
    }

    /// Another account for a message whose account failed on the way; `tried` have.
    pub async fn another_account(&self, tried: &[String], now: Timestamp) -> Result<Leased, SendError> {
        match self.pool.pick(tried).await {
            Ok(Ok(leased)) => Ok(leased),
            Ok(Err(NoAccount::Until(at))) => {
                let after = Duration::from_millis((at.millis() - now.millis()).max(0) as u64);
                Err(SendError::WaitForAccount { after })
            }
            Ok(Err(NoAccount::Never)) => {
                tracing::warn!("no sender account can send: every one is quarantined, disabled or paused");
                Err(SendError::WaitForAccount { after: NO_ACCOUNT_RETRY })
            }
            Err(e) => {
                tracing::warn!(error = &e as &dyn std::error::Error, "cannot read the sender pool");
                Err(SendError::Transient)
            }
        }
    }

    /// Whether a message whose outcome was lost must be sent again through the account it
    /// was handed to (`RequestRecord::hand_to`). Telegram refuses a second send of one
    /// `random_id` per account, and only per account. The sandbox keeps one message per
    /// request whichever account sends it.
    pub fn pins_accounts(&self) -> bool {
        matches!(self.transport, Transport::Telegram(_))
    }

    /// Hands a message over through `leased`. Sending one request twice gives the same
    /// message: the sandbox keeps one per request, and Telegram refuses the second send of the
    /// request's `random_id` by one account, which the transport reads as the message sent
    /// before. A failed account (a flood wait, a ban) is parked in the pool and answers
    /// `AccountFailed`.
    pub async fn send(
        &self,
        leased: &Leased,
        message: &OutgoingMessage,
        now: Timestamp,
    ) -> Result<SentMessage, SendError> {
        let account = &leased.account;
        let outcome = match &self.transport {
            Transport::Sandbox(inbox) => inbox.transmit(account, message.clone(), now).await.map(|id| (id, None)),
            Transport::Telegram(telegram) => {
                match telegram.send(account, &message.phone, &message.text, message.random_id()).await {
                    Ok(sent) => Ok(sent),
                    Err(telegram::classify::Failure::Account(f)) => Err(TransmitError::Account(f)),
                    Err(telegram::classify::Failure::Recipient(_)) => Err(TransmitError::Recipient),
                    Err(telegram::classify::Failure::Transient(why)) => {
                        tracing::warn!(account = %account.id, why, "Telegram send failed; will retry");
                        Err(TransmitError::Transient)
                    }
                }
            }
        };
        match outcome {
            Ok((message_id, recipient)) => {
                self.metrics.account_sends.with_label_values(&[&account.id]).inc();
                if let Err(e) = self.pool.sent(&account.id, leased.at).await {
                    tracing::warn!(error = &e as &dyn std::error::Error, "could not count a send");
                }
                // Telegram user accounts get no device receipt: the accepted send is the delivery.
                let delivered = matches!(self.transport, Transport::Telegram(_));
                Ok(SentMessage { account: account.id.clone(), message_id, delivered, recipient })
            }
            Err(TransmitError::Recipient) => Err(SendError::RecipientUnavailable),
            Err(TransmitError::Transient) => Err(SendError::Transient),
            Err(TransmitError::Account(failure)) => {
                let kind = match failure {
                    AccountFailure::FloodWait(_) => "flood_wait",
                    AccountFailure::PeerFlood => "peer_flood",
                    AccountFailure::Dead(_) => "dead",
                };
                self.metrics.account_flood_waits.with_label_values(&[&account.id, kind]).inc();
                if let Err(e) = self.pool.failed(&account.id, &failure).await {
                    tracing::warn!(error = &e as &dyn std::error::Error, "could not record an account failure");
                }
                Err(SendError::AccountFailed(failure))
            }
        }
    }

    /// Deletes a sent message for both sides (revocation, `ttl`), through the account that
    /// sent it. A failure is logged: the message stays, the request's state is already right.
    pub async fn delete(&self, tenant: &TenantId, request: &RequestRecord, account: &str, message_id: i64) {
        match &self.transport {
            Transport::Sandbox(inbox) => inbox.delete(tenant, request.id),
            Transport::Telegram(telegram) => {
                let Ok(Some(sender)) = self.pool.account(account).await else {
                    tracing::warn!(account, "cannot delete a message: its sender account is gone");
                    return;
                };
                if let Err(failure) = telegram.delete(&sender, &request.phone, message_id).await {
                    tracing::warn!(account, ?failure, "could not delete a message");
                }
            }
        }
    }

    /// Whether messages to `phone` can be delivered at all. When that cannot be found out now
    /// (no account free, network trouble), the answer is yes: a send that then fails expires
    /// and is refunded at its `ttl`.
    pub async fn can_reach(&self, phone: &PhoneNumber) -> bool {
        match &self.transport {
            Transport::Sandbox(inbox) => inbox.can_reach(phone),
            Transport::Telegram(telegram) => match self.pool.pick(&[]).await {
                Ok(Ok(leased)) => match telegram.can_reach(&leased.account, phone).await {
                    Ok(reachable) => reachable,
                    Err(failure) => {
                        tracing::warn!(account = %leased.account.id, ?failure, "could not look a number up");
                        true
                    }
                },
                _ => true,
            },
        }
    }

    /// The process is stopping: its accounts are free for other processes.
    pub async fn release_accounts(&self) {
        if let Err(e) = self.pool.release_all().await {
            tracing::warn!(
                error = &e as &dyn std::error::Error,
                "could not release sender accounts; their leases will end"
            );
        }
    }

    pub fn sandbox(&self) -> Option<&Arc<SandboxInbox>> {
        match &self.transport {
            Transport::Sandbox(inbox) => Some(inbox),
            Transport::Telegram(_) => None,
        }
    }

    pub fn telegram(&self) -> Option<&Arc<telegram::transport::TelegramAccounts>> {
        match &self.transport {
            Transport::Telegram(accounts) => Some(accounts),
            Transport::Sandbox(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(tenant: &str, request: RequestId) -> OutgoingMessage {
        OutgoingMessage {
            tenant: TenantId::parse(tenant).unwrap(),
            request,
            phone: PhoneNumber::parse("15551234567").unwrap(),
            text: String::new(),
        }
    }

    #[test]
    fn a_requests_random_id_is_stable_and_its_own() {
        let (a, b) = (RequestId::generate(), RequestId::generate());
        let t = "7c9e6679-7425-40de-944b-e07fc1f90ae7";
        assert_eq!(message(t, a).random_id(), message(t, a).random_id(), "every attempt, every process");
        assert_ne!(message(t, a).random_id(), message(t, b).random_id());
        assert_ne!(message(t, a).random_id(), message("0f8fad5b-d9cb-469f-a165-70867728950e", a).random_id());
    }
}
