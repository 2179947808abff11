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
//! - `{verigram}:turns`      sorted set of tenants with jobs by turn tag (`domain::turns`;
//!   advisory: written after the atomic step, removed only when the stream is seen empty,
//!   re-added by producers at 0, which starts at the clock)
//! - `{verigram}:turn_clock` string: the tag the turn served last started at
//! - `{verigram}:turn_costs` hash: tenant → cost of one turn, for tenants with a weight set
//!   (mirrors the tenant's settings; the repair sweep rewrites it)
//! - `{s:<account>}`         hash: `v` (version), `d` (sender account JSON)
//! - `{s:<account>}:lease`   string: the process driving the account, expiring
//! - `{s:<account>}:session` string: the account's Telegram session, sealed
//! - `{s:<account>}:sent:<peer>` sorted set: `<tenant>|<request>` by message id, for read
//!   receipts; expires after the request retention
//! - `verigram:senders`      set of sender account ids
//! - `{verigram}:due`        sorted set of tenants by their earliest task (advisory, likewise)
//!
//! The advisory indexes and the turn keys share a hash tag, so one pipeline or script updates
//! them together on Redis Cluster.
//!
//! On Redis Cluster (`redis+cluster://host:port,host:port,…`) nothing changes but the
//! connection: every script's keys share one hash tag (one slot), and every pipeline's keys
//! one slot.
//!
//! Each capability of the store's contract is in its own module; the connection in `conn`.

mod accounts;
mod conn;
mod limits;
mod queue;
mod requests;
mod tenants;

pub use conn::Conn;

use super::codec::{
    decode_dead_report, decode_ledger, decode_request, encode_dead_report, encode_ledger, encode_request,
};
use super::{AdjustOutcome, Change, CreateOutcome, DueTask, Job, Retention, StoreError, StoreResult, Task};
use crate::domain::{
    turns, Backlog, Credits, DeadReport, LedgerEntry, LimitCheck, LimitState, Refusal, RequestId, RequestRecord,
    SenderAccount, SpendCheck, Tenant, TenantBacklog, TenantId, TenantSettings, Timestamp, TokenRecord,
};
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
    take_turn: Script,
    claim_job: Script,
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
const TURNS: &str = "{verigram}:turns";
const TURN_CLOCK: &str = "{verigram}:turn_clock";
const TURN_COSTS: &str = "{verigram}:turn_costs";
/// The set of tenants with work that `TURNS` replaced: the repair sweep deletes it.
const OLD_WORK: &str = "{verigram}:work";
/// At most this many tenants whose jobs are all in workers' hands are passed over in one
/// claim.
const MAX_PASSED_OVER: usize = 64;
const DUE: &str = "{verigram}:due";
const SENDERS: &str = "verigram:senders";
/// How long the receipt of a call that must not run twice (a balance adjustment, taking read
/// receipts) is kept: far longer than a client's retries last.
const RECEIPT_KEPT: Duration = Duration::from_secs(600);
/// Shared by the scripts that queue jobs, schedule tasks and write ledger lines.
const PRELUDE_LUA: &str = include_str!("../lua/prelude.lua");

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
/// How many deliveries of the tenant are put off (members `send:…` of its task set), kept as
/// they come and go so the backlog is read without a scan.
fn waiting_key(t: &TenantId) -> String {
    format!("{{t:{t}}}:waiting")
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
                create_request: Script::new(&format!("{PRELUDE_LUA}\n{}", include_str!("../lua/create_request.lua"))),
                update_request: Script::new(&format!("{PRELUDE_LUA}\n{}", include_str!("../lua/update_request.lua"))),
                claim_due: Script::new(&format!("{PRELUDE_LUA}\n{}", include_str!("../lua/claim_due.lua"))),
                finish_due: Script::new(include_str!("../lua/finish_due.lua")),
                spend: Script::new(include_str!("../lua/spend.lua")),
                admit: Script::new(include_str!("../lua/admit.lua")),
                give_back: Script::new(include_str!("../lua/give_back.lua")),
                ack_job: Script::new(include_str!("../lua/ack_job.lua")),
                take_turn: Script::new(include_str!("../lua/take_turn.lua")),
                claim_job: Script::new(include_str!("../lua/claim_job.lua")),
                cas_account: Script::new(include_str!("../lua/cas_account.lua")),
                lease_account: Script::new(include_str!("../lua/lease_account.lua")),
                take_read: Script::new(include_str!("../lua/take_read.lua")),
                adjust_balance: Script::new(&format!("{PRELUDE_LUA}\n{}", include_str!("../lua/adjust_balance.lua"))),
                set_settings: Script::new(include_str!("../lua/set_settings.lua")),
            },
            ledger_limit: ledger_limit.max(1),
        })
    }

    fn conn(&self) -> Conn {
        // A clone shares the one multiplexed connection (or the cluster's connections).
        self.conn.clone()
    }
}

impl super::StoreBackend for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        let _: String = redis::cmd("PING").query_async(&mut self.conn()).await?;
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
    use crate::store::{AccountStore, AdjustOutcome, TenantStore};
    use std::time::Duration;
    use verigram_testkit::RedisServer;

    /// A worker that finds nothing to claim from a tenant whose jobs are all in other workers'
    /// hands leaves the tenant in the work index untouched: were it to remove and re-add it, a
    /// process dying between the two would hide those jobs from every worker until the repair
    /// sweep (found by `roles::a_job_of_a_killed_worker_process_is_sent_once_by_another`).
    #[tokio::test]
    async fn a_fruitless_claim_never_takes_a_tenant_with_jobs_out_of_the_work_index() {
        use crate::store::QueueStore;
        let server = RedisServer::start().expect("redis-server for the Redis tests");
        let store = RedisStore::connect(&server.url(), Duration::from_secs(2), 100).await.unwrap();
        let tenant = TenantId::generate();
        let jobs = super::jobs_key(&tenant);
        let mut conn = store.conn();
        let () = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&jobs)
            .arg("delivery")
            .arg("$")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await
            .unwrap();
        let _: String =
            redis::cmd("XADD").arg(&jobs).arg("*").arg("request").arg("7").query_async(&mut conn).await.unwrap();
        let () = redis::cmd("ZADD").arg(super::TURNS).arg(0).arg(tenant.as_str()).query_async(&mut conn).await.unwrap();
        let now = Timestamp::from_millis(1_800_000_000_000);
        assert!(store.claim_next("w1", Duration::from_secs(60), now).await.unwrap().is_some());

        let () = redis::cmd("CONFIG").arg("RESETSTAT").query_async(&mut conn).await.unwrap();
        assert!(store.claim_next("w2", Duration::from_secs(60), now).await.unwrap().is_none());
        let stats: String = redis::cmd("INFO").arg("commandstats").query_async(&mut conn).await.unwrap();
        assert!(!stats.contains("cmdstat_zrem"), "the index was written: {stats}");
        let tag: Option<f64> =
            redis::cmd("ZSCORE").arg(super::TURNS).arg(tenant.as_str()).query_async(&mut conn).await.unwrap();
        assert_eq!(tag, Some(crate::domain::turns::TURN_UNIT as f64), "in the index, its fruitless turn given back");
        let clock: Option<String> = redis::cmd("GET").arg(super::TURN_CLOCK).query_async(&mut conn).await.unwrap();
        assert_eq!(clock.as_deref(), Some("0"), "the clock back where the fruitless turn found it");
    }

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
