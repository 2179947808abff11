//! Where state lives: the store's URL (memory, one Redis, or a Redis Cluster), its timeouts
//! and how long per-request state is kept.

use super::Problems;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub url: String,
    #[serde(with = "super::duration::millis")]
    pub timeout_ms: Duration,
    #[serde(with = "super::duration::seconds")]
    pub request_retention: Duration,
    pub ledger_limit: usize,
}

/// Which store the URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Redis,
}

/// The scheme of a Redis Cluster URL: `redis+cluster://[user:password@]host:port,host:port,…`.
pub const CLUSTER_SCHEME: &str = "redis+cluster://";

impl StoreSettings {
    /// Which store the URL selects; `None` for a URL no store takes.
    pub fn kind(&self) -> Option<StoreKind> {
        let url = self.url.as_str();
        if url == "memory://" || url == "memory" {
            Some(StoreKind::Memory)
        } else if ["redis://", "redis+unix://", "unix://"].iter().any(|p| url.starts_with(p))
            || cluster_seeds(url).is_ok()
        {
            Some(StoreKind::Redis)
        } else {
            None
        }
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        p.check(self.timeout_ms >= Duration::from_millis(10), "store.timeout_ms: must be at least 10");
        p.check(
            self.request_retention >= Duration::from_secs(7200),
            "store.request_retention: must be at least 7200 seconds",
        );
        p.check(self.ledger_limit >= 1, "store.ledger_limit: must be at least 1");
        if self.url.starts_with("rediss://") {
            // The Redis client is built without TLS: said here, not as a failure at connect.
            p.push(
                "store.url: rediss:// (TLS) is not supported: reach Redis over a private network or a tunnel \
                 (stunnel, spiped, WireGuard) and use redis://"
                    .to_owned(),
            );
        } else if self.kind().is_none() {
            p.push(format!(
                "store.url: unsupported URL {:?}: use memory://, redis://, redis+unix:// or redis+cluster://host:port,host:port,…",
                redact_url(&self.url)
            ));
        }
    }
}

/// The seed nodes of a cluster URL, each as a `redis://` URL with the credentials.
pub fn cluster_seeds(url: &str) -> Result<Vec<String>, String> {
    let rest = url.strip_prefix(CLUSTER_SCHEME).ok_or("not a redis+cluster:// URL")?;
    let (auth, hosts) = match rest.rsplit_once('@') {
        Some((auth, hosts)) => (format!("{auth}@"), hosts),
        None => (String::new(), rest),
    };
    let hosts = hosts.strip_suffix('/').unwrap_or(hosts);
    if hosts.contains('/') || hosts.contains('?') {
        return Err("a cluster URL names nodes only (a cluster has no database numbers)".into());
    }
    let seeds: Vec<String> =
        hosts.split(',').map(str::trim).filter(|h| !h.is_empty()).map(|h| format!("redis://{auth}{h}")).collect();
    if seeds.is_empty() {
        return Err("a cluster URL names at least one node".into());
    }
    for seed in &seeds {
        url::Url::parse(seed).map_err(|_| "a node is not host:port".to_owned())?;
    }
    Ok(seeds)
}

/// A URL with any password replaced, so logs and errors never show it.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        // A URL the parser does not take (a cluster's list of nodes): mask what sits between
        // the user's `:` and the last `@` of the authority, by hand.
        _ => match url.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((auth, hosts)) => {
                    let user = auth.split_once(':').map_or(auth, |(user, _)| user);
                    let masked = if auth.contains(':') { format!("{user}:***") } else { "***".to_owned() };
                    format!("{scheme}://{masked}@{hosts}")
                }
                None => url.to_owned(),
            },
            None => url.to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cluster_url_names_its_seed_nodes_with_their_credentials() {
        assert_eq!(
            cluster_seeds("redis+cluster://10.0.0.1:6379,10.0.0.2:6380").unwrap(),
            ["redis://10.0.0.1:6379", "redis://10.0.0.2:6380"]
        );
        assert_eq!(
            cluster_seeds("redis+cluster://app:s3cret@h1:7000, h2:7001/").unwrap(),
            ["redis://app:s3cret@h1:7000", "redis://app:s3cret@h2:7001"]
        );
    }

    #[test]
    fn a_cluster_url_has_no_database_and_at_least_one_node() {
        assert!(cluster_seeds("redis+cluster://h1:7000/1").is_err());
        assert!(cluster_seeds("redis+cluster://").is_err());
        assert!(cluster_seeds("redis://h1:7000").is_err());
    }

    #[test]
    fn a_cluster_url_is_shown_without_its_password() {
        let shown = redact_url("redis+cluster://app:s3cret@h1:7000,h2:7001");
        assert_eq!(shown, "redis+cluster://app:***@h1:7000,h2:7001");
        assert!(!redact_url("redis+cluster://s3cret@h1:7000").contains("s3cret"));
    }
}
