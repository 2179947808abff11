//! Sender accounts: records, leases, Telegram sessions, and what each sent (for read receipts).

use super::*;
use crate::store::AccountStore;

impl AccountStore for RedisStore {
    async fn accounts(&self) -> StoreResult<Vec<SenderAccount>> {
        let mut ids: Vec<String> = self.conn().smembers(SENDERS).await?;
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some((_, account)) = self.account_with_version(&id).await? {
                out.push(account);
            }
        }
        Ok(out)
    }

    async fn add_account(&self, account: &SenderAccount) -> StoreResult<bool> {
        let added = self.cas_account(0, account).await?;
        let _: () = self.conn().sadd(SENDERS, &account.id).await?;
        Ok(added)
    }

    async fn update_account<F>(&self, id: &str, mut decide: F) -> StoreResult<Option<SenderAccount>>
    where
        F: FnMut(&SenderAccount) -> Option<SenderAccount> + Send,
    {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let Some((version, current)) = self.account_with_version(id).await? else { return Ok(None) };
            let Some(next) = decide(&current) else { return Ok(Some(current)) };
            if self.cas_account(version, &next).await? {
                return Ok(Some(next));
            }
        }
        Err(StoreError::Contention)
    }

    async fn remove_account(&self, id: &str) -> StoreResult<bool> {
        let removed: u64 =
            self.conn().del(&[account_key(id), account_lease_key(id), format!("{}:session", account_key(id))]).await?;
        let _: () = self.conn().srem(SENDERS, id).await?;
        Ok(removed > 0)
    }

    async fn lease_account(&self, id: &str, holder: &str, lease: Duration, _now: Timestamp) -> StoreResult<bool> {
        let held: i64 = self
            .scripts
            .lease_account
            .key(account_lease_key(id))
            .arg(holder)
            .arg(lease.as_millis() as u64)
            .arg("take")
            .invoke_async(&mut self.conn())
            .await?;
        Ok(held == 1)
    }

    async fn telegram_session(&self, account: &str) -> StoreResult<Option<String>> {
        Ok(self.conn().get(format!("{}:session", account_key(account))).await?)
    }

    async fn put_telegram_session(&self, account: &str, sealed: &str) -> StoreResult<()> {
        let _: () = self.conn().set(format!("{}:session", account_key(account)), sealed).await?;
        Ok(())
    }

    async fn remember_sent(
        &self,
        account: &str,
        peer: i64,
        message_id: i64,
        tenant: &TenantId,
        request: RequestId,
        keep: Duration,
    ) -> StoreResult<()> {
        let key = format!("{}:sent:{peer}", account_key(account));
        let mut pipe = redis::pipe();
        pipe.atomic()
            .zadd(&key, format!("{tenant}|{request}"), message_id)
            .ignore()
            .pexpire(&key, keep.as_millis() as i64)
            .ignore();
        let () = pipe.query_async(&mut self.conn()).await?;
        Ok(())
    }

    async fn take_read(&self, account: &str, peer: i64, max_id: i64) -> StoreResult<Vec<(TenantId, RequestId)>> {
        self.take_read_once(account, peer, max_id, &uuid::Uuid::new_v4().simple().to_string()).await
    }

    async fn release_account(&self, id: &str, holder: &str) -> StoreResult<()> {
        let _: i64 = self
            .scripts
            .lease_account
            .key(account_lease_key(id))
            .arg(holder)
            .arg(0)
            .arg("release")
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }
}

impl RedisStore {
    pub(super) async fn account_with_version(&self, id: &str) -> StoreResult<Option<(u64, SenderAccount)>> {
        let (v, d): (Option<u64>, Option<String>) =
            redis::cmd("HMGET").arg(account_key(id)).arg(&["v", "d"]).query_async(&mut self.conn()).await?;
        match (v, d) {
            (Some(v), Some(d)) => {
                let account = serde_json::from_str(&d).map_err(|_| StoreError::Corrupt { what: "sender account" })?;
                Ok(Some((v, account)))
            }
            _ => Ok(None),
        }
    }

    pub(super) async fn cas_account(&self, expected: u64, account: &SenderAccount) -> StoreResult<bool> {
        let json = serde_json::to_string(account).map_err(|_| StoreError::Corrupt { what: "sender account" })?;
        let v: u64 = self
            .scripts
            .cas_account
            .key(account_key(&account.id))
            .arg(expected)
            .arg(json)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(v != 0)
    }

    /// Takes the read receipts under the receipt `operation`: a repeat of the call gets what
    /// the first run took.
    pub(super) async fn take_read_once(
        &self,
        account: &str,
        peer: i64,
        max_id: i64,
        operation: &str,
    ) -> StoreResult<Vec<(TenantId, RequestId)>> {
        let members: Vec<String> = self
            .scripts
            .take_read
            .key(format!("{}:sent:{peer}", account_key(account)))
            .key(format!("{}:op:{operation}", account_key(account)))
            .arg(max_id)
            .arg(RECEIPT_KEPT.as_millis() as u64)
            .invoke_async(&mut self.conn())
            .await?;
        Ok(members
            .iter()
            .filter_map(|m| {
                let (tenant, request) = m.split_once('|')?;
                Some((TenantId::parse(tenant).ok()?, RequestId::parse(request).ok()?))
            })
            .collect())
    }
}
