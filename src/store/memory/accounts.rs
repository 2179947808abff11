//! Sender accounts: records, leases, Telegram sessions, and what each sent (for read receipts).

use super::*;
use crate::store::AccountStore;

impl AccountStore for MemoryStore {
    async fn accounts(&self) -> StoreResult<Vec<SenderAccount>> {
        Ok(self.inner.lock().accounts.values().map(|e| e.account.clone()).collect())
    }

    async fn add_account(&self, account: &SenderAccount) -> StoreResult<bool> {
        let mut inner = self.inner.lock();
        if inner.accounts.contains_key(&account.id) {
            return Ok(false);
        }
        inner.accounts.insert(account.id.clone(), AccountEntry { account: account.clone(), lease: None });
        Ok(true)
    }

    async fn update_account<F>(&self, id: &str, mut decide: F) -> StoreResult<Option<SenderAccount>>
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

    async fn remove_account(&self, id: &str) -> StoreResult<bool> {
        let mut inner = self.inner.lock();
        inner.telegram_sessions.remove(id);
        Ok(inner.accounts.remove(id).is_some())
    }

    async fn lease_account(&self, id: &str, holder: &str, lease: Duration, now: Timestamp) -> StoreResult<bool> {
        let mut inner = self.inner.lock();
        let Some(entry) = inner.accounts.get_mut(id) else { return Ok(false) };
        let free = entry.lease.as_ref().is_none_or(|(h, until)| h == holder || *until <= now);
        if free {
            entry.lease = Some((holder.to_owned(), now.plus(lease)));
        }
        Ok(free)
    }

    async fn telegram_session(&self, account: &str) -> StoreResult<Option<String>> {
        Ok(self.inner.lock().telegram_sessions.get(account).cloned())
    }

    async fn put_telegram_session(&self, account: &str, sealed: &str) -> StoreResult<()> {
        self.inner.lock().telegram_sessions.insert(account.to_owned(), sealed.to_owned());
        Ok(())
    }

    async fn remember_sent(
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

    async fn take_read(&self, account: &str, peer: i64, max_id: i64) -> StoreResult<Vec<(TenantId, RequestId)>> {
        let mut inner = self.inner.lock();
        let Some(sent) = inner.sent.get_mut(&(account.to_owned(), peer)) else { return Ok(Vec::new()) };
        let unread = sent.split_off(&max_id.saturating_add(1));
        let read = std::mem::replace(sent, unread);
        Ok(read.into_values().flatten().collect())
    }

    async fn release_account(&self, id: &str, holder: &str) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        if let Some(entry) = inner.accounts.get_mut(id) {
            if entry.lease.as_ref().is_some_and(|(h, _)| h == holder) {
                entry.lease = None;
            }
        }
        Ok(())
    }
}
