//! Rate limits as GCRA (the generic cell rate algorithm): each limited key keeps one number,
//! its theoretical arrival time (TAT). A limit of `rate` per `per` seconds spaces requests
//! `per / rate` apart and lets `burst` of them come at once. The store runs this arithmetic in
//! one atomic step per decision (Lua in Redis, the same code under a lock in memory).

use super::Timestamp;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `rate` requests per `per` seconds, `burst` of them at once. A `rate` of 0 switches the
/// limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub rate: u32,
    pub per: u64,
    pub burst: u32,
}

impl Rate {
    pub fn is_off(&self) -> bool {
        self.rate == 0
    }

    /// `per` from a second to a year and `burst` from 1 to 100,000: the GCRA's numbers then
    /// stay far inside what both i64 and Lua's doubles hold exactly.
    pub fn is_sane(&self) -> bool {
        (1..=31_536_000).contains(&self.per) && (1..=100_000).contains(&self.burst)
    }

    /// The spacing between requests at the sustained rate, in milliseconds (at least 1).
    pub fn interval_ms(&self) -> i64 {
        ((self.per.saturating_mul(1000)) / u64::from(self.rate.max(1))).max(1) as i64
    }

    /// How far ahead of now the TAT may run: `burst - 1` intervals.
    pub fn tolerance_ms(&self) -> i64 {
        self.interval_ms().saturating_mul(i64::from(self.burst.max(1) - 1))
    }
}

/// What is limited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// All the tenant's sends.
    Tenant,
    /// The tenant's sends in a day (a budget).
    TenantDaily,
    /// Sends made with one API token.
    Token,
    /// Sends to one phone number.
    Phone,
    /// Sends to one country calling code.
    Country,
    /// Sends from one client IP address.
    Ip,
    /// Wrong codes entered for one phone number in a day, across its requests (a budget that
    /// a new request does not reset).
    WrongChecks,
    /// What the tenant spent in a day (UTC).
    DailySpend,
    /// What the tenant spent on one destination country in an hour.
    CountrySpend,
    /// Failed authentications from one client address (per process, before any store work).
    AuthFailures,
}

impl LimitKind {
    pub const ALL: [LimitKind; 10] = [
        LimitKind::Tenant,
        LimitKind::TenantDaily,
        LimitKind::Token,
        LimitKind::Phone,
        LimitKind::Country,
        LimitKind::Ip,
        LimitKind::WrongChecks,
        LimitKind::DailySpend,
        LimitKind::CountrySpend,
        LimitKind::AuthFailures,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::Tenant => "tenant",
            LimitKind::TenantDaily => "tenant_daily",
            LimitKind::Token => "token",
            LimitKind::Phone => "phone",
            LimitKind::Country => "country",
            LimitKind::Ip => "ip",
            LimitKind::WrongChecks => "wrong_checks",
            LimitKind::DailySpend => "daily_spend",
            LimitKind::CountrySpend => "country_spend",
            LimitKind::AuthFailures => "auth_failures",
        }
    }
}

/// One limit to apply: which, to which key (already free of personal data: the store sees a
/// keyed hash for phones and addresses), at which rate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitCheck {
    pub kind: LimitKind,
    pub key: String,
    pub rate: Rate,
}

/// A spending budget over fixed windows (a UTC day, an hour): at most `cap` micro-credits a
/// window; when `blocking` is off it only records and warns (watch mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendCheck {
    pub kind: LimitKind,
    pub key: String,
    pub window_secs: u64,
    pub cap: i64,
    pub blocking: bool,
}

impl SpendCheck {
    /// The window `now` falls in (its number since the epoch).
    pub fn window(&self, now: Timestamp) -> i64 {
        now.millis().div_euclid(1000 * self.window_secs.max(1) as i64)
    }

    /// Until the window's end.
    pub fn until_next_window(&self, now: Timestamp) -> Duration {
        let len = 1000 * self.window_secs.max(1) as i64;
        Duration::from_millis((len - now.millis().rem_euclid(len)) as u64)
    }

    /// The refusal when the budget is spent: come back in the next window. Its quota is the
    /// cap in micro-credits (as far as a u32 goes, 4,294 credits).
    pub fn refusal(&self, now: Timestamp) -> Refusal {
        let cap = u32::try_from(self.cap).unwrap_or(u32::MAX);
        Refusal {
            kind: self.kind,
            rate: Rate { rate: cap, per: self.window_secs, burst: cap.max(1) },
            retry_after: self.until_next_window(now),
        }
    }
}

/// A limit's state after a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitState {
    pub kind: LimitKind,
    pub rate: Rate,
    /// Requests that would still pass right now.
    pub remaining: u32,
    /// When the limit is whole again (its TAT), from now.
    pub reset: Duration,
}

/// A refusal: the limit that fired and when to come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    pub kind: LimitKind,
    pub rate: Rate,
    pub retry_after: Duration,
}

impl Refusal {
    /// Whole seconds to wait (rounded up, at least 1), as `FLOOD_WAIT_<seconds>` and
    /// `Retry-After` say it.
    pub fn retry_after_secs(&self) -> u64 {
        self.retry_after.as_millis().div_ceil(1000).max(1) as u64
    }
}

/// One GCRA decision for a key whose TAT is `tat` (unix ms; `None` for a fresh key).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gcra {
    /// Allowed: the new TAT to store, and the state after.
    Allow { tat: i64, remaining: u32, reset_ms: i64 },
    /// Refused: come back after this many milliseconds.
    Refuse { retry_after_ms: i64 },
}

pub fn gcra(tat: Option<i64>, now: Timestamp, rate: Rate) -> Gcra {
    let now = now.millis();
    let (t, tau) = (rate.interval_ms(), rate.tolerance_ms());
    let tat = tat.unwrap_or(now).max(now);
    if tat - now > tau {
        return Gcra::Refuse { retry_after_ms: tat - now - tau };
    }
    let new_tat = tat + t;
    let remaining = ((tau - (new_tat - t - now)) / t).max(0) as u32;
    Gcra::Allow { tat: new_tat, remaining, reset_ms: new_tat - now }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_millis(1_000_000 + ms)
    }

    /// Runs requests at the given times; answers which passed.
    fn run(rate: Rate, times: &[i64]) -> Vec<bool> {
        let mut tat = None;
        times
            .iter()
            .map(|&ms| match gcra(tat, at(ms), rate) {
                Gcra::Allow { tat: next, .. } => {
                    tat = Some(next);
                    true
                }
                Gcra::Refuse { .. } => false,
            })
            .collect()
    }

    #[test]
    fn a_burst_passes_then_the_sustained_rate() {
        // 3 per 600 s, 3 at once: one every 200 s after the burst.
        let rate = Rate { rate: 3, per: 600, burst: 3 };
        assert_eq!(run(rate, &[0, 0, 0, 0]), [true, true, true, false]);
        assert_eq!(run(rate, &[0, 0, 0, 199_999, 200_000, 200_001]), [true, true, true, false, true, false]);
    }

    #[test]
    fn a_refusal_says_when_to_come_back_exactly() {
        let rate = Rate { rate: 1, per: 10, burst: 1 };
        let Gcra::Allow { tat, .. } = gcra(None, at(0), rate) else { panic!("first passes") };
        assert_eq!(gcra(Some(tat), at(2_500), rate), Gcra::Refuse { retry_after_ms: 7_500 });
        assert!(matches!(gcra(Some(tat), at(10_000), rate), Gcra::Allow { .. }));
        let refusal = Refusal { kind: LimitKind::Phone, rate, retry_after: Duration::from_millis(7_500) };
        assert_eq!(refusal.retry_after_secs(), 8);
    }

    #[test]
    fn remaining_counts_down_and_reset_is_when_the_limit_is_whole() {
        let rate = Rate { rate: 10, per: 10, burst: 5 };
        let Gcra::Allow { tat, remaining, reset_ms } = gcra(None, at(0), rate) else { panic!() };
        assert_eq!((remaining, reset_ms), (4, 1_000));
        let Gcra::Allow { remaining, reset_ms, .. } = gcra(Some(tat), at(0), rate) else { panic!() };
        assert_eq!((remaining, reset_ms), (3, 2_000));
    }

    proptest::proptest! {
        /// Over any window, no more pass than the burst plus the sustained rate allows.
        #[test]
        fn never_more_than_burst_plus_rate(gaps in proptest::collection::vec(0i64..3_000, 1..200), burst in 1u32..6) {
            let rate = Rate { rate: 2, per: 10, burst };
            let mut times = Vec::new();
            let mut t = 0;
            for g in gaps { t += g; times.push(t); }
            let passed: Vec<i64> = times.iter().zip(run(rate, &times)).filter(|(_, ok)| *ok).map(|(t, _)| *t).collect();
            for (i, start) in passed.iter().enumerate() {
                let within = passed[i..].iter().take_while(|t| **t - start < 10_000).count() as i64;
                // In any 10 s: at most burst + 2 (the rate) requests pass.
                proptest::prop_assert!(within <= i64::from(burst) + 2, "{within} in 10 s from {start}");
            }
        }
    }
}
