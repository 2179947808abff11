//! Sender accounts: the Telegram user accounts (or the sandbox's simulated ones) that messages
//! go out through, and the rules of their health: which can send now, and what Telegram's
//! answers do to them.

use super::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AccountKind {
    Sandbox,
    Telegram,
}

impl AccountKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sandbox => "sandbox",
            Self::Telegram => "telegram",
        }
    }
}

/// Where an account stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum AccountState {
    Active,
    /// Telegram asked it to wait (`FLOOD_WAIT_n`): it sends again from `until` (unix ms).
    FloodWait {
        until: Timestamp,
    },
    /// Spam-limited (`PEER_FLOOD`): out of the pool until an operator resumes it.
    Quarantined,
    /// Dead or logged out (`AUTH_KEY_UNREGISTERED`, `USER_DEACTIVATED_BAN`, …).
    Disabled,
    /// Taken out of the pool by an operator.
    Paused,
}

/// What went wrong with an account (not with a recipient) when it tried to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountFailure {
    FloodWait(Duration),
    PeerFlood,
    /// The account can no longer send at all; the text is Telegram's error name.
    Dead(String),
}

/// What identifies a Telegram account to Telegram (its `api_hash` is needed only to sign in,
/// and is never stored).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TelegramIdentity {
    pub api_id: i32,
    /// The account's own number, digits only.
    pub phone: String,
}

impl TelegramIdentity {
    /// The `api_id` accounts of a local development peer present (the peer does not check it;
    /// my.telegram.org never gives it out).
    pub const DEV_API_ID: i32 = 1;

    /// An account of a local development peer (`sender.dev_peers`).
    pub fn is_dev_peer(&self) -> bool {
        self.api_id == Self::DEV_API_ID
    }
}

/// A sender account of the pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SenderAccount {
    pub id: String,
    pub kind: AccountKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub telegram: Option<TelegramIdentity>,
    #[serde(flatten)]
    pub state: AccountState,
    /// Why it is in its state (Telegram's error name, or the operator's note).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
    #[serde(default)]
    pub sent: u64,
    #[serde(default)]
    pub flood_waits: u64,
    #[serde(default)]
    pub failures: u64,
    /// The day (unix days) `sent_today` counts, and the count.
    #[serde(default)]
    pub day: i64,
    #[serde(default)]
    pub sent_today: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub last_sent_at: Option<Timestamp>,
}

/// How hard an account may be driven.
#[derive(Debug, Clone, Copy)]
pub struct Pacing {
    /// At least this long between two sends of one account.
    pub interval: Duration,
    /// At most this many sends a day (UTC) per account.
    pub daily_cap: u32,
}

const DAY_MS: i64 = 86_400_000;

impl SenderAccount {
    pub fn new(id: String, kind: AccountKind) -> Self {
        Self {
            id,
            kind,
            telegram: None,
            state: AccountState::Active,
            reason: None,
            sent: 0,
            flood_waits: 0,
            failures: 0,
            day: 0,
            sent_today: 0,
            last_sent_at: None,
        }
    }

    /// Account ids become store keys: 1–64 of ASCII letters, digits, `_` and `-`.
    pub fn valid_id(id: &str) -> bool {
        (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    /// When it can send next, or `None` if it cannot without an operator.
    pub fn ready_at(&self, pacing: Pacing, now: Timestamp) -> Option<Timestamp> {
        let not_before = match self.state {
            AccountState::Active => now,
            AccountState::FloodWait { until } => until,
            AccountState::Quarantined | AccountState::Disabled | AccountState::Paused => return None,
        };
        let today = now.millis().div_euclid(DAY_MS);
        if self.day == today && self.sent_today >= pacing.daily_cap {
            return Some(Timestamp::from_millis((today + 1) * DAY_MS).max(not_before));
        }
        // Unpaced accounts never wait on their last send (whose time may come from another
        // node's clock, a little ahead of ours).
        let paced = match self.last_sent_at {
            Some(at) if !pacing.interval.is_zero() => at.plus(pacing.interval),
            _ => now,
        };
        Some(not_before.max(paced))
    }

    pub fn can_send(&self, pacing: Pacing, now: Timestamp) -> bool {
        self.ready_at(pacing, now).is_some_and(|at| at <= now)
    }

    /// A message went out.
    pub fn after_send(&self, now: Timestamp) -> Self {
        let today = now.millis().div_euclid(DAY_MS);
        let sent_today = if self.day == today { self.sent_today + 1 } else { 1 };
        let state = match self.state {
            AccountState::FloodWait { until } if until <= now => AccountState::Active,
            other => other,
        };
        let reason = if state == AccountState::Active { None } else { self.reason.clone() };
        Self { state, reason, sent: self.sent + 1, day: today, sent_today, last_sent_at: Some(now), ..self.clone() }
    }

    /// An operator takes the account out of the pool.
    pub fn paused(&self, note: Option<String>) -> Self {
        Self {
            state: AccountState::Paused,
            reason: note.or_else(|| Some("paused by an operator".into())),
            ..self.clone()
        }
    }

    /// An operator puts the account back into the pool, whatever parked it.
    pub fn resumed(&self) -> Self {
        Self { state: AccountState::Active, reason: None, ..self.clone() }
    }

    /// Telegram's answer parks, quarantines or disables the account.
    pub fn after_failure(&self, failure: &AccountFailure, now: Timestamp) -> Self {
        let mut next = self.clone();
        next.failures += 1;
        match failure {
            AccountFailure::FloodWait(wait) => {
                next.flood_waits += 1;
                next.state = AccountState::FloodWait { until: now.plus(*wait) };
                next.reason = Some(format!("FLOOD_WAIT_{}", wait.as_secs()));
            }
            AccountFailure::PeerFlood => {
                next.state = AccountState::Quarantined;
                next.reason = Some("PEER_FLOOD".into());
            }
            AccountFailure::Dead(name) => {
                next.state = AccountState::Disabled;
                next.reason = Some(name.clone());
            }
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACING: Pacing = Pacing { interval: Duration::from_secs(2), daily_cap: 3 };

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(ms)
    }

    #[test]
    fn pacing_and_daily_cap() {
        let a = SenderAccount::new("a".into(), AccountKind::Sandbox);
        let now = at(10 * DAY_MS);
        assert!(a.can_send(PACING, now));
        let a = a.after_send(now);
        assert!(!a.can_send(PACING, now.plus(Duration::from_secs(1))));
        assert!(a.can_send(PACING, now.plus(Duration::from_secs(2))));
        let a = a.after_send(now.plus(Duration::from_secs(2))).after_send(now.plus(Duration::from_secs(4)));
        assert_eq!(a.sent_today, 3);
        let later = now.plus(Duration::from_secs(60));
        assert!(!a.can_send(PACING, later), "the daily cap is reached");
        assert_eq!(a.ready_at(PACING, later), Some(at(11 * DAY_MS)));
        assert!(a.can_send(PACING, at(11 * DAY_MS)), "a new day");
    }

    #[test]
    fn an_unpaced_account_ignores_a_last_send_stamped_ahead_of_our_clock() {
        let unpaced = Pacing { interval: Duration::ZERO, daily_cap: u32::MAX };
        let now = at(1_000_000);
        let a = SenderAccount::new("a".into(), AccountKind::Sandbox).after_send(now.plus(Duration::from_millis(5)));
        assert!(a.can_send(unpaced, now), "another worker's clock was a little ahead");
        assert!(!a.can_send(PACING, now), "a paced account still waits");
    }

    #[test]
    fn telegram_answers_drive_the_state() {
        let now = at(1_000_000);
        let a = SenderAccount::new("a".into(), AccountKind::Telegram);
        let parked = a.after_failure(&AccountFailure::FloodWait(Duration::from_secs(30)), now);
        assert_eq!(parked.state, AccountState::FloodWait { until: now.plus(Duration::from_secs(30)) });
        assert_eq!(parked.reason.as_deref(), Some("FLOOD_WAIT_30"));
        assert!(!parked.can_send(PACING, now.plus(Duration::from_secs(29))));
        assert!(parked.can_send(PACING, now.plus(Duration::from_secs(30))));
        let back = parked.after_send(now.plus(Duration::from_secs(31)));
        assert_eq!(back.state, AccountState::Active);
        assert_eq!(back.reason, None);
        let q = a.after_failure(&AccountFailure::PeerFlood, now);
        assert_eq!((q.state, q.ready_at(PACING, now)), (AccountState::Quarantined, None));
        let d = a.after_failure(&AccountFailure::Dead("AUTH_KEY_UNREGISTERED".into()), now);
        assert_eq!((d.state, d.reason.as_deref()), (AccountState::Disabled, Some("AUTH_KEY_UNREGISTERED")));
        assert_eq!(d.failures, 1);
    }

    #[test]
    fn json_shape() {
        let a = SenderAccount::new("a".into(), AccountKind::Sandbox)
            .after_failure(&AccountFailure::FloodWait(Duration::from_secs(5)), at(1000));
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["state"], "flood_wait");
        assert_eq!(v["until"], 6000);
        let back: SenderAccount = serde_json::from_value(v).unwrap();
        assert_eq!(back, a);
    }
}
