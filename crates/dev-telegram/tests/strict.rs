//! The peer probed on the wire with hand-made MTProto messages, as a client that gets the
//! protocol wrong would meet it: it must answer as Telegram does (issue 18, item 1). The
//! client here is a few lines over the peer's own framing and grammers-crypto's client-side
//! encryption, so each rule can be broken on purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use grammers_crypto::{AuthKey, DequeBuffer};
use grammers_tl_types::{self as tl, Cursor, Deserializable, Identifiable, Serializable};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use verigram_dev_telegram::wire::{Framing, Message};
use verigram_dev_telegram::{PeerConfig, TelegramPeer};

const ACCOUNT: &str = "+447700900555";

/// A message the server sent: its header and body.
#[derive(Debug)]
struct Received {
    salt: i64,
    session_id: i64,
    msg_id: i64,
    seq_no: i32,
    body: Vec<u8>,
}

impl Received {
    fn constructor(&self) -> u32 {
        u32::from_le_bytes(self.body[..4].try_into().unwrap())
    }

    fn is<T: Identifiable>(&self) -> bool {
        self.constructor() == T::CONSTRUCTOR_ID
    }
}

struct Client {
    stream: TcpStream,
    framing: Framing,
    incoming: Framing,
    key: [u8; 256],
    salt: i64,
    session_id: i64,
    last_msg_id: i64,
    seq: i32,
}

impl Client {
    async fn connect(peer: &TelegramPeer, key: [u8; 256], tag: &[u8], framing: fn() -> Framing) -> Self {
        let mut stream = TcpStream::connect(peer.addr()).await.unwrap();
        tokio::io::AsyncWriteExt::write_all(&mut stream, tag).await.unwrap();
        Self { stream, framing: framing(), incoming: framing(), key, salt: 0, session_id: 1, last_msg_id: 0, seq: 0 }
    }

    async fn full(peer: &TelegramPeer, key: [u8; 256]) -> Self {
        Self::connect(peer, key, &[], || Framing::Full { send_seq: 0, recv_seq: 0, first: None }).await
    }

    /// A valid client message id: now, increasing, divisible by 4.
    fn msg_id(&mut self) -> i64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let id = (((now.as_secs() as i64) << 32) | (i64::from(now.subsec_nanos()) << 2)) & !3;
        self.last_msg_id = id.max(self.last_msg_id + 4);
        self.last_msg_id
    }

    /// The next `seq_no` for a content-related message.
    fn content_seq(&mut self) -> i32 {
        self.seq += 2;
        self.seq - 1
    }

    async fn send_raw(&mut self, message: &Message) {
        let mut plaintext = Vec::new();
        self.salt.serialize(&mut plaintext);
        self.session_id.serialize(&mut plaintext);
        message.write(&mut plaintext);
        let mut buffer = DequeBuffer::with_capacity(plaintext.len() + 64, 24);
        buffer.extend(plaintext);
        grammers_crypto::encrypt_data_v2(&mut buffer, &AuthKey::from_bytes(self.key));
        self.framing.write(&mut self.stream, &buffer[..]).await.unwrap();
    }

    /// Sends `body` as a content-related message with a valid id; answers its id.
    async fn call(&mut self, body: Vec<u8>) -> i64 {
        let message = Message { msg_id: self.msg_id(), seq_no: self.content_seq(), body };
        self.send_raw(&message).await;
        message.msg_id
    }

    async fn recv(&mut self) -> Received {
        let read = tokio::time::timeout(Duration::from_secs(5), self.incoming.read(&mut self.stream));
        let mut payload = read.await.expect("an answer within 5 s").unwrap();
        let plain = grammers_crypto::decrypt_data_v2(&mut payload, &AuthKey::from_bytes(self.key)).unwrap();
        let mut cursor = Cursor::from_slice(plain);
        let salt = i64::deserialize(&mut cursor).unwrap();
        let session_id = i64::deserialize(&mut cursor).unwrap();
        let msg_id = i64::deserialize(&mut cursor).unwrap();
        let seq_no = i32::deserialize(&mut cursor).unwrap();
        let len = i32::deserialize(&mut cursor).unwrap() as usize;
        let mut body = vec![0u8; len];
        cursor.read_exact(&mut body).unwrap();
        Received { salt, session_id, msg_id, seq_no, body }
    }

    /// The next message that is not an acknowledgement.
    async fn recv_content(&mut self) -> Received {
        loop {
            let m = self.recv().await;
            if !m.is::<tl::types::MsgsAck>() {
                return m;
            }
        }
    }

    /// Takes the salt from the peer's `bad_server_salt` to the first call, as a fresh client
    /// does, and resends.
    async fn learn_salt(&mut self) {
        self.call(ping(1)).await;
        let bad = self.recv_content().await;
        let tl::enums::BadMsgNotification::BadServerSalt(bad) =
            tl::enums::BadMsgNotification::from_bytes(&bad.body).unwrap()
        else {
            panic!("expected bad_server_salt")
        };
        self.salt = bad.new_server_salt;
    }
}

fn ping(ping_id: i64) -> Vec<u8> {
    tl::functions::Ping { ping_id }.to_bytes()
}

fn pong_of(m: &Received) -> tl::types::Pong {
    let tl::enums::Pong::Pong(pong) = tl::enums::Pong::from_bytes(&m.body).expect("a pong");
    pong
}

fn bad_msg_code(m: &Received) -> i32 {
    match tl::enums::BadMsgNotification::from_bytes(&m.body).expect("a bad_msg_notification") {
        tl::enums::BadMsgNotification::Notification(n) => n.error_code,
        tl::enums::BadMsgNotification::BadServerSalt(b) => b.error_code,
    }
}

async fn peer() -> (TelegramPeer, [u8; 256]) {
    let config = PeerConfig { accounts: vec![ACCOUNT.into()], auto_users: true, ..Default::default() };
    let peer = TelegramPeer::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let key = peer.add_account(ACCOUNT);
    (peer, key)
}

#[tokio::test]
async fn a_fresh_session_learns_its_salt_and_is_announced_in_its_own_session() {
    let (peer, key) = peer().await;
    let mut c = Client::full(&peer, key).await;
    let first = c.call(ping(1)).await;
    let bad = c.recv_content().await;
    assert_eq!(bad.session_id, c.session_id, "answered in the client's session");
    let tl::enums::BadMsgNotification::BadServerSalt(salt) =
        tl::enums::BadMsgNotification::from_bytes(&bad.body).unwrap()
    else {
        panic!("the first call of a fresh session gets bad_server_salt")
    };
    assert_eq!((salt.bad_msg_id, salt.error_code), (first, 48));
    assert_eq!(bad.msg_id & 3, 1, "an answer's id is 1 mod 4");
    assert_eq!(bad.salt, salt.new_server_salt, "the server's own messages carry the salt");

    // Resent with the salt: the session is announced, then the call is answered.
    c.salt = salt.new_server_salt;
    let resent = c.call(ping(2)).await;
    let created = c.recv_content().await;
    let tl::enums::NewSession::Created(created) = tl::enums::NewSession::from_bytes(&created.body).unwrap();
    assert_eq!((created.first_msg_id, created.server_salt), (resent, c.salt));
    let pong = c.recv_content().await;
    assert_eq!((pong_of(&pong).msg_id, pong_of(&pong).ping_id), (resent, 2));

    // The salts to come, as `get_future_salts` asks; the first is the current one.
    let asked = c.call(tl::functions::GetFutureSalts { num: 3 }.to_bytes()).await;
    let answer = c.recv_content().await;
    let tl::enums::FutureSalts::Salts(future) = tl::enums::FutureSalts::from_bytes(&answer.body).unwrap();
    assert_eq!((future.req_msg_id, future.salts.0.len(), future.salts.0[0].salt), (asked, 3, c.salt));

    // The client moves to another session on the same connection: announced, answered there.
    c.session_id = 2;
    let moved = c.call(ping(3)).await;
    let created = c.recv_content().await;
    assert_eq!(created.session_id, 2);
    assert!(created.is::<tl::types::NewSessionCreated>());
    let pong = c.recv_content().await;
    assert_eq!((pong.session_id, pong_of(&pong).msg_id), (2, moved));
}

#[tokio::test]
async fn messages_that_break_the_rules_are_refused_and_replays_ignored() {
    let (peer, key) = peer().await;
    let mut c = Client::full(&peer, key).await;
    c.learn_salt().await;
    let now = c.msg_id();
    let cases = [
        (now | 1, 1, 18, "an id not divisible by 4"),
        (now - (301 << 32), 1, 16, "an id 301 s old"),
        (now + (31 << 32), 1, 17, "an id 31 s ahead"),
        (now + 4, 2, 34, "a call with an even seq_no"),
    ];
    for (msg_id, seq_no, code, what) in cases {
        c.send_raw(&Message { msg_id, seq_no, body: ping(9) }).await;
        let m = c.recv_content().await;
        assert_eq!(bad_msg_code(&m), code, "{what}");
    }
    let ack = tl::enums::MsgsAck::Ack(tl::types::MsgsAck { msg_ids: vec![1] }).to_bytes();
    let msg_id = c.msg_id();
    c.send_raw(&Message { msg_id, seq_no: 1, body: ack }).await;
    assert_eq!(bad_msg_code(&c.recv_content().await), 35, "an ack with an odd seq_no");

    // A replayed message is carried out once: the next answer is the later ping's.
    let once = Message { msg_id: c.msg_id(), seq_no: c.content_seq(), body: ping(10) };
    c.send_raw(&once).await;
    c.recv_content().await; // new_session_created
    assert_eq!(pong_of(&c.recv_content().await).ping_id, 10);
    c.send_raw(&once).await;
    c.call(ping(11)).await;
    assert_eq!(pong_of(&c.recv_content().await).ping_id, 11, "the replay was ignored");
}

#[tokio::test]
async fn an_unknown_key_gets_the_404_transport_error() {
    let (peer, _) = peer().await;
    let mut c = Client::full(&peer, [3; 256]).await;
    c.call(ping(1)).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), c.stream.read_to_end(&mut answer));
    read.await.expect("the connection closes").unwrap();
    assert_eq!(answer, (-404i32).to_le_bytes(), "-404 in place of a frame, then the connection closes");
}

#[tokio::test]
async fn the_intermediate_and_abridged_transports_are_spoken_too() {
    let (peer, key) = peer().await;
    type Transport = (&'static [u8], fn() -> Framing);
    let framings: [Transport; 2] =
        [(&[0xee, 0xee, 0xee, 0xee], || Framing::Intermediate), (&[0xef], || Framing::Abridged)];
    for (tag, framing) in framings {
        let mut c = Client::connect(&peer, key, tag, framing).await;
        c.learn_salt().await;
        let get_me = tl::functions::users::GetUsers { id: vec![tl::enums::InputUser::UserSelf] };
        let asked = c.call(get_me.to_bytes()).await;
        c.recv_content().await; // new_session_created
        let answer = c.recv_content().await;
        assert_eq!(answer.constructor(), 0xf35c_6d01, "rpc_result");
        let mut cursor = Cursor::from_slice(&answer.body[4..]);
        assert_eq!(i64::deserialize(&mut cursor).unwrap(), asked);
        let users = Vec::<tl::enums::User>::deserialize(&mut cursor).unwrap();
        let [tl::enums::User::User(me)] = users.as_slice() else { panic!("{users:?}") };
        assert!(me.is_self);
        assert_eq!(me.phone.as_deref(), Some(ACCOUNT.trim_start_matches('+')));
        assert_eq!(answer.seq_no & 1, 1, "an rpc_result is content-related");
    }
}
