//! A short-lived, per-process memory of authenticated callers.
//!
//! Every Gateway call starts by finding its token and the token's tenant: two store reads,
//! which on Redis were two of a status check's three round trips. This cache keeps both for
//! `tokens.cache_ms` after they were read, so a busy token costs the store nothing to
//! authenticate.
//!
//! What it may serve stale, and why that is safe:
//! - The token's own checks (revoked, expired, address list) run on every call against the
//!   cached record with the current time, so an expiry still takes effect on time.
//! - A revocation, rotation or settings change made through this process's admin API forgets
//!   the tenant's entries at once; one made through another process (or the CLI) takes effect
//!   within `cache_ms`. docs/configuration.md says so.
//! - The cached balance only ever decides early that a send cannot be paid for; before
//!   refusing, the sender reads the balance afresh (`Services::fresh_balance`). The charge itself is
//!   the store's atomic step, which never reads this cache.
//!
//! Entries are keyed by the token's lookup key (an HMAC of the token, never the token itself).
//! Unknown tokens are not remembered: a flood of made-up tokens cannot fill the cache.

use crate::domain::{Tenant, TenantId, TokenRecord};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// More entries than this and the cache starts over: an operator's whole token list fits
/// many times, and a cleared cache only costs one read per token.
const CAPACITY: usize = 10_000;

pub struct CallerCache {
    ttl: Duration,
    entries: parking_lot::RwLock<HashMap<String, Entry>>,
}

struct Entry {
    token: Arc<TokenRecord>,
    tenant: Arc<Tenant>,
    read_at: Instant,
}

impl CallerCache {
    /// `ttl` zero turns the cache off.
    pub fn new(ttl: Duration) -> Self {
        Self { ttl, entries: parking_lot::RwLock::new(HashMap::new()) }
    }

    /// The token and tenant read for `lookup_key` less than `ttl` ago.
    pub fn get(&self, lookup_key: &str) -> Option<(Arc<TokenRecord>, Arc<Tenant>)> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.read();
        let entry = entries.get(lookup_key)?;
        (entry.read_at.elapsed() < self.ttl).then(|| (Arc::clone(&entry.token), Arc::clone(&entry.tenant)))
    }

    pub fn put(&self, token: &Arc<TokenRecord>, tenant: &Arc<Tenant>) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.write();
        if entries.len() >= CAPACITY {
            let ttl = self.ttl;
            entries.retain(|_, e| e.read_at.elapsed() < ttl);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        let entry = Entry { token: Arc::clone(token), tenant: Arc::clone(tenant), read_at: Instant::now() };
        entries.insert(token.lookup_key.clone(), entry);
    }

    /// Forgets every token of `tenant`: called by this process's changes to the tenant or its
    /// tokens, so they take effect here at once.
    pub fn forget_tenant(&self, tenant: &TenantId) {
        self.entries.write().retain(|_, e| &e.tenant.id != tenant);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Credits, Timestamp};

    fn id(name: &str) -> TenantId {
        let n = name.bytes().fold(0u64, |n, b| n * 256 + u64::from(b));
        TenantId::parse(&format!("00000000-0000-0000-0000-{n:012x}")).expect("a UUID")
    }

    fn tenant(name: &str) -> Arc<Tenant> {
        Arc::new(Tenant {
            id: id(name),
            name: name.into(),
            balance: Credits::ZERO,
            settings: Default::default(),
            created_at: Timestamp::from_millis(0),
        })
    }

    fn token(key: &str, tenant: &str) -> Arc<TokenRecord> {
        Arc::new(TokenRecord {
            id: format!("tok_{key}"),
            tenant: id(tenant),
            lookup_key: key.into(),
            signing_key: String::new(),
            created_at: Timestamp::from_millis(0),
            expires_at: None,
            revoked_at: None,
            ip_allow: Vec::new(),
        })
    }

    #[test]
    fn serves_what_it_was_given_until_it_is_forgotten() {
        let cache = CallerCache::new(Duration::from_secs(60));
        assert!(cache.get("k1").is_none());
        cache.put(&token("k1", "a"), &tenant("a"));
        cache.put(&token("k2", "b"), &tenant("b"));
        assert_eq!(cache.get("k1").map(|(t, _)| t.id.clone()), Some("tok_k1".to_owned()));
        cache.forget_tenant(&id("a"));
        assert!(cache.get("k1").is_none());
        assert!(cache.get("k2").is_some(), "another tenant's entry stays");
    }

    #[test]
    fn entries_end_with_their_ttl_and_zero_turns_it_off() {
        let off = CallerCache::new(Duration::ZERO);
        off.put(&token("k1", "a"), &tenant("a"));
        assert!(off.get("k1").is_none());
        let short = CallerCache::new(Duration::from_millis(1));
        short.put(&token("k1", "a"), &tenant("a"));
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.get("k1").is_none());
    }

    #[test]
    fn a_full_cache_starts_over_rather_than_growing() {
        let cache = CallerCache::new(Duration::from_secs(60));
        for i in 0..CAPACITY + 5 {
            cache.put(&token(&format!("k{i}"), "a"), &tenant("a"));
        }
        assert!(cache.entries.read().len() <= CAPACITY);
        assert!(cache.get(&format!("k{}", CAPACITY + 4)).is_some(), "the newest entry is kept");
    }
}
