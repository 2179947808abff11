//! Getting a message with a code to a user: the `Sender` interface, its sandbox
//! implementation, message templates, and the workers that drain the durable queue.

pub mod sandbox;
pub mod templates;
pub mod worker;

use crate::domain::{PhoneNumber, RequestId, TenantId, Timestamp};
use sandbox::SandboxInbox;
use std::sync::Arc;

/// One message to deliver. `text` holds the code: it goes to the sender and nowhere else.
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
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The recipient cannot receive messages (no account, privacy settings): do not retry.
    #[error("the recipient cannot receive messages")]
    RecipientUnavailable,
    /// Nothing went out; try again after this long (network trouble, every account busy or
    /// flood-waiting).
    #[error("the message could not be sent now")]
    Retry { after: std::time::Duration },
}

/// The configured sender.
#[derive(Clone)]
pub enum Sender {
    Sandbox(Arc<SandboxInbox>),
}

impl Sender {
    /// Hands a message over. Sending the same request twice gives the same message (the
    /// sandbox keeps one message per request), so a job taken over after a crash between
    /// sending and recording does not show the user a second message.
    pub async fn send(&self, message: OutgoingMessage, now: Timestamp) -> Result<SentMessage, SendError> {
        match self {
            Sender::Sandbox(inbox) => {
                let message_id = inbox.deliver(message, now);
                Ok(SentMessage { account: sandbox::ACCOUNT.to_owned(), message_id, delivered: false })
            }
        }
    }

    /// Deletes a sent message for both sides (revocation, `ttl`).
    pub async fn delete(&self, tenant: &TenantId, request: RequestId) {
        match self {
            Sender::Sandbox(inbox) => inbox.delete(tenant, request),
        }
    }

    /// Whether messages to `phone` can be delivered at all.
    pub async fn can_reach(&self, _phone: &PhoneNumber) -> bool {
        match self {
            // Every number has an account in the sandbox.
            Sender::Sandbox(_) => true,
        }
    }

    pub fn sandbox(&self) -> Option<&Arc<SandboxInbox>> {
        match self {
            Sender::Sandbox(inbox) => Some(inbox),
        }
    }
}
