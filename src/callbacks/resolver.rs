//! Looking callback hosts up: an asynchronous DNS resolver (hickory) with its own timeouts and
//! a bounded cache, shared by the send-time check and the report dispatcher. Lookups never
//! take a thread of the blocking pool (where code hashing runs), so a tenant whose callback
//! host's DNS never answers costs others nothing but a pending socket read.

use super::dispatch::HostResolver;
use crate::config::CallbackSettings;
use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::TokioResolver;
use std::net::IpAddr;
use std::time::Duration;

/// Names (and "not found" answers) remembered at once; beyond, the least recently used go.
const CACHE_ENTRIES: usize = 4096;
/// The longest an answer is remembered, whatever its TTL: a changed record takes effect
/// within this.
const POSITIVE_MAX_TTL: Duration = Duration::from_secs(300);
/// The longest "not found" is remembered.
const NEGATIVE_MAX_TTL: Duration = Duration::from_secs(60);

pub struct DnsResolver {
    resolver: TokioResolver,
    /// The hard limit of one lookup, whatever the servers do.
    timeout: Duration,
}

impl DnsResolver {
    /// The resolver `callbacks.dns_servers` names, or the system's (`/etc/resolv.conf`, and
    /// `/etc/hosts`) when it names none.
    pub fn new(settings: &CallbackSettings) -> Result<Self, hickory_resolver::ResolveError> {
        let mut builder = if settings.dns_servers.is_empty() {
            TokioResolver::builder_tokio()?
        } else {
            let mut config = ResolverConfig::new();
            for server in &settings.dns_servers {
                config.add_name_server(NameServerConfig::new(*server, Protocol::Udp));
                // For answers too long for UDP.
                config.add_name_server(NameServerConfig::new(*server, Protocol::Tcp));
            }
            TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
        };
        let options = builder.options_mut();
        options.timeout = settings.lookup_timeout_ms;
        options.attempts = 1;
        options.cache_size = CACHE_ENTRIES;
        options.positive_max_ttl = Some(POSITIVE_MAX_TTL);
        options.negative_max_ttl = Some(NEGATIVE_MAX_TTL);
        Ok(Self { resolver: builder.build(), timeout: settings.lookup_timeout_ms })
    }
}

impl HostResolver for DnsResolver {
    fn lookup(
        &self,
        host: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'static>> {
        let (resolver, host, timeout) = (self.resolver.clone(), host.to_owned(), self.timeout);
        Box::pin(async move {
            match tokio::time::timeout(timeout, resolver.lookup_ip(host.as_str())).await {
                Ok(Ok(found)) => Ok(found.iter().collect()),
                Ok(Err(e)) => Err(std::io::Error::new(std::io::ErrorKind::NotFound, e.to_string())),
                Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the lookup timed out")),
            }
        })
    }
}
