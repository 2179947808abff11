//! The Redis backend: each operation is one Lua script (or one command) over keys that share
//! the tenant's hash tag `{t:<tenant>}`, so it is atomic on a single node and on a cluster.
//!
//! Keys:
//! - `{t:<tenant>}:tenant`   hash: `name`, `balance` (micro-credits), `settings` (JSON), `created_at`
//! - `{t:<tenant>}:ledger`   list of `<balance_after>|<entry JSON>`, newest first, capped
//! - `{t:<tenant>}:tokens`   hash: token id → token record JSON (the tenant's index)
//! - `{t:<tenant>}:r:<id>`   string: `<version>|<retention end, unix ms>|<record JSON>`; expires
//!   after retention (one string rather than a hash: each write is one `SET … PX`)
//! - `{t:<tenant>}:op:<id>`  string: a balance adjustment's receipt (its balance after); expires
//! - `{s:<account>}:op:<id>` string: the receipt of taking read receipts (what was taken); expires
//! - `tok:{<lookup key>}`    string: token record JSON; deleted or expiring once unusable
//! - `{t:<tenant>}:jobs`     stream of delivery jobs, consumer group `delivery`
//! - `{t:<tenant>}:due`      sorted set of timed tasks `<task>:<request id>` by due time (ms)
//! - `verigram:tenants`      set of tenant ids (for listing; admin only)
//! - `{verigram}:work`       set of tenants with jobs (advisory: written after the atomic step,
//!   removed only when the stream is seen empty, re-added by producers)
//! - `{s:<account>}`         hash: `v` (version), `d` (sender account JSON)
//! - `{s:<account>}:lease`   string: the process driving the account, expiring
//! - `{s:<account>}:session` string: the account's Telegram session, sealed
//! - `{s:<account>}:sent:<peer>` sorted set: `<tenant>|<request>` by message id, for read
//!   receipts; expires after the request retention
//! - `verigram:senders`      set of sender account ids
//! - `{verigram}:due`        sorted set of tenants by their earliest task (advisory, likewise)
//!
//! The two advisory indexes share a hash tag, so one pipeline updates both on Redis Cluster.
//!
//! On Redis Cluster (`redis+cluster://host:port,host:port,…`) nothing changes but the
//! connection: every script's keys share one hash tag (one slot), and every pipeline's keys
//! one slot.

use super::codec::{
    decode_dead_report, decode_ledger, decode_request, encode_dead_report, encode_ledger, encode_request,
};
use super::{AdjustOutcome, Change, CreateOutcome, DueTask, Job, Retention, StoreError, StoreResult, Task};
use crate::config::{cluster_seeds, CLUSTER_SCHEME};
use crate::domain::{
    Backlog, Credits, DeadReport, LedgerEntry, LimitCheck, LimitState, Refusal, RequestId, RequestRecord,
    SenderAccount, SpendCheck, Tenant, TenantId, TenantSettings, Timestamp, TokenRecord,
};
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::streams::{StreamAutoClaimReply, StreamId, StreamReadReply};
use redis::{AsyncCommands, Script};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Duration;

pub struct RedisStore {
    conn: Conn,
    scripts: Scripts,
    ledger_limit: usize,
}

struct Scripts {
    create_request: Script,
    update_request: Script,
    adjust_balance: Script,
    set_settings: Script,
    claim_due: Script,
    finish_due: Script,
    ack_job: Script,
    cas_account: Script,
    lease_account: Script,
    take_read: Script,
    spend: Script,
    admit: Script,
    give_back: Script,
}

/// How often an optimistic update is retried before giving up with `Contention`. Each retry
/// means another writer succeeded, so this bounds the wait, not the correctness.
const MAX_CAS_ATTEMPTS: usize = 64;
const TENANTS: &str = "verigram:tenants";
const WORK: &str = "{verigram}:work";
const DUE: &str = "{verigram}:due";
const GROUP: &str = "delivery";
const SENDERS: &str = "verigram:senders";
/// How long the receipt of a call that must not run twice (a balance adjustment, taking read
/// receipts) is kept: far longer than a client's retries last.
const RECEIPT_KEPT: Duration = Duration::from_secs(600);
/// Shared by the scripts that queue jobs, schedule tasks and write ledger lines.
const PRELUDE_LUA: &str = include_str!("lua/prelude.lua");

/// One Redis node (through a reconnecting manager) or a cluster (through the cluster client,
/// which follows `MOVED`/`ASK` and refreshes its slot map after a failover). Public so that
/// the benchmarks' baselines talk to Redis exactly as the store does.
#[derive(Clone)]
pub enum Conn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl Conn {
    /// Connects to `store.url`: `redis://…` (one node) or `redis+cluster://…` (seed nodes), with
    /// every attempt and call bounded by `timeout`.
    pub async fn open(url: &str, timeout: Duration) -> StoreResult<Self> {
        if url.starts_with(CLUSTER_SCHEME) {
            let seeds = cluster_seeds(url).map_err(|why| StoreError::Failed(why.into()))?;
            // Redirects (MOVED, ASK) and "try again" answers are followed at once or after a
            // short wait; every attempt and the whole call stay within `timeout`.
            let client = redis::cluster::ClusterClient::builder(seeds)
                .connection_timeout(timeout)
                .response_timeout(timeout)
                .overall_response_timeout(Some(timeout))
                .retries(6)
                .min_retry_wait(50)
                .max_retry_wait(1000)
                .build()?;
            let connecting = client.get_async_connection();
            match tokio::time::timeout(timeout, connecting).await {
                Ok(conn) => Ok(Conn::Cluster(conn?)),
                Err(_) => Err(StoreError::Unavailable("no cluster node answered in time".into())),
            }
        } else {
            let client = redis::Client::open(url)?;
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(2)
                .set_max_delay(Duration::from_secs(1));
            Ok(Conn::Single(ConnectionManager::new_with_config(client, config).await?))
        }
    }
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, redis::Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        use redis::{ErrorKind, ServerErrorKind};
        // A cluster in the middle of a failover or a resharding, or a node still loading.
        let transient_kind = e.is_cluster_error()
            || matches!(
                e.kind(),
                ErrorKind::ClusterConnectionNotFound
                    | ErrorKind::Server(
                        ServerErrorKind::MasterDown | ServerErrorKind::ReadOnly | ServerErrorKind::BusyLoading
                    )
            );
        if transient_kind || e.is_io_error() || e.is_timeout() || e.is_connection_refusal() || e.is_connection_dropped()
        {
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
    format!("{{t:{t}}}:r:{id}")
}

/// A request as stored: `<version>|<retention end, unix ms>|<record JSON>`. The scripts read
/// the version and the end without decoding the JSON.
fn stored_request(version: u64, retention_end: Timestamp, record: &RequestRecord) -> String {
    let json = encode_request(record);
    let mut out = String::with_capacity(json.len() + 24);
    // Writing to a String cannot fail.
    let _ = write!(out, "{version}|{}|", retention_end.millis());
    out.push_str(&json);
    out
}

/// The version, the retention end and the record JSON of a stored request.
fn split_stored_request(stored: &str) -> StoreResult<(u64, i64, &str)> {
    let corrupt = || StoreError::Corrupt { what: "request" };
    let mut parts = stored.splitn(3, '|');
    let (Some(version), Some(end), Some(json)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(corrupt());
    };
    Ok((version.parse().map_err(|_| corrupt())?, end.parse().map_err(|_| corrupt())?, json))
}
fn jobs_key(t: &TenantId) -> String {
    format!("{{t:{t}}}:jobs")
}
fn dead_key(t: &TenantId) -> String {
    format!("{{t:{t}}}:dead")
}

fn due_key(t: &TenantId) -> String {
    format!("{{t:{t}}}:due")
}
fn account_key(id: &str) -> String {
    format!("{{s:{id}}}")
}
fn account_lease_key(id: &str) -> String {
    format!("{{s:{id}}}:lease")
}
fn token_lookup_key(lookup: &str) -> String {
    format!("tok:{{{lookup}}}")
}

impl RedisStore {
    /// Connects (and fails if Redis cannot be reached within `timeout`). The connection
    /// manager reconnects on its own after a failure; operations in between answer
    /// `Unavailable`.
    pub async fn connect(url: &str, timeout: Duration, ledger_limit: usize) -> StoreResult<Self> {
        let conn = Conn::open(url, timeout).await?;
        Ok(Self {
            conn,
            scripts: Scripts {
                create_request: Script::new(&format!("{PRELUDE_LUA}\n{}", include_str!("lua/create_request.lua"))),
                update_request: Script::new(&format!("{PRELUDE_LUA}\n{}", include_str!("lua/update_request.lua"))),
                claim_due: Script::new(&format!("{PRELUDE_LUA}\n{}", include_str!("lua/claim_due.lua"))),
                finish_due: Script::new(include_str!("lua/finish_due.lua")),
                spend: Script::new(include_str!("lua/spend.lua")),
                admit: Script::new(include_str!("lua/admit.lua")),
                give_back: Script::new(include_str!("lua/give_back.lua")),
                ack_job: Script::new(include_str!("lua/ack_job.lua")),
                cas_account: Script::new(include_str!("lua/cas_account.lua")),
                lease_account: Script::new(include_str!("lua/lease_account.lua")),
                take_read: Script::new(include_str!("lua/take_read.lua")),
                adjust_balance: Script::new(&format!("{PRELUDE_LUA}\n{}", include_str!("lua/adjust_balance.lua"))),
                set_settings: Script::new(include_str!("lua/set_settings.lua")),
            },
            ledger_limit: ledger_limit.max(1),
        })
    }

    fn conn(&self) -> Conn {
        // A clone shares the one multiplexed connection (or the cluster's connections).
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
        self.adjust_balance_once(id, entry, &uuid::Uuid::new_v4().simple().to_string()).await
    }

    /// Moves the balance under the receipt `operation`: however often the call reaches Redis
    /// (a cluster client sends it again when a connection drops before the answer), the money
    /// moves once, and every run answers the same.
    async fn adjust_balance_once(
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
        // The list may hold a few lines past the cap between batched trims.
        let limit = limit.min(self.ledger_limit);
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
        change: &Change,
        retention: Retention,
        now: Timestamp,
    ) -> StoreResult<CreateOutcome> {
        let record = &change.record;
        let mut invocation = self.scripts.create_request.prepare_invoke();
        invocation
            .key(tenant_key(tenant))
            .key(request_key(tenant, record.id))
            .key(ledger_key(tenant))
            .key(jobs_key(tenant))
            .key(due_key(tenant))
            .arg(record.cost.micros())
            .arg(stored_request(1, record.created_at.plus(retention.0), record))
            .arg(retention.keep(record, now).as_millis() as u64)
            .arg(change.ledger.as_ref().map(encode_ledger).unwrap_or_default())
            .arg(self.ledger_limit);
        // On one Redis the script also updates the advisory indexes: one round trip a send.
        let single = matches!(self.conn, Conn::Single(_));
        if single {
            invocation.key(WORK).key(DUE).arg(tenant.as_str());
        } else {
            invocation.arg("");
        }
        schedule_args(&mut invocation, change);
        let (status, detail): (i64, redis::Value) = invocation.invoke_async(&mut self.conn()).await?;
        if status == 1 {
            let balance: i64 = redis::from_redis_value(detail).map_err(|e| StoreError::Failed(Box::new(e)))?;
            if !single {
                self.announce_work(tenant, change).await?;
            }
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

    /// Tells workers where the new work is (after the atomic step: advisory only).
    async fn announce_work(&self, tenant: &TenantId, change: &Change) -> StoreResult<()> {
        let mut pipe = redis::pipe();
        if change.enqueue {
            pipe.sadd(WORK, tenant.as_str()).ignore();
        }
        if let Some(first) = change.schedule.iter().map(|s| s.at.millis()).min() {
            // LT lowers an existing score and adds a missing member (Redis 6.2+).
            pipe.cmd("ZADD").arg(DUE).arg("LT").arg(first).arg(tenant.as_str()).ignore();
        }
        if change.enqueue || !change.schedule.is_empty() {
            let () = pipe.query_async(&mut self.conn()).await?;
        }
        Ok(())
    }

    /// The request, unless it is gone or past its retention by the service clock (Redis
    /// expires the key by its own clock; the two agree unless the clocks differ).
    pub async fn request(
        &self,
        tenant: &TenantId,
        id: RequestId,
        now: Timestamp,
    ) -> StoreResult<Option<RequestRecord>> {
        let stored: Option<String> = self.conn().get(request_key(tenant, id)).await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let (version, end, json) = split_stored_request(&stored)?;
        if end <= now.millis() {
            return Ok(None);
        }
        decode_request(json, version).map(Some)
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
            let Some(change) = change else {
                return Ok(Some((current, output)));
            };
            let (record, ledger) = (&change.record, &change.ledger);
            let keep = retention.keep(record, now);
            let version = current.version + 1;
            let mut invocation = self.scripts.update_request.prepare_invoke();
            invocation
                .key(request_key(tenant, id))
                .arg(current.version)
                .arg(stored_request(version, now.plus(keep), record))
                .arg(keep.as_millis() as u64)
                .arg(now.millis());
            let moves_more =
                ledger.is_some() || change.dead_letter.is_some() || change.enqueue || !change.schedule.is_empty();
            if moves_more {
                invocation
                    .key(tenant_key(tenant))
                    .key(ledger_key(tenant))
                    .key(jobs_key(tenant))
                    .key(due_key(tenant))
                    .key(dead_key(tenant))
                    .arg(ledger.as_ref().map_or(0, |e| e.amount.micros()))
                    .arg(ledger.as_ref().map(encode_ledger).unwrap_or_default())
                    .arg(self.ledger_limit)
                    .arg(change.dead_letter.as_ref().map(encode_dead_report).unwrap_or_default())
                    .arg(super::DEAD_REPORTS_KEPT);
                schedule_args(&mut invocation, &change);
            }
            let stored: i64 = invocation.invoke_async(&mut self.conn()).await?;
            match stored {
                -1 => return Ok(None),
                0 => continue,
                _ => {
                    self.announce_work(tenant, &change).await?;
                    return Ok(Some((RequestRecord { version, ..change.record }, output)));
                }
            }
        }
        Err(StoreError::Contention)
    }
}

impl RedisStore {
    pub async fn limit(
        &self,
        tenant: &TenantId,
        checks: &[LimitCheck],
        now: Timestamp,
        consume: bool,
    ) -> StoreResult<Result<Vec<LimitState>, Refusal>> {
        match self.run_admit(tenant, checks, &[], 0, now, consume).await? {
            Ok(tats) => Ok(Ok(checks.iter().zip(tats).map(|(c, tat)| super::limit_state(c, tat, now)).collect())),
            Err(refusal) => Ok(Err(refusal)),
        }
    }

    pub async fn give_back_limits(&self, tenant: &TenantId, checks: &[LimitCheck], now: Timestamp) -> StoreResult<()> {
        let mut invocation = self.scripts.give_back.prepare_invoke();
        invocation.arg(now.millis());
        for check in checks {
            invocation.key(format!("{{t:{tenant}}}:rl:{}:{}", check.kind.as_str(), check.key));
            invocation.arg(check.rate.interval_ms());
        }
        let _: i64 = invocation.invoke_async(&mut self.conn()).await?;
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
        Ok(self.run_admit(tenant, limits, budgets, fee, now, true).await?.map(|out| out[limits.len()..].to_vec()))
    }

    /// Runs `admit.lua`: the limits' TATs and the budgets' spending after the call (counted
    /// when `consume`), or the refusal.
    async fn run_admit(
        &self,
        tenant: &TenantId,
        limits: &[LimitCheck],
        budgets: &[SpendCheck],
        fee: i64,
        now: Timestamp,
        consume: bool,
    ) -> StoreResult<Result<Vec<i64>, Refusal>> {
        let mut invocation = self.scripts.admit.prepare_invoke();
        invocation.arg(now.millis()).arg(limits.len()).arg(fee).arg(if consume { "1" } else { "0" });
        for check in limits {
            invocation.key(format!("{{t:{tenant}}}:rl:{}:{}", check.kind.as_str(), check.key));
            invocation.arg(check.rate.interval_ms()).arg(check.rate.tolerance_ms());
        }
        for check in budgets {
            invocation.key(format!("{{t:{tenant}}}:spend:{}", super::spend_key(check, now)));
            invocation.arg(check.cap).arg(if check.blocking { "1" } else { "0" });
            invocation.arg(check.until_next_window(now).as_millis() as u64 + 60_000);
        }
        let answer: Vec<i64> = invocation.invoke_async(&mut self.conn()).await?;
        match answer.as_slice() {
            [0, rest @ ..] if rest.len() == limits.len() + budgets.len() => Ok(Ok(rest.to_vec())),
            [1, i, wait] if *i >= 1 && (*i as usize) <= limits.len() => {
                let check = &limits[*i as usize - 1];
                let retry_after = Duration::from_millis((*wait).max(0) as u64);
                Ok(Err(Refusal { kind: check.kind, rate: check.rate, retry_after }))
            }
            [2, j] if *j >= 1 && (*j as usize) <= budgets.len() => Ok(Err(budgets[*j as usize - 1].refusal(now))),
            _ => Err(StoreError::Corrupt { what: "admission answer" }),
        }
    }

    pub async fn spend(
        &self,
        tenant: &TenantId,
        checks: &[SpendCheck],
        amount: i64,
        now: Timestamp,
    ) -> StoreResult<Result<Vec<i64>, usize>> {
        let mut invocation = self.scripts.spend.prepare_invoke();
        invocation.arg(amount);
        for check in checks {
            invocation.key(format!("{{t:{tenant}}}:spend:{}", super::spend_key(check, now)));
            invocation.arg(check.cap).arg(if check.blocking { "1" } else { "0" });
        }
        for check in checks {
            // Kept a minute past the window's end, for clock differences between processes.
            invocation.arg(check.until_next_window(now).as_millis() as u64 + 60_000);
        }
        let answer: Vec<i64> = invocation.invoke_async(&mut self.conn()).await?;
        match answer.as_slice() {
            [0, spent @ ..] if spent.len() == checks.len() => Ok(Ok(spent.to_vec())),
            [i] if *i >= 1 && (*i as usize) <= checks.len() => Ok(Err(*i as usize - 1)),
            _ => Err(StoreError::Corrupt { what: "spend answer" }),
        }
    }

    pub async fn dead_reports(&self, tenant: &TenantId) -> StoreResult<Vec<DeadReport>> {
        let raw: Vec<String> = self.conn().lrange(dead_key(tenant), 0, -1).await?;
        raw.iter().map(|r| decode_dead_report(r)).collect()
    }

    pub async fn remove_dead_report(&self, tenant: &TenantId, id: &str) -> StoreResult<bool> {
        let raw: Vec<String> = self.conn().lrange(dead_key(tenant), 0, -1).await?;
        for entry in raw {
            if decode_dead_report(&entry)?.id == id {
                let removed: u64 = self.conn().lrem(dead_key(tenant), 1, entry).await?;
                return Ok(removed > 0);
            }
        }
        Ok(false)
    }
}

impl RedisStore {
    pub async fn claim_jobs(
        &self,
        consumer: &str,
        max: usize,
        lease: Duration,
        _now: Timestamp,
    ) -> StoreResult<Vec<Job>> {
        let raw: Vec<String> = self.conn().smembers(WORK).await?;
        let mut tenants = Vec::with_capacity(raw.len());
        for id in raw {
            match TenantId::parse(&id) {
                Ok(t) => tenants.push(t),
                Err(_) => {
                    let _: () = self.conn().srem(WORK, &id).await?;
                }
            }
        }
        // A different order each time, so no tenant always goes first.
        use rand::seq::SliceRandom;
        tenants.shuffle(&mut rand::thread_rng());
        let mut jobs = Vec::new();
        // Pass after pass, each tenant with work takes at most its share of what is left, so
        // one backlog cannot fill the batch while another tenant waits; later passes fill the
        // batch from whoever still has jobs.
        let mut active = tenants;
        while jobs.len() < max && !active.is_empty() {
            let share = (max - jobs.len()).div_ceil(active.len()).max(1);
            let mut still = Vec::with_capacity(active.len());
            for tenant in active {
                let room = share.min(max - jobs.len());
                if room == 0 {
                    break;
                }
                let got = self.claim_from(&tenant, consumer, room, lease).await?;
                if got.is_empty() {
                    self.retire_idle_tenant(&tenant).await?;
                    continue;
                }
                let full = got.len() == room;
                jobs.extend(got);
                if full {
                    still.push(tenant);
                }
            }
            active = still;
        }
        Ok(jobs)
    }

    /// Up to `room` jobs of one tenant: first those whose worker held them past the lease (it
    /// died or hung), then new ones.
    async fn claim_from(
        &self,
        tenant: &TenantId,
        consumer: &str,
        room: usize,
        lease: Duration,
    ) -> StoreResult<Vec<Job>> {
        let mut jobs = Vec::new();
        let reclaimed: Result<StreamAutoClaimReply, _> = redis::cmd("XAUTOCLAIM")
            .arg(jobs_key(tenant))
            .arg(GROUP)
            .arg(consumer)
            .arg(lease.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(room)
            .query_async(&mut self.conn())
            .await;
        match reclaimed {
            Ok(reply) => jobs.extend(reply.claimed.iter().filter_map(|e| parse_job(tenant, e, true))),
            Err(e) if e.code() == Some("NOGROUP") => return Ok(jobs),
            Err(e) => return Err(e.into()),
        }
        let room = room.saturating_sub(jobs.len());
        if room == 0 {
            return Ok(jobs);
        }
        let fresh: Result<Option<StreamReadReply>, _> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(room)
            .arg("STREAMS")
            .arg(jobs_key(tenant))
            .arg(">")
            .query_async(&mut self.conn())
            .await;
        match fresh {
            Ok(Some(reply)) => {
                jobs.extend(reply.keys.iter().flat_map(|k| k.ids.iter()).filter_map(|e| parse_job(tenant, e, false)))
            }
            Ok(None) => {}
            Err(e) if e.code() == Some("NOGROUP") => {}
            Err(e) => return Err(e.into()),
        }
        Ok(jobs)
    }

    /// Drops a tenant from the work index when its stream is empty. A producer adds the job,
    /// then the tenant; we remove the tenant, then look at the stream: whichever order the two
    /// interleave in, a tenant with a job ends up in the index.
    async fn retire_idle_tenant(&self, tenant: &TenantId) -> StoreResult<()> {
        let _: () = self.conn().srem(WORK, tenant.as_str()).await?;
        let left: u64 = self.conn().xlen(jobs_key(tenant)).await?;
        if left > 0 {
            let _: () = self.conn().sadd(WORK, tenant.as_str()).await?;
        }
        Ok(())
    }

    pub async fn ack_job(&self, job: &Job) -> StoreResult<()> {
        self.finish_job(job, None).await
    }

    pub async fn defer_job(&self, job: &Job, until: Timestamp) -> StoreResult<()> {
        self.finish_job(job, Some(until)).await?;
        self.announce_due(&job.tenant, until).await
    }

    async fn finish_job(&self, job: &Job, retry_at: Option<Timestamp>) -> StoreResult<()> {
        let _left: u64 = self
            .scripts
            .ack_job
            .key(jobs_key(&job.tenant))
            .key(due_key(&job.tenant))
            .arg(&job.id)
            .arg(retry_at.map(|t| t.millis().to_string()).unwrap_or_default())
            .arg(job.request.to_string())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    pub async fn claim_due(&self, now: Timestamp, lease_until: Timestamp, max: usize) -> StoreResult<Vec<DueTask>> {
        let tenants: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(DUE)
            .arg("-inf")
            .arg(now.millis())
            .arg("LIMIT")
            .arg(0)
            .arg(max.max(1))
            .query_async(&mut self.conn())
            .await?;
        let mut tasks = Vec::new();
        for raw in tenants {
            let Ok(tenant) = TenantId::parse(&raw) else {
                let _: () = self.conn().zrem(DUE, &raw).await?;
                continue;
            };
            let room = max.saturating_sub(tasks.len()).max(1);
            let (leased, next): (Vec<String>, Option<i64>) = self
                .scripts
                .claim_due
                .key(due_key(&tenant))
                .key(jobs_key(&tenant))
                .arg(now.millis())
                .arg(lease_until.millis())
                .arg(room)
                .invoke_async(&mut self.conn())
                .await?;
            let mut pipe = redis::pipe();
            // Deliveries that came back to the stream need a worker to notice them.
            pipe.sadd(WORK, tenant.as_str()).ignore();
            match next {
                Some(at) => pipe.cmd("ZADD").arg(DUE).arg(at).arg(tenant.as_str()).ignore(),
                None => pipe.zrem(DUE, tenant.as_str()).ignore(),
            };
            let () = pipe.query_async(&mut self.conn()).await?;
            for member in leased {
                let parsed = member
                    .split_once(':')
                    .and_then(|(task, id)| Some((Task::parse(task)?, RequestId::parse(id).ok()?)));
                if let Some((task, request)) = parsed {
                    tasks.push(DueTask { tenant: tenant.clone(), request, task, lease: lease_until });
                }
            }
            if tasks.len() >= max {
                break;
            }
        }
        Ok(tasks)
    }

    pub async fn reschedule_due(&self, task: &DueTask, at: Timestamp) -> StoreResult<()> {
        let member = format!("{}:{}", task.task.as_str(), task.request);
        let _: i64 = redis::cmd("ZADD")
            .arg(due_key(&task.tenant))
            .arg("XX")
            .arg(at.millis())
            .arg(member)
            .query_async(&mut self.conn())
            .await?;
        // The index of tenants with timed tasks must see the earlier time too (another slot
        // on a cluster: a command of its own).
        self.announce_due(&task.tenant, at).await
    }

    /// Lowers the tenant's time in the index of tenants with timed tasks to `at`, adding it
    /// when absent (`ZADD LT` does both).
    async fn announce_due(&self, tenant: &TenantId, at: Timestamp) -> StoreResult<()> {
        let () = redis::cmd("ZADD")
            .arg(DUE)
            .arg("LT")
            .arg(at.millis())
            .arg(tenant.as_str())
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }

    pub async fn finish_due(&self, task: &DueTask) -> StoreResult<()> {
        let _: i64 = self
            .scripts
            .finish_due
            .key(due_key(&task.tenant))
            .arg(format!("{}:{}", task.task.as_str(), task.request))
            .arg(task.lease.millis())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    pub async fn repair_indexes(&self) -> StoreResult<u64> {
        let tenants: Vec<String> = self.conn().smembers(TENANTS).await?;
        let mut repaired = 0;
        for raw in tenants {
            let Ok(tenant) = TenantId::parse(&raw) else { continue };
            let jobs: u64 = self.conn().xlen(jobs_key(&tenant)).await?;
            if jobs > 0 {
                let added: u64 = self.conn().sadd(WORK, tenant.as_str()).await?;
                repaired += added;
            }
            let first: Vec<(String, i64)> = self.conn().zrange_withscores(due_key(&tenant), 0, 0).await?;
            if let Some((_, at)) = first.first() {
                let current: Option<i64> = self.conn().zscore(DUE, tenant.as_str()).await?;
                if current.is_none_or(|c| c > *at) {
                    let _: () = self.conn().zadd(DUE, tenant.as_str(), *at).await?;
                    repaired += 1;
                }
            }
        }
        Ok(repaired)
    }

    /// Counts over every tenant, not the advisory work index, which may briefly miss a
    /// tenant with jobs (see `retire_idle_tenant`).
    pub async fn delivery_backlog(&self) -> StoreResult<Backlog> {
        let tenants: Vec<String> = self.conn().smembers(TENANTS).await?;
        let mut backlog = Backlog::default();
        let waiting_pattern = format!("{}:*", Task::Deliver.as_str());
        for raw in tenants {
            if let Ok(tenant) = TenantId::parse(&raw) {
                let (n, first): (u64, redis::streams::StreamRangeReply) = redis::pipe()
                    .xlen(jobs_key(&tenant))
                    .cmd("XRANGE")
                    .arg(jobs_key(&tenant))
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(1)
                    .query_async(&mut self.conn())
                    .await?;
                backlog.queued += n;
                let queued_at = first.ids.first().and_then(|entry| super::queued_at(&entry.id));
                backlog.oldest = backlog.oldest.into_iter().chain(queued_at).min();
                let mut conn = self.conn();
                let mut waiting = conn.zscan_match::<_, _, (String, f64)>(due_key(&tenant), &waiting_pattern).await?;
                while waiting.next_item().await.is_some() {
                    backlog.waiting += 1;
                }
            }
        }
        Ok(backlog)
    }
}

impl RedisStore {
    async fn account_with_version(&self, id: &str) -> StoreResult<Option<(u64, SenderAccount)>> {
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

    async fn cas_account(&self, expected: u64, account: &SenderAccount) -> StoreResult<bool> {
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

    pub async fn accounts(&self) -> StoreResult<Vec<SenderAccount>> {
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

    pub async fn add_account(&self, account: &SenderAccount) -> StoreResult<bool> {
        let added = self.cas_account(0, account).await?;
        let _: () = self.conn().sadd(SENDERS, &account.id).await?;
        Ok(added)
    }

    pub async fn update_account<F>(&self, id: &str, mut decide: F) -> StoreResult<Option<SenderAccount>>
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

    pub async fn remove_account(&self, id: &str) -> StoreResult<bool> {
        let removed: u64 =
            self.conn().del(&[account_key(id), account_lease_key(id), format!("{}:session", account_key(id))]).await?;
        let _: () = self.conn().srem(SENDERS, id).await?;
        Ok(removed > 0)
    }

    pub async fn lease_account(&self, id: &str, holder: &str, lease: Duration, _now: Timestamp) -> StoreResult<bool> {
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

    pub async fn telegram_session(&self, account: &str) -> StoreResult<Option<String>> {
        Ok(self.conn().get(format!("{}:session", account_key(account))).await?)
    }

    pub async fn put_telegram_session(&self, account: &str, sealed: &str) -> StoreResult<()> {
        let _: () = self.conn().set(format!("{}:session", account_key(account)), sealed).await?;
        Ok(())
    }

    pub async fn remember_sent(
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

    pub async fn take_read(&self, account: &str, peer: i64, max_id: i64) -> StoreResult<Vec<(TenantId, RequestId)>> {
        self.take_read_once(account, peer, max_id, &uuid::Uuid::new_v4().simple().to_string()).await
    }

    /// Takes the read receipts under the receipt `operation`: a repeat of the call gets what
    /// the first run took.
    async fn take_read_once(
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

    pub async fn release_account(&self, id: &str, holder: &str) -> StoreResult<()> {
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

/// The request id, the enqueue flag and the task pairs, after a script's fixed arguments.
fn schedule_args(invocation: &mut redis::ScriptInvocation<'_>, change: &Change) {
    invocation.arg(change.record.id.to_string()).arg(if change.enqueue { "1" } else { "0" });
    for s in &change.schedule {
        invocation.arg(s.at.millis()).arg(format!("{}:{}", s.task.as_str(), change.record.id));
    }
}

fn parse_job(tenant: &TenantId, entry: &StreamId, reclaimed: bool) -> Option<Job> {
    let request = match entry.map.get("request")? {
        redis::Value::BulkString(bytes) => RequestId::parse(std::str::from_utf8(bytes).ok()?).ok()?,
        _ => return None,
    };
    Some(Job { tenant: tenant.clone(), request, id: entry.id.clone(), reclaimed })
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

#[cfg(test)]
mod tests {
    use super::RedisStore;
    use crate::domain::{
        Credits, LedgerEntry, LedgerKind, RequestId, Tenant, TenantId, TenantSettings, Timestamp, TokenRecord,
    };
    use crate::store::AdjustOutcome;
    use std::time::Duration;
    use verigram_testkit::RedisServer;

    /// What a cluster client does after a dropped connection: the same call again. The money
    /// moves once and both runs answer alike.
    #[tokio::test]
    async fn a_balance_adjustment_sent_twice_moves_the_money_once() {
        let server = RedisServer::start().unwrap();
        let store = RedisStore::connect(&server.url(), Duration::from_secs(2), 100).await.unwrap();
        let tenant = Tenant {
            id: TenantId::generate(),
            name: "Acme".into(),
            balance: Credits::from_micros(1_000_000),
            settings: TenantSettings::default(),
            created_at: Timestamp::from_millis(1),
        };
        let token = TokenRecord {
            id: "tok_1".into(),
            tenant: tenant.id.clone(),
            lookup_key: "lookup".into(),
            signing_key: "00".repeat(32),
            created_at: Timestamp::from_millis(1),
            expires_at: None,
            revoked_at: None,
            ip_allow: vec![],
        };
        store.create_tenant(&tenant, &token).await.unwrap();
        let credit = LedgerEntry {
            at: Timestamp::from_millis(2),
            kind: LedgerKind::Credit,
            amount: Credits::from_micros(500_000),
            balance_after: Credits::ZERO,
            request_id: None,
            note: None,
        };
        let applied = AdjustOutcome::Applied { balance: Credits::from_micros(1_500_000) };
        assert_eq!(store.adjust_balance_once(&tenant.id, &credit, "op-1").await.unwrap(), applied);
        assert_eq!(store.adjust_balance_once(&tenant.id, &credit, "op-1").await.unwrap(), applied);
        assert_eq!(store.tenant(&tenant.id).await.unwrap().unwrap().balance, Credits::from_micros(1_500_000));
        assert_eq!(store.ledger(&tenant.id, 10).await.unwrap().len(), 2, "the opening line and one credit");
        // Another call is another operation.
        let again = AdjustOutcome::Applied { balance: Credits::from_micros(2_000_000) };
        assert_eq!(store.adjust_balance(&tenant.id, &credit).await.unwrap(), again);
    }

    /// Likewise for read receipts: a repeat gets what the first run took, not nothing.
    #[tokio::test]
    async fn read_receipts_taken_twice_are_given_twice() {
        let server = RedisServer::start().unwrap();
        let store = RedisStore::connect(&server.url(), Duration::from_secs(2), 100).await.unwrap();
        let tenant = TenantId::generate();
        let (first, second) = (RequestId::generate(), RequestId::generate());
        let keep = Duration::from_secs(60);
        store.remember_sent("acct", 7, 10, &tenant, first, keep).await.unwrap();
        store.remember_sent("acct", 7, 11, &tenant, second, keep).await.unwrap();
        let taken = store.take_read_once("acct", 7, 11, "op-1").await.unwrap();
        assert_eq!(taken, [(tenant.clone(), first), (tenant.clone(), second)]);
        assert_eq!(store.take_read_once("acct", 7, 11, "op-1").await.unwrap(), taken);
        assert!(store.take_read("acct", 7, 11).await.unwrap().is_empty(), "another call finds them taken");
    }
}
