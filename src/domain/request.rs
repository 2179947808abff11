//! A verification request: its id, its record, the delivery and verification state machine,
//! and the `RequestStatus` a client sees.

use super::{Credits, Payload, PhoneNumber, SenderUsername, Timestamp, Ttl};
use rand::Rng;
use serde::Serialize;
use std::fmt;

/// An unguessable request id: a random 63-bit number in decimal, scoped to its tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a request id is a decimal number below 2^63")]
pub struct InvalidRequestId;

impl RequestId {
    pub fn generate() -> Self {
        // At least 10^14 so ids have the Gateway's ~15-digit look. The thread's CSPRNG
        // (ChaCha, seeded and reseeded from the OS) keeps ids unguessable without a system
        // call per id.
        Self(rand::thread_rng().gen_range(100_000_000_000_000..=i64::MAX as u64))
    }

    /// Accepts exactly what `generate` makes, so nothing odd (separators, braces, wildcards)
    /// ever reaches a store key.
    pub fn parse(input: &str) -> Result<Self, InvalidRequestId> {
        if input.is_empty() || input.len() > 19 || !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidRequestId);
        }
        match input.parse::<u64>() {
            Ok(n) if n <= i64::MAX as u64 => Ok(Self(n)),
            _ => Err(InvalidRequestId),
        }
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Where the message is: `sent` (handed to Telegram), `delivered`, `read`, `expired` (not
/// delivered within `ttl`; refunded), `revoked`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Expired,
    Revoked,
}

/// What the checks of the code found: `code_valid`, `code_invalid`, `code_max_attempts_exceeded`,
/// `expired` (the code's validity ended, or the request was revoked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerificationStatus {
    CodeValid,
    CodeInvalid,
    CodeMaxAttemptsExceeded,
    Expired,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Expired => "expired",
            Self::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Sent, Self::Delivered, Self::Read, Self::Expired, Self::Revoked].into_iter().find(|v| v.as_str() == s)
    }
}

impl VerificationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CodeValid => "code_valid",
            Self::CodeInvalid => "code_invalid",
            Self::CodeMaxAttemptsExceeded => "code_max_attempts_exceeded",
            Self::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::CodeValid, Self::CodeInvalid, Self::CodeMaxAttemptsExceeded, Self::Expired]
            .into_iter()
            .find(|v| v.as_str() == s)
    }

    /// A terminal status never changes again through a check.
    pub fn is_terminal(self) -> bool {
        self != Self::CodeInvalid
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusAt<S> {
    pub status: S,
    pub at: Timestamp,
}

/// What the store keeps of one request. No code: only its keyed hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: RequestId,
    pub phone: PhoneNumber,
    pub created_at: Timestamp,
    /// The fee taken for this request (0 for the tenant's own number).
    pub cost: Credits,
    pub refunded: bool,
    /// Which token made the request (for audits; never the token itself).
    pub token_id: String,
    /// Set once a message with a code belongs to the request; `None` after `checkSendAbility`
    /// until the send that uses its `request_id`.
    pub code: Option<CodeState>,
    pub delivery: Option<StatusAt<DeliveryStatus>>,
    pub verification: Option<StatusAt<VerificationStatus>>,
    /// Optimistic-concurrency version: every stored change increments it.
    pub version: u64,
}

/// The message side of a request: the code's hash and how it may be checked, and what was
/// asked of the delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeState {
    /// PHC string of the code's keyed hash.
    pub hash: String,
    pub valid_until: Timestamp,
    pub max_attempts: u8,
    pub attempts: u8,
    pub ttl: Option<Ttl>,
    pub payload: Option<Payload>,
    pub callback_url: Option<String>,
    /// Hex SHA-256 of the token that made the send: the key its reports are signed with.
    pub callback_key: Option<String>,
    pub sender_username: Option<SenderUsername>,
    /// The code sealed for the sender (see `secrets::CodeSealer`) while the message waits to
    /// go out; erased once it went out or can no longer go.
    pub sealed: Option<String>,
    /// Which sender account the message was handed to (before the send: `RequestRecord::hand_to`),
    /// and, once it went out, the message's id in that account.
    pub account: Option<String>,
    /// Attempts to send that failed on the way (network trouble), for the retry backoff.
    pub failed_attempts: u32,
    pub message_id: Option<i64>,
    /// Reports of status changes waiting for `callback_url`, oldest first.
    pub reports: Vec<super::PendingReport>,
}

/// Why a send that continues a `checkSendAbility` request cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ContinueError {
    #[error("a message was already sent for this request")]
    MessageAlreadySent,
    #[error("the phone number differs from the checked one")]
    PhoneNumberMismatch,
    #[error("the request was revoked")]
    Revoked,
}

/// The outcome of comparing a code against the request's hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMatch {
    Correct,
    Wrong,
    /// Wrong, and the request's last guess: entered while the number's budget of wrong codes
    /// was used up (`docs/security.md`, "Wrong codes").
    WrongAndLast,
}

impl RequestRecord {
    /// Attaches the message of a send to a request made by `checkSendAbility`.
    pub fn attach_code(&self, phone: &PhoneNumber, code: CodeState) -> Result<Self, ContinueError> {
        self.can_attach_code(phone)?;
        Ok(Self { code: Some(code), ..self.clone() })
    }

    /// Whether a send to `phone` may continue this request: once, to the checked number, and
    /// not after a revocation (its code could never verify).
    pub fn can_attach_code(&self, phone: &PhoneNumber) -> Result<(), ContinueError> {
        if self.code.is_some() {
            Err(ContinueError::MessageAlreadySent)
        } else if self.verification.is_some_and(|v| v.status == VerificationStatus::Expired) {
            Err(ContinueError::Revoked)
        } else if &self.phone != phone {
            Err(ContinueError::PhoneNumberMismatch)
        } else {
            Ok(())
        }
    }

    /// Moves the delivery status forward (`sent` → `delivered` → `read`); anything else, such
    /// as a read receipt after a revocation, changes nothing.
    pub fn advance_delivery(&self, to: DeliveryStatus, now: Timestamp) -> Option<Self> {
        use DeliveryStatus::*;
        let from = self.delivery.map(|d| d.status);
        let allowed =
            matches!((from, to), (None, Sent) | (Some(Sent), Delivered) | (None | Some(Sent) | Some(Delivered), Read));
        (allowed && self.code.is_some())
            .then(|| Self { delivery: Some(StatusAt { status: to, at: now }), ..self.clone() })
    }

    /// The message is about to be handed to `account`. Recorded before the hand-over, so that
    /// if its outcome is lost (a crash, a dropped connection, the store unreachable) the job's
    /// next attempt goes through the same account, which Telegram lets send one `random_id`
    /// once. `None` when there is nothing to send or it is recorded already.
    pub fn hand_to(&self, account: &str) -> Option<Self> {
        if self.delivery.is_some() || self.handed_to() == Some(account) {
            return None;
        }
        let mut next = self.clone();
        let code = next.code.as_mut().filter(|c| c.sealed.is_some())?;
        code.account = Some(account.to_owned());
        Some(next)
    }

    /// `account` refused the message (a flood wait, a ban): it did not send it, so the next
    /// attempt may go through any account.
    pub fn hand_back(&self, account: &str) -> Option<Self> {
        if self.handed_to() != Some(account) {
            return None;
        }
        let mut next = self.clone();
        next.code.as_mut()?.account = None;
        Some(next)
    }

    /// The account the waiting message was last handed to, whose outcome is not known.
    pub fn handed_to(&self) -> Option<&str> {
        let code = self.code.as_ref().filter(|c| c.message_id.is_none() && self.delivery.is_none())?;
        code.account.as_deref()
    }

    /// The message went out through `account` as `message_id`: recorded before the delivery
    /// job is acknowledged, so a job taken over by another worker never sends it again. With
    /// `delivered`, the sender's acceptance is also the delivery (Telegram user accounts).
    pub fn mark_sent(&self, account: &str, message_id: i64, delivered: bool, now: Timestamp) -> Option<Self> {
        if self.delivery.is_some() {
            return None;
        }
        let mut next = self.clone();
        let code = next.code.as_mut()?;
        code.account = Some(account.to_owned());
        code.message_id = Some(message_id);
        code.sealed = None;
        let status = if delivered { DeliveryStatus::Delivered } else { DeliveryStatus::Sent };
        next.delivery = Some(StatusAt { status, at: now });
        Some(next)
    }

    /// A message that was not delivered (queued, or sent but never confirmed) ends: `expired`,
    /// with its fee refunded once. `None` when there is nothing to expire. Also what happens
    /// when the recipient cannot receive messages at all.
    pub fn expire_undelivered(&self, now: Timestamp) -> Option<(Self, Option<Credits>)> {
        self.code.as_ref()?;
        if !matches!(self.delivery.map(|d| d.status), None | Some(DeliveryStatus::Sent)) {
            return None;
        }
        let mut next = self.clone();
        next.delivery = Some(StatusAt { status: DeliveryStatus::Expired, at: now });
        if let Some(c) = next.code.as_mut() {
            c.sealed = None;
        }
        let refund = (!self.refunded && self.cost.is_positive()).then_some(self.cost);
        next.refunded = self.refunded || refund.is_some();
        Some((next, refund))
    }

    /// The record with one more failed attempt to send.
    pub fn with_failed_attempt(&self) -> Self {
        let mut next = self.clone();
        if let Some(code) = next.code.as_mut() {
            code.failed_attempts = code.failed_attempts.saturating_add(1);
        }
        next
    }

    /// Failed attempts to send so far.
    pub fn failed_attempts(&self) -> u32 {
        self.code.as_ref().map_or(0, |c| c.failed_attempts)
    }

    /// Whether the request's `ttl` has ended: a message not sent by then never goes out.
    pub fn ttl_passed(&self, now: Timestamp) -> bool {
        self.code.as_ref().and_then(|c| c.ttl).is_some_and(|ttl| now >= self.created_at.plus(ttl.duration()))
    }

    /// Whether a message went out and is still on the recipient's screen unread (at `ttl` it
    /// is deleted): not read, and not already taken back by a revocation.
    pub fn shows_unread_message(&self) -> bool {
        self.code.as_ref().is_some_and(|c| c.message_id.is_some())
            && !matches!(self.delivery.map(|d| d.status), Some(DeliveryStatus::Read | DeliveryStatus::Revoked))
    }

    /// Writes down an expiry of the code that so far was only derived from the clock, so it is
    /// terminal for good (and can be reported).
    pub fn settle_expiry(&self, now: Timestamp) -> Option<Self> {
        match self.verification_at(now) {
            Some(v) if v.status == VerificationStatus::Expired && self.verification != Some(v) => {
                Some(Self { verification: Some(v), ..self.clone() })
            }
            _ => None,
        }
    }

    /// The verification status the record has at `now`: a code whose validity ended reads as
    /// `expired` even before anything wrote that down.
    pub fn verification_at(&self, now: Timestamp) -> Option<StatusAt<VerificationStatus>> {
        match (&self.code, self.verification) {
            (_, Some(v)) if v.status.is_terminal() => Some(v),
            (Some(code), current) if now >= code.valid_until => Some(StatusAt {
                status: VerificationStatus::Expired,
                at: code.valid_until.max(current.map_or(code.valid_until, |v| v.at)),
            }),
            (_, current) => current,
        }
    }

    /// Whether a check with a code can still change anything; if not, no hashing is needed.
    pub fn accepts_checks(&self, now: Timestamp) -> bool {
        !self.verification_at(now).is_some_and(|v| v.status.is_terminal())
    }

    /// Applies one check of a code. `None` when the status is already terminal (the check then
    /// answers the current status, and counts nothing).
    pub fn record_check(&self, outcome: CodeMatch, now: Timestamp) -> Option<Self> {
        if !self.accepts_checks(now) {
            return self.settle_expiry(now);
        }
        let mut next = self.clone();
        let status = match (&mut next.code, outcome) {
            (Some(_), CodeMatch::Correct) => VerificationStatus::CodeValid,
            (Some(code), CodeMatch::WrongAndLast) => {
                code.attempts = code.max_attempts;
                VerificationStatus::CodeMaxAttemptsExceeded
            }
            (Some(code), CodeMatch::Wrong) => {
                code.attempts = code.attempts.saturating_add(1);
                if code.attempts >= code.max_attempts {
                    VerificationStatus::CodeMaxAttemptsExceeded
                } else {
                    VerificationStatus::CodeInvalid
                }
            }
            // A request made by checkSendAbility has no code yet: nothing can match it.
            (None, _) => VerificationStatus::CodeInvalid,
        };
        next.verification = Some(StatusAt { status, at: now });
        Some(next)
    }

    /// Revokes the request: an undelivered message becomes `revoked` (and is deleted by the
    /// caller), the code never verifies again. Returns the new record and whether a message
    /// should be deleted.
    pub fn revoke(&self, now: Timestamp) -> (Self, bool) {
        let mut next = self.clone();
        let undelivered =
            self.code.is_some() && matches!(self.delivery.map(|d| d.status), None | Some(DeliveryStatus::Sent));
        if undelivered {
            next.delivery = Some(StatusAt { status: DeliveryStatus::Revoked, at: now });
        }
        if let Some(code) = next.code.as_mut() {
            // A revoked request never sends: its sealed code is erased.
            code.sealed = None;
        }
        if self.verification.map(|v| v.status) != Some(VerificationStatus::Expired) {
            next.verification = Some(StatusAt { status: VerificationStatus::Expired, at: now });
        }
        let delete = undelivered && self.delivery.is_some();
        (next, delete)
    }

    /// The `RequestStatus` a client sees at `now`. `remaining_balance` is given by the caller
    /// only when the call charged.
    pub fn view(&self, now: Timestamp, remaining_balance: Option<Credits>) -> RequestStatusView {
        RequestStatusView {
            request_id: self.id.to_string(),
            phone_number: self.phone.digits().to_owned(),
            request_cost: self.cost,
            is_refunded: self.refunded.then_some(true),
            remaining_balance,
            delivery_status: self.delivery.map(|d| StatusView {
                status: d.status,
                updated_at: d.at.secs(),
                code_entered: None,
            }),
            verification_status: self.verification_at(now).map(|v| StatusView {
                status: v.status,
                updated_at: v.at.secs(),
                code_entered: None,
            }),
            payload: self.code.as_ref().and_then(|c| c.payload.as_ref()).map(|p| p.as_str().to_owned()),
        }
    }
}

/// The Gateway's `RequestStatus` object. Fields that do not apply are omitted, never `null`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[schema(as = RequestStatus)]
pub struct RequestStatusView {
    /// The request's id: a decimal number below 2^63, scoped to the tenant.
    #[schema(pattern = "^[0-9]{1,19}$", example = "923583492968596")]
    pub request_id: String,
    /// The recipient's number, digits only (no `+`).
    #[schema(pattern = "^[1-9][0-9]{7,14}$", example = "15551234567")]
    pub phone_number: String,
    /// What the request cost (0 for the tenant's own number).
    pub request_cost: Credits,
    /// `true` once the fee was refunded (not delivered within `ttl`); otherwise absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub is_refunded: Option<bool>,
    /// The balance after this call: present only when this call charged.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub remaining_balance: Option<Credits>,
    /// Absent while the message is queued (and for `checkSendAbility`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub delivery_status: Option<StatusView<DeliveryStatus>>,
    /// Absent until a code was checked, the code expired or the request was revoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub verification_status: Option<StatusView<VerificationStatus>>,
    /// The `payload` the send carried.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, max_length = 128)]
    pub payload: Option<String>,
}

/// A status and when it was reached.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct StatusView<S> {
    pub status: S,
    /// Unix seconds.
    pub updated_at: i64,
    /// The code the check that produced this status evaluated (verification only, and only in
    /// the answer of that check).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub code_entered: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record(max_attempts: u8) -> RequestRecord {
        RequestRecord {
            id: RequestId::generate(),
            phone: PhoneNumber::parse("15551234567").unwrap(),
            created_at: Timestamp::from_millis(0),
            cost: Credits::from_micros(10_000),
            refunded: false,
            token_id: "tok".into(),
            code: Some(CodeState {
                hash: "h".into(),
                valid_until: Timestamp::from_millis(600_000),
                max_attempts,
                attempts: 0,
                ttl: None,
                payload: None,
                callback_url: None,
                callback_key: None,
                sender_username: None,
                sealed: Some("sealed".into()),
                account: None,
                failed_attempts: 0,
                message_id: None,
                reports: Vec::new(),
            }),
            delivery: None,
            verification: None,
            version: 1,
        }
    }

    #[derive(Debug, Clone)]
    enum Event {
        Check(bool, i64),
        Revoke(i64),
        Deliver(u8, i64),
    }

    fn event() -> impl Strategy<Value = Event> {
        prop_oneof![
            (any::<bool>(), 0i64..700_000).prop_map(|(ok, t)| Event::Check(ok, t)),
            (0i64..700_000).prop_map(Event::Revoke),
            (0u8..3, 0i64..700_000).prop_map(|(s, t)| Event::Deliver(s, t)),
        ]
    }

    fn rank(d: Option<StatusAt<DeliveryStatus>>) -> u8 {
        match d.map(|d| d.status) {
            None => 0,
            Some(DeliveryStatus::Sent) => 1,
            Some(DeliveryStatus::Delivered) => 2,
            Some(_) => 3,
        }
    }

    #[test]
    fn five_wrong_codes_exhaust_the_request() {
        let now = Timestamp::from_millis(1000);
        let mut r = record(5);
        for i in 1..=5 {
            r = r.record_check(CodeMatch::Wrong, now).unwrap();
            assert_eq!(r.code.as_ref().unwrap().attempts, i);
        }
        assert_eq!(r.verification.unwrap().status, VerificationStatus::CodeMaxAttemptsExceeded);
        assert!(r.record_check(CodeMatch::Correct, now).is_none());
        let last = record(5).record_check(CodeMatch::WrongAndLast, now).unwrap();
        assert_eq!(last.verification.unwrap().status, VerificationStatus::CodeMaxAttemptsExceeded);
        assert!(!last.accepts_checks(now), "a last guess ends the request");
    }

    #[test]
    fn expiry_is_derived_then_written() {
        let r = record(5);
        let late = Timestamp::from_millis(600_000);
        assert_eq!(r.verification_at(late).unwrap().status, VerificationStatus::Expired);
        let written = r.record_check(CodeMatch::Correct, late).unwrap();
        assert_eq!(written.verification.unwrap().status, VerificationStatus::Expired);
        assert!(written.record_check(CodeMatch::Correct, late).is_none());
    }

    #[test]
    fn a_message_handed_to_an_account_stays_with_it_until_it_went_out_or_was_refused() {
        let now = Timestamp::from_millis(1);
        let mut waiting = record(5);
        waiting.code.as_mut().unwrap().sealed = Some("sealed".into());
        assert_eq!(waiting.handed_to(), None);
        let handed = waiting.hand_to("tg1").unwrap();
        assert_eq!(handed.handed_to(), Some("tg1"));
        assert!(handed.hand_to("tg1").is_none(), "recorded already: no write");
        assert_eq!(handed.hand_to("tg2").unwrap().handed_to(), Some("tg2"), "refused by tg1, handed to tg2");
        assert!(handed.hand_back("tg2").is_none(), "not tg2's");
        assert_eq!(handed.hand_back("tg1").unwrap().handed_to(), None);
        let sent = handed.mark_sent("tg1", 7, true, now).unwrap();
        assert_eq!(sent.handed_to(), None, "went out: nothing in doubt");
        assert!(sent.hand_to("tg2").is_none(), "nothing left to send");
        let mut nothing = record(5);
        nothing.code.as_mut().unwrap().sealed = None;
        assert!(nothing.hand_to("tg1").is_none(), "no sealed code: nothing to send");
    }

    #[test]
    fn revoke_deletes_only_undelivered_messages() {
        let now = Timestamp::from_millis(1);
        let sent = record(5).mark_sent("sandbox", 1, false, now).unwrap();
        assert!(sent.code.as_ref().unwrap().sealed.is_none(), "sent: the sealed code is erased");
        let (revoked, delete) = sent.revoke(now);
        assert!(delete);
        assert_eq!(revoked.delivery.unwrap().status, DeliveryStatus::Revoked);
        let delivered = sent.advance_delivery(DeliveryStatus::Delivered, now).unwrap();
        let (revoked, delete) = delivered.revoke(now);
        assert!(!delete);
        assert_eq!(revoked.delivery.unwrap().status, DeliveryStatus::Delivered);
        assert_eq!(revoked.verification.unwrap().status, VerificationStatus::Expired);
    }

    proptest! {
        /// Whatever happens, in whatever order: attempts never pass the limit, a code is valid
        /// only if a correct check came before any terminal event and in time, nothing turns
        /// valid after a revocation, and delivery never moves backwards.
        #[test]
        fn state_machine_invariants(max in 1u8..=10, events in proptest::collection::vec(event(), 0..40)) {
            let mut r = record(max);
            let mut revoked = false;
            for e in events {
                let before = r.clone();
                match e {
                    Event::Check(ok, t) => {
                        let now = Timestamp::from_millis(t);
                        let outcome = if ok { CodeMatch::Correct } else { CodeMatch::Wrong };
                        if let Some(next) = r.record_check(outcome, now) {
                            let status = next.verification.unwrap().status;
                            if status == VerificationStatus::CodeValid {
                                prop_assert!(ok && !revoked && now < r.code.as_ref().unwrap().valid_until);
                                prop_assert!(before.verification.is_none_or(|v| !v.status.is_terminal()));
                            }
                            r = next;
                        } else {
                            prop_assert!(!before.accepts_checks(now));
                        }
                    }
                    Event::Revoke(t) => {
                        r = r.revoke(Timestamp::from_millis(t)).0;
                        revoked = true;
                    }
                    Event::Deliver(s, t) => {
                        let to = [DeliveryStatus::Sent, DeliveryStatus::Delivered, DeliveryStatus::Read][s as usize];
                        if let Some(next) = r.advance_delivery(to, Timestamp::from_millis(t)) {
                            prop_assert!(rank(next.delivery) > rank(before.delivery));
                            r = next;
                        }
                    }
                }
                let code = r.code.as_ref().unwrap();
                prop_assert!(code.attempts <= code.max_attempts);
                if revoked {
                    prop_assert_eq!(r.verification.unwrap().status, VerificationStatus::Expired);
                }
            }
        }
    }
}
