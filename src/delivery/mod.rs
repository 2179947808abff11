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

    /// Hands a message over through `account`, or through another one when that account
    /// fails (a flood wait, a ban). Sending the same request twice gives the same message (the
    /// sandbox keeps one message per request), so a job taken over after a crash between
    /// sending and recording does not show the user a second message.
    pub async fn send(
        &self,
        account: Leased,
        message: OutgoingMessage,
        now: Timestamp,
    ) -> Result<SentMessage, SendError> {
        let mut tried: Vec<String> = Vec::new();
        let mut next = Some(account);
        loop {
            let leased = match next.take() {
                Some(leased) => leased,
                None => match self.pool.pick(&tried).await {
                    Ok(Ok(leased)) => leased,
                    Ok(Err(NoAccount::Until(at))) => {
                        let after = Duration::from_millis((at.millis() - now.millis()).max(0) as u64);
                        return Err(SendError::WaitForAccount { after });
                    }
                    Ok(Err(NoAccount::Never)) => {
                        tracing::warn!("no sender account can send: every one is quarantined, disabled or paused");
                        return Err(SendError::WaitForAccount { after: NO_ACCOUNT_RETRY });
                    }
                    Err(e) => {
                        tracing::warn!(error = &e as &dyn std::error::Error, "cannot read the sender pool");
                        return Err(SendError::Transient);
                    }
                },
            };
            let account = &leased.account;
            let outcome = match &self.transport {
                Transport::Sandbox(inbox) => inbox.transmit(account, message.clone(), now).await.map(|id| (id, None)),
                Transport::Telegram(telegram) => match telegram.send(account, &message.phone, &message.text).await {
                    Ok(sent) => Ok(sent),
                    Err(telegram::classify::Failure::Account(f)) => Err(TransmitError::Account(f)),
                    Err(telegram::classify::Failure::Recipient(_)) => Err(TransmitError::Recipient),
                    Err(telegram::classify::Failure::Transient(why)) => {
                        tracing::warn!(account = %account.id, why, "Telegram send failed; will retry");
                        Err(TransmitError::Transient)
                    }
                },
            };
            // `leased` lives on until the send is counted: until then, the account's pacing
            // does not show the send, and another worker of this process must not take it.
            match outcome {
                Ok((message_id, recipient)) => {
                    self.metrics.account_sends.with_label_values(&[&account.id]).inc();
                    if let Err(e) = self.pool.sent(&account.id, leased.at).await {
                        tracing::warn!(error = &e as &dyn std::error::Error, "could not count a send");
                    }
                    // Telegram user accounts get no device receipt: the accepted send is the delivery.
                    let delivered = matches!(self.transport, Transport::Telegram(_));
                    return Ok(SentMessage { account: account.id.clone(), message_id, delivered, recipient });
                }
                Err(TransmitError::Recipient) => return Err(SendError::RecipientUnavailable),
                Err(TransmitError::Transient) => return Err(SendError::Transient),
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
                    // Never retry a flood wait early on the same account: the message goes to another.
                    tried.push(account.id.clone());
                }
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
