//! The `verigram` binary as a user runs it: `serve` on the embedded defaults (and on Redis),
//! `config check`, and the admin subcommands as clients of the running server.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use std::process::Output;
use std::time::Duration;
use verigram_testkit::{wait_for, wait_up_to, RedisServer};

const ADMIN_TOKEN: &str = "cli-test-admin-token-0123456789abcdef";

use verigram_testkit::process::Server;
use verigram_testkit::{http, process};

const BIN: &str = env!("CARGO_BIN_EXE_verigram");

fn verigram() -> std::process::Command {
    process::verigram(BIN)
}

/// Starts `verigram serve` with the admin API on.
fn serve(env: &[(&str, &str)]) -> Server {
    let mut all = vec![("VERIGRAM__ADMIN__TOKEN", ADMIN_TOKEN)];
    all.extend_from_slice(env);
    process::serve(BIN, &[], &all)
}

fn admin(server: &Server, args: &[&str]) -> Output {
    verigram()
        .args(args)
        .args(["--server", &server.url])
        .env("VERIGRAM_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .expect("the verigram binary runs")
}

fn admin_json(server: &Server, args: &[&str]) -> Value {
    let out = admin(server, args);
    assert!(out.status.success(), "{args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("the CLI prints JSON")
}

async fn gateway(server: &Server, method: &str, token: &str, params: &[(&str, &str)]) -> Value {
    reqwest::Client::new()
        .post(format!("{}/{method}", server.url))
        .bearer_auth(token)
        .form(params)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn sandbox_code(server: &Server, phone: &str) -> (String, String) {
    let url = format!("{}/sandbox/v1/messages?phone_number={phone}", server.url);
    wait_for("a message in the sandbox inbox", || async {
        let inbox: Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
        let m = inbox.as_array()?.first()?.clone();
        let text = m["text"].as_str().unwrap();
        let code: String = text.split(": ").nth(1).unwrap().chars().take_while(char::is_ascii_digit).collect();
        Some((m["request_id"].as_str().unwrap().to_owned(), code))
    })
    .await
}

/// The README's walk-through, through the binary: create a tenant with the CLI, send, read the
/// code in the sandbox, verify it, see the charge in the ledger.
async fn walk_through(server: &Server) {
    let tenant = admin_json(server, &["tenant", "create", "--name", "Acme", "--balance", "10"]);
    let token = tenant["token"].as_str().unwrap();
    let id = tenant["id"].as_str().unwrap();
    assert_eq!(tenant["balance"], 10);

    let sent =
        gateway(server, "sendVerificationMessage", token, &[("phone_number", "+15551234567"), ("code_length", "6")])
            .await;
    assert_eq!(sent["ok"], true, "{sent}");
    assert_eq!(sent["result"]["remaining_balance"], 9.99);
    let (request_id, code) = sandbox_code(server, "15551234567").await;
    assert_eq!(request_id, sent["result"]["request_id"].as_str().unwrap());
    assert_eq!(code.len(), 6);

    let checked =
        gateway(server, "checkVerificationStatus", token, &[("request_id", &request_id), ("code", &code)]).await;
    assert_eq!(checked["result"]["verification_status"]["status"], "code_valid", "{checked}");

    let ledger = admin_json(server, &["ledger", id]);
    let kinds: Vec<&str> = ledger.as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["charge", "credit"]);
    assert_eq!(ledger[0]["amount"], -0.01);
    assert_eq!(ledger[0]["request_id"], request_id.as_str());

    let list = admin_json(server, &["tenant", "list"]);
    assert!(list.as_array().unwrap().iter().any(|t| t["id"] == id));
    assert_eq!(admin_json(server, &["tenant", "show", id])["balance"], 9.99);
    assert_eq!(admin_json(server, &["balance", "add", id, "0.01", "--note", "top-up"])["balance"], 10);
    let refused = admin(server, &["balance", "add", id, "-11"]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("below zero"));

    // Tokens: issue, rotate with no overlap (the old one stops), revoke.
    let issued = admin_json(server, &["token", "issue", id]);
    let second = issued["token"].as_str().unwrap();
    assert_eq!(gateway(server, "checkVerificationStatus", second, &[("request_id", &request_id)]).await["ok"], true);
    let rotated = admin_json(server, &["token", "rotate", id, issued["token_id"].as_str().unwrap(), "--overlap", "0"]);
    let third = rotated["token"].as_str().unwrap();
    assert_eq!(
        gateway(server, "checkVerificationStatus", second, &[("request_id", &request_id)]).await["error"],
        "ACCESS_TOKEN_INVALID"
    );
    assert_eq!(gateway(server, "checkVerificationStatus", third, &[("request_id", &request_id)]).await["ok"], true);
    admin_json(server, &["token", "revoke", id, rotated["token_id"].as_str().unwrap()]);
    assert_eq!(
        gateway(server, "checkVerificationStatus", third, &[("request_id", &request_id)]).await["error"],
        "ACCESS_TOKEN_INVALID"
    );
    let tokens = admin_json(server, &["token", "list", id]);
    assert_eq!(tokens.as_array().unwrap().len(), 3);

    // The limits of a second send to the number: the default per-number limit lets 3 through
    // at once, so after one send two remain.
    let explained =
        admin_json(server, &["limits", "explain", id, "--phone-number", "+15551234567", "--ip", "127.0.0.1"]);
    assert_eq!(explained["allowed"], true, "{explained}");
    let phone = explained["limits"].as_array().unwrap().iter().find(|l| l["limit"] == "phone").unwrap().clone();
    assert_eq!(phone["remaining"], 2, "{explained}");

    // The sender pool: the message went out through the one sandbox account; nothing is left.
    let senders = admin_json(server, &["sender", "list"]);
    assert_eq!((senders[0]["id"].as_str(), senders[0]["sent"].as_u64()), (Some("sandbox"), Some(1)), "{senders}");
    let backlog = admin_json(server, &["sender", "backlog"]);
    let expected = serde_json::json!({"queued": 0, "waiting": 0, "oldest_age_seconds": 0.0, "tenants": []});
    assert_eq!(backlog, expected);
}

#[tokio::test]
async fn the_walk_through_works_on_the_embedded_defaults() {
    let server = serve(&[]);
    walk_through(&server).await;
}

#[tokio::test]
async fn the_walk_through_works_on_redis() {
    let redis = RedisServer::start().expect("redis-server for the Redis tests");
    let url = redis.url();
    let server = serve(&[
        ("VERIGRAM__STORE__URL", &url),
        ("VERIGRAM__CODES__PEPPER", "a-pepper-of-at-least-32-bytes-for-tests"),
    ]);
    walk_through(&server).await;
}

#[test]
fn the_cli_explains_a_missing_admin_token_and_an_unreachable_server() {
    let out = verigram().args(["tenant", "list", "--server", "http://127.0.0.1:9"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("VERIGRAM_ADMIN_TOKEN"));
    let out = verigram()
        .args(["tenant", "list", "--server", "http://127.0.0.1:9"])
        .env("VERIGRAM_ADMIN_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));
}

#[test]
fn config_check_names_every_bad_key() {
    let ok = verigram().args(["config", "check"]).output().unwrap();
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("configuration OK"));

    let bad = verigram()
        .args(["config", "check"])
        .env("VERIGRAM__CODES__MAX_ATTEMPTS", "11")
        .env("VERIGRAM__STORE__URL", "redis://127.0.0.1:1")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("codes.max_attempts") && err.contains("codes.pepper"), "{err}");

    let unknown = verigram().args(["config", "check"]).env("VERIGRAM__CODES__PEPER", "x").output().unwrap();
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("codes.peper: unknown key"));

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("verigram.toml");
    std::fs::write(&file, "[api]\nerror_status = \"sometimes\"\n").unwrap();
    let bad_file = verigram().args(["config", "check", "--config"]).arg(&file).output().unwrap();
    assert!(String::from_utf8_lossy(&bad_file.stderr).contains("api.error_status"));
}

#[test]
fn redis_that_cannot_be_reached_stops_start_up_with_a_message() {
    let out = verigram()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("VERIGRAM__STORE__URL", "redis://127.0.0.1:1")
        .env("VERIGRAM__STORE__TIMEOUT_MS", "200")
        .env("VERIGRAM__CODES__PEPPER", "a-pepper-of-at-least-32-bytes-for-tests")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot connect to Redis"));
}

#[test]
fn help_is_everywhere() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["config", "check", "--help"],
        &["tenant", "create", "--help"],
        &["token", "rotate", "--help"],
        &["balance", "add", "--help"],
        &["ledger", "--help"],
        &["sender", "add", "--help"],
        &["sender", "login", "--help"],
        &["report", "replay", "--help"],
    ] {
        let out = verigram().args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("Usage"), "{args:?}");
    }
    // The local Telegram is its own binary (`verigram-dev-telegram`), not in the product.
    assert!(!verigram().args(["dev-telegram", "--help"]).output().unwrap().status.success());
}

#[test]
fn sender_login_needs_redis_and_a_telegram_account() {
    let out = verigram()
        .args(["sender", "login", "nobody"])
        .env("VERIGRAM_TELEGRAM_API_HASH", "0123456789abcdef")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs the Redis store"), "{out:?}");
    let redis = RedisServer::start().expect("redis-server for the Redis tests");
    let out = verigram()
        .args(["sender", "login", "nobody"])
        .env("VERIGRAM_TELEGRAM_API_HASH", "0123456789abcdef")
        .env("VERIGRAM__STORE__URL", redis.url())
        .env("VERIGRAM__CODES__PEPPER", "a-pepper-of-at-least-32-bytes-for-tests")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no sender account \"nobody\""), "{out:?}");
}

/// The README's "watch it" walk-through: a local Telegram peer (in this process; its own
/// binary is tested in its crate), a server with the Telegram sender pointed at it with
/// `sender add-dev`, and a code that arrives at the simulated user, is read a second later,
/// and verifies.
#[tokio::test]
async fn a_server_sends_through_the_dev_telegram_peer() {
    use verigram_dev_telegram::{PeerConfig, TelegramPeer};
    let config = PeerConfig {
        accounts: vec!["+447700900001".into()],
        auto_users: true,
        users: Vec::new(),
        reads_after: Some(Duration::from_secs(1)),
    };
    let peer = TelegramPeer::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    let addr = peer.addr().to_string();

    let server = serve(&[
        ("VERIGRAM__SENDER__KIND", "telegram"),
        ("VERIGRAM__SENDER__DEV_PEERS", "true"),
        ("VERIGRAM__POOL__INTERVAL_MS", "0"),
    ]);
    let account =
        admin_json(&server, &["sender", "add-dev", "dev1", "--phone-number", "+447700900001", "--peer", &addr]);
    assert_eq!(account["state"], "active", "{account}");
    let tenant = admin_json(&server, &["tenant", "create", "--name", "Acme", "--balance", "1"]);
    let token = tenant["token"].as_str().unwrap();
    let sent =
        gateway(&server, "sendVerificationMessage", token, &[("phone_number", "+15551234567"), ("code_length", "6")])
            .await;
    let request_id = sent["result"]["request_id"].as_str().unwrap_or_else(|| panic!("{sent}")).to_owned();

    let text = wait_up_to(Duration::from_secs(20), "the message at the simulated user", || {
        let inbox = peer.inbox("+15551234567");
        async move { inbox.first().map(|m| m.text.clone()) }
    })
    .await;
    let code: String =
        text.split("Your code for Acme: ").nth(1).unwrap().chars().take_while(char::is_ascii_digit).collect();
    wait_up_to(Duration::from_secs(20), "the read receipt", || async {
        let status = gateway(&server, "checkVerificationStatus", token, &[("request_id", &request_id)]).await;
        (status["result"]["delivery_status"]["status"] == "read").then_some(())
    })
    .await;
    let checked =
        gateway(&server, "checkVerificationStatus", token, &[("request_id", &request_id), ("code", &code)]).await;
    assert_eq!(checked["result"]["verification_status"]["status"], "code_valid", "{checked}");
    peer.stop().await;
}

/// Issue 18, item 2: `verigram sender login` signs an account in against the local Telegram,
/// which checks the login code and the two-step verification password (SRP) as Telegram
/// does. The command reads the code and the password from standard input (its mode for
/// automation; a terminal gets prompts without echo). A wrong code, a code that came too
/// late, a flood wait on asking for a code and a wrong password each end the command with a
/// message and leave the account signed out; while a serving process drives the account
/// the command keeps off it; the right code and password sign it in, and a code then goes out
/// through it; then again on a terminal, and with a QR code scanned by the account's phone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_login_signs_an_account_in_with_its_code_and_password() {
    use verigram_dev_telegram::{Fault, Injection, PeerConfig, TelegramPeer};
    const ACCOUNT: &str = "+447700900021";
    const PASSWORD: &str = "correct horse battery";
    let config = PeerConfig { accounts: vec![ACCOUNT.into()], auto_users: true, ..Default::default() };
    let peer = TelegramPeer::start("127.0.0.1:0".parse().unwrap(), config).await.unwrap();
    peer.sign_out(ACCOUNT);
    peer.set_password(ACCOUNT, PASSWORD, Some("horse"));
    let redis = RedisServer::start().expect("redis-server for the Redis tests");
    let pepper = "a-pepper-of-at-least-32-bytes-for-tests";
    let server = serve(&[
        ("VERIGRAM__STORE__URL", &redis.url()),
        ("VERIGRAM__CODES__PEPPER", pepper),
        ("VERIGRAM__SENDER__KIND", "telegram"),
        ("VERIGRAM__SENDER__DEV_PEERS", "true"),
        ("VERIGRAM__POOL__INTERVAL_MS", "0"),
        ("VERIGRAM__POOL__LEASE", "2"),
    ]);
    admin_json(&server, &["sender", "add-dev", "dev1", "--phone-number", ACCOUNT, "--peer", &peer.addr().to_string()]);

    // Runs `sender login dev1`; `answer` gives the lines to type once the code was sent.
    // `verigram sender login dev1 <extra>` on the test's store.
    let login_command = |extra: &[&str]| {
        let mut command = verigram();
        command
            .args(["sender", "login", "dev1"])
            .args(extra)
            .env("VERIGRAM_TELEGRAM_API_HASH", "0123456789abcdef")
            .env("VERIGRAM__STORE__URL", redis.url())
            .env("VERIGRAM__CODES__PEPPER", pepper);
        command
    };
    // Spawned with every stream piped.
    let spawn_login = |extra: &[&str]| {
        use std::process::Stdio;
        login_command(extra).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
    };
    let codes_asked = |peer: &TelegramPeer| peer.calls(ACCOUNT).iter().filter(|m| **m == "auth.sendCode").count();
    let login = |answer: fn(&TelegramPeer) -> String| {
        let asked_before = codes_asked(&peer);
        let mut child = spawn_login(&[]);
        let peer = &peer;
        async move {
            let mut stdin = child.stdin.take().unwrap();
            // Once the command asked for a code (and Telegram sent one, or refused).
            let typed = wait_up_to(Duration::from_secs(20), "the command to ask for a login code", || async {
                (codes_asked(peer) > asked_before).then(|| answer(peer))
            })
            .await;
            let _ = std::io::Write::write_all(&mut stdin, typed.as_bytes());
            drop(stdin);
            let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap();
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
            )
        }
    };

    let (ok, out) = login(|_| "00000\n".into()).await;
    assert!(!ok && out.contains("refused the code"), "a wrong code: {out}");
    let (ok, out) = login(|peer| {
        let code = peer.login_code(ACCOUNT).unwrap();
        peer.expire_login_code(ACCOUNT);
        format!("{code}\n")
    })
    .await;
    assert!(!ok && out.contains("refused the code"), "a code too old: {out}");
    peer.inject(Injection::new(Fault::error(420, "FLOOD_WAIT_30")).method("auth.sendCode").times(1));
    let (ok, out) = login(|_| String::new()).await;
    assert!(!ok && out.contains("FLOOD_WAIT"), "a flood wait on asking for a code: {out}");
    let (ok, out) = login(|peer| format!("{}\nwrong horse\n", peer.login_code(ACCOUNT).unwrap())).await;
    assert!(!ok && out.contains("refused the two-step verification password"), "a wrong password: {out}");
    assert!(!peer.signed_in(ACCOUNT));
    assert!(!out.contains("wrong horse"), "the password is never echoed or logged: {out}");

    // A serving process drives the account (holds its lease): the sign-in keeps off it.
    let mut redis_conn = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SET")
        .arg("{s:dev1}:lease")
        .arg("a-serving-process")
        .arg("PX")
        .arg(60_000)
        .query_async(&mut redis_conn)
        .await
        .unwrap();
    let out = login_command(&[]).output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("is being driven by a serving process"), "{said}");
    let _: () = redis::cmd("DEL").arg("{s:dev1}:lease").query_async(&mut redis_conn).await.unwrap();

    let (ok, out) = login(|peer| format!("{}\n{PASSWORD}\n", peer.login_code(ACCOUNT).unwrap())).await;
    assert!(ok, "{out}");
    let lease: Option<String> = redis::cmd("GET").arg("{s:dev1}:lease").query_async(&mut redis_conn).await.unwrap();
    assert_eq!(lease, None, "the sign-in let the account go");
    assert!(out.contains("dev1 is signed in"), "{out}");
    assert!(!out.contains(PASSWORD), "the password is never echoed or logged: {out}");
    assert!(peer.signed_in(ACCOUNT));
    let account = admin_json(&server, &["sender", "list"]);
    assert_eq!(account[0]["state"], "active", "{account}");

    let tenant = admin_json(&server, &["tenant", "create", "--name", "Acme", "--balance", "1"]);
    let token = tenant["token"].as_str().unwrap();
    let sent =
        gateway(&server, "sendVerificationMessage", token, &[("phone_number", "+15551234567"), ("code_length", "6")])
            .await;
    assert_eq!(sent["ok"], true, "{sent}");
    let inbox = wait_up_to(Duration::from_secs(20), "the code sent through the signed-in account", || async {
        let inbox = peer.inbox("+15551234567");
        (!inbox.is_empty()).then_some(inbox)
    })
    .await;
    assert_eq!(inbox[0].from, ACCOUNT.trim_start_matches('+'));

    // On a terminal: the command prompts, and neither the code nor the password is echoed.
    // The server drove the account for that send: paused, it lets it go when the lease ends.
    peer.sign_out(ACCOUNT);
    admin_json(&server, &["sender", "pause", "dev1"]);
    wait_up_to(Duration::from_secs(20), "the server to let the account go", || async {
        let lease: Option<String> =
            redis::cmd("GET").arg("{s:dev1}:lease").query_async(&mut redis_conn.clone()).await.unwrap();
        lease.is_none().then_some(())
    })
    .await;
    let command = login_command(&[]);
    let peer = &peer;
    let shown = tokio::task::block_in_place(|| {
        let mut terminal = rexpect::session::spawn_command(command, Some(30_000)).unwrap();
        terminal.exp_string("login code Telegram sent to the account: ").unwrap();
        let code = peer.login_code(ACCOUNT).unwrap();
        terminal.send_line(&code).unwrap();
        terminal.exp_string("two-step verification password (hint: horse): ").unwrap();
        terminal.send_line(PASSWORD).unwrap();
        (code, terminal.exp_eof().unwrap())
    });
    let (code, shown) = shown;
    assert!(shown.contains("dev1 is signed in"), "{shown}");
    assert!(!shown.contains(&code) && !shown.contains(PASSWORD), "echoed: {shown}");
    assert!(peer.signed_in(ACCOUNT));

    // With --qr: no login code; the account's phone scans the code shown, then the password.
    peer.sign_out(ACCOUNT);
    let codes_before = codes_asked(peer);
    let mut child = spawn_login(&["--qr"]);
    let mut stdin = child.stdin.take().unwrap();
    std::io::Write::write_all(&mut stdin, format!("{PASSWORD}\n").as_bytes()).unwrap();
    drop(stdin);
    let stdout = child.stdout.take().unwrap();
    let (links, link) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            if let Some(token) = line.strip_prefix("tg://login?token=") {
                let _ = links.send(token.to_owned());
            }
            all += &line;
            all.push('\n');
        }
        all
    });
    let token = tokio::task::block_in_place(|| link.recv_timeout(Duration::from_secs(20))).expect("a QR link");
    use base64::Engine;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token).unwrap();
    assert!(!peer.scan_qr(b"not a token"), "only the token shown is accepted");
    assert!(peer.scan_qr(&token), "the phone accepts the login");
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    let shown = reader.join().unwrap();
    assert!(status.success(), "{shown}");
    assert!(shown.contains("▀") || shown.contains("█"), "a QR code drawn in the terminal: {shown}");
    assert!(shown.contains("dev1 is signed in"), "{shown}");
    assert!(peer.signed_in(ACCOUNT));
    assert_eq!(codes_asked(peer), codes_before, "no login code was sent");
}

/// A callback endpoint for the binary's tests: answers every POST with `status` (changeable),
/// counting what it got. Plain HTTP/1.1 on a thread; enough for one report at a time.
struct Endpoint {
    url: String,
    status: std::sync::Arc<std::sync::atomic::AtomicU16>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Endpoint {
    fn start(status: u16) -> Self {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/cb", listener.local_addr().unwrap());
        let status = std::sync::Arc::new(std::sync::atomic::AtomicU16::new(status));
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (answer, count) = (status.clone(), hits.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().map_while(Result::ok) {
                let (_, stream) = http::read_body(stream);
                count.fetch_add(1, Ordering::SeqCst);
                http::answer(stream, answer.load(Ordering::SeqCst));
            }
        });
        Self { url, status, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Reports through the real binary, with the development switches set by environment exactly
/// as the issue names them: a report the receiver refuses becomes a dead letter after the
/// last retry, `report dead` lists it and `report replay` sends it again.
#[tokio::test]
async fn dead_letters_are_listed_and_replayed_from_the_cli() {
    let endpoint = Endpoint::start(500);
    let server = serve(&[
        ("VERIGRAM__CALLBACKS__ALLOW_HTTP", "true"),
        ("VERIGRAM__CALLBACKS__ALLOW_PRIVATE_NETWORKS", "true"),
        ("VERIGRAM__CALLBACKS__RETRY_SCHEDULE", "[1]"),
    ]);
    let tenant = admin_json(&server, &["tenant", "create", "--name", "Acme", "--balance", "1"]);
    let (id, token) = (tenant["id"].as_str().unwrap(), tenant["token"].as_str().unwrap());
    let sent = gateway(
        &server,
        "sendVerificationMessage",
        token,
        &[("phone_number", "+15551234567"), ("code_length", "6"), ("callback_url", &endpoint.url)],
    )
    .await;
    assert_eq!(sent["ok"], true, "{sent}");
    let dead = wait_for("two dead letters", || async {
        let dead = admin_json(&server, &["report", "dead", id]);
        dead.as_array().is_some_and(|d| d.len() == 2).then_some(dead)
    })
    .await;
    // Both reports (sent, delivered) were tried twice: the first time and one retry.
    assert_eq!(endpoint.hits(), 4);
    assert_eq!(dead[0]["attempts"], 2);
    let letter = dead[0]["id"].as_str().unwrap();
    let refused = admin(&server, &["report", "replay", id, letter]);
    assert!(!refused.status.success(), "the receiver still refuses");
    endpoint.status.store(200, std::sync::atomic::Ordering::SeqCst);
    admin_json(&server, &["report", "replay", id, letter]);
    assert_eq!(endpoint.hits(), 6);
    assert_eq!(admin_json(&server, &["report", "dead", id]).as_array().unwrap().len(), 1);
}
