//! The Redis backend: each operation is one Lua script (or one command) over keys that share
//! the tenant's hash tag `{t:<tenant>}`, so it is atomic on a single node and on a cluster.
//!
//! Keys:
//! - `{t:<tenant>}:tenant`   hash: `name`, `balance` (micro-credits), `settings` (JSON), `created_at`
//! - `{t:<tenant>}:ledger`   list of `<balance_after>|<entry JSON>`, newest first, capped
//! - `{t:<tenant>}:tokens`   hash: token id → token record JSON (the tenant's index)
//! - `{t:<tenant>}:req:<id>` hash: `v` (version), `d` (record JSON); expires after retention
//! - `tok:{<lookup key>}`    string: token record JSON; deleted or expiring once unusable
//! - `verigram:tenants`      set of tenant ids (for listing; admin only)

use super::codec::{decode_ledger, decode_request, encode_ledger, encode_request};
use super::{AdjustOutcome, Change, CreateOutcome, Retention, StoreError, StoreResult};
use crate::domain::{
    Credits, LedgerEntry, RequestId, RequestRecord, Tenant, TenantId, TenantSettings, Timestamp, TokenRecord,
};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};
use std::collections::HashMap;
use std::time::Duration;

pub struct RedisStore {
    conn: ConnectionManager,
    scripts: Scripts,
    ledger_limit: usize,
}

struct Scripts {
    create_request: Script,
    update_request: Script,
    adjust_balance: Script,
    set_settings: Script,
}

/// How often an optimistic update is retried before giving up with `Contention`. Each retry
/// means another writer succeeded, so this bounds the wait, not the correctness.
const MAX_CAS_ATTEMPTS: usize = 64;
const TENANTS: &str = "verigram:tenants";

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_io_error() || e.is_timeout() || e.is_connection_refusal() || e.is_connection_dropped() {
            StoreError::Unavailable(Box::new(e))
        } else {
            StoreError::Failed(Box::new(e))
        }
    }
}

fn tenant_key(t: &TenantId) -> String {
    format!("{{t:{t}}}:tenant")
}
fn ledger_key(t: &TenantId) -> String {
    format!("{{t:{t}}}:ledger")
}
fn tokens_key(t: &TenantId) -> String {
    format!("{{t:{t}}}:tokens")
}
fn request_key(t: &TenantId, id: RequestId) -> String {
    format!("{{t:{t}}}:req:{id}")
}
fn token_lookup_key(lookup: &str) -> String {
    format!("tok:{{{lookup}}}")
}

impl RedisStore {
    /// Connects (and fails if Redis cannot be reached within `timeout`). The connection
    /// manager reconnects on its own after a failure; operations in between answer
    /// `Unavailable`.
    pub async fn connect(url: &str, timeout: Duration, ledger_limit: usize) -> StoreResult<Self> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self {
            conn,
            scripts: Scripts {
                create_request: Script::new(include_str!("lua/create_request.lua")),
                update_request: Script::new(include_str!("lua/update_request.lua")),
                adjust_balance: Script::new(include_str!("lua/adjust_balance.lua")),
                set_settings: Script::new(include_str!("lua/set_settings.lua")),
            },
            ledger_limit: ledger_limit.max(1),
        })
    }

    fn conn(&self) -> ConnectionManager {
        // A clone shares the one multiplexed connection.
        self.conn.clone()
    }

    pub async fn ping(&self) -> StoreResult<()> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await?;
        Ok(())
    }

    pub async fn create_tenant(&self, tenant: &Tenant, token: &TokenRecord) -> StoreResult<()> {
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
            let opening = super::memory::opening_entry(tenant);
            pipe.lpush(ledger_key(id), format!("{}|{}", tenant.balance.micros(), encode_ledger(&opening))).ignore();
        }
        let () = pipe.query_async(&mut self.conn()).await?;
        // Outside the tenant's slot: written last, so a token never points at a missing tenant.
        let _: () = self.conn().sadd(TENANTS, id.as_str()).await?;
        let _: () = self.conn().set(token_lookup_key(&token.lookup_key), token_json(token)).await?;
        Ok(())
    }

    pub async fn tenant(&self, id: &TenantId) -> StoreResult<Option<Tenant>> {
        let fields: HashMap<String, String> = self.conn().hgetall(tenant_key(id)).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        decode_tenant(id.clone(), &fields).map(Some)
    }

    pub async fn tenants(&self) -> StoreResult<Vec<Tenant>> {
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

    pub async fn set_settings(&self, id: &TenantId, settings: &TenantSettings) -> StoreResult<bool> {
        let done: i64 = self
            .scripts
            .set_settings
            .key(tenant_key(id))
            .arg(settings_json(settings))
            .invoke_async(&mut self.conn())
            .await?;
        Ok(done == 1)
    }

    pub async fn adjust_balance(&self, id: &TenantId, entry: &LedgerEntry) -> StoreResult<AdjustOutcome> {
        let (status, balance): (i64, i64) = self
            .scripts
            .adjust_balance
            .key(tenant_key(id))
            .key(ledger_key(id))
            .arg(entry.amount.micros())
            .arg(encode_ledger(entry))
            .arg(self.ledger_limit)
            .invoke_async(&mut self.conn())
            .await?;
        let balance = Credits::from_micros(balance);
        Ok(match status {
            1 => AdjustOutcome::Applied { balance },
            0 => AdjustOutcome::WouldGoNegative { balance },
            _ => AdjustOutcome::TenantNotFound,
        })
    }

    pub async fn ledger(&self, id: &TenantId, limit: usize) -> StoreResult<Vec<LedgerEntry>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let lines: Vec<String> = self.conn().lrange(ledger_key(id), 0, limit as isize - 1).await?;
        lines.iter().map(|l| decode_ledger(l)).collect()
    }

    pub async fn put_token(&self, token: &TokenRecord, now: Timestamp) -> StoreResult<()> {
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

    pub async fn find_token(&self, lookup_key: &str) -> StoreResult<Option<TokenRecord>> {
        let json: Option<String> = self.conn().get(token_lookup_key(lookup_key)).await?;
        json.map(|j| serde_json::from_str(&j).map_err(|_| StoreError::Corrupt { what: "token" })).transpose()
    }

    pub async fn tokens(&self, tenant: &TenantId) -> StoreResult<Vec<TokenRecord>> {
        let all: HashMap<String, String> = self.conn().hgetall(tokens_key(tenant)).await?;
        let mut tokens = all
            .values()
            .map(|j| serde_json::from_str(j).map_err(|_| StoreError::Corrupt { what: "token" }))
            .collect::<StoreResult<Vec<TokenRecord>>>()?;
        tokens.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(tokens)
    }

    pub async fn create_request(
        &self,
        tenant: &TenantId,
        record: &RequestRecord,
        charge: Option<&LedgerEntry>,
        retention: Retention,
        now: Timestamp,
    ) -> StoreResult<CreateOutcome> {
        let (status, detail): (i64, redis::Value) = self
            .scripts
            .create_request
            .key(tenant_key(tenant))
            .key(request_key(tenant, record.id))
            .key(ledger_key(tenant))
            .arg(record.cost.micros())
            .arg(encode_request(record))
            .arg(retention.remaining(record.created_at, now).as_millis() as u64)
            .arg(charge.map(encode_ledger).unwrap_or_default())
            .arg(self.ledger_limit)
            .arg(record.created_at.plus(retention.0).millis())
            .invoke_async(&mut self.conn())
            .await?;
        if status == 1 {
            let balance: i64 = redis::from_redis_value(detail).map_err(|e| StoreError::Failed(Box::new(e)))?;
            return Ok(CreateOutcome::Created { balance: Credits::from_micros(balance) });
        }
        let reason: String = redis::from_redis_value(detail).map_err(|e| StoreError::Failed(Box::new(e)))?;
        match reason.as_str() {
            "balance" => Ok(CreateOutcome::BalanceNotEnough),
            "tenant" => Ok(CreateOutcome::TenantNotFound),
            // A 63-bit random id collided: astronomically unlikely, and never overwritten.
            _ => Err(StoreError::Contention),
        }
    }

    /// The request, unless it is gone or past its retention by the service clock (Redis
    /// expires the key by its own clock; the two agree unless the clocks differ).
    pub async fn request(
        &self,
        tenant: &TenantId,
        id: RequestId,
        now: Timestamp,
    ) -> StoreResult<Option<RequestRecord>> {
        let (version, data, end): (Option<u64>, Option<String>, Option<i64>) = redis::cmd("HMGET")
            .arg(request_key(tenant, id))
            .arg(&["v", "d", "e"])
            .query_async(&mut self.conn())
            .await?;
        match (version, data) {
            (Some(_), Some(_)) if end.is_some_and(|e| e <= now.millis()) => Ok(None),
            (Some(v), Some(d)) => decode_request(&d, v).map(Some),
            _ => Ok(None),
        }
    }

    pub async fn update_request<T, F>(
        &self,
        tenant: &TenantId,
        id: RequestId,
        mut known: Option<RequestRecord>,
        retention: Retention,
        now: Timestamp,
        mut decide: F,
    ) -> StoreResult<Option<(RequestRecord, T)>>
    where
        F: FnMut(&RequestRecord) -> (Option<Change>, T) + Send,
        T: Send,
    {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = match known.take() {
                Some(record) => record,
                None => match self.request(tenant, id, now).await? {
                    Some(record) => record,
                    None => return Ok(None),
                },
            };
            let (change, output) = decide(&current);
            let Some(Change { record, ledger }) = change else {
                return Ok(Some((current, output)));
            };
            let new_version: i64 = self
                .scripts
                .update_request
                .key(request_key(tenant, id))
                .key(tenant_key(tenant))
                .key(ledger_key(tenant))
                .arg(current.version)
                .arg(encode_request(&record))
                .arg(retention.remaining(record.created_at, now).as_millis() as u64)
                .arg(ledger.as_ref().map_or(0, |e| e.amount.micros()))
                .arg(ledger.as_ref().map(encode_ledger).unwrap_or_default())
                .arg(self.ledger_limit)
                .arg(now.millis())
                .invoke_async(&mut self.conn())
                .await?;
            match new_version {
                -1 => return Ok(None),
                0 => continue,
                v => return Ok(Some((RequestRecord { version: v as u64, ..record }, output))),
            }
        }
        Err(StoreError::Contention)
    }
}

fn settings_json(settings: &TenantSettings) -> String {
    serde_json::to_string(settings).unwrap_or_default()
}

fn token_json(token: &TokenRecord) -> String {
    serde_json::to_string(token).unwrap_or_default()
}

fn decode_tenant(id: TenantId, fields: &HashMap<String, String>) -> StoreResult<Tenant> {
    let corrupt = || StoreError::Corrupt { what: "tenant" };
    let field = |name: &str| fields.get(name).ok_or_else(corrupt);
    Ok(Tenant {
        id,
        name: field("name")?.clone(),
        balance: Credits::from_micros(field("balance")?.parse().map_err(|_| corrupt())?),
        settings: serde_json::from_str(field("settings")?).map_err(|_| corrupt())?,
        created_at: Timestamp::from_millis(field("created_at")?.parse().map_err(|_| corrupt())?),
    })
}
