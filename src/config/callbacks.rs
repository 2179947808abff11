//! Delivery reports: what a `callback_url` may name, the timeouts of one attempt, the
//! concurrency per destination host and the retry schedule.

use super::Problems;
use crate::domain::CallbackPolicy;
use serde::Deserialize;
use std::time::Duration;

/// The longest a report waits for a slot of its host (a fixed part of each attempt, counted
/// when checking that an attempt fits its task's lease).
pub const HOST_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackSettings {
    pub allow_http: bool,
    pub allow_private_networks: bool,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    /// Reports in flight at once to one destination host (per process).
    pub per_host_concurrency: usize,
    /// Seconds to wait before each retry of a failed report; after the last, it is given up
    /// (dead-lettered).
    pub retry_schedule: Vec<u64>,
}

impl CallbackSettings {
    pub fn policy(&self) -> CallbackPolicy {
        CallbackPolicy { allow_http: self.allow_http, allow_private_networks: self.allow_private_networks }
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        p.check(
            self.connect_timeout_ms >= 1 && self.timeout_ms >= self.connect_timeout_ms,
            "callbacks.timeout_ms: must be at least callbacks.connect_timeout_ms (> 0)",
        );
        p.check(
            (1..=1024).contains(&self.per_host_concurrency),
            "callbacks.per_host_concurrency: must be from 1 to 1024",
        );
        p.check(
            self.retry_schedule.len() <= 50 && self.retry_schedule.iter().all(|s| (1..=604_800).contains(s)),
            "callbacks.retry_schedule: at most 50 waits of 1 s to 7 days",
        );
    }
}
