//! Delivery throughput: jobs per second through the durable queue and the sender pool to the
//! sandbox sender, with 1, 2 and 4 workers, on the memory store, on Redis and on a Redis Cluster
//! (three primaries, three replicas); and the time from
//! accepting a send to `sent`. Then the same through the real Telegram sender (grammers over
//! MTProto) to the local Telegram peer in this process, with one account and with four, beside
//! the sandbox sender (memory store, pacing off). Last, fairness (issue 21): through four
//! paced Telegram accounts of the local peer, one tenant's burst beside three steady tenants,
//! each tenant's send-to-sent delay, on the memory store and on Redis.
//!
//! Set-up (one process): the service is built without its HTTP server and with no workers of its
//! own; sends are accepted through the service layer (HMAC code hashes, so accepting is cheap),
//! then `Worker::run_once` loops drain the queue. The drain time covers claiming jobs, reading
//! each request, opening its sealed code, picking and leasing a sender account, the sandbox
//! delivery, recording `sent` (compare-and-set), acknowledging the job, and the sandbox's
//! `delivered` update. For the accept-to-sent time, two workers run as the server runs them
//! and sends arrive one after another; the time is read from the request's own timestamps.
//!
//! Run: `cargo bench --bench delivery` (table to stdout and `target/bench-results/delivery.md`).
//! Without `--bench`, or with `--test`, it is a smoke run of a few jobs.

use anyhow::Context;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use verigram::config::Settings;
use verigram::domain::{PhoneNumber, RequestId, SystemClock};
use verigram::service::{Caller, SendCommand, Services};
use verigram::startup::Application;
use verigram::workers::{Outcome, Worker};
use verigram_testkit::{RedisCluster, RedisServer};

#[path = "common/mod.rs"]
mod common;

use common::PEPPER;

/// The settings for `store_url`, with the TOML `extra` sections after the bench's own.
fn settings(store_url: &str, extra: &str) -> anyhow::Result<Settings> {
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    Settings::from_toml(&format!(
        "[store]\nurl = {}\n[codes]\nhash = \"hmac-sha256\"\npepper = {}\n[delivery]\nworkers = 0\nbatch = 32\n[log]\nlevel = \"warn\"\n{}{extra}",
        quote(store_url),
        quote(PEPPER),
        common::LIMITS_OFF
    ))
    .map_err(|e| anyhow::anyhow!("{e}"))
}

async fn service(store_url: &str) -> anyhow::Result<(Arc<Services>, Caller)> {
    service_with(store_url, "").await
}

async fn service_with(store_url: &str, extra: &str) -> anyhow::Result<(Arc<Services>, Caller)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let app = Application::build_with(settings(store_url, extra)?, Arc::new(SystemClock), listener).await?;
    let services = app.services();
    let caller = common::rich_caller(&services, None).await?;
    Ok((services, caller))
}

fn command(i: usize) -> anyhow::Result<SendCommand> {
    common::send_command(i)
}

/// Queues `jobs` sends, then drains them with `workers` workers: jobs per second.
async fn drain(store_url: &str, jobs: usize, workers: usize) -> anyhow::Result<f64> {
    let (services, caller) = service(store_url).await?;
    let rate = drain_with(&services, &caller, jobs, workers).await?;
    let inbox = services.sender.sandbox().map(|s| s.recent(usize::MAX).len()).unwrap_or(0);
    anyhow::ensure!(inbox == jobs, "{inbox} messages for {jobs} jobs");
    Ok(rate)
}

/// Like `drain`, through the real Telegram sender to a local Telegram peer with `accounts`
/// sender accounts (memory store, no pacing).
async fn drain_telegram(jobs: usize, accounts: usize, workers: usize) -> anyhow::Result<f64> {
    use verigram_dev_telegram::{PeerConfig, TelegramPeer};
    let phones: Vec<String> = (1..=accounts).map(|i| format!("+4477009000{i:02}")).collect();
    let config = PeerConfig { accounts: phones.clone(), auto_users: true, ..Default::default() };
    let peer = TelegramPeer::start("127.0.0.1:0".parse()?, config).await?;
    let extra = "[sender]\nkind = \"telegram\"\ndev_peers = true\n[pool]\ninterval_ms = 0\ndaily_cap = 1000000\n";
    let (services, caller) = service_with("memory://", extra).await?;
    for (i, phone) in phones.iter().enumerate() {
        let phone = PhoneNumber::parse(phone).map_err(|_| anyhow::anyhow!("phone"))?;
        services.add_dev_telegram_account(&format!("tg{i}"), &phone, peer.addr()).await?;
    }
    // Connect every account first (connections open on first use), so the run measures sends.
    let warm = phones.len();
    drain_with(&services, &caller, warm, workers).await?;
    let rate = drain_with(&services, &caller, jobs, workers).await?;
    anyhow::ensure!(peer.messages_sent() == jobs + warm, "{} messages for {jobs} jobs", peer.messages_sent() - warm);
    Ok(rate)
}

/// Queues `jobs` sends and drains them with `workers` workers: jobs per second.
async fn drain_with(services: &Arc<Services>, caller: &Caller, jobs: usize, workers: usize) -> anyhow::Result<f64> {
    for i in 0..jobs {
        services.send(caller, command(i)?).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..workers {
        let worker = Worker::new(Arc::clone(services), format!("bench-{n}"));
        tasks.spawn(async move {
            loop {
                match worker.run_once().await {
                    Ok(Outcome::Worked) => {}
                    // Another worker is sending through the account (unpaced: free within a send).
                    Ok(Outcome::AccountsBusy(_)) => tokio::task::yield_now().await,
                    Ok(Outcome::Idle) => return Ok::<(), anyhow::Error>(()),
                    Err(e) => return Err(anyhow::anyhow!("{e}")),
                }
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let elapsed = started.elapsed();
    let left = services.store.delivery_backlog().await.map_err(|e| anyhow::anyhow!("{e}"))?.total();
    anyhow::ensure!(left == 0, "{left} jobs left");
    Ok(jobs as f64 / elapsed.as_secs_f64())
}

/// Accept-to-sent times (ms) of `count` sends with two workers running.
async fn latency(store_url: &str, count: usize) -> anyhow::Result<(f64, f64)> {
    let (services, caller) = service(store_url).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..2 {
        tasks.spawn(Worker::new(Arc::clone(&services), format!("lat-{n}")).run(stopped.clone()));
    }
    let mut ids: Vec<RequestId> = Vec::with_capacity(count);
    for i in 0..count {
        let status = services.send(&caller, command(i)?).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        ids.push(RequestId::parse(&status.request_id).map_err(|_| anyhow::anyhow!("id"))?);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while services.store.delivery_backlog().await.map_err(|e| anyhow::anyhow!("{e}"))?.queued > 0 {
        anyhow::ensure!(Instant::now() < deadline, "the queue did not drain");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    let mut times = Vec::with_capacity(count);
    let now = verigram::domain::Clock::now(&SystemClock);
    for id in ids {
        let record = services.store.request(&caller.tenant.id, id, now).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let record = record.context("request gone")?;
        // The sandbox confirms `delivered` right after `sent`: its time bounds `sent` from above.
        let at = record.delivery.context("not sent")?.at;
        times.push((at.millis() - record.created_at.millis()) as f64);
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    Ok((pct(0.5), pct(0.99)))
}

/// Sender accounts and their pacing in the fairness section: 4 accounts × 4 messages a second.
const FAIR_ACCOUNTS: usize = 4;
const FAIR_INTERVAL_MS: u64 = 250;

/// Send-to-sent delay per tenant under a mixed load with paced accounts (issue 21): the real
/// Telegram sender to the local peer, `FAIR_ACCOUNTS` accounts paced `FAIR_INTERVAL_MS` apart,
/// four workers. For `seconds`, one tenant sends a burst of half the run's pool capacity at
/// once while three steady tenants each send a tenth of the capacity, evenly; then the queue
/// drains. Answers the table's rows: per tenant, messages and p50 / p99 of `sent − accepted`
/// (the request's own timestamps).
async fn fairness(store: &str, store_url: &str, seconds: u64) -> anyhow::Result<String> {
    use verigram_dev_telegram::{PeerConfig, TelegramPeer};
    let phones: Vec<String> = (1..=FAIR_ACCOUNTS).map(|i| format!("+4477009001{i:02}")).collect();
    let config = PeerConfig { accounts: phones.clone(), auto_users: true, ..Default::default() };
    let peer = TelegramPeer::start("127.0.0.1:0".parse()?, config).await?;
    let extra = format!(
        "[sender]\nkind = \"telegram\"\ndev_peers = true\n[pool]\ninterval_ms = {FAIR_INTERVAL_MS}\ndaily_cap = 1000000\n"
    );
    let (services, burst) = service_with(store_url, &extra).await?;
    for (i, phone) in phones.iter().enumerate() {
        let phone = PhoneNumber::parse(phone).map_err(|_| anyhow::anyhow!("phone"))?;
        services.add_dev_telegram_account(&format!("tg{i}"), &phone, peer.addr()).await?;
    }
    let mut callers = vec![("burst", burst)];
    for name in ["steady 1", "steady 2", "steady 3"] {
        callers.push((name, common::rich_caller(&services, None).await?));
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = tokio::task::JoinSet::new();
    for n in 0..4 {
        workers.spawn(Worker::new(Arc::clone(&services), format!("fair-{n}")).run(stopped.clone()));
    }
    let capacity = FAIR_ACCOUNTS as f64 * 1000.0 / FAIR_INTERVAL_MS as f64;
    let burst_size = (capacity * seconds as f64 / 2.0) as usize;
    let steady_rate = capacity / 10.0;
    let mut senders = tokio::task::JoinSet::new();
    for (i, (name, caller)) in callers.iter().enumerate() {
        let (services, caller, name) = (Arc::clone(&services), caller.clone(), *name);
        senders.spawn(async move {
            let (count, gap) = if i == 0 {
                (burst_size, Duration::ZERO)
            } else {
                ((steady_rate * seconds as f64) as usize, Duration::from_secs_f64(1.0 / steady_rate))
            };
            let mut ids = Vec::with_capacity(count);
            for k in 0..count {
                let status =
                    services.send(&caller, command(i * 100_000 + k)?).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                ids.push(RequestId::parse(&status.request_id).map_err(|_| anyhow::anyhow!("id"))?);
                tokio::time::sleep(gap).await;
            }
            Ok::<_, anyhow::Error>((name, caller, ids))
        });
    }
    let mut sent = Vec::new();
    while let Some(done) = senders.join_next().await {
        sent.push(done??);
    }
    let deadline = Instant::now() + Duration::from_secs(seconds * 3 + 30);
    while services.store.delivery_backlog().await.map_err(|e| anyhow::anyhow!("{e}"))?.total() > 0 {
        anyhow::ensure!(Instant::now() < deadline, "the queue did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    while workers.join_next().await.is_some() {}
    sent.sort_by_key(|(name, _, _)| *name);
    let now = verigram::domain::Clock::now(&SystemClock);
    let mut rows = String::new();
    for (name, caller, ids) in sent {
        let count = ids.len();
        let mut waits = Vec::with_capacity(count);
        for id in ids {
            let record =
                services.store.request(&caller.tenant.id, id, now).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            let record = record.context("request gone")?;
            let sent_at = record.delivery.context("not sent")?.at;
            waits.push((sent_at.millis() - record.created_at.millis()) as f64 / 1000.0);
        }
        waits.sort_by(f64::total_cmp);
        let pct = |p: f64| waits[((waits.len() as f64 - 1.0) * p).round() as usize];
        let load =
            if name == "burst" { format!("{count} at once") } else { format!("{steady_rate:.1}/s for {seconds} s") };
        writeln!(rows, "| {store} | {name} | {load} | {count} | {:.2} | {:.2} |", pct(0.5), pct(0.99))?;
    }
    anyhow::ensure!(peer.messages_sent() == peer.arrivals().len(), "the peer's counts disagree");
    Ok(rows)
}

/// A fresh store of one kind: "memory", "redis" (one redis-server) or "cluster" (six nodes).
enum Backing {
    Memory,
    Redis(RedisServer),
    Cluster(RedisCluster),
}

impl Backing {
    fn start(kind: &str) -> anyhow::Result<Self> {
        Ok(match kind {
            "redis" => Self::Redis(RedisServer::start().context("redis-server")?),
            "cluster" => Self::Cluster(RedisCluster::start().context("redis cluster")?),
            _ => Self::Memory,
        })
    }

    fn url(&self) -> String {
        match self {
            Self::Memory => "memory://".to_owned(),
            Self::Redis(r) => r.url(),
            Self::Cluster(c) => c.url(),
        }
    }
}

fn main() -> anyhow::Result<()> {
    let full = common::full_run();
    let jobs = if full { 5000 } else { 20 };
    verigram::telemetry::init(&settings("memory://", "")?.log);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut table = String::from("| store | workers | jobs | jobs/s |\n|---|---:|---:|---:|\n");
    let mut latencies = String::from("| store | sends | accept → delivered p50 ms | p99 ms |\n|---|---:|---:|---:|\n");
    for store in ["memory", "redis", "cluster"] {
        for workers in [1, 2, 4] {
            let backing = Backing::start(store)?;
            eprintln!("delivery: {store}, {workers} worker(s) …");
            let rate = rt.block_on(drain(&backing.url(), jobs, workers))?;
            writeln!(table, "| {store} | {workers} | {jobs} | {rate:.0} |")?;
        }
        let backing = Backing::start(store)?;
        let url = backing.url();
        let count = if full { 500 } else { 5 };
        let (p50, p99) = rt.block_on(latency(&url, count))?;
        writeln!(latencies, "| {store} | {count} | {p50:.0} | {p99:.0} |")?;
    }
    let seconds = if full { 30 } else { 1 };
    let mut fair = String::from(
        "| store | tenant | load | messages | send → sent p50 s | p99 s |\n|---|---|---|---:|---:|---:|\n",
    );
    for store in ["memory", "redis"] {
        let backing = Backing::start(store)?;
        eprintln!("delivery: fairness on {store}, {seconds} s …");
        fair.push_str(&rt.block_on(fairness(store, &backing.url(), seconds))?);
    }
    let capacity = FAIR_ACCOUNTS as f64 * 1000.0 / FAIR_INTERVAL_MS as f64;
    let mut telegram = String::from("| sender | accounts | workers | jobs | jobs/s |\n|---|---:|---:|---:|---:|\n");
    for accounts in [1, 4] {
        eprintln!("delivery: Telegram to the local peer, {accounts} account(s) …");
        let rate = rt.block_on(drain_telegram(jobs / 5, accounts, 4))?;
        writeln!(telegram, "| Telegram (local peer) | {accounts} | 4 | {} | {rate:.0} |", jobs / 5)?;
    }
    let sandbox = rt.block_on(drain("memory://", jobs / 5, 4))?;
    writeln!(telegram, "| sandbox | 1 | 4 | {} | {sandbox:.0} |", jobs / 5)?;
    let report = format!(
        "## Delivery through the queue and pool to the sandbox\n\n{table}\n{latencies}\n## Delivery through the Telegram sender (memory store)\n\n{telegram}\n## Fair delivery: one bursting tenant, three steady ones\n\nPool: {FAIR_ACCOUNTS} Telegram accounts (local peer) paced {FAIR_INTERVAL_MS} ms apart: {capacity:.0} messages/s.\n\n{fair}"
    );
    common::publish("delivery", &report)
}
