//! Redis memory per live request, and what is left of requests once they are over.
//!
//! On a fresh redis-server, through the service layer with a clock the bench moves (hmac-sha256
//! code hashes, the sandbox sender, limits off): one send and its delivery first (so the
//! tenant, its stream and group, and the sender account exist), then `N` sends, delivered by a
//! worker loop. Measured: `used_memory` and keys before and after, per request. Then checked,
//! failing the run when untrue:
//! - every key the requests added has an expiry, at most `store.request_retention` away; no key
//!   without one was added (the keys without an expiry are the same before and after);
//! - the delivery stream holds no job once the messages went out;
//! - once the clock passes the codes' validity and a worker round runs the timed tasks, the
//!   tenant's schedule of timed tasks is empty again, and what remains of each request is its
//!   record (kept for `request_retention` so late checks answer `expired`) and its entry in the
//!   recipient's read-receipt index (the same lifetime).
//!
//! Run: `cargo bench --bench footprint` (table to stdout and `target/bench-results/footprint.md`).
//! Without `--bench`, or with `--test`, it is a smoke run of a few requests.

use anyhow::{ensure, Context};
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use verigram::config::Settings;
use verigram::domain::ManualClock;
use verigram::service::{Caller, Services};
use verigram::startup::Application;
use verigram::workers::{Outcome, Worker};
use verigram_testkit::RedisServer;

#[path = "common/mod.rs"]
mod common;

/// Keys and their remaining lifetime (ms; -1 without expiry).
fn keys(conn: &mut redis::Connection) -> anyhow::Result<Vec<(String, i64)>> {
    let mut out = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) =
            redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(1000).query(conn).context("SCAN")?;
        for key in batch {
            let ttl: i64 = redis::cmd("PTTL").arg(&key).query(conn).context("PTTL")?;
            out.push((key, ttl));
        }
        if next == 0 {
            return Ok(out);
        }
        cursor = next;
    }
}

fn used_memory(conn: &mut redis::Connection) -> anyhow::Result<i64> {
    let info: String = redis::cmd("INFO").arg("memory").query(conn).context("INFO memory")?;
    info.lines().find_map(|l| l.strip_prefix("used_memory:")?.trim().parse().ok()).context("used_memory in INFO memory")
}

/// Worker rounds until one finds nothing to do.
async fn drain(services: &Arc<Services>) -> anyhow::Result<()> {
    let worker = Worker::new(Arc::clone(services), "footprint".into());
    while let Outcome::Worked = worker.run_once().await.map_err(|e| anyhow::anyhow!("{e}"))? {}
    Ok(())
}

async fn sends(services: &Arc<Services>, caller: &Caller, from: usize, count: usize) -> anyhow::Result<()> {
    for i in from..from + count {
        services.send(caller, common::send_command(i)?).await.map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    drain(services).await
}

fn main() -> anyhow::Result<()> {
    let n = if common::full_run() { 10_000 } else { 20 };
    let redis = RedisServer::start().context("redis-server")?;
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let settings = Settings::from_toml(&format!(
        "[store]\nurl = {}\n[codes]\nhash = \"hmac-sha256\"\npepper = {}\n[delivery]\nworkers = 0\n[log]\nlevel = \"warn\"\n{}",
        quote(&redis.url()),
        quote(common::PEPPER),
        common::LIMITS_OFF
    ))
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    verigram::telemetry::init(&settings.log);
    let retention = settings.store.request_retention;
    let validity = settings.codes.default_validity;
    let clock = Arc::new(ManualClock::starting_now());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let services = rt.block_on(async {
        let app = Application::build_with(settings, clock.clone(), TcpListener::bind("127.0.0.1:0")?).await?;
        Ok::<_, anyhow::Error>(app.services())
    })?;
    let caller = rt.block_on(common::rich_caller(&services, None))?;
    let tenant = caller.tenant.id.clone();
    let mut conn = redis::Client::open(redis.url().as_str())?.get_connection().context("connect to redis-server")?;

    rt.block_on(sends(&services, &caller, 0, 1))?;
    let before_keys = keys(&mut conn)?;
    let before_memory = used_memory(&mut conn)?;
    eprintln!("footprint: {n} sends …");
    rt.block_on(sends(&services, &caller, 1, n))?;
    let after_keys = keys(&mut conn)?;
    let after_memory = used_memory(&mut conn)?;

    let permanent = |ks: &[(String, i64)]| -> BTreeSet<String> {
        ks.iter().filter(|(_, ttl)| *ttl == -1).map(|(k, _)| k.clone()).collect()
    };
    let (kept_before, kept_after) = (permanent(&before_keys), permanent(&after_keys));
    ensure!(
        kept_after.is_subset(&kept_before),
        "keys without an expiry were added: {:?}",
        kept_after.difference(&kept_before).take(5).collect::<Vec<_>>()
    );
    let longest = after_keys.iter().map(|(_, ttl)| *ttl).max().unwrap_or(-1);
    ensure!(longest <= retention.as_millis() as i64, "a key expires in {longest} ms, after the retention");
    let jobs: u64 = redis::cmd("XLEN").arg(format!("{{t:{tenant}}}:jobs")).query(&mut conn)?;
    ensure!(jobs == 0, "{jobs} jobs left in the stream after delivery");
    let due_key = format!("{{t:{tenant}}}:due");
    let due_live: u64 = redis::cmd("ZCARD").arg(&due_key).query(&mut conn)?;

    clock.advance(validity + Duration::from_secs(1));
    rt.block_on(drain(&services))?;
    let due_over: u64 = redis::cmd("ZCARD").arg(&due_key).query(&mut conn)?;
    ensure!(due_over == 0, "{due_over} timed tasks left once every code's validity was over");
    let over_keys = keys(&mut conn)?;
    let over_memory = used_memory(&mut conn)?;
    let kept_over = permanent(&over_keys);
    ensure!(
        kept_over.is_subset(&kept_before),
        "keys without an expiry appeared when the codes expired: {:?}",
        kept_over.difference(&kept_before).take(5).collect::<Vec<_>>()
    );
    let count = |ks: &[(String, i64)], what: &str| ks.iter().filter(|(k, _)| k.contains(what)).count();

    let per = |bytes: i64| bytes as f64 / n as f64;
    let mut report = String::from("## Redis footprint of requests\n\n");
    writeln!(
        report,
        "{n} sends (hmac-sha256, generated 6-digit codes, no callback) delivered to the sandbox, on a fresh \
         redis-server; `used_memory` from `INFO memory`.\n"
    )?;
    writeln!(report, "| moment | keys | keys with an expiry | used_memory | bytes per request |")?;
    writeln!(report, "|---|---:|---:|---:|---:|")?;
    for (moment, ks, memory) in [
        ("before (tenant, account, stream exist)", &before_keys, before_memory),
        ("requests live, messages delivered", &after_keys, after_memory),
        ("validity over, timed tasks run", &over_keys, over_memory),
    ] {
        let expiring = ks.iter().filter(|(_, ttl)| *ttl >= 0).count();
        writeln!(report, "| {moment} | {} | {expiring} | {memory} | {:.0} |", ks.len(), per(memory - before_memory))?;
    }
    let expiring_over = over_keys.iter().filter(|(_, ttl)| *ttl >= 0).count();
    writeln!(
        report,
        "\nWhile live: {due_live} timed tasks in the tenant's schedule (the end of each code's validity, the first \
         send's included), 0 jobs in the stream. Once the validity was over and a worker round ran: 0 timed tasks; \
         {expiring_over} keys remain that expire by themselves, {} of them request records, none later than {} s \
         (`store.request_retention`, so a late check still answers); no key without an expiry was added at any \
         moment. The tenant's ledger (one line per charge) is capped at `store.ledger_limit` lines.",
        count(&over_keys, ":r:"),
        retention.as_secs(),
    )?;
    common::publish("footprint", &report)
}
