//! `verigram serve --role api` and `verigram serve --role worker` as separate processes on one
//! Redis: the API process accepts sends and queues them but sends nothing and has no sandbox;
//! the worker process delivers them (its sandbox inbox shows them) and serves no Gateway
//! method.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use verigram_testkit::{RedisCluster, RedisServer};

const ADMIN_TOKEN: &str = "roles-test-admin-token-0123456789";
const PEPPER: &str = "a-pepper-of-at-least-32-bytes-for-role-tests";
const PHONE: &str = "15551234567";

use verigram_testkit::{poll_up_to, wait_for, wait_up_to};

use verigram_testkit::http;
use verigram_testkit::process::{self, Server};

const BIN: &str = env!("CARGO_BIN_EXE_verigram");

/// Starts `verigram serve --role <role>` on the given Redis.
fn serve(role: &str, store_url: &str) -> Server {
    serve_with(role, store_url, &[], None)
}

/// As `serve`, with more environment and a `--config` file.
fn serve_with(role: &str, store_url: &str, env: &[(&str, &str)], config: Option<&std::path::Path>) -> Server {
    let mut args: Vec<&std::ffi::OsStr> = vec!["--role".as_ref(), role.as_ref()];
    if let Some(config) = config {
        args.extend(["--config".as_ref(), config.as_os_str()]);
    }
    let mut all = vec![
        ("VERIGRAM__STORE__URL", store_url),
        ("VERIGRAM__CODES__PEPPER", PEPPER),
        ("VERIGRAM__ADMIN__TOKEN", ADMIN_TOKEN),
        // These tests send many messages to one number; the per-number limit is tested elsewhere.
        ("VERIGRAM__LIMITS__PHONE__RATE", "0"),
    ];
    all.extend_from_slice(env);
    process::serve(BIN, &args, &all)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn get_json(url: String) -> (u16, Value) {
    let response = client().get(url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// A Gateway method with a JSON body: the whole envelope.
async fn gateway(server: &Server, method: &str, token: &str, params: Value) -> Value {
    let response =
        client().post(format!("{}/{method}", server.url)).bearer_auth(token).json(&params).send().await.unwrap();
    response.json().await.unwrap()
}

/// The worker's sandbox inbox for `PHONE`, newest first.
async fn inbox(server: &Server) -> Vec<Value> {
    inbox_of(server, PHONE).await
}

async fn inbox_of(server: &Server, phone: &str) -> Vec<Value> {
    let (status, body) = get_json(format!("{}/sandbox/v1/messages?phone_number={phone}", server.url)).await;
    assert_eq!(status, 200, "{body}");
    body.as_array().expect("an inbox array").clone()
}

/// `Some` once the stream at `key` holds no job.
async fn stream_emptied(redis: &redis::aio::MultiplexedConnection, key: &str) -> Option<()> {
    let left: u64 = redis::cmd("XLEN").arg(key).query_async(&mut redis.clone()).await.unwrap();
    (left == 0).then_some(())
}

/// As `wait_for`, for what first waits out a lease of several seconds.
async fn wait_for_long<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    wait_up_to(Duration::from_secs(30), what, probe).await
}

/// The code in a message text: its last run of digits.
fn code_in(text: &str) -> String {
    let digits: Vec<&str> = text.split(|c: char| !c.is_ascii_digit()).filter(|s| !s.is_empty()).collect();
    digits.last().unwrap_or_else(|| panic!("no code in {text:?}")).to_string()
}

/// The consumers of the tenant's job stream: a worker that ever looked at it appears here.
async fn consumers(redis: &mut redis::aio::MultiplexedConnection, tenant: &str) -> usize {
    let list: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(format!("{{t:{tenant}}}:jobs"))
        .arg("delivery")
        .query_async(redis)
        .await
        .unwrap();
    list.len()
}

async fn send(api: &Server, token: &str) -> String {
    send_to(api, token, PHONE).await
}

async fn send_to(api: &Server, token: &str, phone: &str) -> String {
    let sent = gateway(api, "sendVerificationMessage", token, json!({"phone_number": phone, "code_length": 6})).await;
    assert_eq!(sent["ok"], true, "{sent}");
    assert!(sent["result"].get("delivery_status").is_none(), "answered before any delivery: {sent}");
    sent["result"]["request_id"].as_str().unwrap().to_owned()
}

async fn delivery_status(api: &Server, token: &str, request_id: &str) -> Option<String> {
    let s = gateway(api, "checkVerificationStatus", token, json!({"request_id": request_id})).await;
    assert_eq!(s["ok"], true, "{s}");
    s["result"].get("delivery_status").map(|d| d["status"].as_str().unwrap().to_owned())
}

/// The worker processes logged `expected` sends in all, through the one sandbox account whose
/// recipients take a second each: sends that overlapped would end less than a second apart.
fn assert_sent_once_one_at_a_time(workers: &[(&str, &Server)], expected: usize) {
    let mut sent: Vec<(i64, &str)> = Vec::new();
    for (name, server) in workers {
        for line in server.logged_lines("message sent") {
            sent.push((line["at_ms"].as_i64().unwrap(), name));
        }
    }
    sent.sort();
    assert_eq!(sent.len(), expected, "each message sent once: {sent:?}");
    for pair in sent.windows(2) {
        assert!(pair[1].0 - pair[0].0 >= 950, "two sends through one account overlapped: {sent:?}");
    }
}

/// A config file in `dir` for worker processes: one worker each, a 2 s account lease, and a
/// sandbox recipient (numbers starting 1555, `PHONE` among them) whose messages take a second to
/// go out.
fn slow_recipient_config(dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("workers.toml");
    std::fs::write(
        &config,
        "[pool]\nlease = 2\n[delivery]\nworkers = 1\nretry_initial = 1\n[sandbox.recipients]\n\"1555\" = { slow = { seconds = 1 } }\n",
    )
    .unwrap();
    config
}

/// Environment of processes that send through the local Telegram peer, rate limits off.
const THROUGH_PEER: [(&str, &str); 6] = [
    ("VERIGRAM__SENDER__KIND", "telegram"),
    ("VERIGRAM__SENDER__DEV_PEERS", "true"),
    ("VERIGRAM__LIMITS__TENANT__RATE", "0"),
    ("VERIGRAM__LIMITS__TOKEN__RATE", "0"),
    ("VERIGRAM__LIMITS__IP__RATE", "0"),
    ("VERIGRAM__LIMITS__COUNTRY__RATE", "0"),
];

/// A local Telegram peer with these sender accounts, where every number is a user.
async fn peer_with(accounts: &[String]) -> verigram_dev_telegram::TelegramPeer {
    let config =
        verigram_dev_telegram::PeerConfig { accounts: accounts.to_vec(), auto_users: true, ..Default::default() };
    verigram_dev_telegram::TelegramPeer::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap()
}

/// Adds the peer's accounts to the pool through `api`'s admin API, as `tg0`, `tg1`, ….
async fn add_peer_accounts(api: &Server, peer: &verigram_dev_telegram::TelegramPeer, accounts: &[String]) {
    for (i, phone) in accounts.iter().enumerate() {
        let body = json!({"id": format!("tg{i}"), "kind": "telegram", "phone_number": phone,
                          "dev_peer": peer.addr().to_string()});
        let response =
            client().post(format!("{}/admin/v1/senders", api.url)).bearer_auth(ADMIN_TOKEN).json(&body).send().await;
        assert_eq!(response.unwrap().status().as_u16(), 201);
    }
}

/// A tenant made through the admin API of `api`: (id, token).
async fn create_tenant(api: &Server) -> (String, String) {
    let response = client()
        .post(format!("{}/admin/v1/tenants", api.url))
        .bearer_auth(ADMIN_TOKEN)
        .json(&json!({"name": "Acme", "balance": "1"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let tenant: Value = response.json().await.unwrap();
    assert_eq!(status, 201, "the api process serves the admin API: {tenant}");
    (tenant["id"].as_str().unwrap().to_owned(), tenant["token"].as_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_process_queues_and_a_worker_process_delivers() {
    let redis_server = RedisServer::start().expect("redis-server for the Redis tests");
    let store_url = redis_server.url();
    let mut redis = redis::Client::open(store_url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();

    let api = serve("api", &store_url);
    let (tenant_id, token) = create_tenant(&api).await;

    let first = send(&api, &token).await;
    let (_, no_sandbox) = get_json(format!("{}/sandbox/v1/messages", api.url)).await;
    assert_eq!(no_sandbox, json!({"ok": false, "error": "UNKNOWN_METHOD"}), "no sandbox in an api process");

    // Nothing delivers it: over several of the workers' poll intervals (and a send wakes a
    // process's own workers at once), the job stays queued and no worker ever reads the stream.
    let watch = Instant::now();
    while watch.elapsed() < Duration::from_secs(1) {
        assert_eq!(delivery_status(&api, &token, &first).await, None, "an api process delivered a message");
        assert_eq!(consumers(&mut redis, &tenant_id).await, 0, "an api process read the job stream");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let queued: u64 = redis::cmd("XLEN").arg(format!("{{t:{tenant_id}}}:jobs")).query_async(&mut redis).await.unwrap();
    assert_eq!(queued, 1, "the job waits in the stream");

    let worker = serve("worker", &store_url);
    let message = wait_for("the worker process to deliver the first message", || async {
        inbox(&worker).await.into_iter().find(|m| m["request_id"] == first.as_str())
    })
    .await;
    assert_eq!(message["status"], "delivered");
    wait_for("the api process to see the delivery", || async {
        (delivery_status(&api, &token, &first).await.as_deref() == Some("delivered")).then_some(())
    })
    .await;
    let code = code_in(message["text"].as_str().unwrap());
    let checked = gateway(&api, "checkVerificationStatus", &token, json!({"request_id": first, "code": code})).await;
    assert_eq!(checked["result"]["verification_status"]["status"], "code_valid", "{checked}");

    // A send made after the worker started reaches it too (nothing wakes it across processes:
    // it polls).
    let second = send(&api, &token).await;
    wait_for("the worker process to deliver the second message", || async {
        inbox(&worker).await.into_iter().find(|m| m["request_id"] == second.as_str())
    })
    .await;
    let messages = inbox(&worker).await;
    assert_eq!(messages.len(), 2, "one message per send: {messages:?}");
    let jobs = format!("{{t:{tenant_id}}}:jobs");
    wait_for("the jobs to leave the stream", || stream_emptied(&redis, &jobs)).await;
    assert!(consumers(&mut redis, &tenant_id).await > 0, "the worker process read the job stream");

    // The worker process serves no Gateway method and no admin API.
    for method in ["sendVerificationMessage", "checkVerificationStatus", "checkSendAbility"] {
        let answer = gateway(&worker, method, &token, json!({"phone_number": PHONE, "request_id": first})).await;
        assert_eq!(answer, json!({"ok": false, "error": "UNKNOWN_METHOD"}), "{method} on a worker process");
    }
    let (_, admin) = get_json(format!("{}/admin/v1/tenants", worker.url)).await;
    assert_eq!(admin, json!({"ok": false, "error": "UNKNOWN_METHOD"}), "no admin API on a worker process");
    let messages = inbox(&worker).await;
    assert_eq!(messages.len(), 2, "the refused send sent nothing: {messages:?}");
    for server in [&api, &worker] {
        let (status, _) = get_json(format!("{}/healthz", server.url)).await;
        assert_eq!(status, 200, "both processes answer the probes");
    }
}

/// Issue 3: "a worker process killed with SIGKILL while holding a job leaves it to be reclaimed
/// and sent exactly once". A worker process claims the job and is killed in the middle of
/// sending it (its recipient is slow); another worker process takes the job over once the lease
/// (`delivery.lease = 1`) has run out and sends the message once. (`pool.lease = 1` as well, so
/// the sender account the dead process held is free again soon.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_a_killed_worker_process_is_sent_once_by_another() {
    const SLOW_PHONE: &str = "15550021234";
    let redis_server = RedisServer::start().expect("redis-server for the Redis tests");
    let store_url = redis_server.url();
    let redis = redis::Client::open(store_url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let fast_leases = [("VERIGRAM__DELIVERY__LEASE", "1"), ("VERIGRAM__POOL__LEASE", "1")];
    let api = serve_with("api", &store_url, &fast_leases, None);
    let (tenant_id, token) = create_tenant(&api).await;
    let jobs = format!("{{t:{tenant_id}}}:jobs");

    let dir = tempfile::tempdir().unwrap();
    let slow = dir.path().join("slow.toml");
    std::fs::write(&slow, "[sandbox.recipients]\n\"1555002\" = { slow = { seconds = 600 } }\n").unwrap();
    let mut doomed = serve_with("worker", &store_url, &fast_leases, Some(&slow));
    let id = send_to(&api, &token, SLOW_PHONE).await;
    wait_for("the first worker process to claim the job", || {
        let mut redis = redis.clone();
        let jobs = jobs.clone();
        async move {
            let summary: Vec<redis::Value> =
                redis::cmd("XPENDING").arg(&jobs).arg("delivery").query_async(&mut redis).await.unwrap();
            (redis::from_redis_value::<u64>(summary[0].clone()).unwrap() == 1).then_some(())
        }
    })
    .await;
    doomed.kill();
    assert_eq!(delivery_status(&api, &token, &id).await, None, "nothing was recorded before the kill");

    let heir = serve_with("worker", &store_url, &fast_leases, None);
    // The take-over is a chain: the job's lease runs out, the heir reclaims the job, then it may
    // find the sender account still leased to the dead process and put the job off until that
    // lease runs out too. Each link is waited for on its own condition, so a slow machine is
    // given the time each link needs rather than one budget for the chain.
    let take_over = "took over a delivery job whose worker stopped";
    let heir_log = std::sync::Mutex::new(Vec::<String>::new());
    let reclaimed = poll_up_to(Duration::from_secs(20), || {
        let lines = heir.log_lines();
        let n = lines.iter().filter(|l| l.contains(take_over)).count();
        heir_log.lock().unwrap().extend(lines);
        async move { (n > 0).then_some(n) }
    })
    .await;
    let Some(reclaims) = reclaimed else {
        let log = heir_log.lock().unwrap().clone();
        explain_stuck_job(&redis, &jobs, &log).await;
        panic!("the second worker process did not reclaim the job within 20 s");
    };
    assert_eq!(reclaims, 1, "the job was reclaimed once");
    let sent = poll_up_to(Duration::from_secs(20), || async {
        inbox_of(&heir, SLOW_PHONE).await.into_iter().find(|m| m["request_id"] == id.as_str())
    })
    .await;
    let Some(message) = sent else {
        let mut log = heir_log.lock().unwrap().clone();
        log.extend(heir.log_lines());
        explain_stuck_job(&redis, &jobs, &log).await;
        panic!("the second worker process did not send the message within 20 s of reclaiming it");
    };
    assert_eq!(message["status"], "delivered");
    wait_for("the delivery to be recorded", || async {
        (delivery_status(&api, &token, &id).await.as_deref() == Some("delivered")).then_some(())
    })
    .await;
    let code = code_in(message["text"].as_str().unwrap());
    let checked = gateway(&api, "checkVerificationStatus", &token, json!({"request_id": id, "code": code})).await;
    assert_eq!(checked["result"]["verification_status"]["status"], "code_valid", "{checked}");

    wait_for("the job to leave the stream", || stream_emptied(&redis, &jobs)).await;
    let messages = inbox_of(&heir, SLOW_PHONE).await;
    assert_eq!(messages.len(), 1, "sent exactly once: {messages:?}");
    assert_eq!(heir.logged(take_over), 0, "reclaimed once only");
}

/// Issue 18, item 4: a worker process is killed after Telegram accepted its message and
/// before it could record it (the peer holds its answer back). The job's next worker sends it
/// through the same account with the same `random_id`; Telegram (the peer) refuses the
/// duplicate, the message is found in the chat, and the request ends `delivered` with it: the
/// user has one message, and its code verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_after_telegram_accepted_its_message_sends_no_second() {
    use verigram_dev_telegram::{Fault, Injection, PeerConfig, TelegramPeer};
    let redis_server = RedisServer::start().expect("redis-server for the Redis tests");
    let store_url = redis_server.url();
    let account = "+447700900301";
    let config = PeerConfig { accounts: vec![account.into()], auto_users: true, ..Default::default() };
    let peer = TelegramPeer::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let telegram = [("VERIGRAM__SENDER__KIND", "telegram"), ("VERIGRAM__SENDER__DEV_PEERS", "true")];
    let with =
        |more: &[(&'static str, &'static str)]| [&telegram[..], more, &[("VERIGRAM__POOL__LEASE", "1")]].concat();
    let api = serve_with("api", &store_url, &with(&[]), None);
    let body = json!({"id": "tg0", "kind": "telegram", "phone_number": account, "dev_peer": peer.addr().to_string()});
    let added = client().post(format!("{}/admin/v1/senders", api.url)).bearer_auth(ADMIN_TOKEN).json(&body).send();
    assert_eq!(added.await.unwrap().status().as_u16(), 201);
    let (_, token) = create_tenant(&api).await;

    // The doomed worker waits long for Telegram's answer; the heir takes a job over after 4 s.
    let patient = [("VERIGRAM__SENDER__CALL_TIMEOUT", "20"), ("VERIGRAM__DELIVERY__LEASE", "61")];
    let mut doomed = serve_with("worker", &store_url, &with(&patient), None);
    peer.inject(Injection::new(Fault::Delay(Duration::from_secs(60))).method("messages.sendMessage").times(1));
    let id = send(&api, &token).await;
    let inbox = wait_for("Telegram to accept the message", || async {
        let inbox = peer.inbox(PHONE);
        (!inbox.is_empty()).then_some(inbox)
    })
    .await;
    doomed.kill();
    assert_eq!(delivery_status(&api, &token, &id).await, None, "nothing was recorded before the kill");

    let quick = [("VERIGRAM__SENDER__CALL_TIMEOUT", "1"), ("VERIGRAM__DELIVERY__LEASE", "4")];
    let _heir = serve_with("worker", &store_url, &with(&quick), None);
    wait_for_long("the request to be delivered", || async {
        (delivery_status(&api, &token, &id).await.as_deref() == Some("delivered")).then_some(())
    })
    .await;
    assert_eq!(peer.inbox(PHONE), inbox, "one message, the one accepted before the kill");
    assert!(peer.calls(account).contains(&"messages.getHistory"), "{:?}", peer.calls(account));
    let code = code_in(&inbox[0].text);
    let checked = gateway(&api, "checkVerificationStatus", &token, json!({"request_id": id, "code": code})).await;
    assert_eq!(checked["result"]["verification_status"]["status"], "code_valid", "{checked}");
}

/// Issue 18, item 5: load and faults together. 240 codes, each to its own user, through three
/// worker processes and four accounts of the local Telegram, while worker processes are killed
/// (SIGKILL) and replaced, and the peer answers a flood wait, drops connections before calls
/// and after sends it carried out. Every request ends `delivered`; every user has exactly one
/// message (counted at the peer) and it verifies; the tenant is charged once per request; the
/// flood-waited account rests and comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codes_go_out_once_each_while_workers_die_and_telegram_misbehaves() {
    use verigram_dev_telegram::{Fault, Injection};
    const CODES: usize = 240;
    let redis_server = RedisServer::start().expect("redis-server for the Redis tests");
    let store_url = redis_server.url();
    let accounts: Vec<String> = (0..4).map(|i| format!("+44770090040{i}")).collect();
    let peer = peer_with(&accounts).await;
    let quick = [
        ("VERIGRAM__SENDER__CALL_TIMEOUT", "2"),
        ("VERIGRAM__DELIVERY__LEASE", "7"),
        ("VERIGRAM__POOL__LEASE", "2"),
        ("VERIGRAM__POOL__INTERVAL_MS", "20"),
    ];
    let env = [&THROUGH_PEER[..], &quick].concat();
    let api = serve_with("api", &store_url, &env, None);
    add_peer_accounts(&api, &peer, &accounts).await;
    let body = json!({"name": "Busy", "balance": "10"});
    let created = client().post(format!("{}/admin/v1/tenants", api.url)).bearer_auth(ADMIN_TOKEN).json(&body).send();
    let tenant: Value = created.await.unwrap().json().await.unwrap();
    let (tenant_id, token) = (tenant["id"].as_str().unwrap().to_owned(), tenant["token"].as_str().unwrap().to_owned());
    let balance = |api: &Server| {
        let url = format!("{}/admin/v1/tenants/{tenant_id}", api.url);
        // In micro-credits (the API's amounts are JSON numbers of credits).
        async move { (get_json(url).await.1["balance"].as_f64().unwrap() * 1e6).round() as i64 }
    };
    let start_balance = balance(&api).await;

    let flooded = &accounts[1];
    peer.inject(
        Injection::new(Fault::error(420, "FLOOD_WAIT_3")).account(flooded).method("messages.sendMessage").times(1),
    );
    peer.inject(Injection::new(Fault::DropAfter).method("messages.sendMessage").times(6));
    peer.inject(Injection::new(Fault::Drop).method("contacts.importContacts").times(4));
    let mut workers: Vec<Server> = (0..3).map(|_| serve_with("worker", &store_url, &env, None)).collect();
    let phones: Vec<String> = (0..CODES).map(|i| format!("+1555090{i:04}")).collect();
    let mut ids = Vec::new();
    for (i, phone) in phones.iter().enumerate() {
        ids.push(send_to(&api, &token, phone).await);
        if i % 60 == 59 {
            // One worker process dies mid-flight and another takes its place.
            let k = (i / 60) % workers.len();
            workers[k].kill();
            workers[k] = serve_with("worker", &store_url, &env, None);
        }
    }
    wait_up_to(Duration::from_secs(120), "every code at the peer", || async {
        (phones.iter().all(|p| !peer.inbox(p).is_empty())).then_some(())
    })
    .await;
    for (id, phone) in ids.iter().zip(&phones) {
        wait_for_long(&format!("{id} to be delivered"), || async {
            (delivery_status(&api, &token, id).await.as_deref() == Some("delivered")).then_some(())
        })
        .await;
        let inbox = peer.inbox(phone);
        assert_eq!(inbox.len(), 1, "{phone} got {} messages: {inbox:?}", inbox.len());
    }
    assert_eq!(peer.messages_sent(), CODES, "no message beyond one per request");
    assert_eq!(peer.faults_left(), 0, "every injected fault struck");
    let looked_up = accounts.iter().filter(|a| peer.calls(a).contains(&"messages.getHistory")).count();
    assert!(looked_up > 0, "sends whose answers were lost were found in the chats");
    // A sample of codes verifies (each check is a request of its own).
    for (id, phone) in ids.iter().zip(&phones).step_by(40) {
        let code = code_in(&peer.inbox(phone)[0].text);
        let checked = gateway(&api, "checkVerificationStatus", &token, json!({"request_id": id, "code": code})).await;
        assert_eq!(checked["result"]["verification_status"]["status"], "code_valid", "{checked}");
    }

    let (_, ledger) = get_json(format!("{}/admin/v1/tenants/{tenant_id}/ledger?limit=1000", api.url)).await;
    let charges = ledger.as_array().unwrap().iter().filter(|e| e["kind"] == "charge").count();
    assert_eq!(charges, CODES, "one charge per request");
    let refunds = ledger.as_array().unwrap().iter().filter(|e| e["kind"] == "refund").count();
    assert_eq!(refunds, 0, "every code was delivered");
    let spent = start_balance - balance(&api).await;
    assert_eq!(spent, 10_000 * CODES as i64, "the default price, once per request");

    let flooded_sent = phones.iter().filter(|p| peer.inbox(p)[0].from == flooded.trim_start_matches('+')).count();
    assert!(flooded_sent > 0, "the flood-waited account came back and sent");
    let (_, senders) = get_json(format!("{}/admin/v1/senders", api.url)).await;
    for account in senders.as_array().unwrap() {
        assert_eq!(account["state"], "active", "{account}");
    }
}

/// What a delivery job that did not move is waiting on: the stream's pending entries, the timed
/// tasks, the sender account's lease, and what the worker process logged (beside the failure,
/// so a rare stall on a busy machine can be told apart from a bug).
async fn explain_stuck_job(redis: &redis::aio::MultiplexedConnection, jobs: &str, log: &[String]) {
    let mut redis = redis.clone();
    let pending: redis::Value = redis::cmd("XPENDING")
        .arg(jobs)
        .arg("delivery")
        .arg("-")
        .arg("+")
        .arg(10)
        .query_async(&mut redis)
        .await
        .unwrap();
    let length: u64 = redis::cmd("XLEN").arg(jobs).query_async(&mut redis).await.unwrap();
    let whole = |key: &'static str| {
        let mut redis = redis.clone();
        async move {
            let all: Vec<String> =
                redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).arg("WITHSCORES").query_async(&mut redis).await.unwrap();
            all
        }
    };
    let due = whole("{verigram}:due").await;
    let work = whole("{verigram}:turns").await;
    let keys: Vec<String> = redis::cmd("KEYS").arg("{s:*").query_async(&mut redis).await.unwrap();
    let mut leases = Vec::new();
    for key in keys.iter().filter(|k| k.ends_with(":lease")) {
        let holder: Option<String> = redis::cmd("GET").arg(key).query_async(&mut redis).await.unwrap();
        let ttl: i64 = redis::cmd("PTTL").arg(key).query_async(&mut redis).await.unwrap();
        leases.push(format!("{key}={holder:?} ({ttl} ms)"));
    }
    eprintln!("stream {jobs}: {length} entries, pending {pending:?}");
    eprintln!("due index: {due:?}; turns: {work:?}; account leases: {leases:?}");
    for line in log.iter().filter(|l| !l.contains("request finished")) {
        eprintln!("worker log: {line}");
    }
}

/// One sender account, two worker processes, a recipient whose messages take a second to go
/// out: the account's lease lets one process drive it at a time, so no two sends overlap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_worker_processes_never_drive_one_account_at_once() {
    let redis_server = RedisServer::start().expect("redis-server for the Redis tests");
    let store_url = redis_server.url();
    let dir = tempfile::tempdir().unwrap();
    let config = slow_recipient_config(dir.path());
    let api = serve("api", &store_url);
    let a = serve_with("worker", &store_url, &[], Some(&config));
    let b = serve_with("worker", &store_url, &[], Some(&config));
    let (_, token) = create_tenant(&api).await;
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.push(send(&api, &token).await);
    }
    for id in &ids {
        wait_for(&format!("request {id} to be delivered"), || async {
            (delivery_status(&api, &token, id).await.as_deref() == Some("delivered")).then_some(())
        })
        .await;
    }
    assert_sent_once_one_at_a_time(&[("a", &a), ("b", &b)], 4);
}

/// Issue 5: "no report is lost when a process dies". A worker process is posting a delivery
/// report when it is killed (the receiver holds the first connection and never answers); the
/// report stays in the request's outbox, and another worker process sends it once the task's
/// lease (`delivery.task_lease = 8`) has run out, followed by the next report, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_of_a_killed_worker_process_is_sent_by_another() {
    // The receiver: records each report's body; holds the first connection open unanswered.
    let (url, got) = http::receiver_pausing(200, |n| if n == 1 { Duration::from_secs(60) } else { Duration::ZERO });
    let reports = || got.lock().unwrap().clone();

    let redis_server = RedisServer::start().expect("redis-server for the Redis tests");
    let store_url = redis_server.url();
    // The shortest task lease the config allows for a 2 s report timeout (plus 5 s of waiting
    // for the host): a report attempt must end within its lease.
    let env = [
        ("VERIGRAM__DELIVERY__TASK_LEASE", "8"),
        ("VERIGRAM__CALLBACKS__CONNECT_TIMEOUT_MS", "1000"),
        ("VERIGRAM__CALLBACKS__TIMEOUT_MS", "2000"),
        ("VERIGRAM__CALLBACKS__ALLOW_HTTP", "true"),
        ("VERIGRAM__CALLBACKS__ALLOW_PRIVATE_NETWORKS", "true"),
    ];
    let api = serve_with("api", &store_url, &env, None);
    let (_, token) = create_tenant(&api).await;
    let mut doomed = serve_with("worker", &store_url, &env, None);
    let sent = gateway(
        &api,
        "sendVerificationMessage",
        &token,
        json!({"phone_number": PHONE, "code_length": 6, "callback_url": url}),
    )
    .await;
    assert_eq!(sent["ok"], true, "{sent}");
    wait_for("the first worker process to post the first report", || async { (reports().len() == 1).then_some(()) })
        .await;
    doomed.kill();

    let _heir = serve_with("worker", &store_url, &env, None);
    let all = wait_for_long("the second worker process to send both reports", || async {
        let all = reports();
        (all.len() >= 3).then_some(all)
    })
    .await;
    let statuses: Vec<&str> = all.iter().map(|r| r["delivery_status"]["status"].as_str().unwrap_or("?")).collect();
    assert_eq!(statuses, ["sent", "sent", "delivered"], "the held report again, then the next, in order");
}

/// Issue 8: three processes (an API process, one that does both, a worker process) on a Redis
/// Cluster share one set of limits, one queue, one pool of accounts and one outbox: a number
/// limited to one send is refused by the second process it is sent through; every message
/// goes out once, through one account driven by one process at a time; every status change of
/// every request is reported in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_a_cluster_share_limits_the_queue_accounts_and_reports() {
    let cluster = RedisCluster::start().expect("a local Redis Cluster");
    three_processes_share_limits_the_queue_accounts_and_reports(&cluster.url()).await;
}

/// As above, on one Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_processes_on_one_redis_share_limits_the_queue_accounts_and_reports() {
    let redis = RedisServer::start().expect("redis-server for the Redis tests");
    three_processes_share_limits_the_queue_accounts_and_reports(&redis.url()).await;
}

async fn three_processes_share_limits_the_queue_accounts_and_reports(store_url: &str) {
    let (url, got) = http::receiver(200, Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let config = slow_recipient_config(dir.path());
    let env = [
        ("VERIGRAM__LIMITS__PHONE__RATE", "1"),
        ("VERIGRAM__LIMITS__PHONE__PER", "3600"),
        ("VERIGRAM__LIMITS__PHONE__BURST", "1"),
        ("VERIGRAM__CALLBACKS__ALLOW_HTTP", "true"),
        ("VERIGRAM__CALLBACKS__ALLOW_PRIVATE_NETWORKS", "true"),
    ];
    let api = serve_with("api", store_url, &env, Some(&config));
    let mixed = serve_with("all", store_url, &env, Some(&config));
    let worker = serve_with("worker", store_url, &env, Some(&config));
    let (_, token) = create_tenant(&api).await;

    // One send per number per hour, wherever it is sent.
    let params = |phone: &str| json!({"phone_number": phone, "code_length": 6, "callback_url": url});
    let first = gateway(&api, "sendVerificationMessage", &token, params("+15557000001")).await;
    assert_eq!(first["ok"], true, "{first}");
    let again = gateway(&mixed, "sendVerificationMessage", &token, params("+15557000001")).await;
    assert!(again["error"].as_str().is_some_and(|e| e.starts_with("FLOOD_WAIT_")), "{again}");

    let mut ids = vec![first["result"]["request_id"].as_str().unwrap().to_owned()];
    for (n, node) in [&api, &mixed, &api].into_iter().enumerate() {
        let sent = gateway(node, "sendVerificationMessage", &token, params(&format!("+1555700001{n}"))).await;
        assert_eq!(sent["ok"], true, "{sent}");
        ids.push(sent["result"]["request_id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        wait_for_long(&format!("request {id} to be delivered"), || async {
            (delivery_status(&mixed, &token, id).await.as_deref() == Some("delivered")).then_some(())
        })
        .await;
    }
    assert_sent_once_one_at_a_time(&[("mixed", &mixed), ("worker", &worker)], ids.len());
    // Every request's `sent` then `delivered` report, whichever process sent them.
    let reports = wait_for_long("two reports of every request", || async {
        let all = got.lock().unwrap().clone();
        ids.iter().all(|id| all.iter().filter(|r| r["request_id"] == id.as_str()).count() >= 2).then_some(all)
    })
    .await;
    for id in &ids {
        let statuses: Vec<&str> = reports
            .iter()
            .filter(|r| r["request_id"] == id.as_str())
            .map(|r| r["delivery_status"]["status"].as_str().unwrap_or("?"))
            .collect();
        assert_eq!(statuses, ["sent", "delivered"], "request {id}: reports in order, each once");
    }
}

/// Issue 8 (performance): a process remembers a token and its tenant for `tokens.cache_ms`, so
/// a revocation made through another process takes effect there within that time, and at once
/// on the process that made it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_through_one_process_is_refused_by_another_within_the_cache_time() {
    let redis_server = RedisServer::start().expect("redis-server for the Redis tests");
    let store_url = redis_server.url();
    let cache = [("VERIGRAM__TOKENS__CACHE_MS", "500")];
    let (a, b) = (serve_with("api", &store_url, &cache, None), serve_with("api", &store_url, &cache, None));
    let (tenant_id, token) = create_tenant(&a).await;
    let status = json!({"phone_number": PHONE});
    for server in [&a, &b] {
        let answer = gateway(server, "checkSendAbility", &token, status.clone()).await;
        assert_eq!(answer["ok"], true, "both processes know the token (and remember it): {answer}");
    }
    let (_, tokens) = get_json(format!("{}/admin/v1/tenants/{tenant_id}/tokens", a.url)).await;
    let token_id = tokens[0]["id"].as_str().expect("a token id").to_owned();
    let revoked = client()
        .delete(format!("{}/admin/v1/tenants/{tenant_id}/tokens/{token_id}", a.url))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status().as_u16(), 200);

    let refused = json!({"ok": false, "error": "ACCESS_TOKEN_INVALID"});
    let answer = gateway(&a, "checkSendAbility", &token, status.clone()).await;
    assert_eq!(answer, refused, "the process that revoked the token refuses it at once");
    wait_up_to(Duration::from_secs(5), "the other process to refuse the revoked token", || async {
        (gateway(&b, "checkSendAbility", &token, status.clone()).await == refused).then_some(())
    })
    .await;
}

/// Issue 21 across processes: one API process and three worker processes share three paced
/// Telegram accounts of the local peer (300 ms apart). Three tenants of weights 1, 2 and 3
/// with backlogs get 120 messages within 10 % of 20, 40 and 60; then a fourth tenant's one
/// code goes out behind at most one message of each tenant with work and the messages already
/// on their way, never behind a backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_worker_processes_serve_tenants_in_weighted_turns() {
    use verigram_dev_telegram::SimUser;
    const MEASURED: usize = 120;
    let redis_server = RedisServer::start().expect("redis-server for the Redis tests");
    let store_url = redis_server.url();
    let accounts: Vec<String> = (0..3).map(|i| format!("+44770090020{i}")).collect();
    let peer = peer_with(&accounts).await;
    let env = [&THROUGH_PEER[..], &[("VERIGRAM__POOL__INTERVAL_MS", "300")]].concat();
    let api = serve_with("api", &store_url, &env, None);
    let _workers: Vec<Server> = (0..3).map(|_| serve_with("worker", &store_url, &env, None)).collect();
    add_peer_accounts(&api, &peer, &accounts).await;
    let tenant = |weight: u16| {
        let api = &api;
        async move {
            let body = json!({"name": format!("weight {weight}"), "balance": "10", "delivery_weight": weight});
            let response = client().post(format!("{}/admin/v1/tenants", api.url)).bearer_auth(ADMIN_TOKEN).json(&body);
            let tenant: Value = response.send().await.unwrap().json().await.unwrap();
            tenant["token"].as_str().unwrap().to_owned()
        }
    };
    let weights = [1u16, 2, 3];
    let phones = ["+15550400001", "+15550400002", "+15550400003"];
    let send = |token: String, phone: &'static str| {
        let api = &api;
        async move {
            let params = json!({"phone_number": phone, "code_length": 6});
            let sent = gateway(api, "sendVerificationMessage", &token, params).await;
            assert_eq!(sent["ok"], true, "{sent}");
        }
    };
    // The accounts are paused while the backlogs are queued, however slowly: the shares are
    // measured with all three tenants' backlogs in place.
    let admin = |path: String| {
        let api = &api;
        async move {
            let response = client().post(format!("{}/admin/v1/senders/{path}", api.url)).bearer_auth(ADMIN_TOKEN);
            assert_eq!(response.send().await.unwrap().status().as_u16(), 200, "{path}");
        }
    };
    for i in 0..accounts.len() {
        admin(format!("tg{i}/pause")).await;
    }
    for (weight, phone) in weights.into_iter().zip(phones) {
        let token = tenant(weight).await;
        for _ in 0..90 {
            send(token.clone(), phone).await;
        }
    }
    assert!(peer.arrivals().is_empty(), "a paused account sent");
    for i in 0..accounts.len() {
        admin(format!("tg{i}/resume")).await;
    }

    let start = peer.arrivals().len();
    wait_for_long(&format!("{MEASURED} more messages at the peer"), || async {
        (peer.arrivals().len() >= start + MEASURED).then_some(())
    })
    .await;
    let arrivals = peer.arrivals();
    let total: u16 = weights.iter().sum();
    for (phone, weight) in phones.iter().zip(weights) {
        let got = arrivals[start..start + MEASURED].iter().filter(|&&to| to == SimUser::new(phone).id()).count();
        let share = MEASURED as f64 * f64::from(weight) / f64::from(total);
        assert!((got as f64 - share).abs() <= share * 0.1, "weight {weight}: {got} of {MEASURED}, expected {share}");
    }

    let lone = "+15550400009";
    let token = tenant(1).await;
    send(token, lone).await;
    let before = peer.arrivals().len();
    let arrivals = wait_for_long("the fourth tenant's code at the peer", || async {
        let arrivals = peer.arrivals();
        arrivals[before..].contains(&SimUser::new(lone).id()).then_some(arrivals)
    })
    .await;
    let ahead = arrivals[before..].iter().position(|&to| to == SimUser::new(lone).id()).unwrap();
    // Three tenants with work, and up to three messages claimed before the send answered.
    assert!(ahead <= 6, "{ahead} messages went out before the fourth tenant's code");
    for phone in phones {
        let served = arrivals[..before + ahead].iter().filter(|&&to| to == SimUser::new(phone).id()).count();
        assert!(served < 90, "{phone}'s backlog had run out: the fourth tenant waited behind nothing");
    }
}
