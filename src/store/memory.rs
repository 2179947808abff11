//! The embedded store: everything in this process, nothing kept across a restart.
//!
//! One mutex guards all state, so every operation is trivially atomic; critical sections are
//! short (no hashing or I/O happens under the lock).

use super::{AdjustOutcome, Change, CreateOutcome, DueTask, Job, Retention, Scheduled, StoreError, StoreResult, Task};
use crate::domain::{
    gcra, Backlog, Credits, DeadReport, Gcra, LedgerEntry, LimitCheck, LimitState, Refusal, RequestId, RequestRecord,
    SenderAccount, SpendCheck, Tenant, TenantId, TenantSettings, Timestamp, TokenRecord,
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
    /// Delivery jobs per tenant, served in turn.
    queues: BTreeMap<TenantId, TenantQueue>,
    /// The tenant served last, so the next claim starts after it.
    last_served: Option<TenantId>,
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

    pub async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    pub async fn create_tenant(&self, tenant: &Tenant, token: &TokenRecord) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        let mut ledger = VecDeque::new();
        if tenant.balance != Credits::ZERO {
            ledger.push_front(opening_entry(tenant));
        }
        inner.tenants.insert(
            tenant.id.clone(),
            TenantState { tenant: tenant.clone(), tokens: BTreeMap::from([(token.id.clone(), token.clone())]), ledger },
        );
        inner.tokens_by_key.insert(token.lookup_key.clone(), token.clone());
        Ok(())
    }

    pub async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        Ok(self.inner.lock().tenants.get(id).map(|t| t.tenant.clone()))
    }

    pub async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        Ok(self.inner.lock().tenants.values().map(|t| t.tenant.clone()).collect())
    }

    pub async fn set_settings(&self, id: &TenantId, settings: &TenantSettings) -> StoreResult<bool> {
        let mut inner = self.inner.lock();
        Ok(match inner.tenants.get_mut(id) {
            Some(t) => {
                t.tenant.settings = settings.clone();
                true
            }
            None => false,
        })
    }

    pub async fn adjust_balance(&self, id: &TenantId, entry: &LedgerEntry) -> StoreResult<AdjustOutcome> {
        let mut inner = self.inner.lock();
        let Some(state) = inner.tenants.get_mut(id) else {
            return Ok(AdjustOutcome::TenantNotFound);
        };
        let balance = state.tenant.balance;
        match balance.checked_add(entry.amount) {
            Some(after) if after >= Credits::ZERO => {
                state.tenant.balance = after;
                push_ledger(&mut state.ledger, entry, after, self.ledger_limit);
                Ok(AdjustOutcome::Applied { balance: after })
            }
            _ => Ok(AdjustOutcome::WouldGoNegative { balance }),
        }
    }

    pub async fn ledger(&self, id: &TenantId, limit: usize) -> StoreResult<Vec<LedgerEntry>> {
        let inner = self.inner.lock();
        Ok(inner.tenants.get(id).map(|t| t.ledger.iter().take(limit).cloned().collect()).unwrap_or_default())
    }

    pub async fn put_token(&self, token: &TokenRecord, now: Timestamp) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        if let Some(state) = inner.tenants.get_mut(&token.tenant) {
            state.tokens.insert(token.id.clone(), token.clone());
        }
        if token.is_live(now) {
            inner.tokens_by_key.insert(token.lookup_key.clone(), token.clone());
        } else {
            inner.tokens_by_key.remove(&token.lookup_key);
        }
        Ok(())
    }

    pub async fn find_token(&self, lookup_key: &str) -> StoreResult<Option<TokenRecord>> {
        Ok(self.inner.lock().tokens_by_key.get(lookup_key).cloned())
    }

    pub async fn tokens(&self, tenant: &TenantId) -> StoreResult<Vec<TokenRecord>> {
        let inner = self.inner.lock();
        Ok(inner.tenants.get(tenant).map(|t| t.tokens.values().cloned().collect()).unwrap_or_default())
    }

    pub async fn create_request(
        &self,
        tenant: &TenantId,
        change: &Change,
        retention: Retention,
        now: Timestamp,
    ) -> StoreResult<CreateOutcome> {
        let mut inner = self.inner.lock();
        inner.sweep(now);
        let ledger_limit = self.ledger_limit;
        let record = &change.record;
        // As on Redis: the same request created again (a call repeated after a lost answer)
        // answers as done and charges nothing more; another under a taken id is refused.
        let key = (tenant.clone(), record.id);
        let first_version = RequestRecord { version: 1, ..record.clone() };
        if let Some(stored) = inner.requests.get(&key).filter(|r| r.expires_at > now) {
            if stored.record == first_version {
                let balance = inner.tenants.get(tenant).map_or(Credits::ZERO, |s| s.tenant.balance);
                return Ok(CreateOutcome::Created { balance });
            }
            return Err(StoreError::Contention);
        }
        let Some(state) = inner.tenants.get_mut(tenant) else {
            return Ok(CreateOutcome::TenantNotFound);
        };
        if state.tenant.balance < record.cost {
            return Ok(CreateOutcome::BalanceNotEnough);
        }
        let balance = Credits::from_micros(state.tenant.balance.micros() - record.cost.micros());
        state.tenant.balance = balance;
        if let Some(entry) = &change.ledger {
            push_ledger(&mut state.ledger, entry, balance, ledger_limit);
        }
        let expires_at = now.plus(retention.keep(record, now));
        let record = first_version;
        inner.expiries.push(std::cmp::Reverse((expires_at, key.clone())));
        inner.requests.insert(key, Box::new(StoredRequest { record, expires_at }));
        inner.queue_and_schedule(tenant, change, now);
        Ok(CreateOutcome::Created { balance })
    }

    pub async fn request(
        &self,
        tenant: &TenantId,
        id: RequestId,
        now: Timestamp,
    ) -> StoreResult<Option<RequestRecord>> {
        let inner = self.inner.lock();
        Ok(inner.requests.get(&(tenant.clone(), id)).filter(|r| r.expires_at > now).map(|r| r.record.clone()))
    }

    pub async fn update_request<T, F>(
        &self,
        tenant: &TenantId,
        id: RequestId,
        _known: Option<RequestRecord>,
        retention: Retention,
        now: Timestamp,
        mut decide: F,
    ) -> StoreResult<Option<(RequestRecord, T)>>
    where
        F: FnMut(&RequestRecord) -> (Option<Change>, T) + Send,
        T: Send,
    {
        let mut inner = self.inner.lock();
        let ledger_limit = self.ledger_limit;
        let key = (tenant.clone(), id);
        let Some(stored) = inner.requests.get(&key).filter(|r| r.expires_at > now) else {
            return Ok(None);
        };
        let current = stored.record.clone();
        let (change, output) = decide(&current);
        let Some(Change { record, ledger, enqueue, schedule, dead_letter }) = change else {
            return Ok(Some((current, output)));
        };
        let record = RequestRecord { version: current.version + 1, ..record };
        if let (Some(entry), Some(state)) = (ledger, inner.tenants.get_mut(tenant)) {
            let after = Credits::from_micros(state.tenant.balance.micros().saturating_add(entry.amount.micros()));
            state.tenant.balance = after;
            push_ledger(&mut state.ledger, &entry, after, ledger_limit);
        }
        let expires_at = now.plus(retention.keep(&record, now));
        inner.requests.insert(key, Box::new(StoredRequest { record: record.clone(), expires_at }));
        if let Some(dead) = dead_letter {
            let list = inner.dead_reports.entry(tenant.clone()).or_default();
            list.push_front(dead);
            list.truncate(super::DEAD_REPORTS_KEPT);
        }
        inner.queue_and_schedule(tenant, &Change { enqueue, schedule, ..Change::from(record.clone()) }, now);
        Ok(Some((record, output)))
    }

    pub async fn limit(
        &self,
        tenant: &TenantId,
        checks: &[LimitCheck],
        now: Timestamp,
        consume: bool,
    ) -> StoreResult<Result<Vec<LimitState>, Refusal>> {
        Ok(self.inner.lock().decide_limits(tenant, checks, now, consume))
    }

    pub async fn give_back_limits(&self, tenant: &TenantId, checks: &[LimitCheck], now: Timestamp) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        for check in checks {
            let key = (tenant.clone(), format!("{}:{}", check.kind.as_str(), check.key));
            if let Some(tat) = inner.limits.get(&key).copied() {
                let back = tat - check.rate.interval_ms();
                if back > now.millis() {
                    inner.limits.insert(key, back);
                } else {
                    inner.limits.remove(&key);
                }
            }
        }
        Ok(())
    }

    pub async fn admit(
        &self,
        tenant: &TenantId,
        limits: &[LimitCheck],
        budgets: &[SpendCheck],
        fee: i64,
        now: Timestamp,
    ) -> StoreResult<Result<Vec<i64>, Refusal>> {
        // Under one lock: nothing sees the limits counted and the budgets not.
        let mut inner = self.inner.lock();
        if let Err(refusal) = inner.decide_limits(tenant, limits, now, false) {
            return Ok(Err(refusal));
        }
        match inner.count_spend(tenant, budgets, fee, now) {
            Err(i) => Ok(Err(budgets[i].refusal(now))),
            Ok(spent) => {
                // Passes: the look above passed under the same lock.
                let _ = inner.decide_limits(tenant, limits, now, true);
                Ok(Ok(spent))
            }
        }
    }

    pub async fn spend(
        &self,
        tenant: &TenantId,
        checks: &[SpendCheck],
        amount: i64,
        now: Timestamp,
    ) -> StoreResult<Result<Vec<i64>, usize>> {
        Ok(self.inner.lock().count_spend(tenant, checks, amount, now))
    }

    pub async fn dead_reports(&self, tenant: &TenantId) -> StoreResult<Vec<DeadReport>> {
        Ok(self.inner.lock().dead_reports.get(tenant).map(|l| l.iter().cloned().collect()).unwrap_or_default())
    }

    pub async fn remove_dead_report(&self, tenant: &TenantId, id: &str) -> StoreResult<bool> {
        let mut inner = self.inner.lock();
        let Some(list) = inner.dead_reports.get_mut(tenant) else { return Ok(false) };
        let before = list.len();
        list.retain(|d| d.id != id);
        Ok(list.len() < before)
    }
}

impl MemoryStore {
    pub async fn claim_jobs(
        &self,
        _consumer: &str,
        max: usize,
        lease: Duration,
        now: Timestamp,
    ) -> StoreResult<Vec<Job>> {
        let mut inner = self.inner.lock();
        let tenants: Vec<TenantId> = {
            // Start after the tenant served last, so every tenant gets its turn.
            let after = inner.last_served.clone();
            let (later, earlier): (Vec<_>, Vec<_>) =
                inner.queues.keys().cloned().partition(|t| after.as_ref().is_none_or(|a| t > a));
            later.into_iter().chain(earlier).collect()
        };
        let mut jobs = Vec::new();
        // Round by round, one job per tenant per round.
        loop {
            let before = jobs.len();
            for tenant in &tenants {
                if jobs.len() >= max {
                    break;
                }
                let Some(queue) = inner.queues.get_mut(tenant) else { continue };
                let stale =
                    queue.leased.iter().find(|(_, (_, since))| since.plus(lease) <= now).map(|(id, _)| id.clone());
                let job = if let Some(id) = stale {
                    queue.leased.get_mut(&id).map(|(request, since)| {
                        *since = now;
                        Job { tenant: tenant.clone(), request: *request, id: id.clone(), reclaimed: true }
                    })
                } else if let Some((id, request)) = queue.ready.pop_front() {
                    queue.leased.insert(id.clone(), (request, now));
                    Some(Job { tenant: tenant.clone(), request, id, reclaimed: false })
                } else {
                    None
                };
                if let Some(job) = job {
                    inner.last_served = Some(tenant.clone());
                    jobs.push(job);
                }
            }
            if jobs.len() == before || jobs.len() >= max {
                break;
            }
        }
        inner.queues.retain(|_, q| !q.ready.is_empty() || !q.leased.is_empty());
        Ok(jobs)
    }

    pub async fn ack_job(&self, job: &Job) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        if let Some(queue) = inner.queues.get_mut(&job.tenant) {
            queue.leased.remove(&job.id);
        }
        Ok(())
    }

    pub async fn defer_job(&self, job: &Job, until: Timestamp) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        if let Some(queue) = inner.queues.get_mut(&job.tenant) {
            queue.leased.remove(&job.id);
        }
        inner.schedule(&job.tenant, job.request, Scheduled { task: Task::Deliver, at: until });
        Ok(())
    }

    pub async fn claim_due(&self, now: Timestamp, lease_until: Timestamp, max: usize) -> StoreResult<Vec<DueTask>> {
        let mut inner = self.inner.lock();
        let mut claimed = Vec::new();
        let mut taken = 0;
        while taken < max {
            let Some(first) = inner.due.first().cloned() else { break };
            if first.0 > now {
                break;
            }
            taken += 1;
            let (_, tenant, request, task) = first;
            if task == Task::Deliver {
                inner.unschedule(&tenant, request, task);
                inner.enqueue(&tenant, request, now);
            } else {
                inner.schedule(&tenant, request, Scheduled { task, at: lease_until });
                claimed.push(DueTask { tenant, request, task, lease: lease_until });
            }
        }
        Ok(claimed)
    }

    pub async fn reschedule_due(&self, task: &DueTask, at: Timestamp) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        if inner.due_at.contains_key(&(task.tenant.clone(), task.request, task.task)) {
            inner.schedule(&task.tenant, task.request, Scheduled { task: task.task, at });
        }
        Ok(())
    }

    pub async fn finish_due(&self, task: &DueTask) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        let key = (task.tenant.clone(), task.request, task.task);
        if inner.due_at.get(&key) == Some(&task.lease) {
            inner.unschedule(&task.tenant, task.request, task.task);
        }
        Ok(())
    }

    /// The memory store has no separate indexes to repair.
    pub async fn repair_indexes(&self) -> StoreResult<u64> {
        Ok(0)
    }

    pub async fn delivery_backlog(&self) -> StoreResult<Backlog> {
        let inner = self.inner.lock();
        let ids = inner.queues.values().flat_map(|q| q.ready.iter().map(|(id, _)| id).chain(q.leased.keys()));
        Ok(Backlog {
            queued: inner.queues.values().map(|q| (q.ready.len() + q.leased.len()) as u64).sum(),
            waiting: inner.due_at.keys().filter(|(_, _, task)| *task == Task::Deliver).count() as u64,
            oldest: ids.filter_map(|id| super::queued_at(id)).min(),
        })
    }
}

impl Inner {
    /// Rate limits (see `Store::limit`), under the caller's lock.
    fn decide_limits(
        &mut self,
        tenant: &TenantId,
        checks: &[LimitCheck],
        now: Timestamp,
        consume: bool,
    ) -> Result<Vec<LimitState>, Refusal> {
        let key = |c: &LimitCheck| (tenant.clone(), format!("{}:{}", c.kind.as_str(), c.key));
        let mut worst: Option<Refusal> = None;
        let mut next = Vec::with_capacity(checks.len());
        for check in checks {
            match gcra(self.limits.get(&key(check)).copied(), now, check.rate) {
                Gcra::Allow { tat, .. } => next.push(tat),
                Gcra::Refuse { retry_after_ms } => {
                    let wait = Duration::from_millis(retry_after_ms.max(0) as u64);
                    if worst.is_none_or(|w| wait > w.retry_after) {
                        worst = Some(Refusal { kind: check.kind, rate: check.rate, retry_after: wait });
                    }
                }
            }
        }
        if let Some(refusal) = worst {
            return Err(refusal);
        }
        if consume {
            for (check, tat) in checks.iter().zip(&next) {
                self.limits.insert(key(check), *tat);
            }
        }
        Ok(checks.iter().zip(next).map(|(c, tat)| super::limit_state(c, tat, now)).collect())
    }

    /// Spending budgets (see `Store::spend`), under the caller's lock.
    fn count_spend(
        &mut self,
        tenant: &TenantId,
        checks: &[SpendCheck],
        amount: i64,
        now: Timestamp,
    ) -> Result<Vec<i64>, usize> {
        // Windows that ended are forgotten (Redis lets their keys expire).
        self.spent.retain(|(_, _, ends), _| *ends > now.millis());
        let key =
            |c: &SpendCheck| (tenant.clone(), super::spend_key(c, now), now.plus(c.until_next_window(now)).millis());
        for (i, check) in checks.iter().enumerate() {
            let spent = self.spent.get(&key(check)).copied().unwrap_or(0);
            if amount > 0 && check.blocking && spent + amount > check.cap {
                return Err(i);
            }
        }
        Ok(checks
            .iter()
            .map(|c| {
                let spent = self.spent.entry(key(c)).or_insert(0);
                *spent += amount;
                *spent
            })
            .collect())
    }
}

impl MemoryStore {
    pub async fn accounts(&self) -> StoreResult<Vec<SenderAccount>> {
        Ok(self.inner.lock().accounts.values().map(|e| e.account.clone()).collect())
    }

    pub async fn add_account(&self, account: &SenderAccount) -> StoreResult<bool> {
        let mut inner = self.inner.lock();
        if inner.accounts.contains_key(&account.id) {
            return Ok(false);
        }
        inner.accounts.insert(account.id.clone(), AccountEntry { account: account.clone(), lease: None });
        Ok(true)
    }

    pub async fn update_account<F>(&self, id: &str, mut decide: F) -> StoreResult<Option<SenderAccount>>
    where
        F: FnMut(&SenderAccount) -> Option<SenderAccount> + Send,
    {
        let mut inner = self.inner.lock();
        let Some(entry) = inner.accounts.get_mut(id) else { return Ok(None) };
        if let Some(next) = decide(&entry.account) {
            entry.account = next;
        }
        Ok(Some(entry.account.clone()))
    }

    pub async fn remove_account(&self, id: &str) -> StoreResult<bool> {
        let mut inner = self.inner.lock();
        inner.telegram_sessions.remove(id);
        Ok(inner.accounts.remove(id).is_some())
    }

    pub async fn lease_account(&self, id: &str, holder: &str, lease: Duration, now: Timestamp) -> StoreResult<bool> {
        let mut inner = self.inner.lock();
        let Some(entry) = inner.accounts.get_mut(id) else { return Ok(false) };
        let free = entry.lease.as_ref().is_none_or(|(h, until)| h == holder || *until <= now);
        if free {
            entry.lease = Some((holder.to_owned(), now.plus(lease)));
        }
        Ok(free)
    }

    pub async fn telegram_session(&self, account: &str) -> StoreResult<Option<String>> {
        Ok(self.inner.lock().telegram_sessions.get(account).cloned())
    }

    pub async fn put_telegram_session(&self, account: &str, sealed: &str) -> StoreResult<()> {
        self.inner.lock().telegram_sessions.insert(account.to_owned(), sealed.to_owned());
        Ok(())
    }

    pub async fn remember_sent(
        &self,
        account: &str,
        peer: i64,
        message_id: i64,
        tenant: &TenantId,
        request: RequestId,
        _keep: Duration,
    ) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        let sent = inner.sent.entry((account.to_owned(), peer)).or_default();
        sent.entry(message_id).or_default().push((tenant.clone(), request));
        Ok(())
    }

    pub async fn take_read(&self, account: &str, peer: i64, max_id: i64) -> StoreResult<Vec<(TenantId, RequestId)>> {
        let mut inner = self.inner.lock();
        let Some(sent) = inner.sent.get_mut(&(account.to_owned(), peer)) else { return Ok(Vec::new()) };
        let unread = sent.split_off(&max_id.saturating_add(1));
        let read = std::mem::replace(sent, unread);
        Ok(read.into_values().flatten().collect())
    }

    pub async fn release_account(&self, id: &str, holder: &str) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        if let Some(entry) = inner.accounts.get_mut(id) {
            if entry.lease.as_ref().is_some_and(|(h, _)| h == holder) {
                entry.lease = None;
            }
        }
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
