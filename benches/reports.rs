//! Delivery reports: how many reports a second reach a local receiver, and the time from a
//! status change to its report's arrival, beside a bare baseline run in the same process: the
//! same signed POSTs sent straight from a loop with reqwest, no outbox and no store.
//!
//! Set-up (one process, memory store): sends with a `callback_url` are accepted through the
//! service layer and delivered to the sandbox (two status changes each: `sent`, `delivered`);
//! two delivery workers run as the server runs them. The receiver is an actix-web server on
//! loopback answering 200. Throughput counts reports from the first send to the last report's
//! arrival; latency is the arrival time minus the time the `delivered` change was stored.
//!
//! Run: `cargo bench --bench reports` (table to stdout and `target/bench-results/reports.md`).
//! Without `--bench`, or with `--test`, it is a smoke run of a few reports.

use actix_web::{web, App, HttpResponse, HttpServer};
use anyhow::Context;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};
use verigram::config::Settings;
use verigram::domain::{CallbackPolicy, CallbackUrl, Clock, CodeLength, PhoneNumber, RequestId, SystemClock};
use verigram::service::{CodeSpec, SendCommand};
use verigram::startup::Application;
use verigram::workers::Worker;

#[path = "common/mod.rs"]
mod common;

use common::PEPPER;

/// Arrivals at the receiver: (request id, delivery status) → unix milliseconds.
type Arrivals = Arc<parking_lot::Mutex<HashMap<(String, String), i64>>>;

fn unix_ms() -> i64 {
    Clock::now(&SystemClock).millis()
}

async fn receiver() -> anyhow::Result<(String, Arrivals, actix_web::dev::ServerHandle)> {
    let arrivals: Arrivals = Arc::default();
    let seen = Arc::clone(&arrivals);
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let url = format!("http://{}/cb", listener.local_addr()?);
    let server = HttpServer::new(move || {
        let seen = Arc::clone(&seen);
        App::new().default_service(web::to(move |body: web::Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                let at = unix_ms();
                if let Ok(report) = serde_json::from_slice::<serde_json::Value>(&body) {
                    let id = report["request_id"].as_str().unwrap_or_default().to_owned();
                    let status = report["delivery_status"]["status"].as_str().unwrap_or_default().to_owned();
                    seen.lock().insert((id, status), at);
                }
                HttpResponse::Ok().finish()
            }
        }))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)?
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    Ok((url, arrivals, handle))
}

fn settings(per_host: usize) -> anyhow::Result<Settings> {
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    Settings::from_toml(&format!(
        "[codes]\nhash = \"hmac-sha256\"\npepper = {}\n[delivery]\nworkers = 0\nbatch = 32\n[callbacks]\nallow_http = true\nallow_private_networks = true\nper_host_concurrency = {per_host}\n[log]\nlevel = \"warn\"\n{}",
        quote(PEPPER),
        common::LIMITS_OFF
    ))
    .map_err(|e| anyhow::anyhow!("{e}"))
}

/// `count` sends with reports to `url`, all at once or `pace` apart: reports a second, and
/// p50/p99 ms from the `delivered` change to its report's arrival.
async fn through_the_outbox(
    url: &str,
    arrivals: &Arrivals,
    count: usize,
    per_host: usize,
    pace: Option<Duration>,
) -> anyhow::Result<(f64, f64, f64)> {
    arrivals.lock().clear();
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let app = Application::build_with(settings(per_host)?, Arc::new(SystemClock), listener).await?;
    let services = app.services();
    let caller = common::rich_caller(&services, None).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = tokio::task::JoinSet::new();
    for n in 0..2 {
        workers.spawn(Worker::new(Arc::clone(&services), format!("bench-{n}")).run(stopped.clone()));
    }
    let policy = CallbackPolicy { allow_http: true, allow_private_networks: true };
    let callback = CallbackUrl::parse(url, policy).map_err(|e| anyhow::anyhow!("{e}"))?;
    let started = Instant::now();
    let mut ids = Vec::with_capacity(count);
    for i in 0..count {
        let cmd = SendCommand {
            phone: PhoneNumber::parse(&format!("4479111{:05}", i % 100_000)).map_err(|_| anyhow::anyhow!("phone"))?,
            code: CodeSpec::Generate(CodeLength::parse("6").map_err(|_| anyhow::anyhow!("length"))?),
            request_id: None,
            sender_username: None,
            callback_url: Some(callback.clone()),
            payload: None,
            ttl: None,
        };
        ids.push(services.send(&caller, cmd).await?.request_id);
        if let Some(pace) = pace {
            tokio::time::sleep(pace).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while arrivals.lock().len() < 2 * count {
        anyhow::ensure!(Instant::now() < deadline, "only {} of {} reports arrived", arrivals.lock().len(), 2 * count);
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let _ = stop.send(true);
    while workers.join_next().await.is_some() {}
    let mut latencies = Vec::with_capacity(count);
    for id in &ids {
        let request = RequestId::parse(id).map_err(|_| anyhow::anyhow!("id"))?;
        let record = services.store.request(&caller.tenant.id, request, Clock::now(&SystemClock)).await?;
        let changed = record.context("request gone")?.delivery.context("not delivered")?.at.millis();
        let arrived = arrivals.lock().get(&(id.clone(), "delivered".to_owned())).copied().context("no report")?;
        latencies.push((arrived - changed) as f64);
    }
    latencies.sort_by(f64::total_cmp);
    let pct = |p: f64| latencies[((latencies.len() as f64 - 1.0) * p).round() as usize];
    Ok(((2 * count) as f64 / elapsed.as_secs_f64(), pct(0.5), pct(0.99)))
}

/// The baseline: the same number of signed POSTs from a loop, 16 at a time.
async fn bare(url: &str, count: usize) -> anyhow::Result<f64> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    let key = verigram::callbacks::sign::SigningKey::for_token("bench");
    let body = r#"{"request_id":"1","phone_number":"447911100000","request_cost":0.01,"delivery_status":{"status":"sent","updated_at":1}}"#;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let per_task = count / 16;
    for _ in 0..16 {
        let (client, url, key) = (client.clone(), url.to_owned(), key.clone());
        tasks.spawn(async move {
            for _ in 0..per_task {
                let ts = unix_ms().to_string();
                let sig = key.sign(&ts, body.as_bytes());
                let answer = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .header("X-Request-Timestamp", ts)
                    .header("X-Request-Signature", sig)
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(answer.status() == 200, "the receiver answered {}", answer.status());
            }
            Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok((per_task * 16) as f64 / started.elapsed().as_secs_f64())
}

fn main() -> anyhow::Result<()> {
    let count = if common::full_run() { 2000 } else { 20 };
    verigram::telemetry::init(&settings(4)?.log);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let report = rt.block_on(async {
        let (url, arrivals, server) = receiver().await?;
        let baseline = bare(&url, 2 * count).await?;
        let mut table = String::from(
            "| path | sends | reports | reports/s | ratio | change → arrival p50 | p99 |\n|---|---|---:|---:|---:|---:|---:|\n",
        );
        writeln!(table, "| bare signed POSTs, 16 at a time (baseline) | | {} | {baseline:.0} | 1 | | |", 2 * count)?;
        for per_host in [16, 64] {
            let (rate, p50, p99) = through_the_outbox(&url, &arrivals, count, per_host, None).await?;
            writeln!(
                table,
                "| outbox → workers → receiver, per_host_concurrency {per_host} | all at once | {} | {rate:.0} | {:.2} | {p50:.0} ms | {p99:.0} ms |",
                2 * count,
                rate / baseline
            )?;
        }
        let paced = count / 4;
        let (rate, p50, p99) =
            through_the_outbox(&url, &arrivals, paced, 16, Some(Duration::from_millis(2))).await?;
        writeln!(
            table,
            "| outbox → workers → receiver, per_host_concurrency 16 | one every 2 ms | {} | {rate:.0} | | {p50:.0} ms | {p99:.0} ms |",
            2 * paced
        )?;
        server.stop(false).await;
        anyhow::Ok(format!("## Delivery reports to a local receiver (memory store)\n\n{table}"))
    })?;
    common::publish("reports", &report)
}
