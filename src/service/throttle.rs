//! Failed authentications per client address, counted in this process, before any store work.
//!
//! A call with a missing or unknown credential costs an HMAC and a store read to find out it is
//! unknown; a loop of them costs every tenant's store. Each failure takes one from the
//! address's budget (`limits.auth_failures`, a GCRA); once it is used up, the address's calls
//! are refused before their credential is even looked at, until the budget refills. Good
//! credentials never take from it, so a client that authenticates is never slowed by it.
//!
//! Per process, not in the store: its point is to spare the store, and a client spread over N
//! processes gets N budgets, which the bound in docs/security.md counts.

use crate::domain::{gcra, Clock, Gcra, Rate};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// More addresses than this and the ones whose budget is whole again are forgotten (then all,
/// if that is not enough: a forgotten address only gets a fresh budget).
const CAPACITY: usize = 100_000;

/// Where a credential is presented; each has its own budgets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Surface {
    Gateway,
    Admin,
    Metrics,
    Sandbox,
}

pub struct AuthThrottle {
    rate: Rate,
    clock: Arc<dyn Clock>,
    /// Each address's theoretical arrival time (unix ms), as in `domain::limits`; IPv6
    /// addresses by their /64, which one client holds whole.
    tats: parking_lot::Mutex<HashMap<(Surface, IpAddr), i64>>,
}

impl AuthThrottle {
    pub fn new(rate: Rate, clock: Arc<dyn Clock>) -> Self {
        Self { rate, clock, tats: parking_lot::Mutex::new(HashMap::new()) }
    }

    /// How long `address` must wait when its budget of failures is used up; takes nothing.
    pub fn refused(&self, surface: Surface, address: IpAddr) -> Option<Duration> {
        if self.rate.is_off() {
            return None;
        }
        let tat = self.tats.lock().get(&(surface, block(address))).copied();
        match gcra(tat, self.clock.now(), self.rate) {
            Gcra::Allow { .. } => None,
            Gcra::Refuse { retry_after_ms } => Some(Duration::from_millis(retry_after_ms.max(1) as u64)),
        }
    }

    /// Counts one failed authentication from `address`.
    pub fn failed(&self, surface: Surface, address: IpAddr) {
        if self.rate.is_off() {
            return;
        }
        let now = self.clock.now();
        let mut tats = self.tats.lock();
        if tats.len() >= CAPACITY {
            tats.retain(|_, tat| *tat > now.millis());
            if tats.len() >= CAPACITY {
                tats.clear();
            }
        }
        let key = (surface, block(address));
        if let Gcra::Allow { tat, .. } = gcra(tats.get(&key).copied(), now, self.rate) {
            tats.insert(key, tat);
        }
    }
}

/// The address a budget is kept for: an IPv4 address, or an IPv6 address's /64.
fn block(address: IpAddr) -> IpAddr {
    match address.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ManualClock;

    #[test]
    fn failures_use_up_the_budget_then_it_refills() {
        let clock = Arc::new(ManualClock::new(crate::domain::Timestamp::from_millis(1_000_000)));
        let throttle = AuthThrottle::new(Rate { rate: 1, per: 10, burst: 3 }, clock.clone());
        let (a, b) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        for _ in 0..3 {
            assert_eq!(throttle.refused(Surface::Gateway, a), None);
            throttle.failed(Surface::Gateway, a);
        }
        let wait = throttle.refused(Surface::Gateway, a).expect("three failures used the budget");
        assert!(wait <= Duration::from_secs(10), "{wait:?}");
        assert_eq!(throttle.refused(Surface::Gateway, b), None, "another address has its own");
        assert_eq!(throttle.refused(Surface::Admin, a), None, "and so has another surface");
        // IPv6 clients by their /64: rotating addresses inside it buys nothing.
        for n in 1..=3 {
            throttle.failed(Surface::Gateway, format!("2001:db8:1:2::{n}").parse().unwrap());
        }
        assert!(throttle.refused(Surface::Gateway, "2001:db8:1:2:ffff::1".parse().unwrap()).is_some());
        assert_eq!(throttle.refused(Surface::Gateway, "2001:db8:1:3::1".parse().unwrap()), None);
        clock.advance(Duration::from_secs(10));
        assert_eq!(throttle.refused(Surface::Gateway, a), None, "one failure more after the interval");
    }
}
