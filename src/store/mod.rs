//! The store: whole, atomic domain operations over two backends.
//!
//! The memory backend is the embedded default (nothing installed, nothing kept across a
//! restart); the Redis backend makes each operation one Lua script over keys that share the
//! tenant's hash tag. The rules themselves (what a check or a revocation does to a request)
//! are pure functions in `domain`; the store applies their result with optimistic concurrency
//! (`update_request`), so the rules are written once for both backends.

mod codec;
mod memory;
mod redis;

pub use self::memory::MemoryStore;
pub use self::redis::{Conn as RedisConnection, RedisStore};

use crate::domain::{
    Backlog, Credits, DeadReport, LedgerEntry, LimitCheck, LimitState, Refusal, RequestId, RequestRecord,
    SenderAccount, SpendCheck, Tenant, TenantId, TenantSettings, Timestamp, TokenRecord,
};
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or did not answer in time: retry later, fail closed now.
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored value could not be read back: a bug or a foreign write, never a client error.
    #[error("stored {what} is corrupt")]
    Corrupt { what: &'static str },
    /// The backend refused an operation (a script error, a wrong type): a bug or a
    /// misconfigured server, not worth retrying.
    #[error("the store refused an operation")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Optimistic updates kept colliding with concurrent writers.
    #[error("too many concurrent updates of one record")]
    Contention,
}

impl StoreError {
    /// Whether trying again later may succeed (workers back off on these).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Contention)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How a request is created together with its fee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Stored and charged; the balance after the charge.
    Created {
        balance: Credits,
    },
    BalanceNotEnough,
    TenantNotFound,
}

/// How an operator's balance adjustment went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdjustOutcome {
    Applied {
        balance: Credits,
    },
    /// The balance would go below zero; nothing changed.
    WouldGoNegative {
        balance: Credits,
    },
    TenantNotFound,
}

/// A change of one request decided by a domain rule, with what moves with it atomically: money
/// (a charge or a refund, with its ledger line), a delivery job, timed tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub record: RequestRecord,
    /// A balance movement of `amount` (negative: a charge) and its ledger line.
    pub ledger: Option<LedgerEntry>,
    /// Queue a delivery job for the request.
    pub enqueue: bool,
    /// Timed tasks for the request (a task scheduled again moves to the new time).
    pub schedule: Vec<Scheduled>,
    /// A report given up on, for the tenant's dead-letter list.
    pub dead_letter: Option<DeadReport>,
}

impl From<RequestRecord> for Change {
    fn from(record: RequestRecord) -> Self {
        Self { record, ledger: None, enqueue: false, schedule: Vec::new(), dead_letter: None }
    }
}

impl Change {
    /// The change with a report of it queued for the request's `callback_url` (when a status
    /// changed), and the dispatching task scheduled if no report was waiting before: the
    /// outbox is written in the same atomic step as the change it reports.
    fn reporting(mut self, before: &RequestRecord, now: Timestamp) -> Self {
        let (record, queued) = before.queue_report(self.record, now);
        self.record = record;
        if queued && before.pending_reports().is_empty() {
            self.schedule.push(Scheduled { task: Task::Report, at: now });
        }
        self
    }
}

/// Every change of a request goes through this: reports of status changes are queued with it.
fn reporting<T, F>(mut decide: F, now: Timestamp) -> impl FnMut(&RequestRecord) -> (Option<Change>, T) + Send
where
    F: FnMut(&RequestRecord) -> (Option<Change>, T) + Send,
{
    move |before| {
        let (change, output) = decide(before);
        (change.map(|c| c.reporting(before, now)), output)
    }
}

/// The state of a limit whose TAT is now `tat` (after the call that moved it).
pub(crate) fn limit_state(check: &LimitCheck, tat: i64, now: Timestamp) -> LimitState {
    let (t, tau) = (check.rate.interval_ms(), check.rate.tolerance_ms());
    let ahead = (tat - now.millis()).max(0);
    LimitState {
        kind: check.kind,
        rate: check.rate,
        remaining: ((tau + t - ahead) / t).max(0) as u32,
        reset: Duration::from_millis(ahead as u64),
    }
}

/// A spending budget's key for the window `now` falls in.
pub(crate) fn spend_key(check: &SpendCheck, now: Timestamp) -> String {
    format!("{}:{}:{}", check.kind.as_str(), check.key, check.window(now))
}

/// Dead letters kept per tenant (the oldest are dropped beyond this).
pub const DEAD_REPORTS_KEPT: usize = 1000;

/// What the scheduler does for a request at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Task {
    /// Queue the delivery job again (a delivery that was put off).
    Deliver,
    /// The request's `ttl` ended: expire and refund what was not delivered, delete what was
    /// not read.
    Ttl,
    /// The code's validity ended: its verification status becomes `expired`.
    Validity,
    /// Send the request's oldest waiting delivery report.
    Report,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Deliver => "send",
            Task::Ttl => "ttl",
            Task::Validity => "valid",
            Task::Report => "report",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Task::Deliver, Task::Ttl, Task::Validity, Task::Report].into_iter().find(|t| t.as_str() == s)
    }
}

/// When a job was queued, from its id (`<ms>-<n>`, a Redis stream id).
pub(crate) fn queued_at(id: &str) -> Option<Timestamp> {
    let (ms, _) = id.split_once('-')?;
    ms.parse().ok().map(Timestamp::from_millis)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    pub task: Task,
    pub at: Timestamp,
}

/// A delivery job claimed by a worker: it holds the job until it acknowledges or defers it, or
/// until the lease runs out and another worker takes it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub tenant: TenantId,
    pub request: RequestId,
    /// The queue's id of the job.
    pub id: String,
    /// Taken over from a worker whose lease ran out.
    pub reclaimed: bool,
}

/// A timed task that came due, leased to one worker until `lease`: if the worker dies, the
/// task comes due again then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTask {
    pub tenant: TenantId,
    pub request: RequestId,
    pub task: Task,
    pub lease: Timestamp,
}

/// How long per-request state is kept, counted from the request's creation.
#[derive(Debug, Clone, Copy)]
pub struct Retention(pub Duration);

impl Retention {
    /// What is left of the retention at `now` (never less than a second, so a write never
    /// makes a key that is already gone).
    pub fn remaining(self, created_at: Timestamp, now: Timestamp) -> Duration {
        let end = created_at.plus(self.0).millis();
        Duration::from_millis((end - now.millis()).max(1000) as u64)
    }

    /// How long to keep `record` from `now`: its retention, or longer while it has reports
    /// waiting (each retry re-extends it), so no report vanishes with its request.
    pub fn keep(self, record: &RequestRecord, now: Timestamp) -> Duration {
        let remaining = self.remaining(record.created_at, now);
        if record.pending_reports().is_empty() {
            remaining
        } else {
            remaining.max(KEEP_WITH_REPORTS)
        }
    }
}

/// Longer than the longest wait between two report attempts (`callbacks.retry_schedule`
/// allows at most 7 days, 8.4 with jitter).
const KEEP_WITH_REPORTS: Duration = Duration::from_secs(9 * 86_400);

/// The configured store: its backend (a closed enum keeps handlers and services free of
/// generics), and the metrics its operations are timed into.
pub struct Store {
    backend: Backend,
    metrics: Option<Arc<Metrics>>,
}

pub enum Backend {
    Memory(MemoryStore),
    Redis(RedisStore),
}

impl From<MemoryStore> for Store {
    fn from(store: MemoryStore) -> Self {
        Self { backend: Backend::Memory(store), metrics: None }
    }
}

impl From<RedisStore> for Store {
    fn from(store: RedisStore) -> Self {
        Self { backend: Backend::Redis(store), metrics: None }
    }
}

/// Forwards a call to whichever backend is configured, timing it as operation `$op`.
macro_rules! on_backend {
    ($self:ident, $op:literal, $s:ident => $call:expr) => {{
        let started = std::time::Instant::now();
        let result = match &$self.backend {
            Backend::Memory($s) => $call,
            Backend::Redis($s) => $call,
        };
        if let Some(metrics) = &$self.metrics {
            metrics.store_op($op, started, &result);
        }
        result
    }};
}

impl Store {
    /// Times every operation into `metrics` from now on.
    pub fn observed_by(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    pub fn kind(&self) -> &'static str {
        match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redis(_) => "redis",
        }
    }

    pub async fn ping(&self) -> StoreResult<()> {
        on_backend!(self, "ping", s => s.ping().await)
    }

    /// Creates a tenant with its first token (and its opening balance in the ledger).
    pub async fn create_tenant(&self, tenant: &Tenant, token: &TokenRecord) -> StoreResult<()> {
        on_backend!(self, "create_tenant", s => s.create_tenant(tenant, token).await)
    }

    pub async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        on_backend!(self, "tenant", s => s.tenant(id).await)
    }

    pub async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        on_backend!(self, "tenants", s => s.tenants().await)
    }

    /// Replaces a tenant's settings; `false` when there is no such tenant.
    pub async fn set_settings(&self, id: &TenantId, settings: &TenantSettings) -> StoreResult<bool> {
        on_backend!(self, "set_settings", s => s.set_settings(id, settings).await)
    }

    /// Adds `entry.amount` (signed) to the balance and appends `entry` to the ledger.
    pub async fn adjust_balance(&self, id: &TenantId, entry: &LedgerEntry) -> StoreResult<AdjustOutcome> {
        on_backend!(self, "adjust_balance", s => s.adjust_balance(id, entry).await)
    }

    /// The newest `limit` ledger lines, newest first.
    pub async fn ledger(&self, id: &TenantId, limit: usize) -> StoreResult<Vec<LedgerEntry>> {
        on_backend!(self, "ledger", s => s.ledger(id, limit).await)
    }

    /// Writes a token record: its lookup entry (removed once it can no longer be used) and the
    /// tenant's index of tokens.
    pub async fn put_token(&self, token: &TokenRecord, now: Timestamp) -> StoreResult<()> {
        on_backend!(self, "put_token", s => s.put_token(token, now).await)
    }

    pub async fn find_token(&self, lookup_key: &str) -> StoreResult<Option<TokenRecord>> {
        on_backend!(self, "find_token", s => s.find_token(lookup_key).await)
    }

    pub async fn tokens(&self, tenant: &TenantId) -> StoreResult<Vec<TokenRecord>> {
        on_backend!(self, "tokens", s => s.tokens(tenant).await)
    }

    /// Stores a new request, takes its fee (`change.ledger`), queues its job and schedules its
    /// tasks, in one atomic step; refuses when the balance is below the fee.
    pub async fn create_request(
        &self,
        tenant: &TenantId,
        change: &Change,
        retention: Retention,
        now: Timestamp,
    ) -> StoreResult<CreateOutcome> {
        on_backend!(self, "create_request", s => s.create_request(tenant, change, retention, now).await)
    }

    pub async fn request(
        &self,
        tenant: &TenantId,
        id: RequestId,
        now: Timestamp,
    ) -> StoreResult<Option<RequestRecord>> {
        on_backend!(self, "request", s => s.request(tenant, id, now).await)
    }

    /// Applies a domain rule to one request atomically: `decide` sees the current record and
    /// returns the change to store (if any) and an output. It may run more than once when
    /// writers collide, so it must be a pure function of the record. `None` when the request
    /// does not exist; otherwise the record as it now is, and the output.
    pub async fn update_request<T, F>(
        &self,
        tenant: &TenantId,
        id: RequestId,
        retention: Retention,
        now: Timestamp,
        decide: F,
    ) -> StoreResult<Option<(RequestRecord, T)>>
    where
        F: FnMut(&RequestRecord) -> (Option<Change>, T) + Send,
        T: Send,
    {
        let decide = reporting(decide, now);
        on_backend!(self, "update_request", s => s.update_request(tenant, id, None, retention, now, decide).await)
    }

    /// As `update_request`, starting from a record the caller has just read (one round trip
    /// less when nobody wrote in between; a stale record only costs a retry).
    pub async fn update_known_request<T, F>(
        &self,
        tenant: &TenantId,
        known: RequestRecord,
        retention: Retention,
        now: Timestamp,
        decide: F,
    ) -> StoreResult<Option<(RequestRecord, T)>>
    where
        F: FnMut(&RequestRecord) -> (Option<Change>, T) + Send,
        T: Send,
    {
        let decide = reporting(decide, now);
        on_backend!(self, "update_known_request", s => s.update_request(tenant, known.id, Some(known), retention, now, decide).await)
    }

    /// Decides the rate limits of one call together: all pass (and, with `consume`, count this
    /// call), or nothing changes and the refusal names the limit with the longest wait.
    pub async fn limit(
        &self,
        tenant: &TenantId,
        checks: &[LimitCheck],
        now: Timestamp,
        consume: bool,
    ) -> StoreResult<Result<Vec<LimitState>, Refusal>> {
        if checks.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        on_backend!(self, "limit", s => s.limit(tenant, checks, now, consume).await)
    }

    /// Gives back one call's worth of these limits (each moves back one interval, never
    /// before now): for a call counted up front that turned out not to count.
    pub async fn give_back_limits(&self, tenant: &TenantId, checks: &[LimitCheck], now: Timestamp) -> StoreResult<()> {
        if checks.is_empty() {
            return Ok(());
        }
        on_backend!(self, "give_back_limits", s => s.give_back_limits(tenant, checks, now).await)
    }

    /// Admits one call: its rate limits and its spending budgets (counting `fee`) decided
    /// together. All pass and count, or nothing changes and the refusal names the limit or
    /// budget (answers what each budget has spent after this call).
    pub async fn admit(
        &self,
        tenant: &TenantId,
        limits: &[LimitCheck],
        budgets: &[SpendCheck],
        fee: i64,
        now: Timestamp,
    ) -> StoreResult<Result<Vec<i64>, Refusal>> {
        if limits.is_empty() && budgets.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        on_backend!(self, "admit", s => s.admit(tenant, limits, budgets, fee, now).await)
    }

    /// Adds `amount` micro-credits to the tenant's spending budgets for the windows `now`
    /// falls in, unless a blocking one would go over its cap (then nothing changes and its
    /// index is answered). Answers what each budget has spent after the addition. A negative
    /// amount gives back what a failed call counted.
    pub async fn spend(
        &self,
        tenant: &TenantId,
        checks: &[SpendCheck],
        amount: i64,
        now: Timestamp,
    ) -> StoreResult<Result<Vec<i64>, usize>> {
        if checks.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        on_backend!(self, "spend", s => s.spend(tenant, checks, amount, now).await)
    }

    /// The tenant's reports given up on, newest first.
    pub async fn dead_reports(&self, tenant: &TenantId) -> StoreResult<Vec<DeadReport>> {
        on_backend!(self, "dead_reports", s => s.dead_reports(tenant).await)
    }

    /// Removes one dead letter; `false` when there is no such one.
    pub async fn remove_dead_report(&self, tenant: &TenantId, id: &str) -> StoreResult<bool> {
        on_backend!(self, "remove_dead_report", s => s.remove_dead_report(tenant, id).await)
    }

    /// Claims up to `max` delivery jobs for `consumer`: new ones, and ones whose worker held
    /// them longer than `lease` (it died or hung). Tenants with work are served in turn.
    pub async fn claim_jobs(
        &self,
        consumer: &str,
        max: usize,
        lease: Duration,
        now: Timestamp,
    ) -> StoreResult<Vec<Job>> {
        on_backend!(self, "claim_jobs", s => s.claim_jobs(consumer, max, lease, now).await)
    }

    /// The job is done (sent, or nothing left to send): it leaves the queue.
    pub async fn ack_job(&self, job: &Job) -> StoreResult<()> {
        on_backend!(self, "ack_job", s => s.ack_job(job).await)
    }

    /// The job cannot run now: it leaves the queue and comes back at `until`.
    pub async fn defer_job(&self, job: &Job, until: Timestamp) -> StoreResult<()> {
        on_backend!(self, "defer_job", s => s.defer_job(job, until).await)
    }

    /// Takes up to `max` timed tasks due at `now`, leased until `lease_until`. Deliveries that
    /// were put off go back to the queue instead of being returned.
    pub async fn claim_due(&self, now: Timestamp, lease_until: Timestamp, max: usize) -> StoreResult<Vec<DueTask>> {
        on_backend!(self, "claim_due", s => s.claim_due(now, lease_until, max).await)
    }

    /// A leased task comes back at `at` instead of at its lease's end (a report whose host was
    /// busy). Only the task's time changes.
    pub async fn reschedule_due(&self, task: &DueTask, at: Timestamp) -> StoreResult<()> {
        on_backend!(self, "reschedule_due", s => s.reschedule_due(task, at).await)
    }

    /// The task is done: it is removed, unless it was scheduled anew meanwhile.
    pub async fn finish_due(&self, task: &DueTask) -> StoreResult<()> {
        on_backend!(self, "finish_due", s => s.finish_due(task).await)
    }

    /// The delivery jobs not yet done, across tenants: queued or in a worker's hands, and put
    /// off until later (no account could send, or a retry after a failure).
    pub async fn delivery_backlog(&self) -> StoreResult<Backlog> {
        on_backend!(self, "delivery_backlog", s => s.delivery_backlog().await)
    }

    /// Every sender account.
    pub async fn accounts(&self) -> StoreResult<Vec<SenderAccount>> {
        on_backend!(self, "accounts", s => s.accounts().await)
    }

    /// Adds an account unless one with its id exists; `false` when it existed.
    pub async fn add_account(&self, account: &SenderAccount) -> StoreResult<bool> {
        on_backend!(self, "add_account", s => s.add_account(account).await)
    }

    /// Changes one account atomically (optimistic, like `update_request`); `None` when there is
    /// no such account, else the account as it now is.
    pub async fn update_account<F>(&self, id: &str, decide: F) -> StoreResult<Option<SenderAccount>>
    where
        F: FnMut(&SenderAccount) -> Option<SenderAccount> + Send,
    {
        on_backend!(self, "update_account", s => s.update_account(id, decide).await)
    }

    pub async fn remove_account(&self, id: &str) -> StoreResult<bool> {
        on_backend!(self, "remove_account", s => s.remove_account(id).await)
    }

    /// Takes or renews the lease on an account for `holder`; `false` when another process
    /// holds it. One account is driven by one process at a time.
    pub async fn lease_account(&self, id: &str, holder: &str, lease: Duration, now: Timestamp) -> StoreResult<bool> {
        on_backend!(self, "lease_account", s => s.lease_account(id, holder, lease, now).await)
    }

    pub async fn release_account(&self, id: &str, holder: &str) -> StoreResult<()> {
        on_backend!(self, "release_account", s => s.release_account(id, holder).await)
    }

    /// A Telegram account's session, sealed (see `delivery::telegram::session`).
    pub async fn telegram_session(&self, account: &str) -> StoreResult<Option<String>> {
        on_backend!(self, "telegram_session", s => s.telegram_session(account).await)
    }

    pub async fn put_telegram_session(&self, account: &str, sealed: &str) -> StoreResult<()> {
        on_backend!(self, "put_telegram_session", s => s.put_telegram_session(account, sealed).await)
    }

    /// Remembers which request a message sent by `account` to `peer` belongs to, for `keep`,
    /// so a read receipt (everything up to a message id was read) finds its requests.
    pub async fn remember_sent(
        &self,
        account: &str,
        peer: i64,
        message_id: i64,
        tenant: &TenantId,
        request: RequestId,
        keep: Duration,
    ) -> StoreResult<()> {
        on_backend!(self, "remember_sent", s => s.remember_sent(account, peer, message_id, tenant, request, keep).await)
    }

    /// The requests whose messages from `account` to `peer` are covered by a read of
    /// everything up to `max_id`; each is answered once.
    pub async fn take_read(&self, account: &str, peer: i64, max_id: i64) -> StoreResult<Vec<(TenantId, RequestId)>> {
        on_backend!(self, "take_read", s => s.take_read(account, peer, max_id).await)
    }

    /// Rebuilds the advisory indexes of tenants with jobs or timed tasks from the tenants'
    /// own keys (they are written after the atomic step, so a crash or failover can lose an
    /// entry). Answers how many entries it had to add back.
    pub async fn repair_indexes(&self) -> StoreResult<u64> {
        on_backend!(self, "repair_indexes", s => s.repair_indexes().await)
    }
}
