//! Posting one delivery report to a tenant's `callback_url`, safely: `https` only, the host
//! resolved once with every address checked and the connection made to the checked address
//! (a resolver that refuses internal addresses, so DNS rebinding cannot slip through), no
//! redirects, no proxies, connect and total timeouts, a bounded read of the answer, and a
//! bounded number of reports in flight per destination host.

use super::sign::SigningKey;
use crate::config::{CallbackSettings, HOST_WAIT};
use crate::domain::address;
use parking_lot::Mutex;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// How much of a receiver's answer is read (it only matters that it was 200).
const ANSWER_READ_LIMIT: usize = 4096;

/// What a send-time look-up of a callback host found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostCheck {
    Acceptable,
    /// The host has an internal address: refused.
    Internal,
    /// DNS gave no address within the send's budget ("not found", or no answer): let
    /// through, checked at each report.
    Unknown,
}

/// What became of one attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// The receiver answered 200.
    Acknowledged,
    /// Anything else: another status, a timeout, a refused address, a connection or TLS error.
    Failed(String),
    /// The destination host has as many reports in flight as allowed: try again shortly,
    /// without counting an attempt.
    Busy,
}

pub struct Dispatcher {
    client: reqwest::Client,
    lookup: Arc<dyn HostResolver>,
    allow_http: bool,
    allow_private: bool,
    per_host: usize,
    hosts: Mutex<Hosts>,
    /// How long a send waits for its callback host's addresses (`callbacks.send_lookup_ms`).
    send_lookup: Duration,
}

/// The hosts reports went to, each with its slots. Idle ones are dropped once the map grows
/// past `prune_at`, so a process that reports to ever new hosts does not keep them all.
struct Hosts {
    by_name: HashMap<String, Arc<HostSlots>>,
    prune_at: usize,
}

/// The fewest hosts kept before idle ones are dropped.
const HOSTS_KEPT: usize = 1024;

/// Reports in flight to one host, and reports waiting for one of its slots.
struct HostSlots {
    slots: Arc<Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
}

/// Reports that may wait for a busy host, per slot of it; beyond that the host is `Busy` and
/// the report comes back a little later. Bounds what one slow host can hold of a process.
const WAITING_PER_SLOT: usize = 16;

impl Dispatcher {
    pub fn new(settings: &CallbackSettings, lookup: Arc<dyn HostResolver>) -> Result<Self, reqwest::Error> {
        let resolver = CheckedResolver { lookup: Arc::clone(&lookup), allow_private: settings.allow_private_networks };
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(settings.connect_timeout_ms)
            .timeout(settings.timeout_ms)
            .dns_resolver(Arc::new(resolver))
            .user_agent(concat!("verigram/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            lookup,
            allow_http: settings.allow_http,
            allow_private: settings.allow_private_networks,
            per_host: settings.per_host_concurrency.max(1),
            hosts: Mutex::new(Hosts { by_name: HashMap::new(), prune_at: HOSTS_KEPT }),
            send_lookup: settings.send_lookup_ms,
        })
    }

    /// POSTs `body` to `url`, signed with `key_hex` and stamped with `clock`'s time (unix
    /// seconds) when it goes, after any wait for a slot of the host.
    pub async fn post(&self, url: &str, key_hex: &str, body: &str, clock: &dyn crate::domain::Clock) -> Attempt {
        let url = match self.checked_url(url) {
            Ok(url) => url,
            Err(why) => return Attempt::Failed(why.into()),
        };
        let Some(key) = SigningKey::from_hex(key_hex) else {
            return Attempt::Failed("no signing key".into());
        };
        let host = format!("{}:{}", url.host_str().unwrap_or_default(), url.port_or_known_default().unwrap_or(0));
        let Some(_slot) = self.host_slot(&host).await else {
            return Attempt::Busy;
        };
        let timestamp = clock.now().secs().to_string();
        let signature = key.sign(&timestamp, body.as_bytes());
        let sent = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Request-Timestamp", &timestamp)
            .header("X-Request-Signature", signature)
            .body(body.to_owned())
            .send()
            .await;
        match sent {
            Ok(mut answer) => {
                let status = answer.status();
                // Read a little of the answer so the connection can be reused; never more.
                let mut read = 0;
                while let Ok(Some(chunk)) = answer.chunk().await {
                    read += chunk.len();
                    if read >= ANSWER_READ_LIMIT {
                        break;
                    }
                }
                if status == reqwest::StatusCode::OK {
                    Attempt::Acknowledged
                } else {
                    Attempt::Failed(format!("HTTP {}", status.as_u16()))
                }
            }
            Err(e) if e.is_timeout() => Attempt::Failed("timeout".into()),
            Err(e) if e.is_connect() => Attempt::Failed(connect_error(&e)),
            Err(_) => Attempt::Failed("request failed".into()),
        }
    }

    /// The URL, if reports may go there: `https` (or `http` when allowed), and an IP-literal
    /// host only when public (names are checked by the resolver at connection time).
    fn checked_url(&self, url: &str) -> Result<reqwest::Url, &'static str> {
        let url = reqwest::Url::parse(url).map_err(|_| "invalid URL")?;
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err("not https"),
        }
        let public = match url.host() {
            Some(url::Host::Ipv4(ip)) => address::is_public(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => address::is_public(IpAddr::V6(ip)),
            Some(url::Host::Domain(name)) => !address::is_internal_name(name),
            None => false,
        };
        if public || self.allow_private {
            Ok(url)
        } else {
            Err("internal address refused")
        }
    }

    /// At `sendVerificationMessage` time, within `callbacks.send_lookup_ms`: whether the
    /// callback host resolves to an internal address. What is not known by then is let
    /// through: it is checked again when each report goes.
    pub async fn check_host(&self, host: &str) -> HostCheck {
        if self.allow_private || host.parse::<IpAddr>().is_ok() || host.starts_with('[') {
            return HostCheck::Acceptable; // IP literals were checked when the URL was parsed
        }
        match tokio::time::timeout(self.send_lookup, self.lookup.lookup(host)).await {
            Ok(Ok(found)) if found.iter().any(|ip| !address::is_public(*ip)) => HostCheck::Internal,
            Ok(Ok(found)) if !found.is_empty() => HostCheck::Acceptable,
            // "Not found", no answer in time, or trouble on the way: the report's own look-up
            // may find it later.
            _ => HostCheck::Unknown,
        }
    }

    fn host_slots(&self, host: &str) -> Arc<HostSlots> {
        let mut hosts = self.hosts.lock();
        if let Some(found) = hosts.by_name.get(host) {
            return Arc::clone(found);
        }
        if hosts.by_name.len() >= hosts.prune_at {
            // Idle: nobody holds the entry (a waiting report does), every slot is free (a
            // report in flight holds one). Dropping a busy host would let a fresh entry
            // exceed its limit. Pruning again only after the map doubles keeps it amortized.
            let per_host = self.per_host;
            hosts.by_name.retain(|_, h| Arc::strong_count(h) > 1 || h.slots.available_permits() < per_host);
            hosts.prune_at = (hosts.by_name.len() * 2).max(HOSTS_KEPT);
        }
        let entry = Arc::new(HostSlots { slots: Arc::new(Semaphore::new(self.per_host)), waiting: Default::default() });
        hosts.by_name.insert(host.to_owned(), Arc::clone(&entry));
        entry
    }

    /// A slot to send to `host`: at once, or after waiting among a bounded number of others;
    /// `None` when that many wait already.
    async fn host_slot(&self, host: &str) -> Option<tokio::sync::OwnedSemaphorePermit> {
        use std::sync::atomic::Ordering;
        let host = self.host_slots(host);
        if let Ok(slot) = Arc::clone(&host.slots).try_acquire_owned() {
            return Some(slot);
        }
        if host.waiting.fetch_add(1, Ordering::SeqCst) >= self.per_host * WAITING_PER_SLOT {
            host.waiting.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        // Bounded, so a report never waits past its task's lease (then another worker would
        // send it too): a host that stays busy is `Busy`, and the report comes back later.
        let slot =
            tokio::time::timeout(HOST_WAIT, Arc::clone(&host.slots).acquire_owned()).await.ok().and_then(Result::ok);
        host.waiting.fetch_sub(1, Ordering::SeqCst);
        slot
    }
}

/// The kind of a connection failure, for the report's record (never the full error text,
/// which could carry a URL with a token in it).
fn connect_error(e: &reqwest::Error) -> String {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.to_string().contains(REFUSED_BY_RESOLVER) {
            return "internal address refused".into();
        }
        source = s.source();
    }
    "connection failed".into()
}

const REFUSED_BY_RESOLVER: &str = "resolves to an internal address";

/// Looks host names up: `resolver::DnsResolver` in production; tests put a scripted one in its
/// place (e.g. a name that resolves differently the second time: DNS rebinding).
pub trait HostResolver: Send + Sync {
    fn lookup(
        &self,
        host: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'static>>;
}

/// Resolves each host once and hands reqwest only addresses that passed the check, so the
/// connection goes to a checked address. A name with any internal address is refused whole.
struct CheckedResolver {
    lookup: Arc<dyn HostResolver>,
    allow_private: bool,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        let found = self.lookup.lookup(name.as_str());
        Box::pin(async move {
            let found = found.await?;
            if found.is_empty() {
                return Err("the name has no address".into());
            }
            if !allow_private && found.iter().any(|ip| !address::is_public(*ip)) {
                return Err(REFUSED_BY_RESOLVER.into());
            }
            let addrs: Addrs = Box::new(found.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

/// The wait before retry `attempts` (1 for the first retry), jittered by ±20% so reports that
/// failed together do not come back together; `None` once the schedule is used up.
pub fn retry_delay(schedule: &[Duration], attempts: u32) -> Option<Duration> {
    let base = *schedule.get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
    let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0.8..=1.2);
    Some(base.mul_f64(jitter))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(allow_http: bool, allow_private: bool) -> CallbackSettings {
        CallbackSettings {
            allow_http,
            allow_private_networks: allow_private,
            connect_timeout_ms: Duration::from_millis(1000),
            timeout_ms: Duration::from_millis(2000),
            per_host_concurrency: 1,
            retry_schedule: vec![Duration::from_secs(10), Duration::from_secs(60)],
            dns_servers: Vec::new(),
            lookup_timeout_ms: Duration::from_secs(2),
            send_lookup_ms: Duration::from_millis(50),
        }
    }

    /// The system's resolver, as `serve` makes it.
    fn system(settings: &CallbackSettings) -> Arc<dyn HostResolver> {
        Arc::new(crate::callbacks::resolver::DnsResolver::new(settings).unwrap())
    }

    #[tokio::test]
    async fn only_https_to_public_hosts_unless_allowed() {
        let strict = Dispatcher::new(&settings(false, false), system(&settings(true, true))).unwrap();
        for (url, why) in [
            ("http://example.com/cb", "not https"),
            ("https://127.0.0.1/cb", "internal address refused"),
            ("https://[::ffff:10.0.0.1]/cb", "internal address refused"),
            ("https://[::ffff:127.0.0.1]/cb", "internal address refused"),
            ("https://[64:ff9b::7f00:1]/cb", "internal address refused"),
            ("https://2130706433/cb", "internal address refused"),
            ("https://0177.0.0.1/cb", "internal address refused"),
            ("https://0x7f.0.0.1/cb", "internal address refused"),
            ("https://0x7f000001/cb", "internal address refused"),
            ("https://169.254.169.254/cb", "internal address refused"),
            ("https://100.64.0.1/cb", "internal address refused"),
            ("https://localhost/cb", "internal address refused"),
            ("ftp://example.com/cb", "not https"),
        ] {
            assert_eq!(strict.checked_url(url).err(), Some(why), "{url}");
        }
        assert!(strict.checked_url("https://example.com/cb").is_ok());
        let dev = Dispatcher::new(&settings(true, true), system(&settings(true, true))).unwrap();
        assert!(dev.checked_url("http://127.0.0.1:8080/cb").is_ok());
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_with_internal_addresses() {
        let resolver = CheckedResolver { lookup: system(&settings(true, true)), allow_private: false };
        let refused = resolver.resolve("localhost".parse::<Name>().unwrap()).await;
        assert!(refused.is_err_and(|e| e.to_string() == REFUSED_BY_RESOLVER));
        let allowed = CheckedResolver { lookup: system(&settings(true, true)), allow_private: true }
            .resolve("localhost".parse::<Name>().unwrap())
            .await;
        assert!(allowed.unwrap().all(|a| a.ip().is_loopback()));
    }

    /// A receiver that answers 200, sends 8 KiB of a huge body and then stalls: the answer
    /// counts once a few KiB are read (with no bound the read would wait for the rest, here
    /// for the ten-minute timeout; the test's deadline is 30 s).
    #[tokio::test]
    async fn only_a_little_of_an_answer_is_read() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/cb", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = vec![0u8; 4096];
            let _ = socket.read(&mut request).await;
            let head = "HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n";
            socket.write_all(head.as_bytes()).await.unwrap();
            socket.write_all(&[b'x'; 8192]).await.unwrap();
            tokio::time::sleep(Duration::from_secs(600)).await;
        });
        let patient = CallbackSettings { timeout_ms: Duration::from_secs(600), ..settings(true, true) };
        let d = Dispatcher::new(&patient, system(&settings(true, true))).unwrap();
        let answered = tokio::time::timeout(
            Duration::from_secs(30),
            d.post(&url, &"00".repeat(32), "{}", &crate::domain::SystemClock),
        )
        .await;
        assert_eq!(answered.ok(), Some(Attempt::Acknowledged));
    }

    #[test]
    fn retries_follow_the_schedule_with_jitter_then_stop() {
        let schedule = [Duration::from_secs(10), Duration::from_secs(60)];
        assert_eq!(retry_delay(&schedule, 0), None);
        let first = retry_delay(&schedule, 1).unwrap();
        assert!((8.0..=12.0).contains(&first.as_secs_f64()), "{first:?}");
        let second = retry_delay(&schedule, 2).unwrap();
        assert!((48.0..=72.0).contains(&second.as_secs_f64()), "{second:?}");
        assert_eq!(retry_delay(&schedule, 3), None);
    }

    #[tokio::test]
    async fn a_host_at_its_limit_makes_a_few_wait_and_turns_the_rest_away() {
        let d = Arc::new(Dispatcher::new(&settings(true, true), system(&settings(true, true))).unwrap());
        let held = d.host_slot("example.com:443").await.unwrap();
        // One slot: sixteen may wait for it.
        let mut waiting = Vec::new();
        for _ in 0..WAITING_PER_SLOT {
            let d = Arc::clone(&d);
            waiting.push(tokio::spawn(async move { d.host_slot("example.com:443").await.is_some() }));
        }
        let host = d.host_slots("example.com:443");
        while host.waiting.load(std::sync::atomic::Ordering::SeqCst) < WAITING_PER_SLOT {
            tokio::task::yield_now().await;
        }
        let busy = d.post("https://example.com/cb", &"00".repeat(32), "{}", &crate::domain::SystemClock).await;
        assert_eq!(busy, Attempt::Busy);
        assert!(d.host_slot("other.example:443").await.is_some(), "other hosts are not affected");
        drop(held);
        for w in waiting {
            assert!(w.await.unwrap(), "the waiting ones get their turn");
        }
    }

    #[tokio::test]
    async fn idle_hosts_are_forgotten_busy_ones_kept() {
        let d = Dispatcher::new(&settings(true, true), system(&settings(true, true))).unwrap();
        let held = d.host_slot("busy.example:443").await.unwrap();
        for i in 0..3 * HOSTS_KEPT {
            drop(d.host_slot(&format!("host{i}.example:443")).await.unwrap());
        }
        let known = d.hosts.lock().by_name.len();
        assert!(known <= HOSTS_KEPT + 1, "{known} hosts kept");
        // The busy host kept its entry, so its one slot is still taken.
        assert!(d.hosts.lock().by_name.contains_key("busy.example:443"));
        let busy = d.host_slots("busy.example:443");
        assert_eq!(busy.slots.available_permits(), 0);
        drop(held);
        assert_eq!(busy.slots.available_permits(), 1);
    }
}
