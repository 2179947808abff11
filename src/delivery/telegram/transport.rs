//! Sending through Telegram user accounts with grammers-client: one connection (a `SenderPool`
//! with its runner task) per account this process drives, opened on first use from the
//! account's session in the store. grammers' default retry policy sleeps silently on flood
//! waits; ours surfaces them, so the pool parks the account and the message moves on.

use super::classify::{classify, Failure};
use super::session::StoreSession;
use crate::domain::{AccountFailure, PhoneNumber, SenderAccount};
use crate::secrets::Pepper;
use crate::store::Store;
use grammers_client::update::Update;
use grammers_client::{tl, Client};
use grammers_mtsender::{
    ConnectionParams, InvocationError, RetryContext, RetryPolicy, SenderPool, UpdatesConfiguration,
};
use grammers_session::types::PeerRef;
use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

/// Never sleeps inside the library: one quick retry of a dropped connection, then every error
/// (flood waits included) goes to the pool.
pub(super) struct SurfaceEverything;

impl RetryPolicy for SurfaceEverything {
    fn should_retry(&self, ctx: &RetryContext) -> ControlFlow<(), Duration> {
        match &ctx.error {
            InvocationError::Io(_) if ctx.fail_count.get() <= 1 => ControlFlow::Continue(Duration::from_millis(500)),
            _ => ControlFlow::Break(()),
        }
    }
}

struct Connection {
    client: Client,
    runner: JoinHandle<()>,
}

/// A recipient read everything up to `max_id` that `account` sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReceipt {
    pub account: String,
    pub peer: i64,
    pub max_id: i64,
}

/// The Telegram accounts this process has connected.
pub struct TelegramAccounts {
    /// `sender.dev_peers`: whether accounts of a local development peer may send.
    dev_peers: bool,
    store: Arc<Store>,
    call_timeout: Duration,
    pepper: Pepper,
    connections: Mutex<HashMap<String, Connection>>,
    receipts: tokio::sync::mpsc::Sender<ReadReceipt>,
    dropped_updates: Arc<AtomicU64>,
}

/// Updates waiting per account between the connection and the update stream. grammers' own
/// buffer drops what does not fit with only a log line, so a forwarder drains it at once into
/// ours, whose overflow is counted (`TelegramAccounts::dropped_updates`). A dropped update
/// leaves a gap in the account's `pts` sequence, which the stream fills with `getDifference`.
const UPDATE_BUFFER: usize = 10_000;

impl TelegramAccounts {
    /// Read receipts go to `receipts`, to be recorded on their requests.
    /// A call that takes longer than `call_timeout` fails (grammers itself never gives up on
    /// an unanswered call).
    pub fn new(
        store: Arc<Store>,
        pepper: Pepper,
        call_timeout: Duration,
        dev_peers: bool,
        receipts: tokio::sync::mpsc::Sender<ReadReceipt>,
    ) -> Self {
        Self {
            dev_peers,
            store,
            call_timeout,
            pepper,
            connections: Mutex::new(HashMap::new()),
            receipts,
            dropped_updates: Arc::default(),
        }
    }

    /// Runs one call to Telegram within the time limit; failures as the pool reads them.
    async fn timed<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, InvocationError>>,
    ) -> Result<T, Failure> {
        match tokio::time::timeout(self.call_timeout, call).await {
            Ok(result) => result.map_err(|e| classify(&e)),
            Err(_) => Err(Failure::Transient("Telegram did not answer in time".into())),
        }
    }

    /// Seeds an account's session for a local development peer (see `StoreSession::seed`).
    pub async fn seed_session(
        &self,
        account: &str,
        peer: std::net::SocketAddr,
        auth_key: [u8; 256],
    ) -> Result<(), super::session::SessionError> {
        StoreSession::seed(Arc::clone(&self.store), &self.pepper, account, peer, auth_key).await
    }

    /// Updates dropped because an account's buffer was full, since the process started.
    pub fn dropped_updates(&self) -> u64 {
        self.dropped_updates.load(Ordering::Relaxed)
    }

    /// The account's client, connecting it first if needed.
    pub async fn client(&self, account: &SenderAccount) -> Result<Client, Failure> {
        let mut connections = self.connections.lock().await;
        if let Some(c) = connections.get(&account.id).filter(|c| !c.runner.is_finished()) {
            return Ok(c.client.clone());
        }
        let identity = account.telegram.as_ref().ok_or_else(|| Failure::Transient("not a Telegram account".into()))?;
        if identity.is_dev_peer() && !self.dev_peers {
            // Added while sender.dev_peers was on: with it off, codes never go to a host that
            // knows only a key derived from a number. The pool disables the account.
            return Err(Failure::Account(AccountFailure::Dead("DEV_PEERS_OFF".into())));
        }
        let session = StoreSession::load(Arc::clone(&self.store), &self.pepper, &account.id)
            .await
            .map_err(|e| Failure::Transient(e.to_string()))?;
        let params = ConnectionParams {
            device_model: "verigram".into(),
            app_version: env!("CARGO_PKG_VERSION").into(),
            retry_policy: Box::new(SurfaceEverything),
            updates_channel_capacity: NonZeroUsize::new(UPDATE_BUFFER).unwrap_or(NonZeroUsize::MIN),
            ..Default::default()
        };
        let SenderPool { runner, handle, updates } =
            SenderPool::with_configuration(Arc::new(session), identity.api_id, params);
        let client = Client::new(handle);
        let runner = tokio::spawn(runner.run());
        let updates = forward_updates(updates, UPDATE_BUFFER, account.id.clone(), Arc::clone(&self.dropped_updates));
        tokio::spawn(watch_reads(client.clone(), updates, account.id.clone(), self.receipts.clone()));
        connections.insert(account.id.clone(), Connection { client: client.clone(), runner });
        Ok(client)
    }

    /// The recipient as this account sees it (`contacts.importContacts`); `None` when the number
    /// has no Telegram account or hides it.
    async fn resolve(&self, client: &Client, phone: &PhoneNumber) -> Result<Option<PeerRef>, Failure> {
        let tl::enums::contacts::ImportedContacts::Contacts(res) = self
            .timed(client.invoke(&tl::functions::contacts::ImportContacts {
                contacts: vec![tl::enums::InputContact::InputPhoneContact(tl::types::InputPhoneContact {
                    client_id: 1,
                    phone: format!("+{}", phone.digits()),
                    first_name: "verigram".into(),
                    last_name: String::new(),
                    note: None,
                })],
            }))
            .await?;
        let Some(tl::enums::ImportedContact::Contact(imported)) = res.imported.first() else {
            return Ok(None);
        };
        Ok(res.users.iter().find_map(|u| match u {
            tl::enums::User::User(u) if u.id == imported.user_id => Some(PeerRef::from(u)),
            _ => None,
        }))
    }

    /// Sends `text` to `phone` from `account` with the message's `random_id`; answers the
    /// message id in that account and the recipient's user id. Telegram refuses a second send
    /// of one `random_id` by one account (`RANDOM_ID_DUPLICATE`): the message went out before
    /// (its answer was lost to a crash or a dropped connection), so it is looked up in the
    /// chat instead of sent again.
    pub async fn send(
        &self,
        account: &SenderAccount,
        phone: &PhoneNumber,
        text: &str,
        random_id: i64,
    ) -> Result<(i64, Option<i64>), Failure> {
        let client = self.client(account).await?;
        let peer = self.resolve(&client, phone).await?.ok_or(Failure::Recipient("PHONE_NOT_OCCUPIED".into()))?;
        let call = tl::functions::messages::SendMessage {
            no_webpage: true,
            silent: false,
            background: false,
            clear_draft: false,
            peer: peer.into(),
            reply_to: None,
            message: text.to_owned(),
            random_id,
            reply_markup: None,
            entities: None,
            schedule_date: None,
            schedule_repeat_period: None,
            send_as: None,
            noforwards: false,
            update_stickersets_order: false,
            invert_media: false,
            quick_reply_shortcut: None,
            effect: None,
            allow_paid_floodskip: false,
            allow_paid_stars: None,
            suggested_post: None,
            rich_message: None,
        };
        let sent = match tokio::time::timeout(self.call_timeout, client.invoke(&call)).await {
            Ok(Ok(updates)) => sent_id(&updates, random_id)
                .ok_or_else(|| Failure::Transient("Telegram's answer names no sent message".into())),
            Ok(Err(InvocationError::Rpc(rpc))) if rpc.name == "RANDOM_ID_DUPLICATE" => {
                tracing::info!(account = %account.id, "the message was sent before; looking it up in the chat");
                // The message is out: whatever stops the look-up (a flood wait on it included)
                // must bring the job back to this account, never hand it to another.
                self.find_sent(&client, peer, text).await.map_err(|failure| match failure {
                    Failure::Account(f) => Failure::Transient(format!("looking the sent message up: {f:?}")),
                    other => other,
                })
            }
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(Failure::Transient("Telegram did not answer in time".into())),
        };
        // The import made the recipient a contact of the account: undo it, so the account's
        // contact list does not grow with every recipient (the session keeps the peer's access
        // hash for deleting the message and for read receipts).
        let tidy = self.timed(client.invoke(&tl::functions::contacts::DeleteContacts { id: vec![peer.into()] })).await;
        if let Err(e) = tidy {
            tracing::debug!(account = %account.id, error = ?e, "could not remove an imported contact");
        }
        sent.map(|id| (id.into(), peer.id.bare_id()))
    }

    /// The id of the message with `text` this account sent to `peer`, from the chat's recent
    /// history. Not there: the recipient deleted it, so nobody can read the code; the
    /// request is treated as one that could not be delivered.
    async fn find_sent(&self, client: &Client, peer: PeerRef, text: &str) -> Result<i32, Failure> {
        let history = self
            .timed(client.invoke(&tl::functions::messages::GetHistory {
                peer: peer.into(),
                offset_id: 0,
                offset_date: 0,
                add_offset: 0,
                limit: HISTORY_SEARCHED,
                max_id: 0,
                min_id: 0,
                hash: 0,
            }))
            .await?;
        let messages = match history {
            tl::enums::messages::Messages::Messages(m) => m.messages,
            tl::enums::messages::Messages::Slice(m) => m.messages,
            tl::enums::messages::Messages::ChannelMessages(m) => m.messages,
            tl::enums::messages::Messages::NotModified(_) => Vec::new(),
        };
        messages
            .into_iter()
            .find_map(|m| match m {
                // Telegram trims what it stores of a message.
                tl::enums::Message::Message(m) if m.out && m.message.trim() == text.trim() => Some(m.id),
                _ => None,
            })
            .ok_or_else(|| Failure::Recipient("RANDOM_ID_DUPLICATE: the message is gone from the chat".into()))
    }

    /// Deletes a message for both sides.
    pub async fn delete(&self, account: &SenderAccount, phone: &PhoneNumber, message_id: i64) -> Result<(), Failure> {
        let client = self.client(account).await?;
        let Some(peer) = self.resolve(&client, phone).await? else { return Ok(()) };
        let id = i32::try_from(message_id).map_err(|_| Failure::Transient("message id out of range".into()))?;
        self.timed(client.delete_messages(peer, &[id])).await.map(|_| ())
    }

    /// Whether `phone` can receive messages, asked through `account`.
    pub async fn can_reach(&self, account: &SenderAccount, phone: &PhoneNumber) -> Result<bool, Failure> {
        let client = self.client(account).await?;
        match self.resolve(&client, phone).await {
            Ok(found) => Ok(found.is_some()),
            Err(Failure::Recipient(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }
}

/// How far back a chat is searched for a message sent before: the newest messages of one
/// account to one recipient, of which the one sought is almost always the newest.
const HISTORY_SEARCHED: i32 = 50;

/// The id of the message sent with `random_id`, from `messages.sendMessage`'s answer: a short
/// answer to a private chat, or the full `updates` with `updateMessageID`.
fn sent_id(updates: &tl::enums::Updates, random_id: i64) -> Option<i32> {
    match updates {
        tl::enums::Updates::UpdateShortSentMessage(sent) => Some(sent.id),
        tl::enums::Updates::Updates(tl::types::Updates { updates, .. })
        | tl::enums::Updates::Combined(tl::types::UpdatesCombined { updates, .. }) => {
            updates.iter().find_map(|u| match u {
                tl::enums::Update::MessageId(m) if m.random_id == random_id => Some(m.id),
                _ => None,
            })
        }
        _ => None,
    }
}

type Updates = tokio::sync::mpsc::Receiver<grammers_session::updates::UpdatesLike>;

/// Moves an account's updates from grammers' buffer to a buffer of ours as they come, counting
/// (and logging) what ours cannot hold.
fn forward_updates(mut from: Updates, capacity: usize, account: String, dropped: Arc<AtomicU64>) -> Updates {
    let (to, updates) = tokio::sync::mpsc::channel(capacity);
    tokio::spawn(async move {
        while let Some(update) = from.recv().await {
            match to.try_send(update) {
                Ok(()) => {}
                Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
                    let total = dropped.fetch_add(1, Ordering::Relaxed) + 1;
                    tracing::warn!(account, dropped_updates = total, "update buffer full: dropped an update");
                }
                Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return,
            }
        }
    });
    updates
}

/// Follows an account's updates (catching up on what was missed while it was offline) and
/// passes read receipts on. Errors are logged and the stream is asked again after a pause: a
/// dead connection is reopened by the next call.
async fn watch_reads(
    client: Client,
    updates: Updates,
    account: String,
    receipts: tokio::sync::mpsc::Sender<ReadReceipt>,
) {
    let mut stream = match client.stream_updates(updates, UpdatesConfiguration { catch_up: true }).await {
        Ok(stream) => stream,
        Err(e) => {
            tracing::warn!(account, error = %e, "cannot follow the account's updates");
            return;
        }
    };
    let mut pause = Duration::from_millis(500);
    loop {
        match stream.next().await {
            Ok(Update::Raw(raw)) => {
                if let tl::enums::Update::ReadHistoryOutbox(read) = &raw.raw {
                    let peer = grammers_session::types::PeerId::from(read.peer.clone());
                    if let Some(peer) = peer.bare_id() {
                        let receipt = ReadReceipt { account: account.clone(), peer, max_id: read.max_id.into() };
                        if receipts.send(receipt).await.is_err() {
                            return; // the service is stopping
                        }
                    }
                }
                pause = Duration::from_millis(500);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(account, error = %e, "the account's update stream failed; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(60));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammers_session::updates::UpdatesLike;

    #[test]
    fn the_sent_message_id_is_read_from_either_answer() {
        let short = tl::enums::Updates::UpdateShortSentMessage(tl::types::UpdateShortSentMessage {
            out: true,
            id: 7,
            pts: 2,
            pts_count: 1,
            date: 0,
            media: None,
            entities: None,
            ttl_period: None,
        });
        assert_eq!(sent_id(&short, 99), Some(7));
        let full = |random_id| {
            tl::enums::Updates::Updates(tl::types::Updates {
                updates: vec![tl::enums::Update::MessageId(tl::types::UpdateMessageId { id: 8, random_id })],
                users: Vec::new(),
                chats: Vec::new(),
                date: 0,
                seq: 0,
            })
        };
        assert_eq!(sent_id(&full(99), 99), Some(8));
        assert_eq!(sent_id(&full(98), 99), None, "another message's id");
    }

    #[tokio::test]
    async fn updates_beyond_the_buffer_are_counted_and_the_rest_arrive() {
        let (grammers, from) = tokio::sync::mpsc::channel(100);
        let dropped = Arc::new(AtomicU64::new(0));
        let mut updates = forward_updates(from, 3, "acct".into(), Arc::clone(&dropped));
        for _ in 0..5 {
            grammers.send(UpdatesLike::ConnectionClosed).await.unwrap();
        }
        // The forwarder has taken (and placed or dropped) all five once grammers' buffer is
        // empty: it takes and places in one step, and this single-threaded runtime runs one
        // task at a time.
        while grammers.capacity() < 100 {
            tokio::task::yield_now().await;
        }
        drop(grammers);
        let mut arrived = 0;
        while updates.recv().await.is_some() {
            arrived += 1;
        }
        assert_eq!((arrived, dropped.load(Ordering::Relaxed)), (3, 2));
    }
}
