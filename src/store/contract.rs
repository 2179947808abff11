//! The store's contract: what a backend must do, by capability, each operation whole and
//! atomic. The memory and Redis backends implement every trait, so the compiler checks that
//! they offer the same operations; `tests/store.rs` checks that they behave the same.

use super::{AdjustOutcome, Change, CreateOutcome, DueTask, Job, Retention, StoreResult};
use crate::domain::{
    Backlog, DeadReport, LedgerEntry, LimitCheck, LimitState, Refusal, RequestId, RequestRecord, SenderAccount,
    SpendCheck, Tenant, TenantId, TenantSettings, Timestamp, TokenRecord,
};
use std::future::Future;
use std::time::Duration;

/// A backend: every capability, and a way to tell it is there.
pub trait StoreBackend: TenantStore + RequestStore + QueueStore + AccountStore + LimitStore {
    /// Answers when the backend can be reached.
    fn ping(&self) -> impl Future<Output = StoreResult<()>> + Send;
}

/// Tenants, their money and their API tokens.
pub trait TenantStore {
    /// Creates a tenant with its first token (and its opening balance in the ledger).
    fn create_tenant(&self, tenant: &Tenant, token: &TokenRecord) -> impl Future<Output = StoreResult<()>> + Send;

    fn tenant(&self, id: &TenantId) -> impl Future<Output = StoreResult<Option<Tenant>>> + Send;

    fn tenants(&self) -> impl Future<Output = StoreResult<Vec<Tenant>>> + Send;

    /// Replaces a tenant's settings; `false` when there is no such tenant.
    fn set_settings(&self, id: &TenantId, settings: &TenantSettings) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Adds `entry.amount` (signed) to the balance and appends `entry` to the ledger; never
    /// below zero. A call sent again (a client's retry) moves the money once.
    fn adjust_balance(
        &self,
        id: &TenantId,
        entry: &LedgerEntry,
    ) -> impl Future<Output = StoreResult<AdjustOutcome>> + Send;

    /// The newest `limit` ledger lines, newest first.
    fn ledger(&self, id: &TenantId, limit: usize) -> impl Future<Output = StoreResult<Vec<LedgerEntry>>> + Send;

    /// Writes a token record: its lookup entry (removed once it can no longer be used) and the
    /// tenant's index of tokens.
    fn put_token(&self, token: &TokenRecord, now: Timestamp) -> impl Future<Output = StoreResult<()>> + Send;

    fn find_token(&self, lookup_key: &str) -> impl Future<Output = StoreResult<Option<TokenRecord>>> + Send;

    fn tokens(&self, tenant: &TenantId) -> impl Future<Output = StoreResult<Vec<TokenRecord>>> + Send;
}

/// Requests, with the money, jobs, tasks and reports that move with each change of one.
pub trait RequestStore {
    /// Stores a new request, takes its fee (`change.ledger`), queues its job and schedules its
    /// tasks, in one atomic step; refuses when the balance is below the fee. A request created
    /// again answers as the first creation did and charges nothing.
    fn create_request(
        &self,
        tenant: &TenantId,
        change: &Change,
        retention: Retention,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<CreateOutcome>> + Send;

    fn request(
        &self,
        tenant: &TenantId,
        id: RequestId,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Option<RequestRecord>>> + Send;

    /// Applies a domain rule to one request atomically: `decide` sees the current record (the
    /// `known` one first, when the caller has just read it) and returns the change to store (if
    /// any) and an output. It may run more than once when writers collide, so it must be a pure
    /// function of the record. `None` when the request does not exist; otherwise the record as
    /// it now is, and the output.
    fn update_request<T, F>(
        &self,
        tenant: &TenantId,
        id: RequestId,
        known: Option<RequestRecord>,
        retention: Retention,
        now: Timestamp,
        decide: F,
    ) -> impl Future<Output = StoreResult<Option<(RequestRecord, T)>>> + Send
    where
        F: FnMut(&RequestRecord) -> (Option<Change>, T) + Send,
        T: Send;

    /// The tenant's reports given up on, newest first.
    fn dead_reports(&self, tenant: &TenantId) -> impl Future<Output = StoreResult<Vec<DeadReport>>> + Send;

    /// Removes one dead letter; `false` when there is no such one.
    fn remove_dead_report(&self, tenant: &TenantId, id: &str) -> impl Future<Output = StoreResult<bool>> + Send;
}

/// The durable queue of delivery jobs and the timed tasks, each held by one worker under a
/// lease.
pub trait QueueStore {
    /// Claims the next delivery job for `consumer`, from the tenant whose turn it is
    /// (`domain::turns`: tenants with jobs take weighted turns, shared by every worker of
    /// every process): a job whose worker held it longer than `lease` (it died or hung)
    /// first, else the tenant's oldest. `None` when no tenant has a job to claim.
    fn claim_next(
        &self,
        consumer: &str,
        lease: Duration,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Option<Job>>> + Send;

    /// Whether any tenant has jobs in the queue (claimable or in workers' hands): one cheap
    /// read, so an idle worker looks for work without taking a sender account first.
    fn has_jobs(&self) -> impl Future<Output = StoreResult<bool>> + Send;

    /// The job is done (sent, or nothing left to send): it leaves the queue.
    fn ack_job(&self, job: &Job) -> impl Future<Output = StoreResult<()>> + Send;

    /// The job cannot run now: it leaves the queue and comes back at `until`.
    fn defer_job(&self, job: &Job, until: Timestamp) -> impl Future<Output = StoreResult<()>> + Send;

    /// Takes up to `max` timed tasks due at `now`, leased until `lease_until`. Deliveries that
    /// were put off go back to the queue instead of being returned.
    fn claim_due(
        &self,
        now: Timestamp,
        lease_until: Timestamp,
        max: usize,
    ) -> impl Future<Output = StoreResult<Vec<DueTask>>> + Send;

    /// A leased task comes back at `at` instead of at its lease's end. Only the task's time
    /// changes.
    fn reschedule_due(&self, task: &DueTask, at: Timestamp) -> impl Future<Output = StoreResult<()>> + Send;

    /// The task is done: it is removed, unless it was scheduled anew meanwhile.
    fn finish_due(&self, task: &DueTask) -> impl Future<Output = StoreResult<()>> + Send;

    /// Rebuilds the advisory indexes of tenants with jobs or timed tasks from the tenants' own
    /// keys. Answers how many entries it had to add back.
    fn repair_indexes(&self) -> impl Future<Output = StoreResult<u64>> + Send;

    /// The delivery jobs not yet done, across tenants: queued or in a worker's hands, and put
    /// off until later.
    fn delivery_backlog(&self) -> impl Future<Output = StoreResult<Backlog>> + Send;
}

/// Sender accounts: their records, the lease that gives each to one process, their Telegram
/// sessions, and what they sent (for read receipts).
pub trait AccountStore {
    fn accounts(&self) -> impl Future<Output = StoreResult<Vec<SenderAccount>>> + Send;

    /// Adds an account unless one with its id exists; `false` when it existed.
    fn add_account(&self, account: &SenderAccount) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Changes one account atomically (optimistic, like `update_request`); `None` when there is
    /// no such account, else the account as it now is.
    fn update_account<F>(&self, id: &str, decide: F) -> impl Future<Output = StoreResult<Option<SenderAccount>>> + Send
    where
        F: FnMut(&SenderAccount) -> Option<SenderAccount> + Send;

    fn remove_account(&self, id: &str) -> impl Future<Output = StoreResult<bool>> + Send;

    /// Takes or renews the lease on an account for `holder`; `false` when another process
    /// holds it.
    fn lease_account(
        &self,
        id: &str,
        holder: &str,
        lease: Duration,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<bool>> + Send;

    fn release_account(&self, id: &str, holder: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// A Telegram account's session, sealed (see `delivery::telegram::session`).
    fn telegram_session(&self, account: &str) -> impl Future<Output = StoreResult<Option<String>>> + Send;

    fn put_telegram_session(&self, account: &str, sealed: &str) -> impl Future<Output = StoreResult<()>> + Send;

    /// Remembers which request a message sent by `account` to `peer` belongs to, for `keep`.
    fn remember_sent(
        &self,
        account: &str,
        peer: i64,
        message_id: i64,
        tenant: &TenantId,
        request: RequestId,
        keep: Duration,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// The requests whose messages from `account` to `peer` are covered by a read of
    /// everything up to `max_id`; each is answered once.
    fn take_read(
        &self,
        account: &str,
        peer: i64,
        max_id: i64,
    ) -> impl Future<Output = StoreResult<Vec<(TenantId, RequestId)>>> + Send;
}

/// Rate limits (GCRA) and spending budgets, each call's decided together.
pub trait LimitStore {
    /// All limits pass (and, with `consume`, count this call), or nothing changes and the
    /// refusal names the limit with the longest wait.
    fn limit(
        &self,
        tenant: &TenantId,
        checks: &[LimitCheck],
        now: Timestamp,
        consume: bool,
    ) -> impl Future<Output = StoreResult<Result<Vec<LimitState>, Refusal>>> + Send;

    /// Gives back one call's worth of these limits (each moves back one interval, never
    /// before now).
    fn give_back_limits(
        &self,
        tenant: &TenantId,
        checks: &[LimitCheck],
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<()>> + Send;

    /// Rate limits and spending budgets (counting `fee`) decided together: all pass and count,
    /// or nothing changes and the refusal names the limit or budget. Answers what each budget
    /// has spent after this call.
    fn admit(
        &self,
        tenant: &TenantId,
        limits: &[LimitCheck],
        budgets: &[SpendCheck],
        fee: i64,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Result<Vec<i64>, Refusal>>> + Send;

    /// Adds `amount` micro-credits to the budgets for the windows `now` falls in, unless a
    /// blocking one would go over its cap (then nothing changes and its index is answered).
    /// A negative amount gives back what a failed call counted.
    fn spend(
        &self,
        tenant: &TenantId,
        checks: &[SpendCheck],
        amount: i64,
        now: Timestamp,
    ) -> impl Future<Output = StoreResult<Result<Vec<i64>, usize>>> + Send;
}
