//! The embedded store: everything in this process, nothing kept across a restart.
//!
//! One mutex guards all state, so every operation is trivially atomic; critical sections are
//! short (no hashing or I/O happens under the lock).

use super::{AdjustOutcome, Change, CreateOutcome, Retention, StoreResult};
use crate::domain::{
    Credits, LedgerEntry, RequestId, RequestRecord, Tenant, TenantId, TenantSettings, Timestamp, TokenRecord,
};
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, VecDeque};

#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    ledger_limit: usize,
}

#[derive(Default)]
struct Inner {
    tenants: BTreeMap<TenantId, TenantState>,
    tokens_by_key: HashMap<String, TokenRecord>,
    requests: HashMap<(TenantId, RequestId), StoredRequest>,
    /// When each request was first stored to expire, oldest first. Every request lives for
    /// the same retention, so creation order is expiry order and dropping the expired ones
    /// costs only as many steps as there are expired requests.
    expiries: VecDeque<(Timestamp, (TenantId, RequestId))>,
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
        record: &RequestRecord,
        charge: Option<&LedgerEntry>,
        retention: Retention,
        now: Timestamp,
    ) -> StoreResult<CreateOutcome> {
        let mut inner = self.inner.lock();
        inner.sweep(now);
        let ledger_limit = self.ledger_limit;
        let Some(state) = inner.tenants.get_mut(tenant) else {
            return Ok(CreateOutcome::TenantNotFound);
        };
        let cost = record.cost;
        if state.tenant.balance < cost {
            return Ok(CreateOutcome::BalanceNotEnough);
        }
        let balance = Credits::from_micros(state.tenant.balance.micros() - cost.micros());
        state.tenant.balance = balance;
        if let Some(entry) = charge {
            push_ledger(&mut state.ledger, entry, balance, ledger_limit);
        }
        let expires_at = now.plus(retention.remaining(record.created_at, now));
        let record = RequestRecord { version: 1, ..record.clone() };
        let key = (tenant.clone(), record.id);
        inner.expiries.push_back((expires_at, key.clone()));
        inner.requests.insert(key, StoredRequest { record, expires_at });
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
        let Some(Change { record, ledger }) = change else {
            return Ok(Some((current, output)));
        };
        let record = RequestRecord { version: current.version + 1, ..record };
        if let (Some(entry), Some(state)) = (ledger, inner.tenants.get_mut(tenant)) {
            let after = Credits::from_micros(state.tenant.balance.micros().saturating_add(entry.amount.micros()));
            state.tenant.balance = after;
            push_ledger(&mut state.ledger, &entry, after, ledger_limit);
        }
        let expires_at = now.plus(retention.remaining(record.created_at, now));
        inner.requests.insert(key, StoredRequest { record: record.clone(), expires_at });
        Ok(Some((record, output)))
    }
}

impl Inner {
    /// Drops the requests whose retention has ended, so memory stays bounded without a
    /// background task.
    fn sweep(&mut self, now: Timestamp) {
        while let Some((at, _)) = self.expiries.front() {
            if *at > now {
                break;
            }
            if let Some((_, key)) = self.expiries.pop_front() {
                if self.requests.get(&key).is_some_and(|r| r.expires_at <= now) {
                    self.requests.remove(&key);
                }
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
