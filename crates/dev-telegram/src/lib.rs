//! A local Telegram: a small MTProto server on loopback that speaks enough of Telegram's
//! protocol for verigram's sender, so the real grammers-based sender runs end to end without
//! reaching Telegram. Tests start it in-process; the `verigram-dev-telegram` binary runs it
//! alone, for a person to watch messages arrive.
//!
//! There is no key exchange: a development account's session is seeded with the peer's
//! address as data centre 2 and a key both sides derive from the account's phone number
//! (`dev_auth_key`), as a session that signed in earlier would hold one.
//!
//! It holds clients to MTProto as Telegram does (salts, sessions, message ids and sequence
//! numbers, replays, `-404` for an unknown key, three transports) and answers the methods
//! verigram's sender calls; `README.md` beside this crate lists what it implements and where
//! it is knowingly simpler than Telegram. Faults (`Injection`) make calls fail with any
//! `rpc_error`, answer late, drop the connection, or carry a call out and drop the connection
//! before its answer; `restart` drops every connection and listens again on the same port,
//! keeping the simulated world.

mod auth;
mod objects;
mod rpc;
mod session;
pub mod wire;
mod world;

pub use world::{dev_auth_key, Fault, Injection, Received, SimUser};

use grammers_tl_types as tl;
use parking_lot::Mutex;
use rpc::Answer;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use wire::{Framing, Message, ServerSession, WireError};
use world::World;

/// What the simulated Telegram holds at start.
#[derive(Debug, Clone, Default)]
pub struct PeerConfig {
    /// Sender accounts' phone numbers (each gets its development key).
    pub accounts: Vec<String>,
    pub users: Vec<SimUser>,
    /// Every number that is not an account is a user too.
    pub auto_users: bool,
    /// Users read each message this long after it arrives (never, when `None`).
    pub reads_after: Option<Duration>,
}

/// A running peer. Dropping it stops it.
pub struct TelegramPeer {
    shared: Arc<Shared>,
}

struct Shared {
    addr: SocketAddr,
    world: Mutex<World>,
    links: Mutex<HashMap<u64, Link>>,
    next_link: AtomicU64,
    tasks: Mutex<JoinSet<()>>,
    reads_after: Option<Duration>,
}

/// A live connection: which account it serves, and the way to its writer.
struct Link {
    account: String,
    out: mpsc::UnboundedSender<Outgoing>,
}

enum Outgoing {
    Message {
        body: Vec<u8>,
        answer: bool,
        content: bool,
    },
    /// The client moved to this session: what follows is sent in it.
    Session(i64),
    Close,
}

impl TelegramPeer {
    /// Listens on `listen` (port 0 picks a free one).
    pub async fn start(listen: SocketAddr, config: PeerConfig) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let mut world = World::default();
        world.auto_users = config.auto_users;
        for phone in &config.accounts {
            world.add_account(phone);
        }
        for user in config.users {
            world.add_user(user);
        }
        let shared = Arc::new(Shared {
            addr: listener.local_addr()?,
            world: Mutex::new(world),
            links: Mutex::new(HashMap::new()),
            next_link: AtomicU64::new(1),
            tasks: Mutex::new(JoinSet::new()),
            reads_after: config.reads_after,
        });
        Shared::listen(&shared, listener);
        Ok(Self { shared })
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// Adds a sender account; answers the key its session must be seeded with.
    pub fn add_account(&self, phone: &str) -> [u8; 256] {
        self.shared.world.lock().add_account(phone)
    }

    pub fn add_user(&self, user: SimUser) {
        self.shared.world.lock().add_user(user);
    }

    /// What a user received, oldest first.
    pub fn inbox(&self, phone: &str) -> Vec<Received> {
        self.shared.world.lock().inbox(phone)
    }

    /// The recipient (user id, `SimUser::id`) of every message sent, in the order they arrived.
    pub fn arrivals(&self) -> Vec<i64> {
        self.shared.world.lock().arrivals()
    }

    /// Messages sent by all accounts together.
    pub fn messages_sent(&self) -> usize {
        self.shared.world.lock().messages_sent()
    }

    /// The methods an account called, in order.
    pub fn calls(&self, account_phone: &str) -> Vec<&'static str> {
        self.shared.world.lock().calls(account_phone)
    }

    /// The user reads their chats: each sender account gets `updateReadHistoryOutbox` (now,
    /// when connected; else through `getDifference` later).
    pub fn read(&self, phone: &str) {
        self.shared.read(phone);
    }

    pub fn inject(&self, injection: Injection) {
        self.shared.world.lock().inject(injection);
    }

    /// The account's key is not signed in (as after `verigram sender add`): every call but
    /// signing in answers `AUTH_KEY_UNREGISTERED` until `verigram sender login` signs it in.
    pub fn sign_out(&self, account_phone: &str) {
        self.shared.world.lock().login(account_phone).signed_out = true;
    }

    /// Gives the account two-step verification with this password (and hint).
    pub fn set_password(&self, account_phone: &str, password: &str, hint: Option<&str>) {
        let password = auth::Password::new(password, hint.map(str::to_owned));
        self.shared.world.lock().login(account_phone).password = Some(password);
    }

    /// The login code Telegram last sent to the account's phone, while it is valid.
    pub fn login_code(&self, account_phone: &str) -> Option<String> {
        self.shared.world.lock().login(account_phone).code()
    }

    /// The login code sent to the account's phone is too old now (`PHONE_CODE_EXPIRED`).
    pub fn expire_login_code(&self, account_phone: &str) {
        self.shared.world.lock().login(account_phone).expire_code();
    }

    /// The account's phone, where it is signed in, scans a QR login code showing `token`
    /// (`tg://login?token=<base64url>`): the login is accepted and the account's connections
    /// get `updateLoginToken`. `false` when no account is showing that token.
    pub fn scan_qr(&self, token: &[u8]) -> bool {
        let Some(phone) = self.shared.world.lock().accept_qr(token) else { return false };
        let update = tl::enums::Updates::UpdateShort(tl::types::UpdateShort {
            update: tl::enums::Update::LoginToken,
            date: world::now_secs(),
        });
        let body = tl::Serializable::to_bytes(&update);
        for link in self.shared.links.lock().values().filter(|l| l.account == phone) {
            let _ = link.out.send(Outgoing::Message { body: body.clone(), answer: false, content: true });
        }
        true
    }

    /// Whether the account's key is signed in.
    pub fn signed_in(&self, account_phone: &str) -> bool {
        !self.shared.world.lock().signed_out(account_phone)
    }

    /// Injected faults that have not struck (all their times) yet.
    pub fn faults_left(&self) -> usize {
        self.shared.world.lock().injections_left()
    }

    pub fn clear_faults(&self) {
        self.shared.world.lock().clear_injections();
    }

    /// Logs an account out: from now on every call answers `AUTH_KEY_UNREGISTERED`.
    pub fn revoke(&self, account_phone: &str) {
        self.shared.world.lock().revoke(account_phone);
    }

    /// Telegram drops the account's authorization key (a session ended on its side): the
    /// account's connections close, and every new one gets the `-404` transport error.
    pub fn forget_key(&self, account_phone: &str) {
        let phone: String = account_phone.chars().filter(char::is_ascii_digit).collect();
        self.shared.world.lock().forget_key(&phone);
        for link in self.shared.links.lock().values().filter(|l| l.account == phone) {
            let _ = link.out.send(Outgoing::Close);
        }
    }

    /// Live connections now.
    pub fn connections(&self) -> usize {
        self.shared.links.lock().len()
    }

    /// Closes every connection (the clients see their connection drop).
    pub fn drop_connections(&self) {
        for link in self.shared.links.lock().values() {
            let _ = link.out.send(Outgoing::Close);
        }
    }

    /// Stops listening and drops every connection; the simulated world stays.
    pub async fn stop(&self) {
        let mut tasks = std::mem::take(&mut *self.shared.tasks.lock());
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        self.shared.links.lock().clear();
    }

    /// `stop`, then listen again on the same address: a restart of Telegram's side.
    pub async fn restart(&self) -> std::io::Result<()> {
        self.stop().await;
        let listener = TcpListener::bind(self.shared.addr).await?;
        Shared::listen(&self.shared, listener);
        Ok(())
    }
}

impl Drop for TelegramPeer {
    fn drop(&mut self) {
        self.shared.tasks.lock().abort_all();
    }
}

impl Shared {
    fn spawn(self: &Arc<Self>, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock();
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    fn listen(self: &Arc<Self>, listener: TcpListener) {
        let shared = Arc::clone(self);
        self.spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        let conn = Arc::clone(&shared);
                        shared.spawn(async move {
                            if let Err(e) = conn.serve(stream).await {
                                tracing::debug!(error = %e, "dev-telegram: connection ended");
                            }
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "dev-telegram: accept failed"),
                }
            }
        });
    }

    fn read(self: &Arc<Self>, phone: &str) {
        let pushes = self.world.lock().read(phone);
        let links = self.links.lock();
        for push in pushes {
            for link in links.values().filter(|l| l.account == push.account) {
                let _ = link.out.send(Outgoing::Message { body: push.body.clone(), answer: false, content: true });
            }
        }
    }

    /// One client connection: the first message names the account by its key.
    async fn serve(self: Arc<Self>, stream: TcpStream) -> Result<(), WireError> {
        let (mut rd, mut wr) = stream.into_split();
        let mut incoming = Framing::detect(&mut rd).await?;
        let first = incoming.read(&mut rd).await?;
        let key_id = wire::payload_key_id(&first).ok_or(WireError::Malformed("short payload"))?;
        // A plain message (key id 0) would start a key exchange, which the peer does not do;
        // an unknown key gets Telegram's transport error.
        let Some((account, key)) = self.world.lock().account_for_key(&key_id) else {
            incoming.writer().write_error(&mut wr, 404).await?;
            return Err(WireError::UnknownKey);
        };
        let plain = wire::decrypt(&key, &first)?;

        let (out, mut outgoing) = mpsc::unbounded_channel();
        let link_id = self.next_link.fetch_add(1, Ordering::Relaxed);
        self.links.lock().insert(link_id, Link { account: account.clone(), out: out.clone() });
        let mut session = ServerSession::new(key, plain.session_id);
        let mut framing = incoming.writer();
        self.spawn(async move {
            while let Some(next) = outgoing.recv().await {
                let payload = match next {
                    Outgoing::Message { body, answer, content } => session.seal(&body, answer, content),
                    Outgoing::Session(id) => {
                        session = ServerSession::new(key, id);
                        continue;
                    }
                    Outgoing::Close => break,
                };
                if framing.write(&mut wr, &payload).await.is_err() {
                    break;
                }
            }
            // Dropping the write half closes the connection for the client.
        });

        let mut conn = Conn {
            shared: Arc::clone(&self),
            account,
            key,
            out,
            session_id: plain.session_id,
            fresh: true,
            received: session::Received::default(),
            salts: session::Salts::new(key),
        };
        let mut result = conn.payload(plain);
        while result.is_ok() {
            let payload = match incoming.read(&mut rd).await {
                Ok(payload) => payload,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            result = wire::decrypt(&key, &payload).and_then(|plain| conn.payload(plain));
        }
        self.links.lock().remove(&link_id);
        let _ = conn.out.send(Outgoing::Close);
        result
    }
}

/// Handling of one connection's messages.
struct Conn {
    shared: Arc<Shared>,
    account: String,
    key: [u8; 256],
    out: mpsc::UnboundedSender<Outgoing>,
    /// The client's current session, and whether it was told the session is new.
    session_id: i64,
    fresh: bool,
    received: session::Received,
    salts: session::Salts,
}

impl Conn {
    fn send(&self, body: Vec<u8>, answer: bool, content: bool) {
        let _ = self.out.send(Outgoing::Message { body, answer, content });
    }

    /// One decrypted payload, held to MTProto's rules as Telegram holds it: answers go to the
    /// client's current session (a new one is announced with `new_session_created`); a message
    /// that breaks a rule is answered with `bad_msg_notification`, one with a stale salt with
    /// `bad_server_salt` (the first of every fresh session: clients start with none), and a
    /// replayed one is ignored; none of these is carried out.
    fn payload(&mut self, plain: wire::Plain) -> Result<(), WireError> {
        if plain.session_id != self.session_id {
            self.session_id = plain.session_id;
            self.fresh = true;
            let _ = self.out.send(Outgoing::Session(plain.session_id));
        }
        let message = plain.message;
        let now = i64::from(world::now_secs());
        if let Some(code) = session::bad_message(&message, now) {
            self.send(session::bad_msg_notification(&message, code), true, false);
            return Ok(());
        }
        if !self.salts.valid(plain.salt, now) {
            let salt = self.salts.current(now);
            self.send(session::bad_server_salt(&message, salt), true, false);
            return Ok(());
        }
        if !self.received.first_time(message.msg_id) {
            return Ok(());
        }
        if std::mem::take(&mut self.fresh) {
            let salt = self.salts.current(now);
            let created = session::new_session_created(message.msg_id, salt);
            self.send(created, false, true);
        }
        self.frame(message)
    }

    /// All messages of one transport frame; acknowledges the content-related ones after.
    fn frame(&mut self, message: Message) -> Result<(), WireError> {
        let mut acks = Vec::new();
        self.message(message, &mut acks, 0)?;
        if !acks.is_empty() {
            self.send(rpc::ack(acks), false, false);
        }
        Ok(())
    }

    /// One message; `depth` counts the containers and packings around it (MTProto allows
    /// no container in a container, and nothing needs more than a packed message in one).
    fn message(&mut self, message: Message, acks: &mut Vec<i64>, depth: u8) -> Result<(), WireError> {
        match message.constructor() {
            Some(_) if depth > 2 => return Err(WireError::Malformed("nested too deep")),
            Some(wire::MSG_CONTAINER) => {
                for inner in wire::container_messages(&message.body)? {
                    // Each message in a container is held to the rules on its own.
                    if let Some(code) = session::bad_message(&inner, i64::from(world::now_secs())) {
                        self.send(session::bad_msg_notification(&inner, code), true, false);
                    } else if self.received.first_time(inner.msg_id) {
                        self.message(inner, acks, depth + 1)?;
                    }
                }
                return Ok(());
            }
            Some(wire::GZIP_PACKED) => {
                let body = wire::gunzip(&message.body)?;
                return self.message(Message { body, ..message }, acks, depth + 1);
            }
            _ => {}
        }
        if message.needs_ack() {
            acks.push(message.msg_id);
        }
        if rpc::is_ack(&message.body) {
            return Ok(());
        }
        if let Some(pong) = rpc::pong(message.msg_id, &message.body) {
            self.send(pong, true, false);
            return Ok(());
        }
        if let Some(num) = rpc::get_future_salts(&message.body) {
            let salts = session::future_salts(&self.key, message.msg_id, num, i64::from(world::now_secs()));
            self.send(tl::Serializable::to_bytes(&salts), true, true);
            return Ok(());
        }
        let decision = rpc::call(&mut self.shared.world.lock(), &self.account, self.shared.addr, &message.body);
        let body = match decision.answer {
            Answer::Result(result) => wire::rpc_result(message.msg_id, &result),
            Answer::Error { code, message: name } => wire::rpc_result(message.msg_id, &rpc::rpc_error(code, &name)),
            Answer::Drop | Answer::DropAfter => return Err(WireError::Frame("dropped by an injected fault")),
        };
        if let (Some(user), Some(after)) = (decision.sent_to, self.shared.reads_after) {
            let shared = Arc::clone(&self.shared);
            self.shared.spawn(async move {
                tokio::time::sleep(after).await;
                shared.read(&user);
            });
        }
        match decision.delay {
            None => self.send(body, true, true),
            Some(delay) => {
                let out = self.out.clone();
                self.shared.spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = out.send(Outgoing::Message { body, answer: true, content: true });
                });
            }
        }
        Ok(())
    }
}
