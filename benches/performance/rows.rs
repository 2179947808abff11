//! A row of the report, and how one is measured: warm-up, capacity beside its baseline, then
//! latency. Kept apart from the scenarios so every scenario is measured the same way.

use crate::cpu::{CpuPerRequest, CpuSample};
use crate::load::{closed_loop, open_loop, percentile, Expect, MakeCall};
use crate::Bench;
use std::time::Duration;
use tokio::runtime::Runtime;

/// Where a row's store lives, and what its baseline is.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Redis,
    Cluster,
}

impl StoreKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Redis => "redis",
            Self::Cluster => "cluster",
        }
    }
}

/// What a row is held to.
#[derive(Clone, Copy)]
pub enum Target {
    None,
    /// At least this fraction of the one-call baseline of the row's Redis (single for memory).
    OneCall(f64),
    /// At least this fraction of the hashing alone (hash for sends, verify for checks).
    Hashing(f64, HashOp),
    /// At least this fraction of the same instance's sends without a callback.
    Sends(f64),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum HashOp {
    Hash,
    Verify,
}

/// One measured scenario.
pub struct Row {
    pub group: &'static str,
    pub name: String,
    pub store: Option<StoreKind>,
    pub target: Target,
    pub capacity: Phase,
    /// The one-call baseline's capacity measured right before and right after this row's
    /// (their mean), for rows held to it on Redis or the cluster: the ratio compares
    /// measurements seconds apart, not minutes, so drift in the machine's speed cancels.
    pub beside: Option<f64>,
    pub latency: Option<Latency>,
    pub cpu: CpuPerRequest,
}

/// A closed-loop phase.
#[derive(Default)]
pub struct Phase {
    pub errors: usize,
    pub rps: f64,
}

/// An open-loop phase.
pub struct Latency {
    pub offered: f64,
    pub achieved: f64,
    pub errors: usize,
    pub p50: Duration,
    pub p99: Duration,
}

impl Bench {
    /// Warm-up, capacity (closed loop) and latency (open loop) of one scenario; the ids its
    /// answers carried are kept in `self.ids`.
    #[allow(clippy::too_many_arguments)]
    pub fn scenario(
        &mut self,
        group: &'static str,
        name: String,
        store: Option<StoreKind>,
        target: Target,
        make: &MakeCall,
        expect: Expect,
        limit: Option<usize>,
        probes: &mut [redis::Connection],
    ) {
        let label = store.map_or_else(|| name.clone(), |s| format!("{}: {name}", s.name()));
        eprintln!("performance: {label} …");
        let opts = self.opts.clone();
        let client = &self.client;
        let warm =
            self.client_rt.block_on(closed_loop(client, make, 0..usize::MAX, opts.concurrency, opts.warmup, expect));
        // A scenario that can make only `limit` requests (each revokes a request of its own)
        // leaves half of what is left for the open loop.
        let last = limit.map_or(usize::MAX, |l| warm.next + l.saturating_sub(warm.next) / 2);
        let mut beside_errors = 0;
        let (beside_call, hashing, server_rt) = (self.beside.as_ref(), self.hashing.as_ref(), &self.server_rt);
        let beside_sends = self.beside_sends.as_ref();
        // The row's baseline, measured now for as long as the row's capacity phase.
        let mut baseline_rps = |rt: &Runtime| match target {
            Target::OneCall(_) | Target::Sends(_) => {
                let call = if matches!(target, Target::Sends(_)) { beside_sends? } else { beside_call? };
                let expect = if matches!(target, Target::Sends(_)) { Expect::NewRequest } else { Expect::Ok };
                let run = rt.block_on(closed_loop(client, call, 0..usize::MAX, opts.concurrency, opts.phase, expect));
                beside_errors += run.errors;
                Some(run.completed() as f64 / run.elapsed.as_secs_f64().max(1e-9))
            }
            Target::Hashing(_, op) => {
                let (done, took) = hashing?.run(server_rt, op, opts.phase);
                Some(done as f64 / took.as_secs_f64().max(1e-9))
            }
            Target::None => None,
        };
        let baseline_before = baseline_rps(&self.client_rt);
        let before = CpuSample::take(probes);
        let capacity =
            self.client_rt.block_on(closed_loop(client, make, warm.next..last, opts.concurrency, opts.phase, expect));
        let after = CpuSample::take(probes);
        let beside = baseline_before.zip(baseline_rps(&self.client_rt)).map(|(a, b)| (a + b) / 2.0);
        let rps = capacity.completed() as f64 / capacity.elapsed.as_secs_f64().max(1e-9);
        let offered = rps * opts.load;
        let open = self.client_rt.block_on(open_loop(
            client,
            make,
            capacity.next,
            opts.concurrency * 2,
            offered,
            opts.phase,
            expect,
        ));
        let mut latencies = open.latencies.clone();
        latencies.sort_unstable();
        let achieved = open.completed() as f64 / open.elapsed.as_secs_f64().max(1e-9);
        self.rows.push(Row {
            group,
            name: label,
            store,
            target,
            capacity: Phase { errors: capacity.errors + warm.errors + beside_errors, rps },
            beside,
            // Nothing left to send (a scenario with a limit): no latency to show.
            latency: (open.completed() + open.errors > 0).then(|| Latency {
                offered,
                achieved,
                errors: open.errors,
                p50: percentile(&latencies, 0.50),
                p99: percentile(&latencies, 0.99),
            }),
            // A smoke run is far too short for 10 ms ticks.
            cpu: if opts.full { before.per_request(&after, capacity.completed()) } else { CpuPerRequest::default() },
        });
        for outcome in [warm, capacity, open] {
            self.ids.extend(outcome.ids);
        }
    }
}
