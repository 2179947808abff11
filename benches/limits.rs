//! The cost of rate limits and budgets on the send path: `sendVerificationMessage` through the
//! service layer (HMAC code hashes, no HTTP, no delivery workers) with every limit and budget
//! off, then with all of them on (rates high enough that nothing is refused, so each send pays
//! for the decision), on the memory store and on Redis, run side by side.
//!
//! Run: `cargo bench --bench limits` (table to stdout and `target/bench-results/limits.md`).
//! Without `--bench`, or with `--test`, it is a smoke run of a few sends.

use anyhow::Context;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Instant;
use verigram::config::Settings;
use verigram::domain::SystemClock;
use verigram::startup::Application;
use verigram_testkit::RedisServer;

#[path = "common/mod.rs"]
mod common;

use common::PEPPER;
const CONCURRENCY: usize = 16;

fn settings(store_url: &str, limits_on: bool) -> anyhow::Result<Settings> {
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let rate =
        if limits_on { "{ rate = 1000000, per = 1, burst = 1000000 }" } else { "{ rate = 0, per = 1, burst = 1 }" };
    let mut toml = format!(
        "[store]\nurl = {}\n[codes]\nhash = \"hmac-sha256\"\npepper = {}\n[delivery]\nworkers = 0\n[log]\nlevel = \"warn\"\n[limits]\n",
        quote(store_url),
        quote(PEPPER)
    );
    for limit in ["tenant", "tenant_daily", "token", "phone", "country", "ip", "wrong_checks"] {
        writeln!(toml, "{limit} = {rate}")?;
    }
    if limits_on {
        writeln!(toml, "country_hourly_spend = {{ cap = 1000000, mode = \"block\" }}")?;
    }
    Settings::from_toml(&toml).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Sends per second with `CONCURRENCY` callers.
async fn sends_per_second(store_url: &str, limits_on: bool, sends: usize) -> anyhow::Result<f64> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let app = Application::build_with(settings(store_url, limits_on)?, Arc::new(SystemClock), listener).await?;
    let services = app.services();
    let mut caller = common::rich_caller(&services, Some("203.0.113.5".parse()?)).await?;
    if limits_on {
        let cap = verigram::domain::Credits::parse("1000000").map_err(|_| anyhow::anyhow!("cap"))?;
        let patch = verigram::service::SettingsPatch { daily_spend_cap: Some(Some(cap)), ..Default::default() };
        caller.tenant = std::sync::Arc::new(services.update_settings(&caller.tenant.id, patch).await?);
    }
    let caller = Arc::new(caller);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let (services, caller) = (Arc::clone(&services), Arc::clone(&caller));
        tasks.spawn(async move {
            for i in (worker..sends).step_by(CONCURRENCY) {
                let cmd = common::send_command(i)?;
                services.send(&caller, cmd).await.map_err(|e| anyhow::anyhow!("send {i}: {e}"))?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(sends as f64 / started.elapsed().as_secs_f64())
}

fn main() -> anyhow::Result<()> {
    let sends = if common::full_run() { 20_000 } else { 64 };
    verigram::telemetry::init(&settings("memory://", false)?.log);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let mut table =
        String::from("| store | limits off, sends/s | all limits on, sends/s | ratio |\n|---|---:|---:|---:|\n");
    for store in ["memory", "redis"] {
        // Alternate off and on twice and keep the better of each, to even out a noisy machine.
        let (mut off, mut on) = (0f64, 0f64);
        for _ in 0..2 {
            for limits_on in [false, true] {
                let redis = (store == "redis").then(RedisServer::start).transpose().context("redis-server")?;
                let url = redis.as_ref().map_or_else(|| "memory://".to_owned(), RedisServer::url);
                eprintln!("limits: {store}, limits {} …", if limits_on { "on" } else { "off" });
                let rate = rt.block_on(sends_per_second(&url, limits_on, sends))?;
                if limits_on {
                    on = on.max(rate)
                } else {
                    off = off.max(rate)
                }
            }
        }
        writeln!(table, "| {store} | {off:.0} | {on:.0} | {:.2} |", on / off)?;
    }
    common::publish(
        "limits",
        &format!("## Rate limits on the send path ({sends} sends, {CONCURRENCY} at a time)\n\n{table}"),
    )
}
