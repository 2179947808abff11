//! Tenants, their balances and ledgers, and their API tokens.

use super::*;
use crate::store::TenantStore;

impl TenantStore for RedisStore {
    async fn create_tenant(&self, tenant: &Tenant, token: &TokenRecord) -> StoreResult<()> {
        let id = &tenant.id;
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset_multiple(
                tenant_key(id),
                &[
                    ("name", tenant.name.clone()),
                    ("balance", tenant.balance.micros().to_string()),
                    ("settings", settings_json(&tenant.settings)),
                    ("created_at", tenant.created_at.millis().to_string()),
                ],
            )
            .ignore()
            .hset(tokens_key(id), &token.id, token_json(token))
            .ignore();
        if tenant.balance != Credits::ZERO {
            let opening = crate::store::memory::opening_entry(tenant);
            pipe.lpush(ledger_key(id), format!("{}|{}", tenant.balance.micros(), encode_ledger(&opening))).ignore();
        }
        let () = pipe.query_async(&mut self.conn()).await?;
        // Outside the tenant's slot: written last, so a token never points at a missing tenant.
        let _: () = self.conn().sadd(TENANTS, id.as_str()).await?;
        let _: () = self.conn().set(token_lookup_key(&token.lookup_key), token_json(token)).await?;
        self.mirror_turn_cost(id, &tenant.settings).await
    }

    async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        let fields: HashMap<String, String> = self.conn().hgetall(tenant_key(id)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        decode_tenant(id.clone(), &fields).map(Some)
    }

    async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
        let mut ids: Vec<String> = self.conn().smembers(TENANTS).await?;
        ids.sort();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let id = TenantId::parse(&id).map_err(|_| StoreError::Corrupt { what: "tenant id" })?;
            if let Some(t) = self.tenant(&id).await? {
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn set_settings(&self, id: &TenantId, settings: &TenantSettings) -> StoreResult<bool> {
        let done: i64 = self
            .scripts
            .set_settings
            .key(tenant_key(id))
            .arg(settings_json(settings))
            .invoke_async(&mut self.conn())
            .await?;
        if done == 1 {
            self.mirror_turn_cost(id, settings).await?;
        }
        Ok(done == 1)
    }

    async fn adjust_balance(&self, id: &TenantId, entry: &LedgerEntry) -> StoreResult<AdjustOutcome> {
        self.adjust_balance_once(id, entry, &uuid::Uuid::new_v4().simple().to_string()).await
    }

    async fn ledger(&self, id: &TenantId, limit: usize) -> StoreResult<Vec<LedgerEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        // The list may hold a few lines past the cap between batched trims.
        let limit = limit.min(self.ledger_limit);
        let lines: Vec<String> = self.conn().lrange(ledger_key(id), 0, limit as isize - 1).await?;
        lines.iter().map(|l| decode_ledger(l)).collect()
    }

    async fn put_token(&self, token: &TokenRecord, now: Timestamp) -> StoreResult<()> {
        let json = token_json(token);
        let lookup = token_lookup_key(&token.lookup_key);
        // The lookup entry goes first when a token is withdrawn (fail safe), last when added.
        if !token.is_live(now) {
            let _: () = self.conn().del(&lookup).await?;
        }
        let _: () = self.conn().hset(tokens_key(&token.tenant), &token.id, &json).await?;
        if token.is_live(now) {
            let _: () = match token.expires_at {
                Some(at) => {
                    let ms = (at.millis() - now.millis()).max(1) as u64;
                    self.conn().pset_ex(&lookup, &json, ms).await?
                }
                None => self.conn().set(&lookup, &json).await?,
            };
        }
        Ok(())
    }

    async fn find_token(&self, lookup_key: &str) -> StoreResult<Option<TokenRecord>> {
        let json: Option<String> = self.conn().get(token_lookup_key(lookup_key)).await?;
        json.map(|j| serde_json::from_str(&j).map_err(|_| StoreError::Corrupt { what: "token" })).transpose()
    }

    async fn tokens(&self, tenant: &TenantId) -> StoreResult<Vec<TokenRecord>> {
        let all: HashMap<String, String> = self.conn().hgetall(tokens_key(tenant)).await?;
        let mut tokens = all
            .values()
            .map(|j| serde_json::from_str(j).map_err(|_| StoreError::Corrupt { what: "token" }))
            .collect::<StoreResult<Vec<TokenRecord>>>()?;
        tokens.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(tokens)
    }
}

impl RedisStore {
    /// Moves the balance under the receipt `operation`: however often the call reaches Redis
    /// (a cluster client sends it again when a connection drops before the answer), the money
    /// moves once, and every run answers the same.
    pub(super) async fn adjust_balance_once(
        &self,
        id: &TenantId,
        entry: &LedgerEntry,
        operation: &str,
    ) -> StoreResult<AdjustOutcome> {
        let (status, balance): (i64, i64) = self
            .scripts
            .adjust_balance
            .key(tenant_key(id))
            .key(ledger_key(id))
            .key(format!("{{t:{id}}}:op:{operation}"))
            .arg(entry.amount.micros())
            .arg(encode_ledger(entry))
            .arg(self.ledger_limit)
            .arg(RECEIPT_KEPT.as_millis() as u64)
            .arg(Credits::MAX.micros())
            .invoke_async(&mut self.conn())
            .await?;
        let balance = Credits::from_micros(balance);
        Ok(match status {
            1 => AdjustOutcome::Applied { balance },
            0 => AdjustOutcome::WouldGoNegative { balance },
            2 => AdjustOutcome::WouldPassMax { balance },
            _ => AdjustOutcome::TenantNotFound,
        })
    }
}
