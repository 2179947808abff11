//! The sandbox sender: messages land in an in-process inbox that people and tests read,
//! instead of reaching Telegram. It stands in for a recipient's device.

use super::OutgoingMessage;
use crate::config::{AccountBehaviour, RecipientBehaviour, SandboxSettings};
use crate::domain::{AccountFailure, PhoneNumber, RequestId, SenderAccount, TenantId, Timestamp};
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::BTreeMap;
use std::collections::VecDeque;
use std::time::Duration;

/// What the recipient's device shows of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InboxStatus {
    Delivered,
    Read,
    Deleted,
}

#[derive(Debug, Clone, Serialize)]
pub struct InboxMessage {
    pub request_id: String,
    pub phone_number: String,
    /// The message as the user sees it, code included (deleted messages show no text).
    pub text: String,
    pub status: InboxStatus,
    pub message_id: i64,
    /// Unix seconds.
    pub sent_at: i64,
    #[serde(skip)]
    pub tenant: TenantId,
    /// When a recipient that reads on its own reads it.
    #[serde(skip)]
    read_at: Option<Timestamp>,
}

/// The newest messages, bounded so a long-running sandbox does not grow without end.
pub struct SandboxInbox {
    messages: Mutex<Inbox>,
    capacity: usize,
    recipients: BTreeMap<String, RecipientBehaviour>,
    accounts: BTreeMap<String, AccountBehaviour>,
}

/// Why the sandbox did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransmitError {
    /// The account answered like Telegram does to a troubled account.
    Account(AccountFailure),
    /// The recipient cannot receive messages.
    Recipient,
    /// The send failed on the way; nothing is known to be wrong with account or recipient.
    Transient,
}

struct Inbox {
    messages: VecDeque<InboxMessage>,
    next_id: i64,
}

#[derive(Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Marked read now: the tenant and request whose status changes.
    Read(TenantId, RequestId),
    AlreadyRead,
    Deleted,
    NotFound,
}

impl SandboxInbox {
    pub fn new(capacity: usize, settings: &SandboxSettings) -> Self {
        Self {
            messages: Mutex::new(Inbox { messages: VecDeque::new(), next_id: 1 }),
            capacity: capacity.max(1),
            recipients: settings.recipients.clone(),
            accounts: settings.account_behaviour.clone(),
        }
    }

    /// The configured behaviour of a recipient: the longest matching number prefix.
    fn recipient(&self, phone: &PhoneNumber) -> Option<RecipientBehaviour> {
        self.recipients
            .iter()
            .filter(|(prefix, _)| phone.digits().starts_with(prefix.as_str()))
            .max_by_key(|(prefix, _)| prefix.len())
            .map(|(_, b)| *b)
    }

    pub(super) fn can_reach(&self, phone: &PhoneNumber) -> bool {
        !matches!(
            self.recipient(phone),
            Some(RecipientBehaviour::NotOnTelegram | RecipientBehaviour::PrivacyRestricted)
        )
    }

    /// Sends through a simulated account, as Telegram would answer it.
    pub(super) async fn transmit(
        &self,
        account: &SenderAccount,
        message: OutgoingMessage,
        now: Timestamp,
    ) -> Result<i64, TransmitError> {
        match self.accounts.get(&account.id) {
            Some(AccountBehaviour::FloodWait { seconds }) => {
                return Err(TransmitError::Account(AccountFailure::FloodWait(Duration::from_secs(*seconds))))
            }
            Some(AccountBehaviour::PeerFlood) => return Err(TransmitError::Account(AccountFailure::PeerFlood)),
            Some(AccountBehaviour::Banned) => {
                return Err(TransmitError::Account(AccountFailure::Dead("USER_DEACTIVATED_BAN".into())))
            }
            Some(AccountBehaviour::NetworkDown) => return Err(TransmitError::Transient),
            None => {}
        }
        match self.recipient(&message.phone) {
            Some(RecipientBehaviour::NotOnTelegram | RecipientBehaviour::PrivacyRestricted) => {
                return Err(TransmitError::Recipient)
            }
            Some(RecipientBehaviour::Slow { seconds }) => tokio::time::sleep(Duration::from_secs(seconds)).await,
            Some(RecipientBehaviour::ReadsAfter { .. }) | None => {}
        }
        let read_at = match self.recipient(&message.phone) {
            Some(RecipientBehaviour::ReadsAfter { seconds }) => Some(now.plus(Duration::from_secs(seconds))),
            _ => None,
        };
        Ok(self.deliver(message, now, read_at))
    }

    fn deliver(&self, message: OutgoingMessage, now: Timestamp, read_at: Option<Timestamp>) -> i64 {
        let mut inbox = self.messages.lock();
        let request_id = message.request.to_string();
        if let Some(existing) = inbox.messages.iter().find(|m| m.request_id == request_id && m.tenant == message.tenant)
        {
            return existing.message_id;
        }
        let id = inbox.next_id;
        inbox.next_id += 1;
        inbox.messages.push_front(InboxMessage {
            request_id,
            phone_number: message.phone.digits().to_owned(),
            text: message.text,
            status: InboxStatus::Delivered,
            message_id: id,
            sent_at: now.secs(),
            tenant: message.tenant,
            read_at,
        });
        inbox.messages.truncate(self.capacity);
        id
    }

    pub(super) fn delete(&self, tenant: &TenantId, request: RequestId) {
        let request = request.to_string();
        let mut inbox = self.messages.lock();
        for m in inbox.messages.iter_mut().filter(|m| m.request_id == request && &m.tenant == tenant) {
            m.status = InboxStatus::Deleted;
            m.text.clear();
        }
    }

    /// Messages to one number, newest first.
    pub fn messages_to(&self, phone: &PhoneNumber) -> Vec<InboxMessage> {
        let inbox = self.messages.lock();
        inbox.messages.iter().filter(|m| m.phone_number == phone.digits()).cloned().collect()
    }

    /// The newest `limit` messages to anyone.
    pub fn recent(&self, limit: usize) -> Vec<InboxMessage> {
        self.messages.lock().messages.iter().take(limit).cloned().collect()
    }

    /// Messages whose recipients read them on their own by `now`: marked read, and returned
    /// so their requests can say so.
    pub fn due_reads(&self, now: Timestamp) -> Vec<(TenantId, RequestId)> {
        let mut inbox = self.messages.lock();
        inbox
            .messages
            .iter_mut()
            .filter(|m| m.status == InboxStatus::Delivered && m.read_at.is_some_and(|at| at <= now))
            .filter_map(|m| {
                m.status = InboxStatus::Read;
                Some((m.tenant.clone(), RequestId::parse(&m.request_id).ok()?))
            })
            .collect()
    }

    /// The user opens the chat and reads the message.
    pub fn read(&self, request_id: &str) -> ReadOutcome {
        let mut inbox = self.messages.lock();
        let Some(m) = inbox.messages.iter_mut().find(|m| m.request_id == request_id) else {
            return ReadOutcome::NotFound;
        };
        match m.status {
            InboxStatus::Deleted => ReadOutcome::Deleted,
            InboxStatus::Read => ReadOutcome::AlreadyRead,
            InboxStatus::Delivered => {
                m.status = InboxStatus::Read;
                match RequestId::parse(&m.request_id) {
                    Ok(id) => ReadOutcome::Read(m.tenant.clone(), id),
                    Err(_) => ReadOutcome::NotFound,
                }
            }
        }
    }
}
