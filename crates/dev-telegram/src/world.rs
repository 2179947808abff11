//! The simulated Telegram behind the peer: sender accounts (known by their authorization
//! keys), the users they write to, every message each user received, each account's update
//! sequence (`pts`) and its log for `getDifference`, and the faults a test injects.

use super::objects::{tl_message, tl_user};
use grammers_tl_types as tl;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// The authorization key the peer shares with a development account: derived from its phone
/// number, so a `verigram` process and the peer agree on it without talking. Only for the
/// peer: real accounts get their keys from Telegram.
pub fn dev_auth_key(phone_digits: &str) -> [u8; 256] {
    use sha2::{Digest, Sha256};
    let mut key = [0u8; 256];
    for (i, chunk) in key.chunks_mut(32).enumerate() {
        let block = Sha256::new()
            .chain_update(b"verigram dev-telegram auth key\0")
            .chain_update(phone_digits.as_bytes())
            .chain_update([i as u8])
            .finalize();
        chunk.copy_from_slice(&block);
    }
    key
}

/// A Telegram user that verification messages go to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimUser {
    /// E.164 digits, no `+`.
    pub phone: String,
    /// Refuses messages from non-contacts (`USER_PRIVACY_RESTRICTED`).
    pub privacy_restricted: bool,
}

impl SimUser {
    pub fn new(phone: &str) -> Self {
        Self { phone: digits(phone), privacy_restricted: false }
    }

    /// User ids are the phone number's digits: easy to read in logs and tests.
    pub fn id(&self) -> i64 {
        user_id(&self.phone)
    }
}

fn digits(phone: &str) -> String {
    phone.chars().filter(char::is_ascii_digit).collect()
}

fn user_id(phone: &str) -> i64 {
    phone.parse().unwrap_or(0)
}

/// A message as the user who received it sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The sending account's phone digits.
    pub from: String,
    /// The message id in the sender's id space.
    pub id: i32,
    pub text: String,
    pub read: bool,
    pub deleted: bool,
}

/// What an injected fault does to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer `rpc_error` with this code and message (e.g. 420 `FLOOD_WAIT_30`).
    Error { code: i32, message: String },
    /// Close the connection instead of answering.
    Drop,
    /// Carry the call out, then close the connection before answering: the client cannot
    /// know whether it happened (a message sent, its answer lost).
    DropAfter,
    /// Answer after this long.
    Delay(Duration),
}

impl Fault {
    pub fn error(code: i32, message: &str) -> Self {
        Fault::Error { code, message: message.to_owned() }
    }
}

/// A fault for the calls that match: one account's or everyone's, one method or all, a number
/// of times or for good.
#[derive(Debug, Clone)]
pub struct Injection {
    pub account: Option<String>,
    /// A TL method name such as `messages.sendMessage`.
    pub method: Option<String>,
    pub fault: Fault,
    pub times: Option<u32>,
}

impl Injection {
    pub fn new(fault: Fault) -> Self {
        Self { account: None, method: None, fault, times: None }
    }

    pub fn account(mut self, phone: &str) -> Self {
        self.account = Some(digits(phone));
        self
    }

    pub fn method(mut self, name: &str) -> Self {
        self.method = Some(name.to_owned());
        self
    }

    /// For the next `n` matching calls (at least one).
    pub fn times(mut self, n: u32) -> Self {
        self.times = Some(n.max(1));
        self
    }
}

pub(crate) struct Sent {
    pub(crate) id: i32,
    /// The client's `random_id`: a second send with it is refused.
    random_id: i64,
    pub(crate) date: i32,
    pub(crate) to: i64,
    pub(crate) text: String,
    read: bool,
    deleted: bool,
}

struct Account {
    phone: String,
    key: [u8; 256],
    pts: i32,
    last_message_id: i32,
    sent: Vec<Sent>,
    /// Updates with their `pts`, for `getDifference`.
    log: Vec<(i32, tl::enums::Update)>,
    /// Logged out: every call answers `AUTH_KEY_UNREGISTERED`.
    revoked: bool,
}

impl Account {
    fn next_pts(&mut self) -> i32 {
        self.pts += 1;
        self.pts
    }

    fn user_id(&self) -> i64 {
        user_id(&self.phone)
    }
}

/// The access hash of `user` as `account` knows it (per account, as on Telegram).
pub fn access_hash(account: i64, user: i64) -> i64 {
    (account.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as i64) ^ user).wrapping_mul(31) | 1
}

pub fn now_secs() -> i32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i32).unwrap_or(0)
}

#[derive(Default)]
pub struct World {
    accounts: BTreeMap<String, Account>,
    by_key: HashMap<[u8; 8], String>,
    users: BTreeMap<String, SimUser>,
    /// Any number not in `users` is a user too (created when first looked up).
    pub auto_users: bool,
    /// The recipient of every message sent, in the order they arrived.
    arrivals: Vec<i64>,
    injections: Vec<Injection>,
    /// Each account's sign-in state (accounts start signed in).
    logins: HashMap<String, super::auth::Login>,
    /// Every call the peer answered: (account phone, method).
    calls: Vec<(String, &'static str)>,
}

/// A pushed update for one account.
pub struct Push {
    pub account: String,
    pub body: Vec<u8>,
}

impl World {
    /// Adds a sender account with its development key; answers the key.
    pub fn add_account(&mut self, phone: &str) -> [u8; 256] {
        let phone = digits(phone);
        let key = dev_auth_key(&phone);
        self.by_key.insert(super::wire::key_id(&key), phone.clone());
        self.accounts.entry(phone.clone()).or_insert(Account {
            phone,
            key,
            pts: 1,
            last_message_id: 0,
            sent: Vec::new(),
            log: Vec::new(),
            revoked: false,
        });
        key
    }

    /// The account (phone, key) an authorization key id names.
    pub fn account_for_key(&self, key_id: &[u8; 8]) -> Option<(String, [u8; 256])> {
        let phone = self.by_key.get(key_id)?;
        self.accounts.get(phone).map(|a| (a.phone.clone(), a.key))
    }

    pub fn add_user(&mut self, user: SimUser) {
        self.users.insert(user.phone.clone(), user);
    }

    /// The account's sign-in state.
    pub fn login(&mut self, phone: &str) -> &mut super::auth::Login {
        self.logins.entry(digits(phone)).or_default()
    }

    /// The phone of the account whose current QR login token this is, which accepts it.
    pub fn accept_qr(&mut self, token: &[u8]) -> Option<String> {
        self.logins.iter_mut().find_map(|(phone, login)| login.accept_qr(token).then(|| phone.clone()))
    }

    /// Whether the account's key is not signed in.
    pub fn signed_out(&self, phone: &str) -> bool {
        self.logins.get(&digits(phone)).is_some_and(|l| l.signed_out)
    }

    /// Telegram drops the account's authorization key: a connection that names it gets the
    /// `-404` transport error.
    pub fn forget_key(&mut self, phone: &str) {
        let phone = digits(phone);
        self.by_key.retain(|_, owner| *owner != phone);
    }

    /// Logs the account out: its key is no longer accepted.
    pub fn revoke(&mut self, phone: &str) {
        if let Some(a) = self.accounts.get_mut(&digits(phone)) {
            a.revoked = true;
        }
    }

    pub fn inject(&mut self, injection: Injection) {
        self.injections.push(injection);
    }

    /// Injected faults not used up yet.
    pub fn injections_left(&self) -> usize {
        self.injections.len()
    }

    pub fn clear_injections(&mut self) {
        self.injections.clear();
    }

    pub fn calls(&self, phone: &str) -> Vec<&'static str> {
        let phone = digits(phone);
        self.calls.iter().filter(|(a, _)| *a == phone).map(|(_, m)| *m).collect()
    }

    /// The messages a user received, oldest first.
    pub fn inbox(&self, phone: &str) -> Vec<Received> {
        let to = user_id(&digits(phone));
        let mut all: Vec<Received> = self
            .accounts
            .values()
            .flat_map(|a| {
                a.sent.iter().filter(move |m| m.to == to).map(move |m| Received {
                    from: a.phone.clone(),
                    id: m.id,
                    text: m.text.clone(),
                    read: m.read,
                    deleted: m.deleted,
                })
            })
            .collect();
        all.sort_by_key(|m| m.id);
        all
    }

    /// The recipient (user id) of every message sent, in the order they arrived.
    pub fn arrivals(&self) -> Vec<i64> {
        self.arrivals.clone()
    }

    /// Messages sent by every account, in all.
    pub fn messages_sent(&self) -> usize {
        self.accounts.values().map(|a| a.sent.len()).sum()
    }

    /// The fault for this call, if one matches (using up one of its times).
    pub fn fault_for(&mut self, account: &str, method: &str) -> Option<Fault> {
        if self.accounts.get(account).is_some_and(|a| a.revoked) {
            return Some(Fault::error(401, "AUTH_KEY_UNREGISTERED"));
        }
        let i = self.injections.iter().position(|inj| {
            inj.account.as_deref().is_none_or(|a| a == account) && inj.method.as_deref().is_none_or(|m| m == method)
        })?;
        let fault = self.injections[i].fault.clone();
        if let Some(times) = self.injections[i].times.as_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                self.injections.remove(i);
            }
        }
        Some(fault)
    }

    pub fn record_call(&mut self, account: &str, method: &'static str) {
        self.calls.push((account.to_owned(), method));
    }

    fn user(&mut self, phone: &str) -> Option<SimUser> {
        let phone = digits(phone);
        if !self.users.contains_key(&phone) && self.auto_users && !self.accounts.contains_key(&phone) {
            self.users.insert(phone.clone(), SimUser::new(&phone));
        }
        self.users.get(&phone).cloned()
    }

    fn user_by_id(&self, id: i64) -> Option<&SimUser> {
        self.users.values().find(|u| u.id() == id)
    }

    /// The user as `account` sees it: with the access hash of that account.
    pub fn tl_user(&self, account: &str, user: &SimUser) -> tl::enums::User {
        tl_user(user_id(account), user)
    }

    /// `users.getUsers`: the account itself (`inputUserSelf`, a client's `get_me`), and users
    /// named by id with the access hash this account knows them by (others are left out).
    pub fn users(&self, account: &str, ids: &[tl::enums::InputUser]) -> Vec<tl::enums::User> {
        let me = user_id(account);
        ids.iter()
            .filter_map(|id| match id {
                tl::enums::InputUser::UserSelf => {
                    let tl::enums::User::User(mut user) = tl_user(me, &SimUser::new(account)) else { return None };
                    user.is_self = true;
                    Some(tl::enums::User::User(user))
                }
                tl::enums::InputUser::User(u) if u.access_hash == access_hash(me, u.user_id) => {
                    self.user_by_id(u.user_id).map(|user| tl_user(me, user))
                }
                _ => None,
            })
            .collect()
    }

    /// `contacts.importContacts` / `contacts.resolvePhone`: the user with this number.
    pub fn lookup(&mut self, phone: &str) -> Option<SimUser> {
        self.user(phone)
    }

    /// `messages.sendMessage`: answers the new message's id, `pts` and date, or an error. As
    /// on Telegram, a `random_id` the account used before is refused with
    /// `RANDOM_ID_DUPLICATE` and nothing is sent.
    pub fn send(
        &mut self,
        account: &str,
        user: i64,
        access: i64,
        text: &str,
        random_id: i64,
    ) -> Result<tl::types::UpdateShortSentMessage, (i32, &'static str)> {
        let target = self.user_by_id(user).cloned();
        let a = self.accounts.get_mut(account).ok_or((401, "AUTH_KEY_UNREGISTERED"))?;
        let Some(target) = target.filter(|_| access == access_hash(a.user_id(), user)) else {
            return Err((400, "PEER_ID_INVALID"));
        };
        if target.privacy_restricted {
            return Err((403, "USER_PRIVACY_RESTRICTED"));
        }
        if a.sent.iter().any(|m| m.random_id == random_id) {
            return Err((400, "RANDOM_ID_DUPLICATE"));
        }
        a.last_message_id += 1;
        let id = a.last_message_id;
        let date = now_secs();
        a.sent.push(Sent { id, random_id, date, to: user, text: text.to_owned(), read: false, deleted: false });
        self.arrivals.push(user);
        // What the user's phone would show: a person running the dev peer watches this.
        tracing::info!(to = %format!("+{}", target.phone), from = %format!("+{}", a.phone), id, text, "dev-telegram: message received");
        let pts = a.next_pts();
        // Sent messages are not replayed by getDifference (the sender knows them); its `pts`
        // still counts, so the log's state jumps past it.
        Ok(tl::types::UpdateShortSentMessage {
            out: true,
            id,
            pts,
            pts_count: 1,
            date,
            media: None,
            entities: None,
            ttl_period: None,
        })
    }

    /// `messages.getHistory` of the chat with `user` as `account` sees it: the newest `limit`
    /// messages that are not deleted, newest first (the peer's chats hold only what the
    /// account sent).
    pub fn history(
        &self,
        account: &str,
        user: i64,
        access: i64,
        limit: usize,
    ) -> Result<Vec<tl::enums::Message>, (i32, &'static str)> {
        let a = self.accounts.get(account).ok_or((401, "AUTH_KEY_UNREGISTERED"))?;
        if self.user_by_id(user).is_none() || access != access_hash(a.user_id(), user) {
            return Err((400, "PEER_ID_INVALID"));
        }
        let chat = a.sent.iter().rev().filter(|m| m.to == user && !m.deleted).take(limit.min(100));
        Ok(chat.map(|m| tl_message(a.user_id(), m)).collect())
    }

    /// `messages.deleteMessages` (for both sides): answers (`pts`, `pts_count`).
    pub fn delete(&mut self, account: &str, ids: &[i32]) -> (i32, i32) {
        let Some(a) = self.accounts.get_mut(account) else { return (0, 0) };
        let mut deleted = Vec::new();
        for m in a.sent.iter_mut().filter(|m| ids.contains(&m.id) && !m.deleted) {
            m.deleted = true;
            deleted.push(m.id);
        }
        if deleted.is_empty() {
            return (a.pts, 0);
        }
        let count = deleted.len() as i32;
        a.pts += count;
        let update = tl::types::UpdateDeleteMessages { messages: deleted, pts: a.pts, pts_count: count };
        let pts = a.pts;
        a.log.push((pts, tl::enums::Update::DeleteMessages(update)));
        (pts, count)
    }

    /// The user with this number reads every chat: each account that wrote to them gets
    /// `updateReadHistoryOutbox`. Answers the updates to push.
    pub fn read(&mut self, phone: &str) -> Vec<Push> {
        let Some(user) = self.users.get(&digits(phone)).cloned() else { return Vec::new() };
        let mut pushes = Vec::new();
        for a in self.accounts.values_mut() {
            let mut max_id = None;
            for m in a.sent.iter_mut().filter(|m| m.to == user.id() && !m.read && !m.deleted) {
                m.read = true;
                max_id = max_id.max(Some(m.id));
            }
            let Some(max_id) = max_id else { continue };
            let pts = a.next_pts();
            let update = tl::enums::Update::ReadHistoryOutbox(tl::types::UpdateReadHistoryOutbox {
                peer: tl::enums::Peer::User(tl::types::PeerUser { user_id: user.id() }),
                max_id,
                pts,
                pts_count: 1,
            });
            a.log.push((pts, update.clone()));
            let updates = tl::enums::Updates::Updates(tl::types::Updates {
                updates: vec![update],
                users: vec![tl_user(a.user_id(), &user)],
                chats: Vec::new(),
                date: now_secs(),
                seq: 0,
            });
            pushes.push(Push { account: a.phone.clone(), body: tl::Serializable::to_bytes(&updates) });
        }
        pushes
    }

    /// `updates.getState`.
    pub fn state(&self, account: &str) -> tl::enums::updates::State {
        let pts = self.accounts.get(account).map_or(1, |a| a.pts);
        tl::enums::updates::State::State(tl::types::updates::State {
            pts,
            qts: 0,
            date: now_secs(),
            seq: 0,
            unread_count: 0,
        })
    }

    /// `updates.getDifference` from `pts`: the logged updates after it and the current state.
    pub fn difference(&self, account: &str, pts: i32) -> tl::enums::updates::Difference {
        let Some(a) = self.accounts.get(account) else {
            return tl::enums::updates::Difference::Empty(tl::types::updates::DifferenceEmpty {
                date: now_secs(),
                seq: 0,
            });
        };
        if pts >= a.pts {
            return tl::enums::updates::Difference::Empty(tl::types::updates::DifferenceEmpty {
                date: now_secs(),
                seq: 0,
            });
        }
        let other_updates: Vec<_> = a.log.iter().filter(|(p, _)| *p > pts).map(|(_, u)| u.clone()).collect();
        let users = self.users.values().map(|u| tl_user(a.user_id(), u)).collect();
        tl::enums::updates::Difference::Difference(tl::types::updates::Difference {
            new_messages: Vec::new(),
            new_encrypted_messages: Vec::new(),
            other_updates,
            chats: Vec::new(),
            users,
            state: self.state(account),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        let mut w = World::default();
        w.add_account("+999000001");
        w.add_user(SimUser::new("+15550001111"));
        w
    }

    fn send(w: &mut World, to: &str, text: &str) -> Result<tl::types::UpdateShortSentMessage, (i32, &'static str)> {
        let id = user_id(to);
        let random_id = w.messages_sent() as i64 + 1000;
        w.send("999000001", id, access_hash(999000001, id), text, random_id)
    }

    #[test]
    fn messages_reach_the_user_with_increasing_ids_and_pts() {
        let mut w = world();
        let a = send(&mut w, "15550001111", "one").unwrap();
        let b = send(&mut w, "15550001111", "two").unwrap();
        assert_eq!((a.id, a.pts, b.id, b.pts), (1, 2, 2, 3));
        let inbox = w.inbox("+15550001111");
        assert_eq!(inbox.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(), ["one", "two"]);
        assert_eq!(send(&mut w, "15550009999", "x").unwrap_err(), (400, "PEER_ID_INVALID"), "not a user");
        let wrong_hash = w.send("999000001", 15550001111, 7, "x", 1).unwrap_err();
        assert_eq!(wrong_hash, (400, "PEER_ID_INVALID"), "an access hash of another account");
    }

    #[test]
    fn a_random_id_sends_once_per_account_and_the_history_shows_the_message() {
        let mut w = world();
        w.add_account("+999000002");
        let user = user_id("15550001111");
        let first = w.send("999000001", user, access_hash(999000001, user), "code 1", 42).unwrap();
        let again = w.send("999000001", user, access_hash(999000001, user), "code 1", 42);
        assert_eq!(again.unwrap_err(), (400, "RANDOM_ID_DUPLICATE"));
        assert_eq!(w.inbox("15550001111").len(), 1, "refused, not sent");
        // Per account: another account's random ids are its own.
        w.send("999000002", user, access_hash(999000002, user), "code 2", 42).unwrap();
        let history = w.history("999000001", user, access_hash(999000001, user), 10).unwrap();
        let [tl::enums::Message::Message(m)] = history.as_slice() else { panic!("{history:?}") };
        assert_eq!((m.id, m.out, m.message.as_str()), (first.id, true, "code 1"));
        assert_eq!(w.history("999000001", user, 7, 10).unwrap_err(), (400, "PEER_ID_INVALID"));
        w.delete("999000001", &[first.id]);
        assert!(w.history("999000001", user, access_hash(999000001, user), 10).unwrap().is_empty());
    }

    #[test]
    fn get_users_answers_the_account_itself_and_users_it_knows() {
        let w = world();
        let user = user_id("15550001111");
        let known = tl::enums::InputUser::User(tl::types::InputUser {
            user_id: user,
            access_hash: access_hash(999000001, user),
        });
        let wrong = tl::enums::InputUser::User(tl::types::InputUser { user_id: user, access_hash: 7 });
        let users = w.users("999000001", &[tl::enums::InputUser::UserSelf, known, wrong]);
        let ids: Vec<_> = users
            .iter()
            .map(|u| match u {
                tl::enums::User::User(u) => (u.id, u.is_self),
                tl::enums::User::Empty(e) => (e.id, false),
            })
            .collect();
        assert_eq!(ids, [(999000001, true), (user, false)]);
    }

    #[test]
    fn reading_pushes_one_update_per_account_and_logs_it_for_get_difference() {
        let mut w = world();
        send(&mut w, "15550001111", "one").unwrap();
        send(&mut w, "15550001111", "two").unwrap();
        let pushes = w.read("15550001111");
        assert_eq!(pushes.len(), 1);
        assert!(w.inbox("15550001111").iter().all(|m| m.read));
        assert!(w.read("15550001111").is_empty(), "nothing new to read");
        let tl::enums::updates::Difference::Difference(d) = w.difference("999000001", 3) else { panic!("a gap") };
        let [tl::enums::Update::ReadHistoryOutbox(read)] = d.other_updates.as_slice() else { panic!("{d:?}") };
        assert_eq!((read.max_id, read.pts), (2, 4));
        assert!(matches!(w.difference("999000001", 4), tl::enums::updates::Difference::Empty(_)));
    }

    #[test]
    fn privacy_and_deletion() {
        let mut w = world();
        w.add_user(SimUser { privacy_restricted: true, ..SimUser::new("15550002222") });
        assert_eq!(send(&mut w, "15550002222", "x").unwrap_err(), (403, "USER_PRIVACY_RESTRICTED"));
        let m = send(&mut w, "15550001111", "one").unwrap();
        assert_eq!(w.delete("999000001", &[m.id]), (m.pts + 1, 1));
        assert_eq!(w.delete("999000001", &[m.id]), (m.pts + 1, 0), "deleted once");
        assert!(w.inbox("15550001111")[0].deleted);
    }

    #[test]
    fn injections_match_account_and_method_and_run_out() {
        let mut w = world();
        w.inject(Injection::new(Fault::error(420, "FLOOD_WAIT_5")).method("messages.sendMessage").times(1));
        assert_eq!(w.fault_for("999000001", "contacts.importContacts"), None);
        assert_eq!(w.fault_for("999000001", "messages.sendMessage"), Some(Fault::error(420, "FLOOD_WAIT_5")));
        assert_eq!(w.fault_for("999000001", "messages.sendMessage"), None, "used up");
        w.revoke("+999000001");
        assert_eq!(w.fault_for("999000001", "updates.getState"), Some(Fault::error(401, "AUTH_KEY_UNREGISTERED")));
    }

    #[test]
    fn development_keys_differ_per_account() {
        assert_ne!(dev_auth_key("1"), dev_auth_key("2"));
        assert_eq!(dev_auth_key("1"), dev_auth_key("1"));
        let mut w = World::default();
        let key = w.add_account("+15550000001");
        assert_eq!(
            w.account_for_key(&super::super::wire::key_id(&key)).map(|(p, _)| p).as_deref(),
            Some("15550000001")
        );
    }
}
