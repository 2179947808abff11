//! Fair delivery (issue 21): with Telegram accounts paced, the sender pool is the bottleneck
//! and backlogs are normal. Tenants with work take turns on every account that comes free,
//! weighted by their `delivery_weight`: one tenant's backlog never holds up another's code,
//! and jobs wait for an account in their queue, untouched.
//!
//! The real Telegram sender runs against the local Telegram peer, accounts paced at one message
//! a second (`pool.interval_ms = 1000`) on the service's clock, which the test moves a second
//! at a time: each step, every account sends one message, and the peer's arrival order shows
//! whose turn each one was.

use crate::helpers::*;
use reqwest::Method;
use verigram_dev_telegram::{PeerConfig, SimUser, TelegramPeer};

verigram_testkit::on_every_backend!(
    a_backlog_never_holds_up_another_tenants_code,
    tenants_with_backlogs_share_the_pool_by_weight,
    a_code_whose_ttl_ends_while_it_waits_expires_once_and_is_never_sent,
    a_number_looked_up_leaves_the_paced_account_free_to_send,
);

/// The pacing interval, on the service's clock.
const INTERVAL: Duration = Duration::from_secs(1);

struct Pool {
    peer: TelegramPeer,
    app: TestApp,
    accounts: usize,
}

impl Pool {
    /// The service sending through `accounts` paced Telegram accounts of the local peer, with
    /// as many delivery workers.
    async fn start(backend: Backend, accounts: usize) -> Self {
        let phones: Vec<String> = (0..accounts).map(|i| format!("+44770090010{i}")).collect();
        let config = PeerConfig { accounts: phones.clone(), auto_users: true, ..Default::default() };
        let peer = TelegramPeer::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
        let app = spawn_app_with(backend, |c| {
            set_key(c, "sender.kind", r#""telegram""#);
            set_key(c, "sender.dev_peers", "true");
            // Real time: generous, so a slow machine never turns a send into a retry.
            set_key(c, "sender.call_timeout", "10");
            set_key(c, "pool.interval_ms", &INTERVAL.as_millis().to_string());
            set_key(c, "delivery.workers", &accounts.to_string());
        })
        .await;
        for (i, phone) in phones.iter().enumerate() {
            let body = json!({"id": format!("tg{i}"), "kind": "telegram", "phone_number": phone,
                              "dev_peer": peer.addr().to_string()});
            let (status, account) = app.admin(Method::POST, "/senders", Some(body)).await;
            assert_eq!((status, account["state"].as_str()), (201, Some("active")), "{account}");
        }
        Self { peer, app, accounts }
    }

    /// A tenant with room for a thousand sends, of this weight.
    async fn tenant(&self, weight: u16) -> Tenant {
        let tenant = self.app.create_tenant("10", None).await;
        let patch = json!({"delivery_weight": weight});
        let (status, view) = self.app.admin(Method::PATCH, &format!("/tenants/{}", tenant.id), Some(patch)).await;
        assert_eq!((status, &view["settings"]["delivery_weight"]), (200, &json!(weight)), "{view}");
        tenant
    }

    async fn send(&self, tenant: &Tenant, phone: &str, n: usize) -> Vec<String> {
        let mut ids = Vec::with_capacity(n);
        for _ in 0..n {
            ids.push(self.app.send(tenant, phone).await["request_id"].as_str().unwrap().to_owned());
        }
        ids
    }

    /// Waits until `n` messages in all have reached the peer.
    async fn wait_arrivals(&self, n: usize) -> Vec<i64> {
        wait_for(&format!("{n} messages at the peer"), || async {
            let arrivals = self.peer.arrivals();
            (arrivals.len() >= n).then_some(arrivals)
        })
        .await
    }

    /// Moves the clock on by one pacing interval and waits for every account to send once.
    async fn step(&self) -> Vec<i64> {
        let before = self.peer.arrivals().len();
        self.app.advance(INTERVAL);
        self.wait_arrivals(before + self.accounts).await
    }

    /// The workers have looked at the pool a few more times: anything they would do unasked
    /// (send through a paced account, claim a job early) they have done.
    async fn let_workers_look(&self) {
        self.app.wait_store_ops("accounts", 4 * self.accounts as u64).await;
    }
}

fn user(phone: &str) -> i64 {
    SimUser::new(phone).id()
}

/// Tenant A queues 300 codes (five minutes of the pool's work); then tenant B sends one. B's
/// code goes out at the next step, before all but the messages already on their way; and
/// while A's backlog lasts, the queue's store work per message stays one claim and one
/// acknowledgement, with nothing put off.
async fn a_backlog_never_holds_up_another_tenants_code(backend: Backend) {
    let pool = Pool::start(backend, 2).await;
    let (a, b) = (pool.tenant(1).await, pool.tenant(1).await);
    let (phone_a, phone_b) = ("+15550100001", "+15550100002");
    let ops = |op| pool.app.store_ops(op);
    let acks_before = ops("ack_job");
    pool.send(&a, phone_a, 300).await;
    // Both accounts were ready: two of A's codes went out at once, then pacing holds.
    pool.wait_arrivals(2).await;
    wait_for("the first two jobs to be acknowledged", || async { (ops("ack_job") >= acks_before + 2).then_some(()) })
        .await;
    pool.let_workers_look().await;
    assert_eq!(pool.peer.arrivals().len(), 2, "paced accounts sent again before their interval");

    let (claims, acks) = (ops("claim_next"), ops("ack_job"));
    let b_id = pool.send(&b, phone_b, 1).await.remove(0);
    let arrivals = pool.step().await;
    assert!(arrivals[2..].contains(&user(phone_b)), "B's code waited behind A's backlog: {arrivals:?}");
    pool.app.wait_delivered(&b, &b_id).await;

    for _ in 0..8 {
        pool.step().await;
    }
    let sent = pool.peer.arrivals().len() as u64 - 2;
    assert_eq!(sent, 2 * 9);
    // (A message reaches the peer before its job is acknowledged.)
    wait_for("the last jobs to be acknowledged", || async { (ops("ack_job") - acks >= sent).then_some(()) }).await;
    pool.let_workers_look().await;
    assert_eq!((ops("claim_next") - claims, ops("ack_job") - acks), (sent, sent), "one claim and one ack a message");
    assert_eq!(ops("defer_job"), 0, "nothing was put off");
    let (_, backlog) = pool.app.admin(Method::GET, "/delivery/backlog", None).await;
    assert_eq!(backlog["queued"], 300 - 2 - 17, "{backlog}");
    assert_eq!(backlog["tenants"].as_array().map(Vec::len), Some(1), "B has nothing left: {backlog}");
    assert_eq!(backlog["tenants"][0]["tenant"], a.id.as_str());
}

/// Three tenants of weights 1, 2 and 3 with backlogs: 120 messages of three accounts go to
/// them within 10 % of 20, 40 and 60.
async fn tenants_with_backlogs_share_the_pool_by_weight(backend: Backend) {
    const MEASURED: usize = 120;
    let pool = Pool::start(backend, 3).await;
    let weights = [1u16, 2, 3];
    let phones = ["+15550200001", "+15550200002", "+15550200003"];
    let mut tenants = Vec::new();
    for weight in weights {
        tenants.push(pool.tenant(weight).await);
    }
    for (tenant, phone) in tenants.iter().zip(phones) {
        pool.send(tenant, phone, 100).await;
    }
    pool.wait_arrivals(3).await;
    pool.let_workers_look().await;
    let (_, backlog) = pool.app.admin(Method::GET, "/delivery/backlog", None).await;
    let listed: Vec<(&str, u64)> = backlog["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| (t["tenant"].as_str().unwrap(), t["delivery_weight"].as_u64().unwrap()))
        .collect();
    for (tenant, weight) in tenants.iter().zip(weights) {
        assert!(listed.contains(&(tenant.id.as_str(), u64::from(weight))), "{backlog}");
    }

    let start = pool.peer.arrivals().len();
    while pool.peer.arrivals().len() < start + MEASURED {
        pool.step().await;
    }
    let arrivals = pool.peer.arrivals();
    let measured = &arrivals[start..start + MEASURED];
    let total: u16 = weights.iter().sum();
    for (phone, weight) in phones.iter().zip(weights) {
        let got = measured.iter().filter(|&&to| to == user(phone)).count() as f64;
        let share = (MEASURED as f64) * f64::from(weight) / f64::from(total);
        assert!((got - share).abs() <= share * 0.1, "weight {weight}: {got} of {MEASURED} messages, expected {share}");
    }
}

/// A code waits past its `ttl` while no account can send (the only one is paused): its `ttl`
/// task expires it and refunds it once. When the account is back, the job's turn comes first
/// (its tenant had no other); it is done without a message, and the same account sends the
/// next tenant's code instead.
async fn a_code_whose_ttl_ends_while_it_waits_expires_once_and_is_never_sent(backend: Backend) {
    let pool = Pool::start(backend, 1).await;
    let (a, b) = (pool.tenant(1).await, pool.tenant(1).await);
    let (phone_a, phone_b) = ("+15550300001", "+15550300002");
    let (status, _) = pool.app.admin(Method::POST, "/senders/tg0/pause", Some(json!({"note": "test"}))).await;
    assert_eq!(status, 200);
    pool.send(&a, phone_a, 5).await;
    let reply = pool
        .app
        .call(&b, "sendVerificationMessage", json!({"phone_number": phone_b, "code_length": 6, "ttl": 30}))
        .await;
    let b_id = reply.result()["request_id"].as_str().unwrap().to_owned();
    pool.app.advance(Duration::from_secs(31));
    let expired = wait_for("B's code to expire at its ttl", || async {
        let r = pool.app.check(&b, &b_id, None).await;
        (r.result()["delivery_status"]["status"] == "expired").then(|| r.result().clone())
    })
    .await;
    assert_eq!(expired["is_refunded"], true, "{expired}");
    assert!(pool.peer.arrivals().is_empty());

    let (status, _) = pool.app.admin(Method::POST, "/senders/tg0/resume", None).await;
    assert_eq!(status, 200);
    let first = pool.wait_arrivals(1).await;
    assert_eq!(first, [user(phone_a)], "the account sent A's code, not the expired one");
    pool.let_workers_look().await;
    assert_eq!(pool.peer.arrivals().len(), 1, "one message for one step");
    // B's job has its turn at the first step or at this one (two new tenants tie): in the
    // round that takes it, the account goes on to A's next code.
    let arrivals = pool.step().await;
    assert_eq!(arrivals, [user(phone_a), user(phone_a)], "an expired code was sent");
    assert_eq!(pool.app.balance(&b).await, 10_000_000, "refunded: the balance is whole again");
    let refunds: Vec<Value> = pool.app.ledger(&b).await.into_iter().filter(|e| e["kind"] == "refund").collect();
    assert_eq!(refunds.len(), 1, "refunded once: {refunds:?}");
    let backlog = wait_for("A's two sent jobs to be acknowledged", || async {
        let (_, backlog) = pool.app.admin(Method::GET, "/delivery/backlog", None).await;
        (backlog["queued"] == 3).then_some(backlog)
    })
    .await;
    let tenants = backlog["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 1, "B's job is done, A's wait: {backlog}");
}

/// `checkSendAbility` looks the number up through a paced account: the account is free again
/// afterwards (it once stayed marked busy in the process for good, and nothing more was sent).
async fn a_number_looked_up_leaves_the_paced_account_free_to_send(backend: Backend) {
    let pool = Pool::start(backend, 1).await;
    let tenant = pool.tenant(1).await;
    let phone = "+15550500001";
    let able = pool.app.call(&tenant, "checkSendAbility", json!({"phone_number": phone})).await;
    assert_eq!(able.result()["request_cost"], 0.01, "{able:?}");
    let id = pool.send(&tenant, phone, 1).await.remove(0);
    assert_eq!(pool.wait_arrivals(1).await, [user(phone)]);
    pool.app.wait_delivered(&tenant, &id).await;
    pool.send(&tenant, phone, 1).await;
    assert_eq!(pool.step().await.len(), 2, "the account sends again at its next interval");
}
