//! Tenants, their balances and ledgers, and their API tokens.

use super::*;
use crate::store::TenantStore;

impl TenantStore for MemoryStore {
    async fn create_tenant(&self, tenant: &Tenant, token: &TokenRecord) -> StoreResult<()> {
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

    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        Ok(self.inner.lock().tenants.get(id).map(|t| t.tenant.clone()))
    }

    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        Ok(self.inner.lock().tenants.values().map(|t| t.tenant.clone()).collect())
    }

    async fn set_settings(&self, id: &TenantId, settings: &TenantSettings) -> StoreResult<bool> {
        let mut inner = self.inner.lock();
        Ok(match inner.tenants.get_mut(id) {
            Some(t) => {
                t.tenant.settings = settings.clone();
                true
            }
            None => false,
        })
    }

    async fn adjust_balance(&self, id: &TenantId, entry: &LedgerEntry) -> StoreResult<AdjustOutcome> {
        let mut inner = self.inner.lock();
        let Some(state) = inner.tenants.get_mut(id) else {
            return Ok(AdjustOutcome::TenantNotFound);
        };
        let balance = state.tenant.balance;
        match balance.checked_add(entry.amount) {
            Some(after) if after > Credits::MAX => Ok(AdjustOutcome::WouldPassMax { balance }),
            Some(after) if after >= Credits::ZERO => {
                state.tenant.balance = after;
                push_ledger(&mut state.ledger, entry, after, self.ledger_limit);
                Ok(AdjustOutcome::Applied { balance: after })
            }
            _ => Ok(AdjustOutcome::WouldGoNegative { balance }),
        }
    }

    async fn ledger(&self, id: &TenantId, limit: usize) -> StoreResult<Vec<LedgerEntry>> {
        let inner = self.inner.lock();
        Ok(inner.tenants.get(id).map(|t| t.ledger.iter().take(limit).cloned().collect()).unwrap_or_default())
    }

    async fn put_token(&self, token: &TokenRecord, now: Timestamp) -> StoreResult<()> {
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

    async fn find_token(&self, lookup_key: &str) -> StoreResult<Option<TokenRecord>> {
        Ok(self.inner.lock().tokens_by_key.get(lookup_key).cloned())
    }

    async fn tokens(&self, tenant: &TenantId) -> StoreResult<Vec<TokenRecord>> {
        let inner = self.inner.lock();
        Ok(inner.tenants.get(tenant).map(|t| t.tokens.values().cloned().collect()).unwrap_or_default())
    }
}
