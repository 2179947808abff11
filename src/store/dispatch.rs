//! The configured store that the rest of the service holds: one backend behind a closed enum
//! (handlers and services stay free of generics), each operation forwarded to it and timed. The
//! operations are documented on the contract's traits (`contract.rs`).

use super::change::reporting;
use super::{
    AccountStore, AdjustOutcome, Change, CreateOutcome, DueTask, Job, LimitStore, MemoryStore, QueueStore, RedisStore,
    RequestStore, Retention, StoreBackend, StoreResult, TenantStore,
};
use crate::domain::{
    Backlog, DeadReport, LedgerEntry, LimitCheck, LimitState, Refusal, RequestId, RequestRecord, SenderAccount,
    SpendCheck, Tenant, TenantId, TenantSettings, Timestamp, TokenRecord,
};
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::Duration;

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

/// The name of every operation, as `verigram_store_…{op}` labels it (each error counter is
/// made at 0 at start-up, so an outage's first errors count).
pub const OPERATIONS: &[&str] = &[
    "ping",
    "create_tenant",
    "tenant",
    "tenants",
    "set_settings",
    "adjust_balance",
    "ledger",
    "put_token",
    "find_token",
    "tokens",
    "create_request",
    "request",
    "update_request",
    "update_known_request",
    "limit",
    "give_back_limits",
    "admit",
    "spend",
    "dead_reports",
    "remove_dead_report",
    "claim_next",
    "has_jobs",
    "ack_job",
    "defer_job",
    "claim_due",
    "reschedule_due",
    "finish_due",
    "delivery_backlog",
    "accounts",
    "add_account",
    "update_account",
    "remove_account",
    "lease_account",
    "release_account",
    "telegram_session",
    "put_telegram_session",
    "remember_sent",
    "take_read",
    "repair_indexes",
];

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

    pub async fn put_token(&self, token: &TokenRecord, now: Timestamp) -> StoreResult<()> {
        on_backend!(self, "put_token", s => s.put_token(token, now).await)
    }

    pub async fn find_token(&self, lookup_key: &str) -> StoreResult<Option<TokenRecord>> {
        on_backend!(self, "find_token", s => s.find_token(lookup_key).await)
    }

    pub async fn tokens(&self, tenant: &TenantId) -> StoreResult<Vec<TokenRecord>> {
        on_backend!(self, "tokens", s => s.tokens(tenant).await)
    }

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

    pub async fn give_back_limits(&self, tenant: &TenantId, checks: &[LimitCheck], now: Timestamp) -> StoreResult<()> {
        if checks.is_empty() {
            return Ok(());
        }
        on_backend!(self, "give_back_limits", s => s.give_back_limits(tenant, checks, now).await)
    }

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

    /// The next delivery job, from the tenant whose turn it is (see `QueueStore::claim_next`).
    pub async fn claim_next(&self, consumer: &str, lease: Duration, now: Timestamp) -> StoreResult<Option<Job>> {
        on_backend!(self, "claim_next", s => s.claim_next(consumer, lease, now).await)
    }

    pub async fn has_jobs(&self) -> StoreResult<bool> {
        on_backend!(self, "has_jobs", s => s.has_jobs().await)
    }

    /// The job is done (sent, or nothing left to send): it leaves the queue.
    pub async fn ack_job(&self, job: &Job) -> StoreResult<()> {
        on_backend!(self, "ack_job", s => s.ack_job(job).await)
    }

    /// The job cannot run now: it leaves the queue and comes back at `until`.
    pub async fn defer_job(&self, job: &Job, until: Timestamp) -> StoreResult<()> {
        on_backend!(self, "defer_job", s => s.defer_job(job, until).await)
    }

    pub async fn claim_due(&self, now: Timestamp, lease_until: Timestamp, max: usize) -> StoreResult<Vec<DueTask>> {
        on_backend!(self, "claim_due", s => s.claim_due(now, lease_until, max).await)
    }

    pub async fn reschedule_due(&self, task: &DueTask, at: Timestamp) -> StoreResult<()> {
        on_backend!(self, "reschedule_due", s => s.reschedule_due(task, at).await)
    }

    /// The task is done: it is removed, unless it was scheduled anew meanwhile.
    pub async fn finish_due(&self, task: &DueTask) -> StoreResult<()> {
        on_backend!(self, "finish_due", s => s.finish_due(task).await)
    }

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

    pub async fn update_account<F>(&self, id: &str, decide: F) -> StoreResult<Option<SenderAccount>>
    where
        F: FnMut(&SenderAccount) -> Option<SenderAccount> + Send,
    {
        on_backend!(self, "update_account", s => s.update_account(id, decide).await)
    }

    pub async fn remove_account(&self, id: &str) -> StoreResult<bool> {
        on_backend!(self, "remove_account", s => s.remove_account(id).await)
    }

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

    pub async fn take_read(&self, account: &str, peer: i64, max_id: i64) -> StoreResult<Vec<(TenantId, RequestId)>> {
        on_backend!(self, "take_read", s => s.take_read(account, peer, max_id).await)
    }

    pub async fn repair_indexes(&self) -> StoreResult<u64> {
        on_backend!(self, "repair_indexes", s => s.repair_indexes().await)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_timed_operation_is_listed() {
        let source = include_str!("dispatch.rs");
        let marker = concat!("on_backend!(self, ", "\"");
        let timed: Vec<&str> = source
            .split(marker)
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            // (this test's own marker is followed by no name)
            .filter(|op| !op.is_empty() && op.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
            .collect();
        assert!(timed.len() > 30, "{timed:?}");
        for op in &timed {
            assert!(super::OPERATIONS.contains(op), "{op} is not in OPERATIONS");
        }
        assert_eq!(timed.len(), super::OPERATIONS.len());
    }
}
