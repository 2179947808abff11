//! What the shipped files start is safe on a public network, tested on the real binary: no code
//! can be read without credentials, the sandbox inbox never goes public by accident, and every
//! admin change leaves an audit line without a secret in it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use base64::Engine;
use serde_json::{json, Value};
use std::ffi::OsStr;
use std::time::Duration;
use verigram_testkit::process::{self, Server};
use verigram_testkit::RedisServer;

const BIN: &str = env!("CARGO_BIN_EXE_verigram");
const ADMIN_TOKEN: &str = "exposure-admin-token-0123456789abcdef";
const PEPPER: &str = "exposure-pepper-of-at-least-32-bytes-long";
const CODE: &str = "738291";
const PHONE: &str = "+15551234567";

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap()
}

fn example_config() -> String {
    format!("{}/deploy/verigram.example.toml", env!("CARGO_MANIFEST_DIR"))
}

/// A tenant made through the admin API, and one code sent to `PHONE`; answers the tenant's
/// API token.
async fn tenant_with_a_code(server: &Server) -> String {
    let body = json!({"name": "Acme", "balance": "1"});
    let created = post_json(&format!("{}/admin/v1/tenants", server.url), ADMIN_TOKEN, body).await;
    let token = created["token"].as_str().expect("a tenant token").to_owned();
    let body = json!({"phone_number": PHONE, "code": CODE});
    let sent = post_json(&format!("{}/sendVerificationMessage", server.url), &token, body).await;
    assert_eq!(sent["ok"], true, "{sent}");
    token
}

async fn post_json(url: &str, bearer: &str, body: Value) -> Value {
    let response = client().post(url).bearer_auth(bearer).json(&body).send().await.unwrap();
    response.json().await.unwrap()
}

/// Every path a stranger might try, read without credentials: none shows the code or the number.
async fn assert_nothing_readable(base: &str) {
    for path in [
        "/sandbox",
        "/sandbox/",
        "/sandbox/v1/messages",
        "/sandbox/v1/messages?phone_number=15551234567",
        "/metrics",
        "/admin/v1/tenants",
        "/checkVerificationStatus",
    ] {
        let response = client().get(format!("{base}{path}")).send().await.unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(!body.contains(CODE), "{path} ({status}) shows the code: {body}");
        assert!(!body.contains("15551234567"), "{path} ({status}) shows the number: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_configuration_shows_no_code_without_credentials() {
    let redis = RedisServer::start().unwrap();
    let config = example_config();
    // deploy/verigram.example.toml as shipped: only the port (0: a free one) and what the file
    // leaves to the environment (store, secrets) come from here.
    let server = process::serve_on(
        BIN,
        "0.0.0.0:0",
        &[OsStr::new("--config"), OsStr::new(&config)],
        &[
            ("VERIGRAM__STORE__URL", &redis.url()),
            ("VERIGRAM__CODES__PEPPER", PEPPER),
            ("VERIGRAM__ADMIN__TOKEN", ADMIN_TOKEN),
            ("VERIGRAM__METRICS__LISTEN", "127.0.0.1:0"),
        ],
    )
    .unwrap_or_else(|printed| panic!("the shipped configuration starts: {printed}"));
    let token = tenant_with_a_code(&server).await;
    assert_nothing_readable(&server.url).await;

    // Every admin change leaves one audit line: who, what, how it ended; never a secret.
    let audit = server.logged_lines("admin change");
    let created = audit.iter().find(|l| l["path"] == "/admin/v1/tenants").expect("an audit line for the new tenant");
    assert_eq!((created["method"].as_str(), created["status"].as_u64()), (Some("POST"), Some(201)), "{created}");
    assert_eq!(created["target"], "verigram::audit");
    assert!(!created["client"].as_str().unwrap_or_default().is_empty(), "{created}");
    let denied = client().delete(format!("{}/admin/v1/tenants/x", server.url)).bearer_auth("wrong").send().await;
    assert_eq!(denied.unwrap().status(), 401);
    let mut lines = Vec::new();
    let refused = verigram_testkit::wait_for("the refused change's audit line", || {
        lines.extend(server.log_lines());
        let found = lines.iter().find(|l| l.contains("admin change")).cloned();
        async move { found }
    })
    .await;
    assert!(refused.contains("\"status\":401"), "{refused}");
    assert!(lines.iter().any(|l| l.contains("authentication failed")), "the failure is logged too");
    for line in audit.iter().map(Value::to_string).chain(lines) {
        assert!(!line.contains(ADMIN_TOKEN) && !line.contains(&token), "a secret in the log: {line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_is_never_public_by_accident() {
    let redis = RedisServer::start().unwrap();
    let url = redis.url();
    let env = vec![
        ("VERIGRAM__STORE__URL", url.as_str()),
        ("VERIGRAM__CODES__PEPPER", PEPPER),
        ("VERIGRAM__ADMIN__TOKEN", ADMIN_TOKEN),
        ("VERIGRAM__SENDER__KIND", "sandbox"),
    ];
    let printed = process::serve_on(BIN, "0.0.0.0:0", &[], &env).err().expect("the sandbox on 0.0.0.0 is refused");
    assert!(printed.contains("sandbox.public"), "start-up says what to do: {printed}");

    let mut public = env.clone();
    public.push(("VERIGRAM__SANDBOX__PUBLIC", "true"));
    let server = process::serve_on(BIN, "0.0.0.0:0", &[], &public).unwrap();
    let token = tenant_with_a_code(&server).await;
    let messages = format!("{}/sandbox/v1/messages?phone_number=15551234567", server.url);
    // The message is in the inbox (the sandbox delivers it), for those with the admin token.
    let shown = verigram_testkit::wait_for("the message in the inbox", || async {
        let response = client().get(&messages).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
        let list: Value = response.json().await.unwrap();
        list.as_array().filter(|l| !l.is_empty()).cloned()
    })
    .await;
    assert!(shown[0]["text"].as_str().unwrap().contains(CODE));
    let request_id = shown[0]["request_id"].as_str().unwrap().to_owned();
    assert_nothing_readable(&server.url).await;
    let refused = client().get(&messages).bearer_auth(&token).send().await.unwrap();
    assert_eq!(refused.status(), 401, "a tenant's token is not the admin token");
    assert_eq!(refused.headers()["www-authenticate"], "Basic realm=\"verigram sandbox\"");

    // A browser: the password of Basic authentication, any user name.
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("me:{ADMIN_TOKEN}"));
    let page = client().get(format!("{}/sandbox", server.url)).header("authorization", format!("Basic {basic}"));
    let page = page.send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(CODE));

    // Marking read: never from another site's page, whatever credentials the browser adds.
    let read = format!("{}/sandbox/v1/messages/{request_id}/read", server.url);
    for (name, value) in [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")] {
        let forged = client().post(&read).bearer_auth(ADMIN_TOKEN).header(name, value).send().await.unwrap();
        assert_eq!(forged.status(), 403, "{name}: {value}");
    }
    assert_eq!(client().post(&read).send().await.unwrap().status(), 401);
    let same_origin = client().post(&read).bearer_auth(ADMIN_TOKEN).header("sec-fetch-site", "same-origin");
    assert_eq!(same_origin.send().await.unwrap().status(), 200);
}

/// A development peer's account added while `sender.dev_peers` was on sends nothing once a
/// process runs with it off: the pool disables it (`DEV_PEERS_OFF`) at its first send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn development_accounts_stop_when_the_switch_is_off() {
    use verigram_dev_telegram::{PeerConfig, TelegramPeer};
    let config = PeerConfig { accounts: vec!["+447700900001".into()], auto_users: true, ..Default::default() };
    let peer = TelegramPeer::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let redis = RedisServer::start().unwrap();
    let url = redis.url();
    let env = |dev_peers: &'static str| {
        vec![
            ("VERIGRAM__STORE__URL", url.clone()),
            ("VERIGRAM__CODES__PEPPER", PEPPER.to_owned()),
            ("VERIGRAM__ADMIN__TOKEN", ADMIN_TOKEN.to_owned()),
            ("VERIGRAM__SENDER__KIND", "telegram".to_owned()),
            ("VERIGRAM__SENDER__DEV_PEERS", dev_peers.to_owned()),
        ]
    };
    let start = |env: Vec<(&'static str, String)>| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        process::serve(BIN, &[], &env)
    };
    let mut developing = start(env("true"));
    let body =
        json!({"id": "dev1", "kind": "telegram", "phone_number": "+447700900001", "dev_peer": peer.addr().to_string()});
    let added = post_json(&format!("{}/admin/v1/senders", developing.url), ADMIN_TOKEN, body).await;
    assert_eq!(added["state"], "active", "{added}");
    developing.terminate(Duration::from_secs(30)).expect("the first process stops");

    let production = start(env("false"));
    tenant_with_a_code(&production).await;
    let account = verigram_testkit::wait_for("the development account to be disabled", || async {
        let list = client().get(format!("{}/admin/v1/senders", production.url)).bearer_auth(ADMIN_TOKEN).send();
        let list: Value = list.await.unwrap().json().await.unwrap();
        list.as_array().and_then(|l| l.first()).filter(|a| a["state"] == "disabled").cloned()
    })
    .await;
    assert_eq!(account["reason"], "DEV_PEERS_OFF", "{account}");
    assert!(peer.inbox(PHONE).is_empty(), "no code went to the development peer");
    peer.stop().await;
}
