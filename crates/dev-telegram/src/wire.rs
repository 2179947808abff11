//! MTProto 2.0 on the server's side: the TCP "full" transport framing, the encryption of
//! messages with a shared authorization key, and the layout of the messages inside (plaintext
//! header, `msg_container`, `gzip_packed`, `rpc_result`).
//!
//! grammers-crypto has AES-IGE and the authorization key, but derives message keys for the
//! client only (`x = 0` to encrypt, `x = 8` to decrypt); a server needs the other way round,
//! which is the few lines of `message_key` and `aes_key_iv` here.

use grammers_tl_types::{Cursor, Deserializable, Serializable};
use sha2::{Digest, Sha256};
use std::io::Read;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

pub const RPC_RESULT: u32 = 0xf35c_6d01;
pub const MSG_CONTAINER: u32 = 0x73f1_f8dc;
pub const GZIP_PACKED: u32 = 0x3072_cfa1;

/// Frames larger than this are refused (Telegram's own limit is about 1 MiB).
const MAX_FRAME: usize = 2 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection: {0}")]
    Io(#[from] std::io::Error),
    #[error("bad frame: {0}")]
    Frame(&'static str),
    #[error("unknown authorization key")]
    UnknownKey,
    #[error("message key mismatch")]
    MessageKey,
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

impl From<grammers_tl_types::deserialize::Error> for WireError {
    fn from(_: grammers_tl_types::deserialize::Error) -> Self {
        WireError::Malformed("TL")
    }
}

/// The TCP transports a client may pick, told apart by the connection's first bytes:
/// abridged (`0xef`, then `len/4` in one byte or `0x7f` and three), intermediate
/// (`0xeeeeeeee`, then `len:i32`), or full (no tag: `len:i32 seq:i32 payload crc32:u32`, with
/// one counter per direction).
pub enum Framing {
    Full { send_seq: i32, recv_seq: i32, first: Option<[u8; 4]> },
    Intermediate,
    Abridged,
}

impl Framing {
    /// Reads the transport's tag, if any, from a new connection.
    pub async fn detect(r: &mut (impl AsyncRead + Unpin)) -> Result<Self, WireError> {
        let mut tag = [0u8; 4];
        r.read_exact(&mut tag[..1]).await?;
        if tag[0] == 0xef {
            return Ok(Framing::Abridged);
        }
        r.read_exact(&mut tag[1..]).await?;
        match tag {
            [0xee, 0xee, 0xee, 0xee] => Ok(Framing::Intermediate),
            // Padded intermediate and the obfuscated transports are not spoken.
            [0xdd, 0xdd, 0xdd, 0xdd] => Err(WireError::Frame("padded intermediate transport")),
            first => Ok(Framing::Full { send_seq: 0, recv_seq: 0, first: Some(first) }),
        }
    }

    /// The same transport for the server's half of the connection.
    pub fn writer(&self) -> Self {
        match self {
            Framing::Full { .. } => Framing::Full { send_seq: 0, recv_seq: 0, first: None },
            Framing::Intermediate => Framing::Intermediate,
            Framing::Abridged => Framing::Abridged,
        }
    }

    pub async fn read(&mut self, r: &mut (impl AsyncRead + Unpin)) -> Result<Vec<u8>, WireError> {
        match self {
            Framing::Full { recv_seq, first, .. } => {
                let mut head = [0u8; 8];
                match first.take() {
                    Some(len) => {
                        head[..4].copy_from_slice(&len);
                        r.read_exact(&mut head[4..]).await?;
                    }
                    None => {
                        r.read_exact(&mut head).await?;
                    }
                }
                let len = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
                let seq = i32::from_le_bytes([head[4], head[5], head[6], head[7]]);
                let len = usize::try_from(len).map_err(|_| WireError::Frame("negative length"))?;
                if !(12..=MAX_FRAME).contains(&len) {
                    return Err(WireError::Frame("length out of range"));
                }
                if seq != *recv_seq {
                    return Err(WireError::Frame("sequence number out of order"));
                }
                let mut rest = vec![0u8; len - 8];
                r.read_exact(&mut rest).await?;
                let (payload, crc) = rest.split_at(len - 12);
                let mut hasher = crc32fast::Hasher::new();
                hasher.update(&head);
                hasher.update(payload);
                if hasher.finalize().to_le_bytes() != crc {
                    return Err(WireError::Frame("bad crc32"));
                }
                *recv_seq += 1;
                Ok(payload.to_vec())
            }
            Framing::Intermediate => {
                let mut len = [0u8; 4];
                r.read_exact(&mut len).await?;
                let len = usize::try_from(i32::from_le_bytes(len)).map_err(|_| WireError::Frame("negative length"))?;
                read_payload(r, len).await
            }
            Framing::Abridged => {
                let mut len = [0u8; 4];
                r.read_exact(&mut len[..1]).await?;
                let words = if len[0] < 0x7f {
                    usize::from(len[0])
                } else {
                    r.read_exact(&mut len[..3]).await?;
                    usize::from(len[0]) | usize::from(len[1]) << 8 | usize::from(len[2]) << 16
                };
                read_payload(r, words * 4).await
            }
        }
    }

    pub async fn write(&mut self, w: &mut (impl AsyncWrite + Unpin), payload: &[u8]) -> Result<(), WireError> {
        let mut frame = Vec::with_capacity(payload.len() + 12);
        match self {
            Framing::Full { send_seq, .. } => {
                let len = i32::try_from(payload.len() + 12).map_err(|_| WireError::Frame("too long"))?;
                frame.extend_from_slice(&len.to_le_bytes());
                frame.extend_from_slice(&send_seq.to_le_bytes());
                frame.extend_from_slice(payload);
                let crc = crc32fast::hash(&frame);
                frame.extend_from_slice(&crc.to_le_bytes());
                *send_seq += 1;
            }
            Framing::Intermediate => {
                let len = i32::try_from(payload.len()).map_err(|_| WireError::Frame("too long"))?;
                frame.extend_from_slice(&len.to_le_bytes());
                frame.extend_from_slice(payload);
            }
            Framing::Abridged => {
                let words = payload.len() / 4;
                if words < 0x7f {
                    frame.push(words as u8);
                } else {
                    frame.push(0x7f);
                    frame.extend_from_slice(&(words as u32).to_le_bytes()[..3]);
                }
                frame.extend_from_slice(payload);
            }
        }
        w.write_all(&frame).await?;
        Ok(())
    }

    /// A transport error (`-404`: the authorization key is unknown), as Telegram sends it: in
    /// place of a frame's length in the full transport, as a frame's four bytes in the others.
    pub async fn write_error(&mut self, w: &mut (impl AsyncWrite + Unpin), code: i32) -> Result<(), WireError> {
        let code = (-code).to_le_bytes();
        match self {
            Framing::Full { .. } => w.write_all(&code).await?,
            Framing::Intermediate | Framing::Abridged => self.write(w, &code).await?,
        }
        Ok(())
    }
}

async fn read_payload(r: &mut (impl AsyncRead + Unpin), len: usize) -> Result<Vec<u8>, WireError> {
    if !(8..=MAX_FRAME).contains(&len) {
        return Err(WireError::Frame("length out of range"));
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await?;
    Ok(payload)
}

/// Which way a message goes: MTProto derives its keys differently for each (`x`).
#[derive(Clone, Copy)]
enum Direction {
    FromClient,
    FromServer,
}

impl Direction {
    fn x(self) -> usize {
        match self {
            Direction::FromClient => 0,
            Direction::FromServer => 8,
        }
    }
}

fn message_key(key: &[u8; 256], plaintext: &[u8], d: Direction) -> [u8; 16] {
    let x = d.x();
    let large = Sha256::new().chain_update(&key[88 + x..120 + x]).chain_update(plaintext).finalize();
    let mut msg_key = [0u8; 16];
    msg_key.copy_from_slice(&large[8..24]);
    msg_key
}

fn aes_key_iv(key: &[u8; 256], msg_key: &[u8; 16], d: Direction) -> ([u8; 32], [u8; 32]) {
    let x = d.x();
    let a = Sha256::new().chain_update(msg_key).chain_update(&key[x..x + 36]).finalize();
    let b = Sha256::new().chain_update(&key[40 + x..76 + x]).chain_update(msg_key).finalize();
    let mut aes_key = [0u8; 32];
    aes_key[..8].copy_from_slice(&a[..8]);
    aes_key[8..24].copy_from_slice(&b[8..24]);
    aes_key[24..].copy_from_slice(&a[24..32]);
    let mut iv = [0u8; 32];
    iv[..8].copy_from_slice(&b[..8]);
    iv[8..24].copy_from_slice(&a[8..24]);
    iv[24..].copy_from_slice(&b[24..32]);
    (aes_key, iv)
}

/// The id by which an encrypted message names its key: the low 64 bits of its SHA-1.
pub fn key_id(key: &[u8; 256]) -> [u8; 8] {
    let hash = <sha1::Sha1 as sha1::Digest>::digest(key);
    let mut id = [0u8; 8];
    id.copy_from_slice(&hash[12..20]);
    id
}

/// The authorization key id an encrypted payload names (all zeros for plain messages).
pub fn payload_key_id(payload: &[u8]) -> Option<[u8; 8]> {
    payload.get(..8).and_then(|id| id.try_into().ok())
}

/// A decrypted client message with its header.
#[derive(Debug)]
pub struct Plain {
    pub salt: i64,
    pub session_id: i64,
    pub message: Message,
}

/// One MTProto message: id, sequence number, body.
#[derive(Debug, Clone)]
pub struct Message {
    pub msg_id: i64,
    pub seq_no: i32,
    pub body: Vec<u8>,
}

impl Message {
    /// Content-related messages (odd `seq_no`) need an acknowledgement.
    pub fn needs_ack(&self) -> bool {
        self.seq_no & 1 == 1
    }

    pub fn constructor(&self) -> Option<u32> {
        constructor(&self.body)
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        self.msg_id.serialize(out);
        self.seq_no.serialize(out);
        (self.body.len() as i32).serialize(out);
        out.extend_from_slice(&self.body);
    }
}

pub fn constructor(body: &[u8]) -> Option<u32> {
    body.get(..4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes)
}

/// Decrypts a client's payload (`auth_key_id msg_key encrypted_data`).
pub fn decrypt(key: &[u8; 256], payload: &[u8]) -> Result<Plain, WireError> {
    if payload.len() < 24 + 32 || !(payload.len() - 24).is_multiple_of(16) {
        return Err(WireError::Malformed("encrypted length"));
    }
    if payload[..8] != key_id(key) {
        return Err(WireError::UnknownKey);
    }
    let mut msg_key = [0u8; 16];
    msg_key.copy_from_slice(&payload[8..24]);
    let (aes_key, iv) = aes_key_iv(key, &msg_key, Direction::FromClient);
    let mut plaintext = payload[24..].to_vec();
    grammers_crypto::aes::ige_decrypt(&mut plaintext, &aes_key, &iv);
    if message_key(key, &plaintext, Direction::FromClient) != msg_key {
        return Err(WireError::MessageKey);
    }
    let mut cursor = Cursor::from_slice(&plaintext);
    let salt = i64::deserialize(&mut cursor)?;
    let session_id = i64::deserialize(&mut cursor)?;
    let message = read_message(&mut cursor)?;
    Ok(Plain { salt, session_id, message })
}

fn read_message(cursor: &mut Cursor) -> Result<Message, WireError> {
    let msg_id = i64::deserialize(cursor)?;
    let seq_no = i32::deserialize(cursor)?;
    let len = usize::try_from(i32::deserialize(cursor)?).map_err(|_| WireError::Malformed("negative length"))?;
    if len > MAX_FRAME {
        return Err(WireError::Malformed("message length"));
    }
    let mut body = vec![0u8; len];
    cursor.read_exact(&mut body)?;
    Ok(Message { msg_id, seq_no, body })
}

/// The messages of a `msg_container` body.
pub fn container_messages(body: &[u8]) -> Result<Vec<Message>, WireError> {
    let mut cursor = Cursor::from_slice(body.get(4..).ok_or(WireError::Malformed("container"))?);
    let count = usize::try_from(i32::deserialize(&mut cursor)?).map_err(|_| WireError::Malformed("container"))?;
    (0..count.min(1024)).map(|_| read_message(&mut cursor)).collect()
}

/// The unpacked body of a `gzip_packed` object.
pub fn gunzip(body: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut cursor = Cursor::from_slice(body.get(4..).ok_or(WireError::Malformed("gzip_packed"))?);
    let packed = Vec::<u8>::deserialize(&mut cursor)?;
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&packed[..])
        .take(MAX_FRAME as u64)
        .read_to_end(&mut unpacked)
        .map_err(|_| WireError::Malformed("gzip"))?;
    Ok(unpacked)
}

/// `rpc_result req_msg_id:long result:Object`.
pub fn rpc_result(req_msg_id: i64, result: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(12 + result.len());
    RPC_RESULT.serialize(&mut body);
    req_msg_id.serialize(&mut body);
    body.extend_from_slice(result);
    body
}

/// The server's side of one connection's session: message ids and sequence numbers of what it
/// sends, and the encryption of it.
pub struct ServerSession {
    key: [u8; 256],
    salts: super::session::Salts,
    session_id: i64,
    last_msg_id: i64,
    content_sent: i32,
}

impl ServerSession {
    pub fn new(key: [u8; 256], session_id: i64) -> Self {
        Self { key, salts: super::session::Salts::new(key), session_id, last_msg_id: 0, content_sent: 0 }
    }

    /// A server message id: time-based, increasing, `≡ 1 (mod 4)` for answers and `≡ 3` for
    /// messages of the server's own accord.
    fn next_msg_id(&mut self, answer: bool) -> i64 {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        let base = ((now.as_secs() as i64) << 32) | ((now.subsec_nanos() as i64) << 2);
        let mut id = base.max(self.last_msg_id + 4) & !3;
        if id <= self.last_msg_id {
            id += 4;
        }
        id |= if answer { 1 } else { 3 };
        self.last_msg_id = id;
        id
    }

    /// Content-related messages take odd sequence numbers and advance the count.
    fn next_seq(&mut self, content: bool) -> i32 {
        if content {
            self.content_sent += 1;
            self.content_sent * 2 - 1
        } else {
            self.content_sent * 2
        }
    }

    /// Encrypts one message into a transport payload.
    pub fn seal(&mut self, body: &[u8], answer: bool, content: bool) -> Vec<u8> {
        let msg_id = self.next_msg_id(answer);
        let seq_no = self.next_seq(content);
        let mut plaintext = Vec::with_capacity(32 + body.len() + 32);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        self.salts.current(now.as_secs() as i64).serialize(&mut plaintext);
        self.session_id.serialize(&mut plaintext);
        msg_id.serialize(&mut plaintext);
        seq_no.serialize(&mut plaintext);
        (body.len() as i32).serialize(&mut plaintext);
        plaintext.extend_from_slice(body);
        // 12 to 1024 bytes of padding, to a multiple of 16.
        let padding = 16 + (16 - plaintext.len() % 16);
        let mut random = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut random);
        plaintext.extend_from_slice(&random[..padding]);
        let msg_key = message_key(&self.key, &plaintext, Direction::FromServer);
        let (aes_key, iv) = aes_key_iv(&self.key, &msg_key, Direction::FromServer);
        grammers_crypto::aes::ige_encrypt(&mut plaintext, &aes_key, &iv);
        let mut payload = Vec::with_capacity(24 + plaintext.len());
        payload.extend_from_slice(&key_id(&self.key));
        payload.extend_from_slice(&msg_key);
        payload.extend_from_slice(&plaintext);
        payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammers_crypto::AuthKey;

    fn key() -> [u8; 256] {
        std::array::from_fn(|i| (i * 7 + 3) as u8)
    }

    #[test]
    fn grammers_reads_what_the_server_seals() {
        // The client's own decryption (x = 8) must accept the server's messages.
        let mut session = ServerSession::new(key(), 42);
        let mut payload = session.seal(&[1, 2, 3, 4], true, true);
        let plain = grammers_crypto::decrypt_data_v2(&mut payload, &AuthKey::from_bytes(key())).unwrap();
        let mut cursor = Cursor::from_slice(plain);
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let salt = i64::deserialize(&mut cursor).unwrap();
        assert!(super::super::session::Salts::new(key()).valid(salt, now), "the key's salt");
        assert_eq!(i64::deserialize(&mut cursor).unwrap(), 42, "session");
        let message = read_message(&mut cursor).unwrap();
        assert_eq!((message.msg_id & 3, message.seq_no, message.body), (1, 1, vec![1, 2, 3, 4]));
    }

    #[test]
    fn the_server_reads_what_grammers_encrypts() {
        let mut buffer = grammers_crypto::DequeBuffer::with_capacity(64, 24);
        let mut plaintext = Vec::new();
        7i64.serialize(&mut plaintext);
        99i64.serialize(&mut plaintext);
        let body = [9u8, 8, 7, 6];
        Message { msg_id: 4 << 32, seq_no: 1, body: body.to_vec() }.write(&mut plaintext);
        buffer.extend(plaintext);
        grammers_crypto::encrypt_data_v2(&mut buffer, &AuthKey::from_bytes(key()));
        let plain = decrypt(&key(), &buffer[..]).unwrap();
        assert_eq!((plain.session_id, plain.message.body), (99, body.to_vec()));
        let mut tampered = buffer[..].to_vec();
        tampered[40] ^= 1;
        assert!(matches!(decrypt(&key(), &tampered), Err(WireError::MessageKey)));
        let other: [u8; 256] = [5; 256];
        assert!(matches!(decrypt(&other, &buffer[..]), Err(WireError::UnknownKey)));
    }

    #[test]
    fn message_ids_increase_with_the_right_parity_and_sequence_numbers_count_content() {
        let mut s = ServerSession::new(key(), 1);
        let a = s.next_msg_id(true);
        let b = s.next_msg_id(false);
        let c = s.next_msg_id(true);
        assert!(a < b && b < c);
        assert_eq!((a & 3, b & 3, c & 3), (1, 3, 1));
        assert_eq!((s.next_seq(true), s.next_seq(false), s.next_seq(true)), (1, 2, 3));
    }

    fn full() -> Framing {
        Framing::Full { send_seq: 0, recv_seq: 0, first: None }
    }

    #[tokio::test]
    async fn frames_round_trip_and_bad_ones_are_refused() {
        let mut out = full();
        let mut wire = Vec::new();
        out.write(&mut wire, &[1, 2, 3, 4, 0, 0, 0, 0]).await.unwrap();
        out.write(&mut wire, &[5, 6, 7, 8, 0, 0, 0, 0]).await.unwrap();
        let mut r = &wire[..];
        let mut input = Framing::detect(&mut r).await.unwrap();
        assert!(matches!(input, Framing::Full { .. }), "no tag: the full transport");
        assert_eq!(input.read(&mut r).await.unwrap(), vec![1, 2, 3, 4, 0, 0, 0, 0]);
        assert_eq!(input.read(&mut r).await.unwrap(), vec![5, 6, 7, 8, 0, 0, 0, 0]);
        let mut bad = wire.clone();
        bad[9] ^= 1;
        assert!(matches!(full().read(&mut &bad[..]).await, Err(WireError::Frame("bad crc32"))));
        let mut skipped = full();
        assert!(matches!(skipped.read(&mut &wire[20..]).await, Err(WireError::Frame(_))), "second frame first");
    }

    #[tokio::test]
    async fn the_intermediate_and_abridged_transports_are_told_by_their_tags() {
        let long: Vec<u8> = (0..600u32).flat_map(|i| i.to_le_bytes()).collect();
        for (tag, expect_abridged) in [(vec![0xee, 0xee, 0xee, 0xee], false), (vec![0xef], true)] {
            let mut wire = tag.clone();
            let mut out = if expect_abridged { Framing::Abridged } else { Framing::Intermediate };
            out.write(&mut wire, &[9; 16]).await.unwrap();
            out.write(&mut wire, &long).await.unwrap();
            let mut r = &wire[..];
            let mut input = Framing::detect(&mut r).await.unwrap();
            assert_eq!(matches!(input, Framing::Abridged), expect_abridged);
            assert_eq!(input.read(&mut r).await.unwrap(), vec![9; 16]);
            assert_eq!(input.read(&mut r).await.unwrap(), long, "a length past one byte");
        }
        let padded = [0xdd, 0xdd, 0xdd, 0xdd];
        assert!(Framing::detect(&mut &padded[..]).await.is_err(), "not spoken");
    }

    #[tokio::test]
    async fn an_unknown_key_is_answered_with_the_404_transport_error() {
        let mut wire = Vec::new();
        full().write_error(&mut wire, 404).await.unwrap();
        assert_eq!(wire, (-404i32).to_le_bytes());
        let mut wire = Vec::new();
        Framing::Intermediate.write_error(&mut wire, 404).await.unwrap();
        assert_eq!(wire, [&4i32.to_le_bytes()[..], &(-404i32).to_le_bytes()].concat());
    }
}
