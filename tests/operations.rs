//! What operators rely on, tested on the real binary: no secret ever reaches the logs, the
//! metrics or the store; every log line of a request carries its request id; SIGTERM stops a
//! process within its grace period without losing a job or a report.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::time::Duration;
use verigram_testkit::RedisServer;

use verigram_testkit::wait_up_to;

use verigram_testkit::http;
use verigram_testkit::process::{self, Server};

const BIN: &str = env!("CARGO_BIN_EXE_verigram");

const ADMIN_TOKEN: &str = "operations-admin-token-5f1c2a9e7b3d";
const PEPPER: &str = "operations-pepper-of-at-least-32-bytes-long";

fn serve(store_url: &str, env: &[(&str, &str)]) -> Server {
    let mut all = vec![
        ("VERIGRAM__STORE__URL", store_url),
        ("VERIGRAM__CODES__PEPPER", PEPPER),
        ("VERIGRAM__ADMIN__TOKEN", ADMIN_TOKEN),
        ("VERIGRAM__LIMITS__PHONE__RATE", "0"),
        ("VERIGRAM__CALLBACKS__ALLOW_HTTP", "true"),
        ("VERIGRAM__CALLBACKS__ALLOW_PRIVATE_NETWORKS", "true"),
    ];
    all.extend_from_slice(env);
    process::serve(BIN, &[], &all)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap()
}

async fn admin(server: &Server, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    let mut request = client().request(method, format!("{}/admin/v1{path}", server.url)).bearer_auth(ADMIN_TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "admin {path}: {}", response.status());
    response.json().await.unwrap()
}

/// A Gateway call with a JSON body: the X-Request-Id and the envelope.
async fn gateway(server: &Server, method: &str, token: &str, params: Value) -> (String, Value) {
    let response =
        client().post(format!("{}/{method}", server.url)).bearer_auth(token).json(&params).send().await.unwrap();
    let id = response.headers().get("x-request-id").expect("every answer has X-Request-Id");
    let id = id.to_str().unwrap().to_owned();
    (id, response.json().await.unwrap())
}

/// Whether `text` holds `code` as a number of its own (not inside a longer run of digits,
/// where any long number holds some 8-digit string by chance).
fn holds_code(text: &str, code: &str) -> bool {
    text.match_indices(code).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + code.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_logs_the_metrics_or_the_store() {
    let redis = RedisServer::start().expect("redis-server for the Redis tests");
    // Debug logs, so that every line a request can print is printed.
    let server =
        serve(&redis.url(), &[("VERIGRAM__LOG__LEVEL", "debug"), ("VERIGRAM__CALLBACKS__RETRY_SCHEDULE", "[1]")]);
    let (failing_url, reports) = http::receiver(500, Duration::ZERO);
    let tenant = admin(&server, reqwest::Method::POST, "/tenants", Some(json!({"name": "Acme", "balance": "5"}))).await;
    let id = tenant["id"].as_str().unwrap();
    let mut tokens = vec![tenant["token"].as_str().unwrap().to_owned()];
    let issued = admin(&server, reqwest::Method::POST, &format!("/tenants/{id}/tokens"), None).await;
    tokens.push(issued["token"].as_str().unwrap().to_owned());
    let rotate = format!("/tenants/{id}/tokens/{}/rotate", issued["token_id"].as_str().unwrap());
    tokens.push(admin(&server, reqwest::Method::POST, &rotate, None).await["token"].as_str().unwrap().to_owned());
    let token = tokens[0].clone();
    let (given, wrong, in_bad_body) = ("58392017", "11199953", "77788841");
    let mut codes = vec![given.to_owned(), wrong.to_owned(), in_bad_body.to_owned()];

    // A tenant's code with a callback that fails (its report is retried, then dead-lettered).
    let (_, sent) = gateway(
        &server,
        "sendVerificationMessage",
        &token,
        json!({"phone_number": "+15551230001", "code": given, "callback_url": failing_url}),
    )
    .await;
    let first = sent["result"]["request_id"].as_str().unwrap().to_owned();
    // A generated code, read from the sandbox the way a user reads it.
    let (_, sent) = gateway(
        &server,
        "sendVerificationMessage",
        &tokens[2],
        json!({"phone_number": "+15551230002", "code_length": 8}),
    )
    .await;
    let second = sent["result"]["request_id"].as_str().unwrap().to_owned();
    let generated = wait_up_to(Duration::from_secs(10), "the generated code in the sandbox", || async {
        let inbox: Value = client()
            .get(format!("{}/sandbox/v1/messages?phone_number=15551230002", server.url))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let text = inbox.as_array()?.first()?["text"].as_str()?.to_owned();
        text.split(|c: char| !c.is_ascii_digit()).rfind(|s| s.len() == 8).map(str::to_owned)
    })
    .await;
    codes.push(generated.clone());
    // Wrong and right codes; a revocation; a made-up token; a wrong admin token; a body that
    // does not parse but carries a code; the code in a query string of an unknown method.
    let (_, wrong_check) =
        gateway(&server, "checkVerificationStatus", &token, json!({"request_id": first, "code": wrong})).await;
    assert_eq!(wrong_check["result"]["verification_status"]["status"], "code_invalid");
    gateway(&server, "checkVerificationStatus", &token, json!({"request_id": second, "code": generated})).await;
    gateway(&server, "revokeVerificationMessage", &token, json!({"request_id": first})).await;
    let forged = format!("{}:{}", &token[..2], "forgedforgedforgedforgedforged42");
    tokens.push(forged.clone());
    let (bad_token_id, refused) =
        gateway(&server, "sendVerificationMessage", &forged, json!({"phone_number": "+15551230003", "code_length": 6}))
            .await;
    assert_eq!(refused["error"], "ACCESS_TOKEN_INVALID");
    let wrong_admin = "wrong-admin-token-9d8c7b6a5f4e";
    let status = client()
        .get(format!("{}/admin/v1/tenants", server.url))
        .bearer_auth(wrong_admin)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 401);
    let broken = client()
        .post(format!("{}/sendVerificationMessage", server.url))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(format!(r#"{{"phone_number": "+15551230004", "code": "{in_bad_body}""#))
        .send()
        .await
        .unwrap();
    assert!(broken.status().is_success() || broken.status().is_client_error());
    client()
        .get(format!("{}/sendVerificationCode?code={in_bad_body}&access_token={}", server.url, tokens[1]))
        .send()
        .await
        .unwrap();
    // The failing report was tried, retried and given up on.
    wait_up_to(Duration::from_secs(15), "the report to be tried twice", || async {
        (reports.lock().unwrap().len() >= 2).then_some(())
    })
    .await;

    let metrics = client().get(format!("{}/metrics", server.url)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("verigram_report_attempts_total{outcome=\"failed\"}"), "{metrics}");
    let log = server.log_lines();
    assert!(log.len() > 20, "the scenario logged: {log:?}");
    let dump = verigram_testkit::keyspace::dump_keyspace(&redis).await;
    let stored: Vec<String> =
        dump.iter().flat_map(|k| std::iter::once(k.key.clone()).chain(k.values.iter().cloned())).collect();

    let places: [(&str, Vec<String>); 3] =
        [("the log", log.clone()), ("the metrics", vec![metrics]), ("Redis", stored)];
    for (place, texts) in &places {
        for text in texts {
            for code in &codes {
                assert!(!holds_code(text, code), "the code {code} in {place}: {text}");
            }
            for secret in tokens.iter().map(String::as_str).chain([ADMIN_TOKEN, wrong_admin, PEPPER]) {
                assert!(!text.contains(secret), "a secret ({secret}) in {place}: {text}");
            }
        }
    }

    // Every line logged while a request was handled names its request id, the one the
    // client got in X-Request-Id.
    let lines: Vec<Value> = log.iter().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let of_request: Vec<&Value> = lines.iter().filter(|l| l["span"]["request_id"] == bad_token_id.as_str()).collect();
    assert!(
        of_request.iter().any(|l| l["message"] == "request finished" && l["status"] == 200),
        "the refused call's lines carry its X-Request-Id {bad_token_id}: {of_request:?}"
    );
    for line in &lines {
        if let Some(spans) = line["spans"].as_array() {
            if spans.first().is_some_and(|s| s["name"] == "http") {
                assert!(line["span"].get("request_id").is_some() || spans[0].get("request_id").is_some(), "{line}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_within_the_grace_and_loses_no_job_or_report() {
    let redis = RedisServer::start().expect("redis-server for the Redis tests");
    // Reports take 300 ms to be acknowledged, so some are in flight when the signal comes.
    let (url, reports) = http::receiver(200, Duration::from_millis(300));
    let grace = [("VERIGRAM__SERVER__SHUTDOWN_GRACE", "5")];
    let mut doomed = serve(&redis.url(), &grace);
    let tenant =
        admin(&doomed, reqwest::Method::POST, "/tenants", Some(json!({"name": "Acme", "balance": "10"}))).await;
    let token = tenant["token"].as_str().unwrap().to_owned();

    // Sends keep coming while the process is told to stop; those it accepted must all be
    // delivered and reported, by it or by the process that follows.
    let doomed_url = doomed.url.clone();
    let senders: Vec<_> = (0..40)
        .map(|n| {
            let (base, token, url) = (doomed_url.clone(), token.clone(), url.clone());
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(n * 10)).await;
                let params = json!({"phone_number": format!("+1555124{n:04}"), "code_length": 6, "callback_url": url});
                let answer = client()
                    .post(format!("{base}/sendVerificationMessage"))
                    .bearer_auth(&token)
                    .json(&params)
                    .send()
                    .await;
                let body: Value = answer.ok()?.json().await.ok()?;
                body["result"]["request_id"].as_str().map(str::to_owned)
            })
        })
        .collect();
    wait_up_to(Duration::from_secs(10), "reports to be in flight", || async {
        (reports.lock().unwrap().len() >= 4).then_some(())
    })
    .await;
    let (status, took) = tokio::task::block_in_place(|| doomed.terminate(Duration::from_secs(10)))
        .expect("the process exits within its grace period");
    assert!(status.success(), "a clean exit: {status}");
    assert!(took < Duration::from_secs(7), "within the 5 s grace (plus start-up of the signal): {took:?}");
    let lines = doomed.log_lines();
    assert!(lines.iter().any(|l| l.contains("\"stopping\"") && l.contains("SIGTERM")), "{lines:?}");
    assert!(lines.iter().any(|l| l.contains("\"stopped\"")), "{lines:?}");
    let mut accepted = Vec::new();
    for sender in senders {
        accepted.extend(sender.await.unwrap());
    }
    assert!(accepted.len() >= 4, "some sends were accepted before the stop: {}", accepted.len());

    // The next process finds every accepted request's job and reports, at once: the stopped
    // one put back its unstarted jobs and released its sender account (whose lease would
    // otherwise hold it for 30 s).
    let heir = serve(&redis.url(), &[]);
    for id in &accepted {
        wait_up_to(Duration::from_secs(15), &format!("request {id} to be delivered"), || async {
            let (_, status) = gateway(&heir, "checkVerificationStatus", &token, json!({"request_id": id})).await;
            (status["result"]["delivery_status"]["status"] == "delivered").then_some(())
        })
        .await;
    }
    wait_up_to(Duration::from_secs(15), "a `delivered` report of every accepted request", || async {
        let got = reports.lock().unwrap().clone();
        accepted
            .iter()
            .all(|id| {
                got.iter().any(|r| r["request_id"] == id.as_str() && r["delivery_status"]["status"] == "delivered")
            })
            .then_some(())
    })
    .await;
}
