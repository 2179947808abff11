//! Requests: created with their fee, changed by domain rules with what moves with them, and the
//! dead letters of their reports.

use super::*;
use crate::store::RequestStore;

impl RequestStore for MemoryStore {
    async fn create_request(
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

    async fn request(&self, tenant: &TenantId, id: RequestId, now: Timestamp) -> StoreResult<Option<RequestRecord>> {
        let inner = self.inner.lock();
        Ok(inner.requests.get(&(tenant.clone(), id)).filter(|r| r.expires_at > now).map(|r| r.record.clone()))
    }

    async fn update_request<T, F>(
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
            list.truncate(crate::store::DEAD_REPORTS_KEPT);
        }
        inner.queue_and_schedule(tenant, &Change { enqueue, schedule, ..Change::from(record.clone()) }, now);
        Ok(Some((record, output)))
    }

    async fn dead_reports(&self, tenant: &TenantId) -> StoreResult<Vec<DeadReport>> {
        Ok(self.inner.lock().dead_reports.get(tenant).map(|l| l.iter().cloned().collect()).unwrap_or_default())
    }

    async fn remove_dead_report(&self, tenant: &TenantId, id: &str) -> StoreResult<bool> {
        let mut inner = self.inner.lock();
        let Some(list) = inner.dead_reports.get_mut(tenant) else { return Ok(false) };
        let before = list.len();
        list.retain(|d| d.id != id);
        Ok(list.len() < before)
    }
}
