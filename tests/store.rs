//! The store's contract, run on every backend: the same operations must mean the same thing
//! on the embedded memory store, on one Redis and on a Redis Cluster.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;
use verigram::domain::{
    AccountFailure, AccountKind, AccountState, CodeMatch, CodeState, Credits, LedgerEntry, LedgerKind, PhoneNumber,
    RequestId, RequestRecord, SenderAccount, Tenant, TenantId, TenantSettings, Timestamp, TokenRecord,
    VerificationStatus,
};
use verigram::store::{AdjustOutcome, Change, CreateOutcome, MemoryStore, RedisStore, Retention, Store, StoreError};
use verigram_testkit::{Backend, RedisCluster, RedisServer};

const RETENTION: Retention = Retention(Duration::from_secs(86_400));
const NOW: Timestamp = Timestamp::from_millis(1_800_000_000_000);

/// What keeps a store's server alive for the test.
struct Backing {
    redis: Option<RedisServer>,
    _cluster: Option<RedisCluster>,
}

/// A store of the given kind, with whatever keeps it alive.
async fn store(kind: Backend) -> (Arc<Store>, Backing) {
    store_keeping(kind, 1000).await
}

/// A store that keeps `ledger_limit` ledger lines per tenant.
async fn store_keeping(kind: Backend, ledger_limit: usize) -> (Arc<Store>, Backing) {
    let mut backing = Backing { redis: None, _cluster: None };
    let url = match kind {
        Backend::Memory => return (Arc::new(Store::from(MemoryStore::new(ledger_limit))), backing),
        Backend::Redis => backing.redis.insert(RedisServer::start().expect("redis-server for the Redis tests")).url(),
        Backend::Cluster => backing._cluster.insert(RedisCluster::start().expect("a local Redis Cluster")).url(),
    };
    let store = RedisStore::connect(&url, Duration::from_secs(2), ledger_limit).await.unwrap();
    (Arc::new(Store::from(store)), backing)
}

fn tenant(balance: i64) -> (Tenant, TokenRecord) {
    let t = Tenant {
        id: TenantId::generate(),
        name: "Acme".into(),
        balance: Credits::from_micros(balance),
        settings: TenantSettings::default(),
        created_at: NOW,
    };
    let token = TokenRecord {
        id: "tok_1".into(),
        tenant: t.id.clone(),
        lookup_key: format!("lookup-{}", t.id),
        signing_key: "00".repeat(32),
        created_at: NOW,
        expires_at: None,
        revoked_at: None,
        ip_allow: vec![],
    };
    (t, token)
}

fn request(cost: i64) -> RequestRecord {
    RequestRecord {
        id: RequestId::generate(),
        phone: PhoneNumber::parse("15551234567").unwrap(),
        created_at: NOW,
        cost: Credits::from_micros(cost),
        refunded: false,
        token_id: "tok_1".into(),
        code: Some(CodeState {
            hash: "$hmac-sha256$v=1$AA$AA".into(),
            valid_until: NOW.plus(Duration::from_secs(600)),
            max_attempts: 5,
            attempts: 0,
            ttl: None,
            payload: None,
            callback_url: None,
            callback_key: None,
            sender_username: None,
            sealed: None,
            account: None,
            failed_attempts: 0,
            message_id: None,
            reports: Vec::new(),
        }),
        delivery: None,
        verification: None,
        version: 0,
    }
}

/// A new request with its fee charged.
fn charged(r: &RequestRecord) -> Change {
    let ledger = LedgerEntry::for_request(LedgerKind::Charge, NOW, Credits::from_micros(-r.cost.micros()), r.id);
    Change { ledger: Some(ledger), ..Change::from(r.clone()) }
}

verigram_testkit::on_every_backend!(
    tenants_and_settings_round_trip,
    requests_are_charged_atomically,
    a_request_created_twice_is_charged_once,
    concurrent_charges_never_overdraw,
    optimistic_updates_serialize_concurrent_checks,
    balance_adjustments_never_go_negative,
    the_ledger_keeps_its_newest_lines,
    tokens_are_found_until_withdrawn,
    requests_are_scoped_to_their_tenant,
    refunds_move_money_with_the_change,
    one_process_drives_an_account_at_a_time,
    account_updates_are_atomic,
    read_receipts_find_their_requests_once,
    status_changes_queue_reports_with_the_change,
    dead_letters_are_kept_listed_and_removed,
    limits_are_decided_together,
    tenants_take_weighted_turns_and_come_back_at_the_clock,
);

async fn tenants_and_settings_round_trip(kind: Backend) {
    let (store, _r) = store(kind).await;
    let (t, token) = tenant(1_000_000);
    store.create_tenant(&t, &token).await.unwrap();
    assert_eq!(store.tenant(&t.id).await.unwrap(), Some(t.clone()));
    assert_eq!(store.tenants().await.unwrap(), vec![t.clone()]);
    let mut settings = TenantSettings { max_attempts: Some(3), ..Default::default() };
    settings.phone_number = Some(PhoneNumber::parse("447911123456").unwrap());
    assert!(store.set_settings(&t.id, &settings).await.unwrap());
    assert_eq!(store.tenant(&t.id).await.unwrap().unwrap().settings, settings);
    assert!(!store.set_settings(&TenantId::generate(), &settings).await.unwrap());
    assert!(store.tenant(&TenantId::generate()).await.unwrap().is_none());
    let ledger = store.ledger(&t.id, 10).await.unwrap();
    assert_eq!(ledger.len(), 1, "the opening balance is in the ledger");
    assert_eq!(ledger[0].balance_after, t.balance);
}

async fn requests_are_charged_atomically(kind: Backend) {
    let (store, _r) = store(kind).await;
    let (t, token) = tenant(15_000);
    store.create_tenant(&t, &token).await.unwrap();
    let r = request(10_000);
    let out = store.create_request(&t.id, &charged(&r), RETENTION, NOW).await.unwrap();
    assert_eq!(out, CreateOutcome::Created { balance: Credits::from_micros(5_000) });
    let stored = store.request(&t.id, r.id, NOW).await.unwrap().unwrap();
    assert_eq!(stored, RequestRecord { version: 1, ..r.clone() });
    let second = request(10_000);
    let out = store.create_request(&t.id, &charged(&second), RETENTION, NOW).await.unwrap();
    assert_eq!(out, CreateOutcome::BalanceNotEnough);
    assert!(store.request(&t.id, second.id, NOW).await.unwrap().is_none(), "a refused request is not stored");
    let ledger = store.ledger(&t.id, 10).await.unwrap();
    assert_eq!(ledger.len(), 2);
    assert_eq!(ledger[0].balance_after, Credits::from_micros(5_000));
    assert_eq!(ledger[0].request_id.as_deref(), Some(r.id.to_string().as_str()));
    let free = request(0);
    let out = store.create_request(&t.id, &Change::from(free.clone()), RETENTION, NOW).await.unwrap();
    assert_eq!(out, CreateOutcome::Created { balance: Credits::from_micros(5_000) });
    assert_eq!(store.ledger(&t.id, 10).await.unwrap().len(), 2, "a free request writes no ledger line");
    let missing =
        store.create_request(&TenantId::generate(), &Change::from(request(0).clone()), RETENTION, NOW).await.unwrap();
    assert_eq!(missing, CreateOutcome::TenantNotFound);
    // A charged request for no tenant leaves nothing behind (no tenant made of a balance).
    let nobody = TenantId::generate();
    let orphan = request(10_000);
    assert_eq!(
        store.create_request(&nobody, &charged(&orphan), RETENTION, NOW).await.unwrap(),
        CreateOutcome::TenantNotFound
    );
    assert!(store.tenant(&nobody).await.unwrap().is_none());
    assert!(store.request(&nobody, orphan.id, NOW).await.unwrap().is_none());
    assert_eq!(
        store.tenant(&t.id).await.unwrap().unwrap().balance,
        Credits::from_micros(5_000),
        "refusals move nothing"
    );
}

/// A cluster client sends a call again when the connection dropped before its answer: the
/// repeat of a creation answers as the first did and moves nothing.
async fn a_request_created_twice_is_charged_once(kind: Backend) {
    let (store, _r) = store(kind).await;
    let (t, token) = tenant(15_000);
    store.create_tenant(&t, &token).await.unwrap();
    let r = request(10_000);
    let created = CreateOutcome::Created { balance: Credits::from_micros(5_000) };
    assert_eq!(store.create_request(&t.id, &charged(&r), RETENTION, NOW).await.unwrap(), created);
    assert_eq!(store.create_request(&t.id, &charged(&r), RETENTION, NOW).await.unwrap(), created);
    assert_eq!(store.tenant(&t.id).await.unwrap().unwrap().balance, Credits::from_micros(5_000));
    assert_eq!(store.ledger(&t.id, 10).await.unwrap().len(), 2, "the opening balance and one charge");
    // Another request under a taken id is refused, and the stored one is left alone.
    let other = RequestRecord { cost: Credits::ZERO, ..r.clone() };
    let taken = store.create_request(&t.id, &Change::from(other), RETENTION, NOW).await;
    assert!(matches!(taken, Err(StoreError::Contention)), "{taken:?}");
    assert_eq!(store.request(&t.id, r.id, NOW).await.unwrap(), Some(RequestRecord { version: 1, ..r }));
}

async fn concurrent_charges_never_overdraw(kind: Backend) {
    let (store, _r) = store(kind).await;
    let (t, token) = tenant(50_000);
    store.create_tenant(&t, &token).await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, id) = (store.clone(), t.id.clone());
            tokio::spawn(async move {
                let r = request(10_000);
                store.create_request(&id, &charged(&r), RETENTION, NOW).await.unwrap()
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        if matches!(task.await.unwrap(), CreateOutcome::Created { .. }) {
            created += 1;
        }
    }
    assert_eq!(created, 5);
    assert_eq!(store.tenant(&t.id).await.unwrap().unwrap().balance, Credits::ZERO);
    let charges = store.ledger(&t.id, 100).await.unwrap().into_iter().filter(|e| e.kind == LedgerKind::Charge).count();
    assert_eq!(charges, 5);
}

async fn optimistic_updates_serialize_concurrent_checks(kind: Backend) {
    let (store, _r) = store(kind).await;
    let (t, token) = tenant(0);
    store.create_tenant(&t, &token).await.unwrap();
    let r = request(0);
    store.create_request(&t.id, &Change::from(r.clone()), RETENTION, NOW).await.unwrap();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (store, id) = (store.clone(), t.id.clone());
            tokio::spawn(async move {
                store
                    .update_request(&id, r.id, RETENTION, NOW, |cur| {
                        (cur.record_check(CodeMatch::Wrong, NOW).map(Change::from), ())
                    })
                    .await
                    .unwrap()
                    .unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let after = store.request(&t.id, r.id, NOW).await.unwrap().unwrap();
    assert_eq!(after.code.as_ref().unwrap().attempts, 5, "exactly the limit, never more");
    assert_eq!(after.verification.unwrap().status, VerificationStatus::CodeMaxAttemptsExceeded);
    assert_eq!(after.version, 6, "one write per counted attempt");
    let unchanged = store
        .update_request(&t.id, r.id, RETENTION, NOW, |cur| {
            (cur.record_check(CodeMatch::Correct, NOW).map(Change::from), ())
        })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(unchanged.0.verification.unwrap().status, VerificationStatus::CodeMaxAttemptsExceeded);
    let gone = store.update_request(&t.id, RequestId::generate(), RETENTION, NOW, |_| (None, ())).await.unwrap();
    assert!(gone.is_none());
}

async fn balance_adjustments_never_go_negative(kind: Backend) {
    let (store, _r) = store(kind).await;
    let (t, token) = tenant(1_000_000);
    store.create_tenant(&t, &token).await.unwrap();
    let entry = |micros| LedgerEntry {
        at: NOW,
        kind: LedgerKind::Credit,
        amount: Credits::from_micros(micros),
        balance_after: Credits::ZERO,
        request_id: None,
        note: Some("x".into()),
    };
    assert_eq!(
        store.adjust_balance(&t.id, &entry(500_000)).await.unwrap(),
        AdjustOutcome::Applied { balance: Credits::from_micros(1_500_000) }
    );
    assert_eq!(
        store.adjust_balance(&t.id, &entry(-2_000_000)).await.unwrap(),
        AdjustOutcome::WouldGoNegative { balance: Credits::from_micros(1_500_000) }
    );
    assert_eq!(
        store.adjust_balance(&t.id, &entry(-1_500_000)).await.unwrap(),
        AdjustOutcome::Applied { balance: Credits::ZERO }
    );
    assert_eq!(store.adjust_balance(&TenantId::generate(), &entry(1)).await.unwrap(), AdjustOutcome::TenantNotFound);
    let ledger = store.ledger(&t.id, 10).await.unwrap();
    assert_eq!(ledger.iter().map(|e| e.balance_after.micros()).collect::<Vec<_>>(), [0, 1_500_000, 1_000_000]);
    // Large balances keep their exact value (no float rounding on the way through Lua).
    let big = 123_456_789_012_345;
    assert_eq!(
        store.adjust_balance(&t.id, &entry(big)).await.unwrap(),
        AdjustOutcome::Applied { balance: Credits::from_micros(big) }
    );
    assert_eq!(store.ledger(&t.id, 1).await.unwrap()[0].balance_after, Credits::from_micros(big));
}

async fn the_ledger_keeps_its_newest_lines(kind: Backend) {
    const CAP: usize = 64;
    let (store, backing) = store_keeping(kind, CAP).await;
    let (t, token) = tenant(0);
    store.create_tenant(&t, &token).await.unwrap();
    let credit = LedgerEntry {
        at: NOW,
        kind: LedgerKind::Credit,
        amount: Credits::from_micros(1),
        balance_after: Credits::ZERO,
        request_id: None,
        note: None,
    };
    for _ in 0..100 {
        store.adjust_balance(&t.id, &credit).await.unwrap();
    }
    // The opening line and 100 credits: the newest 64 are read, newest first.
    let balances: Vec<i64> =
        store.ledger(&t.id, 1000).await.unwrap().iter().map(|e| e.balance_after.micros()).collect();
    assert_eq!(balances, (37..=100).rev().collect::<Vec<i64>>());
    if let Some(server) = &backing.redis {
        // Trimmed in batches: never more than the cap and a 32nd of it.
        let mut conn = ::redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let stored: usize =
            ::redis::cmd("LLEN").arg(format!("{{t:{}}}:ledger", t.id)).query_async(&mut conn).await.unwrap();
        assert!((CAP..=CAP + CAP / 32).contains(&stored), "{stored} lines stored");
    }
}

async fn tokens_are_found_until_withdrawn(kind: Backend) {
    let (store, _r) = store(kind).await;
    let (t, token) = tenant(0);
    store.create_tenant(&t, &token).await.unwrap();
    assert_eq!(store.find_token(&token.lookup_key).await.unwrap(), Some(token.clone()));
    let mut second = TokenRecord { id: "tok_2".into(), lookup_key: "lookup-2".into(), ..token.clone() };
    store.put_token(&second, NOW).await.unwrap();
    assert_eq!(store.tokens(&t.id).await.unwrap().len(), 2);
    second.revoked_at = Some(NOW);
    store.put_token(&second, NOW).await.unwrap();
    assert_eq!(store.find_token("lookup-2").await.unwrap(), None, "a revoked token cannot be found");
    let kept = store.tokens(&t.id).await.unwrap();
    assert_eq!(kept.iter().find(|k| k.id == "tok_2").unwrap().revoked_at, Some(NOW), "the index keeps it for audits");
    let expiring = TokenRecord { expires_at: Some(NOW.plus(Duration::from_secs(60))), ..token.clone() };
    store.put_token(&expiring, NOW).await.unwrap();
    assert_eq!(store.find_token(&token.lookup_key).await.unwrap(), Some(expiring));
}

async fn requests_are_scoped_to_their_tenant(kind: Backend) {
    let (store, _r) = store(kind).await;
    let (a, ta) = tenant(0);
    let (b, tb) = tenant(0);
    store.create_tenant(&a, &ta).await.unwrap();
    store.create_tenant(&b, &TokenRecord { lookup_key: "other".into(), ..tb }).await.unwrap();
    let r = request(0);
    store.create_request(&a.id, &Change::from(r.clone()), RETENTION, NOW).await.unwrap();
    assert!(store.request(&a.id, r.id, NOW).await.unwrap().is_some());
    assert!(store.request(&b.id, r.id, NOW).await.unwrap().is_none());
    let touched =
        store.update_request(&b.id, r.id, RETENTION, NOW, |cur| (Some(Change::from(cur.clone())), ())).await.unwrap();
    assert!(touched.is_none());
}

async fn refunds_move_money_with_the_change(kind: Backend) {
    let (store, _r) = store(kind).await;
    let (t, token) = tenant(10_000);
    store.create_tenant(&t, &token).await.unwrap();
    let r = request(10_000);
    store.create_request(&t.id, &charged(&r), RETENTION, NOW).await.unwrap();
    let refund = LedgerEntry::for_request(LedgerKind::Refund, NOW, r.cost, r.id);
    let (after, ()) = store
        .update_request(&t.id, r.id, RETENTION, NOW, |cur| {
            let next = RequestRecord { refunded: true, ..cur.mark_sent("sandbox", 1, false, NOW).unwrap() };
            (Some(Change { ledger: Some(refund.clone()), ..Change::from(next) }), ())
        })
        .await
        .unwrap()
        .unwrap();
    assert!(after.refunded);
    assert_eq!(store.tenant(&t.id).await.unwrap().unwrap().balance, Credits::from_micros(10_000));
    let ledger = store.ledger(&t.id, 10).await.unwrap();
    assert_eq!(ledger[0].kind, LedgerKind::Refund);
    assert_eq!(ledger[0].balance_after, Credits::from_micros(10_000));
}

async fn one_process_drives_an_account_at_a_time(kind: Backend) {
    let (store, _r) = store(kind).await;
    assert!(store.add_account(&SenderAccount::new("acct".into(), AccountKind::Sandbox)).await.unwrap());
    assert!(!store.add_account(&SenderAccount::new("acct".into(), AccountKind::Telegram)).await.unwrap(), "added once");
    let lease = Duration::from_millis(300);
    assert!(store.lease_account("acct", "p1", lease, NOW).await.unwrap());
    assert!(!store.lease_account("acct", "p2", lease, NOW).await.unwrap(), "held by p1");
    assert!(store.lease_account("acct", "p1", lease, NOW).await.unwrap(), "p1 renews");
    store.release_account("acct", "p2").await.unwrap();
    assert!(!store.lease_account("acct", "p2", lease, NOW).await.unwrap(), "only the holder releases");
    store.release_account("acct", "p1").await.unwrap();
    assert!(store.lease_account("acct", "p2", lease, NOW).await.unwrap(), "free after release");
    // A holder that stops renewing loses the lease when it runs out (Redis: by its own clock).
    let later = NOW.plus(lease);
    verigram_testkit::wait_for("the lease to run out", || async {
        store.lease_account("acct", "p1", lease, later).await.unwrap().then_some(())
    })
    .await;
}

async fn account_updates_are_atomic(kind: Backend) {
    let (store, _r) = store(kind).await;
    store.add_account(&SenderAccount::new("acct".into(), AccountKind::Sandbox)).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let at = NOW.plus(Duration::from_secs(i));
                store.update_account("acct", |a| Some(a.after_send(at))).await.unwrap().unwrap()
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let all = store.accounts().await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].sent, 20, "no update lost");
    let parked = store
        .update_account("acct", |a| Some(a.after_failure(&AccountFailure::PeerFlood, NOW)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parked.state, AccountState::Quarantined);
    assert!(store.update_account("nobody", |a| Some(a.clone())).await.unwrap().is_none());
    assert!(store.remove_account("acct").await.unwrap());
    assert!(store.accounts().await.unwrap().is_empty());
}

async fn read_receipts_find_their_requests_once(kind: Backend) {
    let (store, _r) = store(kind).await;
    let tenant = TenantId::generate();
    let (r1, r2, r3) = (RequestId::generate(), RequestId::generate(), RequestId::generate());
    let keep = Duration::from_secs(3600);
    store.remember_sent("acct", 42, 10, &tenant, r1, keep).await.unwrap();
    store.remember_sent("acct", 42, 11, &tenant, r2, keep).await.unwrap();
    store.remember_sent("acct", 42, 12, &tenant, r3, keep).await.unwrap();
    store.remember_sent("acct", 43, 5, &tenant, r3, keep).await.unwrap();
    let mut read = store.take_read("acct", 42, 11).await.unwrap();
    read.sort();
    let mut expected = vec![(tenant.clone(), r1), (tenant.clone(), r2)];
    expected.sort();
    assert_eq!(read, expected, "everything up to the id read, for that peer only");
    assert!(store.take_read("acct", 42, 11).await.unwrap().is_empty(), "each once");
    assert_eq!(store.take_read("acct", 42, 100).await.unwrap(), vec![(tenant.clone(), r3)]);
    assert!(store.take_read("other", 43, 100).await.unwrap().is_empty(), "per account");
    assert_eq!(store.take_read("acct", 43, 100).await.unwrap(), vec![(tenant, r3)]);
}

/// The index of tenants with work is advisory: if an entry is lost (a crash between the atomic
/// step and the index write, a failover), the job waits until the repair puts it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_work_index_entry_is_repaired() {
    let (store, backing) = store(Backend::Redis).await;
    let server = backing.redis.unwrap();
    let (t, token) = tenant(0);
    store.create_tenant(&t, &token).await.unwrap();
    let mut r = request(0);
    r.created_at = NOW;
    let change = Change {
        enqueue: true,
        schedule: vec![verigram::store::Scheduled { task: verigram::store::Task::Validity, at: NOW }],
        ..Change::from(r.clone())
    };
    store.create_request(&t.id, &change, RETENTION, NOW).await.unwrap();
    let client = ::redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = ::redis::cmd("DEL").arg("{verigram}:turns").arg("{verigram}:due").query_async(&mut conn).await.unwrap();
    assert!(store.claim_next("w", Duration::from_secs(60), NOW).await.unwrap().is_none(), "lost from the index");
    assert!(store.claim_due(NOW, NOW.plus(Duration::from_secs(30)), 10).await.unwrap().is_empty());
    assert_eq!(store.repair_indexes().await.unwrap(), 2);
    assert_eq!(store.repair_indexes().await.unwrap(), 0, "nothing left to repair");
    let job = store.claim_next("w", Duration::from_secs(60), NOW).await.unwrap().expect("the job, found again");
    assert_eq!(job.request, r.id);
    let due = store.claim_due(NOW, NOW.plus(Duration::from_secs(30)), 10).await.unwrap();
    assert_eq!(due.len(), 1);
}

/// A free request with a `callback_url` and these reports waiting.
fn reporting_request(reports: Vec<verigram::domain::PendingReport>) -> RequestRecord {
    let mut r = request(0);
    if let Some(code) = r.code.as_mut() {
        code.callback_url = Some("https://example.com/cb".into());
        code.callback_key = Some("ab".repeat(32));
        code.reports = reports;
    }
    r
}

/// A request with a `callback_url`: a status change queues a report of it (the status as it
/// became) on the request, in the same step, and schedules the report task; a change with no
/// status change queues nothing.
async fn status_changes_queue_reports_with_the_change(kind: Backend) {
    let (store, _r) = store(kind).await;
    let (t, token) = tenant(10_000);
    store.create_tenant(&t, &token).await.unwrap();
    let r = reporting_request(vec![]);
    store.create_request(&t.id, &Change::from(r.clone()), RETENTION, NOW).await.unwrap();
    let (sent, ()) = store
        .update_request(&t.id, r.id, RETENTION, NOW, |cur| {
            (cur.mark_sent("sandbox", 1, true, NOW).map(Change::from), ())
        })
        .await
        .unwrap()
        .unwrap();
    let reports = sent.pending_reports();
    assert_eq!(reports.len(), 1, "{reports:?}");
    let body: serde_json::Value = serde_json::from_str(&reports[0].body).unwrap();
    assert_eq!(body["delivery_status"]["status"], "delivered", "{body}");
    let due = store.claim_due(NOW, NOW.plus(Duration::from_secs(30)), 10).await.unwrap();
    assert!(due.iter().any(|d| d.request == r.id && d.task == verigram::store::Task::Report), "{due:?}");

    let (same, ()) = store
        .update_request(&t.id, r.id, RETENTION, NOW, |cur| (Some(Change::from(cur.with_failed_attempt())), ()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(same.pending_reports().len(), 1, "no status changed, no report");
    let stored = store.request(&t.id, r.id, NOW).await.unwrap().unwrap();
    assert_eq!(stored.pending_reports(), same.pending_reports(), "the outbox is stored");

    // A request with a report waiting outlives its retention; once the report is done with,
    // the retention holds again.
    let late = NOW.plus(RETENTION.0).plus(Duration::from_secs(3600));
    let kept = store.request(&t.id, r.id, late).await.unwrap().expect("kept while a report waits");
    store
        .update_request(&t.id, r.id, RETENTION, late, |cur| (Some(Change::from(cur.without_first_report())), ()))
        .await
        .unwrap()
        .unwrap();
    assert!(kept.pending_reports().len() == 1);
    let after = late.plus(Duration::from_secs(2));
    assert!(store.request(&t.id, r.id, after).await.unwrap().is_none(), "gone once nothing waits");
}

async fn dead_letters_are_kept_listed_and_removed(kind: Backend) {
    let (store, _r) = store(kind).await;
    let (t, token) = tenant(10_000);
    store.create_tenant(&t, &token).await.unwrap();
    let r = reporting_request(vec![verigram::domain::PendingReport {
        body: "{}".into(),
        attempts: 10,
        last_error: Some("HTTP 500".into()),
    }]);
    store.create_request(&t.id, &Change::from(r.clone()), RETENTION, NOW).await.unwrap();
    let dead = verigram::domain::DeadReport::first_of(&r, NOW).unwrap();
    store
        .update_request(&t.id, r.id, RETENTION, NOW, |cur| {
            (Some(Change { dead_letter: Some(dead.clone()), ..Change::from(cur.without_first_report()) }), ())
        })
        .await
        .unwrap();
    assert_eq!(store.dead_reports(&t.id).await.unwrap(), vec![dead.clone()]);
    assert!(store.request(&t.id, r.id, NOW).await.unwrap().unwrap().pending_reports().is_empty(), "moved, in one step");
    let (other, _) = tenant(0);
    assert!(store.dead_reports(&other.id).await.unwrap().is_empty(), "per tenant");
    assert!(!store.remove_dead_report(&t.id, "nope").await.unwrap());
    assert!(store.remove_dead_report(&t.id, &dead.id).await.unwrap());
    assert!(store.dead_reports(&t.id).await.unwrap().is_empty());
}

/// Several limits in one decision: all pass and count, or nothing counts and the refusal names
/// the limit with the longest wait; looking (`consume = false`) counts nothing.
async fn limits_are_decided_together(kind: Backend) {
    use verigram::domain::{LimitCheck, LimitKind, Rate};
    let (store, _r) = store(kind).await;
    let (t, _) = tenant(0);
    let phone = LimitCheck { kind: LimitKind::Phone, key: "p1".into(), rate: Rate { rate: 1, per: 60, burst: 2 } };
    let tenant_wide =
        LimitCheck { kind: LimitKind::Tenant, key: "all".into(), rate: Rate { rate: 1, per: 10, burst: 3 } };
    let both = [phone.clone(), tenant_wide.clone()];
    let states = store.limit(&t.id, &both, NOW, true).await.unwrap().unwrap();
    assert_eq!((states[0].remaining, states[1].remaining), (1, 2));
    assert_eq!(states[0].reset, Duration::from_secs(60));
    assert!(store.limit(&t.id, &both, NOW, false).await.unwrap().is_ok(), "looking");
    assert!(store.limit(&t.id, &both, NOW, true).await.unwrap().is_ok());
    let refusal = store.limit(&t.id, &both, NOW, true).await.unwrap().unwrap_err();
    assert_eq!((refusal.kind, refusal.retry_after), (LimitKind::Phone, Duration::from_secs(60)));
    // The refused call did not count against the tenant-wide limit: one is still left there.
    let left = store.limit(&t.id, std::slice::from_ref(&tenant_wide), NOW, true).await.unwrap().unwrap();
    assert_eq!(left[0].remaining, 0);
    assert!(store.limit(&t.id, &[tenant_wide], NOW, true).await.unwrap().is_err());
    let (other, _) = tenant(0);
    assert!(store.limit(&other.id, std::slice::from_ref(&phone), NOW, true).await.unwrap().is_ok(), "per tenant");
    let later = NOW.plus(Duration::from_secs(60));
    assert!(store.limit(&t.id, &[phone], later, true).await.unwrap().is_ok(), "recovered on schedule");
}

/// `claim_next` serves tenants in weighted turns, and a tenant whose queue emptied comes back
/// at the clock: after a light tenant's code went out, a heavy tenant's backlog of a thousand
/// turns' worth does not stand in front of the light tenant's next code.
async fn tenants_take_weighted_turns_and_come_back_at_the_clock(kind: Backend) {
    let (store, _r) = store(kind).await;
    let lease = Duration::from_secs(60);
    let (mut heavy, token) = tenant(0);
    heavy.settings.delivery_weight = Some(1000);
    store.create_tenant(&heavy, &token).await.unwrap();
    let (light, mut token) = tenant(0);
    token.lookup_key = format!("lookup-{}", light.id);
    store.create_tenant(&light, &token).await.unwrap();
    let queue = |t: TenantId| {
        let store = Arc::clone(&store);
        async move {
            let change = Change { enqueue: true, ..Change::from(request(0)) };
            store.create_request(&t, &change, RETENTION, NOW).await.unwrap();
        }
    };
    for _ in 0..60 {
        queue(heavy.id.clone()).await;
    }
    queue(light.id.clone()).await;
    // Claims one job and acknowledges it: whose it was.
    let next = || async {
        let job = store.claim_next("w", lease, NOW).await.unwrap().expect("a job");
        store.ack_job(&job).await.unwrap();
        job.tenant
    };
    let first: Vec<TenantId> = vec![next().await, next().await];
    assert!(first.contains(&light.id), "the light tenant's code waited behind the heavy backlog");
    for _ in 0..20 {
        assert_eq!(next().await, heavy.id, "only the heavy tenant has work");
    }
    queue(light.id.clone()).await;
    let again: Vec<TenantId> = vec![next().await, next().await];
    assert!(again.contains(&light.id), "the light tenant came back behind the turns it took before");
}
