//! Tenants whose callback hosts DNS gives no address for.
//!
//! A send waits for its callback host's addresses at most `callbacks.send_lookup_ms`. A tenant
//! whose hosts' DNS never answers (down, or names picked so that it never does) would pay that
//! wait on every send, and one naming a new host that does not exist each time a query and a
//! socket; so once a look-up of one of its hosts finds no address, its sends skip the look-up
//! for `SKIP_FOR` and go at full speed, checked only when each report goes (where every
//! address is checked anyway). Other tenants keep their look-ups.

use crate::domain::TenantId;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long a tenant's sends skip the look-up after one found no address.
const SKIP_FOR: Duration = Duration::from_secs(30);

/// More tenants than this and the ones whose time is up are forgotten (then all).
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct FruitlessLookups {
    until: parking_lot::Mutex<HashMap<TenantId, Instant>>,
}

impl FruitlessLookups {
    /// Whether `tenant`'s sends skip the look-up now.
    pub fn skip(&self, tenant: &TenantId) -> bool {
        let until = self.until.lock();
        until.get(tenant).is_some_and(|at| Instant::now() < *at)
    }

    /// A look-up of one of `tenant`'s hosts found no address.
    pub fn found_nothing(&self, tenant: &TenantId) {
        let now = Instant::now();
        let mut until = self.until.lock();
        if until.len() >= CAPACITY {
            until.retain(|_, at| now < *at);
            if until.len() >= CAPACITY {
                until.clear();
            }
        }
        until.insert(tenant.clone(), now + SKIP_FOR);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fruitless_look_up_skips_the_tenants_next_ones_only() {
        let lookups = FruitlessLookups::default();
        let (a, b) = (TenantId::generate(), TenantId::generate());
        assert!(!lookups.skip(&a));
        lookups.found_nothing(&a);
        assert!(lookups.skip(&a));
        assert!(!lookups.skip(&b), "another tenant still looks up");
    }
}
