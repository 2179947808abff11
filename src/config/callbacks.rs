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
    #[serde(with = "super::duration::millis")]
    pub connect_timeout_ms: Duration,
    #[serde(with = "super::duration::millis")]
    pub timeout_ms: Duration,
    /// Reports in flight at once to one destination host (per process).
    pub per_host_concurrency: usize,
    /// Seconds to wait before each retry of a failed report; after the last, it is given up
    /// (dead-lettered).
    #[serde(with = "super::duration::seconds_list")]
    pub retry_schedule: Vec<Duration>,
    /// DNS servers callback hosts are looked up with; empty: the system's.
    pub dns_servers: Vec<std::net::SocketAddr>,
    /// The hard limit of one lookup of a callback host.
    #[serde(with = "super::duration::millis")]
    pub lookup_timeout_ms: Duration,
    /// How long a send waits for its callback host's addresses before it is let through
    /// unchecked (each report checks them again).
    #[serde(with = "super::duration::millis")]
    pub send_lookup_ms: Duration,
}

impl CallbackSettings {
    pub fn policy(&self) -> CallbackPolicy {
        CallbackPolicy { allow_http: self.allow_http, allow_private_networks: self.allow_private_networks }
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        p.check(
            !self.connect_timeout_ms.is_zero() && self.timeout_ms >= self.connect_timeout_ms,
            "callbacks.timeout_ms: must be at least callbacks.connect_timeout_ms (> 0)",
        );
        p.check(
            (1..=1024).contains(&self.per_host_concurrency),
            "callbacks.per_host_concurrency: must be from 1 to 1024",
        );
        p.check(
            self.retry_schedule.len() <= 50
                && self
                    .retry_schedule
                    .iter()
                    .all(|s| (Duration::from_secs(1)..=Duration::from_secs(604_800)).contains(s)),
            "callbacks.retry_schedule: at most 50 waits of 1 s to 7 days",
        );
        p.check(
            (Duration::from_millis(100)..=Duration::from_secs(10)).contains(&self.lookup_timeout_ms),
            "callbacks.lookup_timeout_ms: must be from 100 to 10000",
        );
        p.check(
            (Duration::from_millis(1)..=Duration::from_millis(1000)).contains(&self.send_lookup_ms)
                && self.send_lookup_ms <= self.lookup_timeout_ms,
            "callbacks.send_lookup_ms: must be from 1 to 1000, and at most callbacks.lookup_timeout_ms",
        );
    }
}
