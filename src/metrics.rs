//! Prometheus metrics: one registry per application (no globals, so two apps in one process
//! count apart), served at `/metrics`.
//!
//! Labels are bounded: a Gateway method, an outcome or error name, a status, a limit, a store
//! operation, a tenant id, a sender account id. Never a phone number, a code, a token or a
//! request id.

use crate::domain::{
    AccountState, Backlog, DeliveryStatus, LimitKind, SenderAccount, Tenant, Timestamp, VerificationStatus,
};
use prometheus::{
    Encoder, Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use std::time::Instant;

/// Seconds, for API and store latency: 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Seconds from a send's acceptance to its message going out: 10 ms to an hour (a put-off
/// message waits for an account).
const SEND_DELAY_BUCKETS: &[f64] =
    &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// Seconds, for a delivery report's attempt (bounded by `callbacks.timeout_ms` plus the wait
/// for its host): 5 ms to 30 s.
const REPORT_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Every metric verigram exports.
pub struct Metrics {
    registry: Registry,
    /// Every family's name, exported or not yet (a labelled family shows once it has a child).
    names: Vec<String>,
    /// HTTP requests by `method` (a Gateway method, or the route of the admin, sandbox and
    /// probe endpoints) and `outcome` (`ok`, a Gateway error name, or an HTTP status class).
    pub api_requests: IntCounterVec,
    pub api_duration: HistogramVec,
    /// Verification messages accepted (charged and queued), by tenant.
    pub sends_accepted: IntCounterVec,
    /// Requests whose delivery status became `status`.
    pub delivery_status: IntCounterVec,
    /// Requests whose verification status became `status` (`code_valid` is a conversion).
    pub verification_status: IntCounterVec,
    /// Fees taken and given back, by tenant: how many, and how much in micro-credits.
    pub charges: IntCounterVec,
    pub charged_micros: IntCounterVec,
    pub refunds: IntCounterVec,
    pub refunded_micros: IntCounterVec,
    /// Calls refused by a rate limit or a blocking budget, by `limit`.
    pub limit_refusals: IntCounterVec,
    /// Calls that passed a budget in `watch` mode (let through, to alert on), by `budget`.
    pub budget_exceeded: IntCounterVec,
    /// Delivery jobs in the queue (`queued`) and put off (`waiting`); the oldest queued one.
    pub queue_jobs: IntGaugeVec,
    pub queue_oldest_age: Gauge,
    /// The same for each tenant: what its codes wait behind.
    pub tenant_queue_jobs: IntGaugeVec,
    pub tenant_queue_oldest_age: GaugeVec,
    /// Jobs taken over from a worker whose lease ran out.
    pub jobs_reclaimed: IntCounter,
    /// Delivery attempts by `outcome`: sent, deferred (no account free), retry (trouble on
    /// the way), unreachable (the recipient cannot get messages).
    pub deliveries: IntCounterVec,
    /// From the accepted send to the message handed to Telegram, by tenant: what the user
    /// waits for.
    pub send_delay: HistogramVec,
    /// Sender accounts by state (`active`, `flood_wait`, `quarantined`, `disabled`, `paused`).
    pub accounts: IntGaugeVec,
    pub account_sends: IntCounterVec,
    pub account_flood_waits: IntCounterVec,
    /// Telegram updates dropped because an account's buffer was full (a gap getDifference fills).
    pub telegram_updates_dropped: IntCounter,
    /// Delivery report attempts by `outcome` (`delivered`, `failed`), and their latency.
    pub report_attempts: IntCounterVec,
    pub report_duration: HistogramVec,
    /// Reports put back for a later attempt, and reports given up on (dead letters).
    pub reports_retried: IntCounter,
    pub reports_dead_lettered: IntCounter,
    /// Store operations by `op`: latency, and the ones that failed.
    pub store_duration: HistogramVec,
    pub store_errors: IntCounterVec,
    /// 1 while the store answered the last scrape's ping.
    pub store_up: IntGauge,
    /// Tenants' balances in credits (1 credit = 1,000,000 micro-credits).
    pub tenant_balance: GaugeVec,
    /// Each tenant's name beside its id (always 1), for dashboards to join on `tenant`.
    pub tenant_info: IntGaugeVec,
    /// Calls refused for a missing or unknown credential (or throttled for sending them), by
    /// `surface`: `gateway`, `admin`, `metrics`, `sandbox`.
    pub auth_failures: IntCounterVec,
    pub build_info: IntGaugeVec,
}

/// An `IntCounterVec`, registered.
macro_rules! counter_vec {
    ($registry:ident, $name:literal, $help:literal, $labels:expr) => {
        register($registry, IntCounterVec::new(Opts::new($name, $help), $labels))?
    };
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Result<Self, prometheus::Error> {
        let r = &Registrar::default();
        let latency = |name: &str, help: &str, labels: &[&str], buckets: &[f64]| {
            register(r, HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels))
        };
        let metrics = Self {
            api_requests: counter_vec!(
                r,
                "verigram_api_requests_total",
                "HTTP requests by method and outcome",
                &["method", "outcome"]
            ),
            api_duration: latency(
                "verigram_api_request_duration_seconds",
                "Time to answer an HTTP request",
                &["method", "outcome"],
                LATENCY_BUCKETS,
            )?,
            sends_accepted: counter_vec!(
                r,
                "verigram_sends_accepted_total",
                "Verification messages accepted for delivery",
                &["tenant"]
            ),
            delivery_status: counter_vec!(
                r,
                "verigram_delivery_status_total",
                "Requests whose delivery status became this status",
                &["status"]
            ),
            verification_status: counter_vec!(
                r,
                "verigram_verification_status_total",
                "Requests whose verification status became this status",
                &["status"]
            ),
            charges: counter_vec!(r, "verigram_charges_total", "Fees taken", &["tenant"]),
            charged_micros: counter_vec!(
                r,
                "verigram_charged_micro_credits_total",
                "Micro-credits taken in fees",
                &["tenant"]
            ),
            refunds: counter_vec!(r, "verigram_refunds_total", "Fees given back", &["tenant"]),
            refunded_micros: counter_vec!(
                r,
                "verigram_refunded_micro_credits_total",
                "Micro-credits given back",
                &["tenant"]
            ),
            limit_refusals: counter_vec!(
                r,
                "verigram_rate_limited_total",
                "Calls refused by a rate limit or a blocking budget",
                &["limit"]
            ),
            budget_exceeded: counter_vec!(
                r,
                "verigram_budget_exceeded_total",
                "Calls let through past a spending budget in watch mode",
                &["budget"]
            ),
            queue_jobs: register(
                r,
                IntGaugeVec::new(Opts::new("verigram_queue_jobs", "Delivery jobs not yet done"), &["state"]),
            )?,
            queue_oldest_age: register(
                r,
                Gauge::new("verigram_queue_oldest_job_age_seconds", "Age of the oldest queued delivery job"),
            )?,
            tenant_queue_jobs: register(
                r,
                IntGaugeVec::new(
                    Opts::new("verigram_tenant_queue_jobs", "A tenant's delivery jobs not yet done"),
                    &["tenant", "state"],
                ),
            )?,
            tenant_queue_oldest_age: register(
                r,
                GaugeVec::new(
                    Opts::new("verigram_tenant_queue_oldest_job_age_seconds", "Age of a tenant's oldest queued job"),
                    &["tenant"],
                ),
            )?,
            jobs_reclaimed: register(
                r,
                IntCounter::new("verigram_jobs_reclaimed_total", "Jobs taken over after a worker's lease ran out"),
            )?,
            deliveries: counter_vec!(r, "verigram_deliveries_total", "Delivery attempts by outcome", &["outcome"]),
            send_delay: latency(
                "verigram_send_delay_seconds",
                "Time from an accepted send to its message going out",
                &["tenant"],
                SEND_DELAY_BUCKETS,
            )?,
            accounts: register(
                r,
                IntGaugeVec::new(Opts::new("verigram_sender_accounts", "Sender accounts by state"), &["state"]),
            )?,
            account_sends: counter_vec!(
                r,
                "verigram_sender_messages_total",
                "Messages sent, by sender account",
                &["account"]
            ),
            account_flood_waits: counter_vec!(
                r,
                "verigram_sender_flood_waits_total",
                "Flood waits, peer floods and bans met, by sender account and kind",
                &["account", "kind"]
            ),
            telegram_updates_dropped: register(
                r,
                IntCounter::new(
                    "verigram_telegram_updates_dropped_total",
                    "Telegram updates dropped because an account's buffer was full",
                ),
            )?,
            report_attempts: counter_vec!(
                r,
                "verigram_report_attempts_total",
                "Delivery report attempts by outcome",
                &["outcome"]
            ),
            report_duration: latency(
                "verigram_report_duration_seconds",
                "Time a delivery report attempt took",
                &["outcome"],
                REPORT_BUCKETS,
            )?,
            reports_retried: register(
                r,
                IntCounter::new("verigram_reports_retried_total", "Delivery reports put back for another attempt"),
            )?,
            reports_dead_lettered: register(
                r,
                IntCounter::new("verigram_reports_dead_lettered_total", "Delivery reports given up on"),
            )?,
            store_duration: latency(
                "verigram_store_operation_duration_seconds",
                "Time a store operation took",
                &["op"],
                LATENCY_BUCKETS,
            )?,
            store_errors: counter_vec!(r, "verigram_store_errors_total", "Store operations that failed", &["op"]),
            store_up: register(r, IntGauge::new("verigram_store_up", "1 when the store answered the last scrape"))?,
            tenant_balance: register(
                r,
                GaugeVec::new(Opts::new("verigram_tenant_balance_credits", "A tenant's balance"), &["tenant"]),
            )?,
            tenant_info: register(
                r,
                IntGaugeVec::new(Opts::new("verigram_tenant_info", "A tenant's name (always 1)"), &["tenant", "name"]),
            )?,
            auth_failures: counter_vec!(
                r,
                "verigram_auth_failures_total",
                "Calls refused for a missing or unknown credential",
                &["surface"]
            ),
            build_info: register(
                r,
                IntGaugeVec::new(
                    Opts::new("verigram_build_info", "The running build and role (always 1)"),
                    &["version", "store", "sender", "role"],
                ),
            )?,
            registry: r.registry.clone(),
            names: r.names.take(),
        };
        // The process's CPU, memory and file descriptors (`process_…`), as every exporter has.
        #[cfg(target_os = "linux")]
        metrics.registry.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        Ok(metrics)
    }

    /// Counters that are born at zero rather than at their first event, so dashboards and
    /// `rate()` see them from the start: the first error of an outage counts, and an alert on
    /// "went up" has a sample before it to compare with.
    pub fn describe(&self, version: &str, store: &str, sender: &str, role: &str) {
        self.build_info.with_label_values(&[version, store, sender, role]).set(1);
        for method in GATEWAY_METHODS {
            for outcome in ["ok", "INTERNAL_ERROR", "SERVICE_UNAVAILABLE"] {
                self.api_requests.with_label_values(&[method, outcome]);
            }
        }
        for surface in AUTH_SURFACES {
            self.auth_failures.with_label_values(&[surface]);
        }
        for limit in LimitKind::ALL {
            self.limit_refusals.with_label_values(&[limit.as_str()]);
        }
        for budget in [LimitKind::DailySpend, LimitKind::CountrySpend] {
            self.budget_exceeded.with_label_values(&[budget.as_str()]);
        }
        for outcome in ["sent", "deferred", "retry", "unreachable"] {
            self.deliveries.with_label_values(&[outcome]);
        }
        for status in ["sent", "delivered", "read", "expired", "revoked"] {
            self.delivery_status.with_label_values(&[status]);
        }
        for status in ["code_valid", "code_invalid", "code_max_attempts_exceeded", "expired"] {
            self.verification_status.with_label_values(&[status]);
        }
        for outcome in ["delivered", "failed"] {
            self.report_attempts.with_label_values(&[outcome]);
        }
        for state in ["queued", "waiting"] {
            self.queue_jobs.with_label_values(&[state]);
        }
        for state in ACCOUNT_STATES {
            self.accounts.with_label_values(&[state]);
        }
    }

    /// Each store operation's error counter, at 0.
    pub fn store_ops(&self, ops: &[&str]) {
        for op in ops {
            self.store_errors.with_label_values(&[op]);
        }
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buffer = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buffer)?;
        String::from_utf8(buffer).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }

    /// The name of every verigram metric (histograms once, by their base name).
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Counts the status changes between two versions of a request.
    pub fn status_changed(&self, before: &StatusPair, after: &StatusPair) {
        if after.0 != before.0 {
            if let Some(status) = after.0 {
                self.delivery_status.with_label_values(&[status.as_str()]).inc();
            }
        }
        if after.1 != before.1 {
            if let Some(status) = after.1 {
                self.verification_status.with_label_values(&[status.as_str()]).inc();
            }
        }
    }

    /// A fee taken (`micros` > 0) or given back (`micros` < 0).
    pub fn billed(&self, tenant: &str, micros: i64) {
        let (count, total) =
            if micros < 0 { (&self.refunds, &self.refunded_micros) } else { (&self.charges, &self.charged_micros) };
        count.with_label_values(&[tenant]).inc();
        total.with_label_values(&[tenant]).inc_by(micros.unsigned_abs());
    }

    pub fn backlog(&self, backlog: &Backlog, now: Timestamp) {
        let age =
            |oldest: Option<Timestamp>| oldest.map_or(0, |at| (now.millis() - at.millis()).max(0)) as f64 / 1000.0;
        self.queue_jobs.with_label_values(&["queued"]).set(clamp(backlog.queued));
        self.queue_jobs.with_label_values(&["waiting"]).set(clamp(backlog.waiting));
        self.queue_oldest_age.set(age(backlog.oldest));
        // Tenants whose jobs are done drop back to 0 (`tenants` gives every tenant its series).
        self.tenant_queue_jobs.reset();
        self.tenant_queue_oldest_age.reset();
        for t in &backlog.tenants {
            let id = t.tenant.as_str();
            self.tenant_queue_jobs.with_label_values(&[id, "queued"]).set(clamp(t.queued));
            self.tenant_queue_jobs.with_label_values(&[id, "waiting"]).set(clamp(t.waiting));
            self.tenant_queue_oldest_age.with_label_values(&[id]).set(age(t.oldest));
        }
    }

    pub fn accounts(&self, accounts: &[SenderAccount], now: Timestamp) {
        // Each account's counters exist from the first scrape that sees it, at 0, so that
        // `increase()` sees their first event.
        for account in accounts {
            self.account_sends.with_label_values(&[&account.id]);
            for kind in ["flood_wait", "peer_flood", "dead"] {
                self.account_flood_waits.with_label_values(&[&account.id, kind]);
            }
        }
        for state in ACCOUNT_STATES {
            let n = accounts.iter().filter(|a| account_state(&a.state, now) == state).count();
            self.accounts.with_label_values(&[state]).set(n as i64);
        }
    }

    /// Balances and names of the tenants there are now; each tenant's counters exist from the
    /// first read that sees it, at 0.
    pub fn tenants(&self, tenants: &[Tenant]) {
        self.tenant_balance.reset();
        self.tenant_info.reset();
        for tenant in tenants {
            let id = tenant.id.as_str();
            let credits = tenant.balance.micros() as f64 / 1_000_000.0;
            self.tenant_balance.with_label_values(&[id]).set(credits);
            self.tenant_info.with_label_values(&[id, &tenant.name]).set(1);
            for counter in
                [&self.sends_accepted, &self.charges, &self.charged_micros, &self.refunds, &self.refunded_micros]
            {
                counter.with_label_values(&[id]);
            }
            self.send_delay.with_label_values(&[id]);
            for state in ["queued", "waiting"] {
                self.tenant_queue_jobs.with_label_values(&[id, state]);
            }
            self.tenant_queue_oldest_age.with_label_values(&[id]);
        }
    }

    /// Brings a counter kept elsewhere (an atomic in a transport) up to `total`.
    pub fn catch_up(counter: &IntCounter, total: u64) {
        let seen = counter.get();
        if total > seen {
            counter.inc_by(total - seen);
        }
    }

    /// Times a store operation.
    pub fn store_op<T, E>(&self, op: &'static str, started: Instant, result: &Result<T, E>) {
        self.store_duration.with_label_values(&[op]).observe(started.elapsed().as_secs_f64());
        if result.is_err() {
            self.store_errors.with_label_values(&[op]).inc();
        }
    }

    pub fn report_attempt(&self, delivered: bool, started: Instant) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.report_attempts.with_label_values(&[outcome]).inc();
        self.report_duration.with_label_values(&[outcome]).observe(started.elapsed().as_secs_f64());
    }
}

/// A request's delivery and verification status, to compare before and after a change.
pub type StatusPair = (Option<DeliveryStatus>, Option<VerificationStatus>);

/// The Gateway methods, as `api_requests` names them.
const GATEWAY_METHODS: [&str; 4] =
    ["sendVerificationMessage", "checkSendAbility", "checkVerificationStatus", "revokeVerificationMessage"];

/// Where a credential is asked for.
pub const AUTH_SURFACES: [&str; 4] = ["gateway", "admin", "metrics", "sandbox"];

const ACCOUNT_STATES: [&str; 5] = ["active", "flood_wait", "quarantined", "disabled", "paused"];

fn account_state(state: &AccountState, now: Timestamp) -> &'static str {
    match state {
        AccountState::Active => "active",
        AccountState::FloodWait { until } if *until <= now => "active",
        AccountState::FloodWait { .. } => "flood_wait",
        AccountState::Quarantined => "quarantined",
        AccountState::Disabled => "disabled",
        AccountState::Paused => "paused",
    }
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A registry that remembers the names registered with it.
#[derive(Default)]
struct Registrar {
    registry: Registry,
    names: std::cell::RefCell<Vec<String>>,
}

fn register<M: prometheus::core::Collector + Clone + 'static>(
    registrar: &Registrar,
    metric: Result<M, prometheus::Error>,
) -> Result<M, prometheus::Error> {
    let metric = metric?;
    registrar.names.borrow_mut().extend(metric.desc().iter().map(|d| d.fq_name.clone()));
    registrar.registry.register(Box::new(metric.clone()))?;
    Ok(metric)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_named_before_its_first_event() {
        let m = Metrics::new().unwrap();
        assert!(m.names().iter().any(|n| n == "verigram_api_requests_total"));
        assert!(m.names().iter().all(|n| n.starts_with("verigram_")));
        assert_eq!(m.names().len(), 33);
    }

    #[test]
    fn two_registries_count_apart() {
        let (a, b) = (Metrics::new().unwrap(), Metrics::new().unwrap());
        a.jobs_reclaimed.inc();
        assert_eq!(a.jobs_reclaimed.get(), 1);
        assert_eq!(b.jobs_reclaimed.get(), 0);
    }

    #[test]
    fn refunds_and_charges_are_told_apart() {
        let m = Metrics::new().unwrap();
        m.billed("t1", 50_000);
        m.billed("t1", -50_000);
        m.billed("t1", 50_000);
        assert_eq!(m.charges.with_label_values(&["t1"]).get(), 2);
        assert_eq!(m.charged_micros.with_label_values(&["t1"]).get(), 100_000);
        assert_eq!(m.refunds.with_label_values(&["t1"]).get(), 1);
        assert_eq!(m.refunded_micros.with_label_values(&["t1"]).get(), 50_000);
    }

    #[test]
    fn a_counter_kept_elsewhere_catches_up_without_going_back() {
        let m = Metrics::new().unwrap();
        Metrics::catch_up(&m.telegram_updates_dropped, 5);
        Metrics::catch_up(&m.telegram_updates_dropped, 3);
        assert_eq!(m.telegram_updates_dropped.get(), 5);
    }

    #[test]
    fn described_families_are_exported_before_any_event() {
        let m = Metrics::new().unwrap();
        m.describe("0.1.0", "memory", "sandbox", "all");
        let text = m.render().unwrap();
        assert!(text.contains(r#"verigram_delivery_status_total{status="read"} 0"#), "{text}");
        assert!(text.contains(r#"verigram_rate_limited_total{limit="wrong_checks"} 0"#), "{text}");
        assert!(text.contains(r#"verigram_build_info{role="all",sender="sandbox",store="memory",version="0.1.0"} 1"#));
    }
}
