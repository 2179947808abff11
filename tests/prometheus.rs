//! The shipped monitoring, proven against a real Prometheus: it scrapes a verigram under mixed
//! traffic with `deploy/prometheus/alerts.yml` loaded; every rule is healthy, no alert fires in
//! normal traffic, every dashboard query parses and returns data, and a Redis outage makes the
//! store alerts fire while the error panels count the failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use verigram_testkit::process::{self, Server};
use verigram_testkit::prometheus::Prometheus;
use verigram_testkit::{http, wait_up_to, RedisServer};

const BIN: &str = env!("CARGO_BIN_EXE_verigram");
const ADMIN_TOKEN: &str = "prometheus-test-admin-token-0123456789";
const PEPPER: &str = "prometheus-test-pepper-of-at-least-32-bytes";

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

fn repo(path: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Sends, right and wrong checks, ability checks, revocations and calls with a made-up token,
/// with delivery reports to `callback`, until `stop`.
async fn traffic(server: String, token: String, callback: String, stop: Arc<AtomicBool>) {
    let call = |method: &str, token: &str, params: Value| {
        client().post(format!("{server}/{method}")).bearer_auth(token.to_owned()).json(&params).send()
    };
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let phone = format!("+1555{:07}", n % 10_000_000);
        let sent = call(
            "sendVerificationMessage",
            &token,
            json!({"phone_number": phone, "code": "424242", "callback_url": callback}),
        );
        let id = match sent.await {
            Ok(r) => r.json::<Value>().await.ok().and_then(|v| v["result"]["request_id"].as_str().map(str::to_owned)),
            Err(_) => None,
        };
        if let Some(id) = id {
            let code = if n.is_multiple_of(3) { "000000" } else { "424242" };
            let _ = call("checkVerificationStatus", &token, json!({"request_id": id, "code": code})).await;
            if n.is_multiple_of(5) {
                let _ = call("revokeVerificationMessage", &token, json!({"request_id": id})).await;
            }
        }
        if n.is_multiple_of(4) {
            let _ = call("checkSendAbility", &token, json!({"phone_number": phone})).await;
        }
        if n.is_multiple_of(10) {
            let _ = call("checkSendAbility", "1:made-up-token", json!({"phone_number": phone})).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every PromQL expression of the dashboard, its Grafana variables replaced as Grafana would.
fn dashboard_queries() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(repo("deploy/grafana/verigram.json")).unwrap();
    let dashboard: Value = serde_json::from_str(&text).unwrap();
    let mut out = Vec::new();
    let mut panels: Vec<Value> = dashboard["panels"].as_array().unwrap().clone();
    while let Some(panel) = panels.pop() {
        if let Some(inner) = panel["panels"].as_array() {
            panels.extend(inner.iter().cloned());
        }
        for target in panel["targets"].as_array().into_iter().flatten() {
            if let Some(expr) = target["expr"].as_str() {
                let expr = expr
                    .replace("$__rate_interval", "20s")
                    .replace("$__range", "1m")
                    .replace("$__interval", "5s")
                    .replace("$job", "verigram")
                    .replace("$instance", ".*")
                    .replace("$namespace", ".*")
                    .replace("$tenant", ".*");
                out.push((panel["title"].as_str().unwrap_or_default().to_owned(), expr));
            }
        }
    }
    out
}

async fn alerts(prometheus: &Prometheus) -> Vec<(String, String)> {
    let data = prometheus.api("alerts").await.unwrap();
    data["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["labels"]["alertname"].as_str().unwrap().to_owned(), a["state"].as_str().unwrap().to_owned()))
        .collect()
}

/// The sum of an instant query's values (0 for an empty result).
async fn total(prometheus: &Prometheus, promql: &str) -> f64 {
    let data = prometheus.query(promql).await.unwrap_or_else(|e| panic!("{promql}: {e}"));
    data["result"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["value"][1].as_str()?.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_rules_and_dashboard_hold_against_a_real_prometheus() {
    let redis = RedisServer::start().unwrap();
    let url = redis.url();
    let server: Server = process::serve(
        BIN,
        &[],
        &[
            ("VERIGRAM__STORE__URL", &url),
            ("VERIGRAM__STORE__TIMEOUT_MS", "500"),
            ("VERIGRAM__CODES__PEPPER", PEPPER),
            ("VERIGRAM__ADMIN__TOKEN", ADMIN_TOKEN),
            ("VERIGRAM__LIMITS__IP__RATE", "0"),
            ("VERIGRAM__LIMITS__PHONE__RATE", "0"),
            ("VERIGRAM__METRICS__REFRESH_MS", "1000"),
            ("VERIGRAM__CALLBACKS__ALLOW_HTTP", "true"),
            ("VERIGRAM__CALLBACKS__ALLOW_PRIVATE_NETWORKS", "true"),
        ],
    );
    let target = server.url.trim_start_matches("http://").to_owned();
    let rules = repo("deploy/prometheus/alerts.yml");
    let prometheus = Prometheus::start(&[target], &[&rules]).unwrap_or_else(|e| panic!("{e}"));
    let created = client().post(format!("{}/admin/v1/tenants", server.url)).bearer_auth(ADMIN_TOKEN);
    let created = created.json(&json!({"name": "Acme", "balance": "100000"})).send().await.unwrap();
    let created: Value = created.json().await.unwrap();
    let token = created["token"].as_str().unwrap().to_owned();
    let (callback, _reports) = http::receiver(200, Duration::ZERO);
    let stop = Arc::new(AtomicBool::new(false));
    let load = tokio::spawn(traffic(server.url.clone(), token, callback, Arc::clone(&stop)));

    // Normal traffic, long enough for every rate() window of the dashboard (20 s here).
    wait_up_to(Duration::from_secs(90), "30 s of scrapes under traffic", || async {
        (total(&prometheus, "count_over_time(up{job=\"verigram\"}[1m])").await >= 30.0).then_some(())
    })
    .await;
    let groups = prometheus.api("rules").await.unwrap();
    let mut rules_seen = 0;
    for group in groups["groups"].as_array().unwrap() {
        for rule in group["rules"].as_array().unwrap() {
            rules_seen += 1;
            assert_eq!(rule["health"], "ok", "{}: {}", rule["name"], rule["lastError"]);
        }
    }
    assert!(rules_seen >= 15, "the shipped rules are loaded ({rules_seen})");
    assert_eq!(alerts(&prometheus).await, vec![], "no alert pending or firing in normal traffic");
    for (title, expr) in dashboard_queries() {
        let data = prometheus.query(&expr).await.unwrap_or_else(|e| panic!("{title}: {expr}: {e}"));
        let empty = data["result"].as_array().is_some_and(Vec::is_empty);
        assert!(!empty, "the panel {title:?} shows no data: {expr}");
    }

    // The outage: Redis hangs. Calls fail with SERVICE_UNAVAILABLE, store operations fail, and
    // /metrics still answers (with verigram_store_up 0).
    redis.pause();
    let fired = wait_up_to(Duration::from_secs(150), "VerigramStoreUnreachable to fire", || async {
        let now = alerts(&prometheus).await;
        now.contains(&("VerigramStoreUnreachable".into(), "firing".into())).then_some(now)
    })
    .await;
    for alert in ["VerigramStoreErrors", "VerigramHighErrorRate"] {
        assert!(fired.iter().any(|(name, _)| name == alert), "{alert} is pending or firing: {fired:?}");
    }
    assert!(!fired.iter().any(|(name, _)| name == "VerigramDown"), "/metrics kept answering: {fired:?}");
    let unavailable = "sum(increase(verigram_api_requests_total{outcome=\"SERVICE_UNAVAILABLE\"}[2m]))";
    assert!(total(&prometheus, unavailable).await > 0.0, "the error panels count the outage's answers");
    assert!(total(&prometheus, "sum(increase(verigram_store_errors_total[2m]))").await > 0.0);
    stop.store(true, Ordering::Relaxed);
    redis.resume();
    load.await.unwrap();
}
