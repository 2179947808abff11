//! The embedded store: everything in this process, nothing kept across a restart.
//!
//! One mutex guards all state, so every operation is trivially atomic; critical sections are
//! short (no hashing or I/O happens under the lock). Each capability of the store's contract is
//! in its own module.

mod accounts;
mod limits;
mod queue;
mod requests;
mod tenants;

use super::{AdjustOutcome, Change, CreateOutcome, DueTask, Job, Retention, Scheduled, StoreError, StoreResult, Task};
use crate::domain::{
    gcra, turns, Backlog, Credits, DeadReport, Gcra, LedgerEntry, LimitCheck, LimitState, Refusal, RequestId,
    RequestRecord, SenderAccount, SpendCheck, Tenant, TenantBacklog, TenantId, TenantSettings, Timestamp, TokenRecord,
};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    ledger_limit: usize,
}

#[derive(Default)]
struct Inner {
    tenants: BTreeMap<TenantId, TenantState>,
    tokens_by_key: HashMap<String, TokenRecord>,
    /// Boxed: a record is several hundred bytes, and a map of them inline moves every one
    /// when it grows (a pause of hundreds of milliseconds at a few hundred thousand requests).
    requests: HashMap<(TenantId, RequestId), Box<StoredRequest>>,
    /// When each request is due to expire, soonest first. A request whose retention was
    /// extended meanwhile (reports waiting) goes back in at its new time when its turn comes.
    expiries: std::collections::BinaryHeap<std::cmp::Reverse<(Timestamp, (TenantId, RequestId))>>,
    /// Delivery jobs per tenant, served in turn. A tenant's queue exists only while it holds
    /// jobs (`finish_job` removes it with the tenant's turn tag).
    queues: BTreeMap<TenantId, TenantQueue>,
    /// Each queued tenant's turn tag, and the tag of the turn served last (`domain::turns`).
    turns: HashMap<TenantId, u64>,
    turn_clock: u64,
    next_job: u64,
    /// Timed tasks in time order, and where each one stands.
    due: BTreeSet<(Timestamp, TenantId, RequestId, Task)>,
    /// Spending budgets: (tenant, "<kind>:<key>:<window>", window end ms) → micro-credits.
    spent: HashMap<(TenantId, String, i64), i64>,
    /// Rate limits' theoretical arrival times, by (tenant, "<kind>:<key>").
    limits: HashMap<(TenantId, String), i64>,
    /// Reports given up on, per tenant, newest first.
    dead_reports: HashMap<TenantId, VecDeque<DeadReport>>,
    due_at: HashMap<(TenantId, RequestId, Task), Timestamp>,
    accounts: BTreeMap<String, AccountEntry>,
    telegram_sessions: HashMap<String, String>,
    /// Sent messages by (account, peer): message id → requests (for read receipts).
    sent: HashMap<(String, i64), SentByMessage>,
}

/// Message id → the requests of the messages with that id (one, unless ids were reused).
type SentByMessage = BTreeMap<i64, Vec<(TenantId, RequestId)>>;

struct AccountEntry {
    account: SenderAccount,
    /// Who drives it, and until when.
    lease: Option<(String, Timestamp)>,
}

#[derive(Default)]
struct TenantQueue {
    ready: VecDeque<(String, RequestId)>,
    /// Claimed jobs: id → (request, since when it is held).
    leased: BTreeMap<String, (RequestId, Timestamp)>,
}

impl TenantQueue {
    /// A job held longer than `lease` (its worker died or hung), the oldest first.
    fn stale(&self, lease: Duration, now: Timestamp) -> Option<String> {
        self.leased.iter().find(|(_, (_, since))| since.plus(lease) <= now).map(|(id, _)| id.clone())
    }

    fn is_empty(&self) -> bool {
        self.ready.is_empty() && self.leased.is_empty()
    }

    fn claimable(&self, lease: Duration, now: Timestamp) -> bool {
        !self.ready.is_empty() || self.stale(lease, now).is_some()
    }
}

struct TenantState {
    tenant: Tenant,
    tokens: BTreeMap<String, TokenRecord>,
    ledger: VecDeque<LedgerEntry>,
}

struct StoredRequest {
    record: RequestRecord,
    expires_at: Timestamp,
}

impl MemoryStore {
    pub fn new(ledger_limit: usize) -> Self {
        Self { inner: Mutex::default(), ledger_limit }
    }
}

impl super::StoreBackend for MemoryStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }
}

impl Inner {
    fn queue_and_schedule(&mut self, tenant: &TenantId, change: &Change, now: Timestamp) {
        if change.enqueue {
            self.enqueue(tenant, change.record.id, now);
        }
        for scheduled in &change.schedule {
            self.schedule(tenant, change.record.id, *scheduled);
        }
    }

    /// Job ids are `<ms>-<n>` like Redis stream ids: when the job was queued, then a number.
    fn enqueue(&mut self, tenant: &TenantId, request: RequestId, now: Timestamp) {
        self.next_job += 1;
        let id = format!("{}-{}", now.millis(), self.next_job);
        self.queues.entry(tenant.clone()).or_default().ready.push_back((id, request));
    }

    /// A claimed job leaves the queue. A tenant whose queue it empties leaves the turns: when it
    /// has work again it starts at the clock, not at a tag it earned earlier.
    fn finish_job(&mut self, job: &Job) {
        let Some(queue) = self.queues.get_mut(&job.tenant) else { return };
        queue.leased.remove(&job.id);
        if queue.is_empty() {
            self.queues.remove(&job.tenant);
            self.turns.remove(&job.tenant);
        }
    }

    fn schedule(&mut self, tenant: &TenantId, request: RequestId, scheduled: Scheduled) {
        self.unschedule(tenant, request, scheduled.task);
        self.due.insert((scheduled.at, tenant.clone(), request, scheduled.task));
        self.due_at.insert((tenant.clone(), request, scheduled.task), scheduled.at);
    }

    fn unschedule(&mut self, tenant: &TenantId, request: RequestId, task: Task) {
        if let Some(at) = self.due_at.remove(&(tenant.clone(), request, task)) {
            self.due.remove(&(at, tenant.clone(), request, task));
        }
    }

    /// Drops the requests whose retention has ended, so memory stays bounded without a
    /// background task.
    fn sweep(&mut self, now: Timestamp) {
        while let Some(std::cmp::Reverse((at, _))) = self.expiries.peek() {
            if *at > now {
                break;
            }
            let Some(std::cmp::Reverse((_, key))) = self.expiries.pop() else { break };
            match self.requests.get(&key).map(|r| r.expires_at) {
                Some(ends) if ends <= now => {
                    self.requests.remove(&key);
                }
                Some(ends) => self.expiries.push(std::cmp::Reverse((ends, key))),
                None => {}
            }
        }
    }
}

fn push_ledger(ledger: &mut VecDeque<LedgerEntry>, entry: &LedgerEntry, balance_after: Credits, limit: usize) {
    ledger.push_front(LedgerEntry { balance_after, ..entry.clone() });
    ledger.truncate(limit.max(1));
}

/// The ledger line for a tenant's opening balance.
pub(super) fn opening_entry(tenant: &Tenant) -> LedgerEntry {
    LedgerEntry {
        at: tenant.created_at,
        kind: crate::domain::LedgerKind::Credit,
        amount: tenant.balance,
        balance_after: tenant.balance,
        request_id: None,
        note: Some("opening balance".into()),
    }
}
