//! What both backends compute alike for limits and budgets: a limit's state after a call, and a
//! budget's key for its window.

use crate::domain::{LimitCheck, LimitState, SpendCheck, Timestamp};
use std::time::Duration;

/// The state of a limit whose TAT is now `tat` (after the call that moved it).
pub(crate) fn limit_state(check: &LimitCheck, tat: i64, now: Timestamp) -> LimitState {
    let (t, tau) = (check.rate.interval_ms(), check.rate.tolerance_ms());
    let ahead = (tat - now.millis()).max(0);
    LimitState {
        kind: check.kind,
        rate: check.rate,
        remaining: ((tau + t - ahead) / t).max(0) as u32,
        reset: Duration::from_millis(ahead as u64),
    }
}

/// A spending budget's key for the window `now` falls in.
pub(crate) fn spend_key(check: &SpendCheck, now: Timestamp) -> String {
    format!("{}:{}:{}", check.kind.as_str(), check.key, check.window(now))
}
