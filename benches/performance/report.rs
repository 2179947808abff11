//! The table: each row's ratio to its baseline, whether it met its target, and where its CPU
//! went. Pure functions of the rows, so the verdict that sets the exit code is the table's.

use crate::rows::{HashOp, Row, StoreKind, Target};
use crate::Options;
use std::fmt::Write as _;
use std::time::Duration;

/// Whether a row met its target; `None` when it has none or its baseline is missing.
pub fn verdict(row: &Row, rows: &[Row]) -> Option<bool> {
    let (ratio, goal) = ratio_to_target(row, rows)?;
    Some(ratio >= goal)
}

/// The row's ratio to what its target compares it with, and the target.
fn ratio_to_target(row: &Row, rows: &[Row]) -> Option<(f64, f64)> {
    let (baseline, goal) = target_baseline(row, rows)?;
    Some((row.capacity.rps / row.beside.unwrap_or(baseline.capacity.rps), goal))
}

/// Where the ratio comes from, in CPU per request (all parties share the same cores, so
/// capacity follows their sum): the baseline's total over the row's, and the ceiling — the
/// same with the row's server CPU replaced by the baseline's, i.e. the ratio verigram would
/// reach if everything it does beyond one Redis call cost no server CPU at all. What is
/// left is the load generator's and Redis's share of the work.
fn cpu_ratios(row: &Row, rows: &[Row]) -> Option<(f64, f64)> {
    let (baseline, _) = target_baseline(row, rows).filter(|(b, _)| b.cpu.redis.is_some())?;
    let (b, r) = (&baseline.cpu, &row.cpu);
    let b_total = b.server? + b.client? + b.redis?;
    let rest = r.client? + r.redis.unwrap_or(0.0);
    Some((b_total / (r.server? + rest), b_total / (b.server? + rest)))
}

/// The baseline row the row's target compares it with, and the target.
fn target_baseline<'a>(row: &Row, rows: &'a [Row]) -> Option<(&'a Row, f64)> {
    let base = |prefix: &str| rows.iter().find(|r| r.name.starts_with(prefix) && r.capacity.rps > 0.0);
    let (baseline, goal) = match row.target {
        Target::None => return None,
        Target::OneCall(goal) => {
            let kind = if row.store == Some(StoreKind::Cluster) { "cluster" } else { "redis" };
            (base(&format!("one Redis script call ({kind})"))?, goal)
        }
        Target::Hashing(goal, HashOp::Hash) => (base("argon2id hash alone")?, goal),
        Target::Hashing(goal, HashOp::Verify) => (base("argon2id verify alone")?, goal),
        // Measured beside the row (`Row::beside`); the memory store's plain sends stand in
        // when a row has none.
        Target::Sends(goal) => (base("memory: send, hmac-sha256")?, goal),
    };
    Some((baseline, goal))
}

pub fn render(rows: &[Row], opts: &Options, took: Duration) -> String {
    let noop = rows.iter().find(|r| r.name.starts_with("no-work")).map(|r| r.capacity.rps);
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let mut s = String::new();
    let _ = writeln!(s, "## verigram performance ({})\n", if opts.full { "full run" } else { "smoke run" });
    let _ = writeln!(
        s,
        "One process on {cores} cores; each server has {} actix worker thread(s) and one tokio thread; verigram \
         runs `--role api`, limits off. Capacity: closed loop, {} in flight, {:.1} s after {:.1} s warm-up. \
         Latency: open loop at {:.0}% of the capacity just measured, {:.1} s, from each request's due time. \
         CPU µs/req over the capacity phase: server = this process minus the load generator's thread (10 ms \
         ticks), client = the load generator, redis = redis-server(s) `INFO cpu`. Ratio: capacity over the \
         baseline the target names (one script call on the same Redis or cluster; the argon2id hashing alone \
         for argon2id rows; the same instance's sends without a callback for the callback-DNS rows), measured \
         again right before and after the row: the mean of the two is `beside` \
         (the memory store's hmac rows use the single Redis's first measurement). CPU ratio: the one-call baseline's \
         server + client + redis µs/req over the row's; ceiling: the same with the row's server µs replaced \
         by the baseline's (the most a row could reach if verigram's own work were free).\n",
        opts.workers,
        opts.concurrency,
        opts.phase.as_secs_f64(),
        opts.warmup.as_secs_f64(),
        opts.load * 100.0,
        opts.phase.as_secs_f64(),
    );
    let _ = writeln!(
        s,
        "| scenario | req/s | ÷ no-work | beside | ratio | target | met | CPU ratio | ceiling | open-loop req/s | p50 ms \
         | p99 ms | errors | server µs/req | client µs/req | redis µs/req |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|:-:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let micros = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.0}"));
    for r in rows {
        let (ratio, target, met) = match ratio_to_target(r, rows) {
            Some((ratio, goal)) => {
                (format!("{ratio:.2}"), format!("≥ {goal}"), if ratio >= goal { "yes" } else { "**no**" }.to_owned())
            }
            None => ("–".into(), "–".into(), "".into()),
        };
        let (open, p50, p99, open_errors) = match &r.latency {
            Some(l) => (
                format!("{:.0} of {:.0}", l.achieved, l.offered),
                format!("{:.2}", l.p50.as_secs_f64() * 1e3),
                format!("{:.2}", l.p99.as_secs_f64() * 1e3),
                l.errors,
            ),
            None => ("–".into(), "–".into(), "–".into(), 0),
        };
        let vs_noop = noop.filter(|n| *n > 0.0).map_or_else(|| "–".into(), |n| format!("{:.2}", r.capacity.rps / n));
        let (cpu_ratio, ceiling) = cpu_ratios(r, rows)
            .map_or_else(|| ("–".into(), "–".into()), |(c, m)| (format!("{c:.2}"), format!("{m:.2}")));
        let _ = writeln!(
            s,
            "| {}{} | {:.0} | {vs_noop} | {} | {ratio} | {target} | {met} | {cpu_ratio} | {ceiling} | {open} | {p50} | {p99} \
             | {} | {} | {} | {} |",
            if r.group == "verigram" { String::new() } else { format!("{}: ", r.group) },
            r.name,
            r.capacity.rps,
            r.beside.map_or_else(|| "–".to_owned(), |b| format!("{b:.0}")),
            r.capacity.errors + open_errors,
            micros(r.cpu.server),
            micros(r.cpu.client),
            micros(r.cpu.redis),
        );
    }
    let _ = writeln!(s, "\nWhole run: {:.1} s.", took.as_secs_f64());
    s
}
