//! Getting a message with a code to a user. So far the sandbox sender; Telegram accounts and
//! the durable queue come with the delivery work.

pub mod sandbox;
pub mod templates;

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

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The recipient cannot receive messages (no account, privacy settings): do not retry.
    #[error("the recipient cannot receive messages")]
    RecipientUnavailable,
}

/// The configured sender.
#[derive(Clone)]
pub enum Sender {
    Sandbox(Arc<SandboxInbox>),
}

impl Sender {
    /// Hands a message over; answers the sender's id for it.
    pub async fn send(&self, message: OutgoingMessage, now: Timestamp) -> Result<i64, SendError> {
        match self {
            Sender::Sandbox(inbox) => Ok(inbox.deliver(message, now)),
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
