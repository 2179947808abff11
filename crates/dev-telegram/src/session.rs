//! What Telegram requires of the messages a client sends in a session, and how it answers
//! a message that breaks a rule: server salts (`bad_server_salt`, `future_salts`), message ids
//! within the time window and with the client's parity, sequence numbers with the right
//! parity for content (`bad_msg_notification`), and replayed message ids, which are ignored.

use super::wire::{self, Message};
use grammers_tl_types as tl;
use std::collections::{HashSet, VecDeque};

/// A server salt is valid this long (Telegram changes them every 30 minutes or so); the one
/// before the current stays accepted for one more period.
const SALT_PERIOD: i64 = 1800;

/// How far a client's message id may lie behind or ahead of the server's clock.
const MAX_AGE_SECS: i64 = 300;
const MAX_AHEAD_SECS: i64 = 30;

/// How many received message ids a session remembers to ignore replays.
const REMEMBERED: usize = 4096;

const MSGS_ACK: u32 = <tl::types::MsgsAck as tl::Identifiable>::CONSTRUCTOR_ID;

fn salt_of(key: &[u8; 256], period: i64) -> i64 {
    use sha2::{Digest, Sha256};
    let digest = Sha256::new()
        .chain_update(b"dev-telegram salt\0")
        .chain_update(key)
        .chain_update(period.to_le_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(first)
}

fn period(now_secs: i64) -> i64 {
    now_secs.div_euclid(SALT_PERIOD)
}

/// A key's current and previous salts, worked out once a period (not for every message).
pub struct Salts {
    key: [u8; 256],
    period: i64,
    current: i64,
    previous: i64,
}

impl Salts {
    pub fn new(key: [u8; 256]) -> Self {
        Self { key, period: i64::MIN, current: 0, previous: 0 }
    }

    fn at(&mut self, now_secs: i64) -> &Self {
        let p = period(now_secs);
        if p != self.period {
            *self =
                Self { key: self.key, period: p, current: salt_of(&self.key, p), previous: salt_of(&self.key, p - 1) };
        }
        self
    }

    pub fn current(&mut self, now_secs: i64) -> i64 {
        self.at(now_secs).current
    }

    /// Whether a client's salt is accepted now: the current one or the one before.
    pub fn valid(&mut self, salt: i64, now_secs: i64) -> bool {
        let salts = self.at(now_secs);
        salt == salts.current || salt == salts.previous
    }
}

/// `get_future_salts`: `num` salts (1 to 64) from the current one on.
pub fn future_salts(key: &[u8; 256], req_msg_id: i64, num: i32, now_secs: i64) -> tl::enums::FutureSalts {
    let first = period(now_secs);
    let salts = (first..first + i64::from(num.clamp(1, 64)))
        .map(|p| tl::types::FutureSalt {
            valid_since: (p * SALT_PERIOD) as i32,
            valid_until: ((p + 1) * SALT_PERIOD) as i32,
            salt: salt_of(key, p),
        })
        .collect();
    tl::enums::FutureSalts::Salts(tl::types::FutureSalts { req_msg_id, now: now_secs as i32, salts: tl::RawVec(salts) })
}

/// Whether a message is content-related (it needs an acknowledgement and an odd `seq_no`):
/// everything but acknowledgements and containers.
fn content_related(message: &Message) -> bool {
    !matches!(message.constructor(), Some(MSGS_ACK | wire::MSG_CONTAINER))
}

/// The `bad_msg_notification` error code for a message that breaks a rule, if it does:
/// 16/17 id too far behind/ahead of the server's clock, 18 an id a client may not use (not
/// divisible by 4), 34/35 a `seq_no` of the wrong parity for its kind.
pub fn bad_message(message: &Message, now_secs: i64) -> Option<i32> {
    let secs = message.msg_id >> 32;
    if message.msg_id & 3 != 0 {
        Some(18)
    } else if secs < now_secs - MAX_AGE_SECS {
        Some(16)
    } else if secs > now_secs + MAX_AHEAD_SECS {
        Some(17)
    } else if content_related(message) && message.seq_no & 1 == 0 {
        Some(34)
    } else if !content_related(message) && message.seq_no & 1 == 1 {
        Some(35)
    } else {
        None
    }
}

pub fn bad_msg_notification(message: &Message, error_code: i32) -> Vec<u8> {
    let notification =
        tl::types::BadMsgNotification { bad_msg_id: message.msg_id, bad_msg_seqno: message.seq_no, error_code };
    tl::Serializable::to_bytes(&tl::enums::BadMsgNotification::Notification(notification))
}

pub fn bad_server_salt(message: &Message, new_server_salt: i64) -> Vec<u8> {
    let bad = tl::types::BadServerSalt {
        bad_msg_id: message.msg_id,
        bad_msg_seqno: message.seq_no,
        error_code: 48,
        new_server_salt,
    };
    tl::Serializable::to_bytes(&tl::enums::BadMsgNotification::BadServerSalt(bad))
}

pub fn new_session_created(first_msg_id: i64, server_salt: i64) -> Vec<u8> {
    let created = tl::types::NewSessionCreated { first_msg_id, unique_id: rand::random(), server_salt };
    tl::Serializable::to_bytes(&tl::enums::NewSession::Created(created))
}

/// The message ids a session received lately: a message whose id is among them is a replay.
#[derive(Default)]
pub struct Received {
    ids: HashSet<i64>,
    order: VecDeque<i64>,
}

impl Received {
    /// Records `msg_id`; `false` when it was received before.
    pub fn first_time(&mut self, msg_id: i64) -> bool {
        if !self.ids.insert(msg_id) {
            return false;
        }
        self.order.push_back(msg_id);
        if self.order.len() > REMEMBERED {
            if let Some(old) = self.order.pop_front() {
                self.ids.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;

    fn message(secs: i64, low: i64, seq_no: i32, body: &[u8]) -> Message {
        Message { msg_id: (secs << 32) | low, seq_no, body: body.to_vec() }
    }

    #[test]
    fn message_ids_and_sequence_numbers_follow_the_rules() {
        let call = 0x1234_5678u32.to_le_bytes();
        let ack = MSGS_ACK.to_le_bytes();
        assert_eq!(bad_message(&message(NOW, 4, 1, &call), NOW), None);
        assert_eq!(bad_message(&message(NOW, 5, 1, &call), NOW), Some(18), "not divisible by 4");
        assert_eq!(bad_message(&message(NOW - 301, 0, 1, &call), NOW), Some(16), "too old");
        assert_eq!(bad_message(&message(NOW + 31, 0, 1, &call), NOW), Some(17), "too new");
        assert_eq!(bad_message(&message(NOW, 0, 2, &call), NOW), Some(34), "a call needs an odd seq_no");
        assert_eq!(bad_message(&message(NOW, 0, 2, &ack), NOW), None);
        assert_eq!(bad_message(&message(NOW, 0, 3, &ack), NOW), Some(35), "an ack needs an even seq_no");
    }

    #[test]
    fn salts_change_each_period_and_the_last_one_stays_valid() {
        let key = [7u8; 256];
        let mut salts = Salts::new(key);
        let now = salts.current(NOW);
        let next = salts.current(NOW + SALT_PERIOD);
        assert_ne!(now, next);
        assert!(salts.valid(now, NOW) && salts.valid(now, NOW + SALT_PERIOD));
        assert!(!salts.valid(now, NOW + 2 * SALT_PERIOD), "two periods on");
        assert!(!salts.valid(0, NOW), "a fresh client's zero");
        assert!(!Salts::new([8u8; 256]).valid(now, NOW), "another key's");
        let tl::enums::FutureSalts::Salts(future) = future_salts(&key, 44, 3, NOW);
        assert_eq!(future.req_msg_id, 44);
        assert_eq!(future.salts.0.iter().map(|s| s.salt).collect::<Vec<_>>()[..2], [now, next]);
        assert!(future.salts.0.windows(2).all(|w| w[0].valid_until == w[1].valid_since));
    }

    #[test]
    fn a_message_id_is_received_once() {
        let mut received = Received::default();
        assert!(received.first_time(4));
        assert!(!received.first_time(4), "a replay");
        for id in 1..=REMEMBERED as i64 {
            received.first_time(id * 8);
        }
        assert!(received.first_time(4), "forgotten past the window (the time window refuses it instead)");
    }
}
