//! `/metrics` after a scripted scenario: every counter the scenario moved has exactly the
//! value it should, read from the Prometheus text a scraper would read.

use crate::helpers::receiver::Receiver;
use crate::helpers::*;
use std::collections::BTreeMap;

verigram_testkit::on_every_backend!(
    a_scripted_scenario_leaves_exact_counts,
    metrics_have_their_own_listener_when_asked,
    two_apps_in_one_process_count_apart
);

/// Scrapes never multiply the store's work: however many come at once, the gauges are read
/// once an interval. And a hung store leaves `/metrics` answering at once, saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_read_the_store_once_an_interval_and_never_hang_with_it() {
    let app = spawn_app_with(Backend::Redis, |c| {
        set_key(c, "metrics.refresh_ms", "60000");
        set_key(c, "metrics.store_wait_ms", "200");
        // Far longer than the client below waits: a scrape that waited for the store fails.
        set_key(c, "store.timeout_ms", "30000");
    })
    .await;
    let t = app.create_tenant("1", None).await;
    let reads = || app.services.metrics.store_duration.with_label_values(&["tenants"]).get_sample_count();
    let url = app.url("/metrics");
    let info = format!(r#"verigram_tenant_info{{name="Acme",tenant="{}"}}"#, t.id);
    assert_eq!(value(&scrape(&app, &url).await, &info), 1.0, "the first scrape waits for the read");
    let scrapes = (0..20).map(|_| scrape(&app, &url));
    for samples in futures_util::future::join_all(scrapes).await {
        assert_eq!(value(&samples, &info), 1.0);
    }
    assert_eq!(reads(), 1, "twenty-one scrapes, one read of the tenants");

    let app = spawn_app_with(Backend::Redis, |c| {
        set_key(c, "metrics.store_wait_ms", "200");
        set_key(c, "store.timeout_ms", "30000");
    })
    .await;
    assert_eq!(value(&scrape(&app, &app.url("/metrics")).await, "verigram_store_up"), 1.0);
    app.redis.as_ref().expect("Redis").pause();
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    for _ in 0..3 {
        let text = client.get(app.url("/metrics")).send().await.expect("/metrics answers while Redis hangs");
        let text = text.text().await.unwrap();
        assert!(text.lines().any(|l| l == "verigram_store_up 0"), "{text}");
    }
    app.redis.as_ref().expect("Redis").resume();
    wait_for("store_up back at 1", || async {
        (value(&scrape(&app, &app.url("/metrics")).await, "verigram_store_up") == 1.0).then_some(())
    })
    .await;
}

/// The samples of a Prometheus text exposition: `name{labels}` (as printed) → value.
async fn scrape(app: &TestApp, url: &str) -> BTreeMap<String, f64> {
    let response = app.client.get(url).send().await.expect("/metrics answers");
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

fn value(samples: &BTreeMap<String, f64>, series: &str) -> f64 {
    *samples.get(series).unwrap_or_else(|| panic!("{series} is not exported; got:\n{samples:#?}"))
}

async fn a_scripted_scenario_leaves_exact_counts(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        set_key(c, "callbacks.allow_http", "true");
        set_key(c, "callbacks.allow_private_networks", "true");
        // One message per number, so a second send to one number is refused.
        set_key(c, "limits.phone", "{ rate = 1, per = 3600, burst = 1 }");
        set_key(c, "sandbox.recipients.\"1555001\"", "\"privacy_restricted\"");
    })
    .await;
    let metrics = app.url("/metrics");
    let receiver = Receiver::start().await;
    let t = app.create_tenant("5", None).await;
    let tenant = &t.id;

    // A: a tenant's code and a callback; B: read by its user; C: revoked; D: cannot be reached.
    let a = app
        .try_call(
            &t,
            "sendVerificationMessage",
            json!({"phone_number": "+15551110001", "code": "4321", "callback_url": receiver.url}),
        )
        .await
        .unwrap()["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let b = app.send(&t, "+15551110002").await["request_id"].as_str().unwrap().to_owned();
    let c = app.send(&t, "+15551110003").await["request_id"].as_str().unwrap().to_owned();
    let d = app.send(&t, "+15550010000").await["request_id"].as_str().unwrap().to_owned();
    for id in [&a, &b, &c] {
        app.wait_delivered(&t, id).await;
    }
    wait_for("the unreachable request to expire", || async {
        (app.delivery(&t, &d).await.as_deref() == Some("expired")).then_some(())
    })
    .await;
    assert_eq!(app.check(&t, &a, Some("0000")).await.result()["verification_status"]["status"], "code_invalid");
    assert_eq!(app.check(&t, &a, Some("4321")).await.result()["verification_status"]["status"], "code_valid");
    assert_eq!(app.read_message(&b).await.0, 200);
    // Revoked once delivered: the message stays, the code stops working.
    app.revoke(&t, &c).await.result();
    // E: revoked before it could go (every sender account paused).
    let (status, _) = app.admin(reqwest::Method::POST, "/senders/sandbox/pause", None).await;
    assert_eq!(status, 200);
    let e = app.send(&t, "+15551110005").await["request_id"].as_str().unwrap().to_owned();
    app.revoke(&t, &e).await.result();
    assert_eq!(app.delivery(&t, &e).await.as_deref(), Some("revoked"));
    let again =
        app.call(&t, "sendVerificationMessage", json!({"phone_number": "+15551110001", "code_length": 6})).await;
    assert!(again.error().starts_with("FLOOD_WAIT_"), "{}", again.error());
    let stranger = app.call_as(Some("0:not-a-token"), "sendVerificationMessage", json!({"phone_number": PHONE})).await;
    assert_eq!(stranger.error(), "ACCESS_TOKEN_INVALID");

    // A's four status changes (sent, delivered, code_invalid, code_valid) are each reported.
    receiver.wait_for(4).await;
    let delivered_reports = r#"verigram_report_attempts_total{outcome="delivered"}"#;
    let samples = wait_for("the fourth report to be counted", || async {
        let samples = scrape(&app, &metrics).await;
        (value(&samples, delivered_reports) == 4.0).then_some(samples)
    })
    .await;
    let expect = |series: &str, expected: f64| {
        assert_eq!(value(&samples, series), expected, "{series}");
    };
    let gateway = |method: &str, outcome: &str| {
        format!(r#"verigram_api_requests_total{{method="{method}",outcome="{outcome}"}}"#)
    };
    expect(&gateway("sendVerificationMessage", "ok"), 5.0);
    expect(&gateway("sendVerificationMessage", "FLOOD_WAIT"), 1.0);
    expect(&gateway("sendVerificationMessage", "ACCESS_TOKEN_INVALID"), 1.0);
    expect(&gateway("revokeVerificationMessage", "ok"), 2.0);
    expect(r#"verigram_api_request_duration_seconds_count{method="sendVerificationMessage",outcome="ok"}"#, 5.0);
    expect(&format!(r#"verigram_sends_accepted_total{{tenant="{tenant}"}}"#), 5.0);
    expect(r#"verigram_deliveries_total{outcome="sent"}"#, 3.0);
    expect(r#"verigram_deliveries_total{outcome="unreachable"}"#, 1.0);
    expect(&format!(r#"verigram_send_delay_seconds_count{{tenant="{tenant}"}}"#), 3.0);
    expect(r#"verigram_delivery_status_total{status="sent"}"#, 3.0);
    expect(r#"verigram_delivery_status_total{status="delivered"}"#, 3.0);
    expect(r#"verigram_delivery_status_total{status="read"}"#, 1.0);
    expect(r#"verigram_delivery_status_total{status="revoked"}"#, 1.0);
    expect(r#"verigram_delivery_status_total{status="expired"}"#, 1.0);
    expect(r#"verigram_verification_status_total{status="code_invalid"}"#, 1.0);
    expect(r#"verigram_verification_status_total{status="code_valid"}"#, 1.0);
    // Revoking ends the code (C, E); D's code stays checkable until its validity ends.
    expect(r#"verigram_verification_status_total{status="expired"}"#, 2.0);
    expect(r#"verigram_verification_status_total{status="code_max_attempts_exceeded"}"#, 0.0);
    // The default price is 0.01 credits (10,000 micro-credits); D's fee came back.
    expect(&format!(r#"verigram_charges_total{{tenant="{tenant}"}}"#), 5.0);
    expect(&format!(r#"verigram_charged_micro_credits_total{{tenant="{tenant}"}}"#), 50_000.0);
    expect(&format!(r#"verigram_refunds_total{{tenant="{tenant}"}}"#), 1.0);
    expect(&format!(r#"verigram_refunded_micro_credits_total{{tenant="{tenant}"}}"#), 10_000.0);
    expect(&format!(r#"verigram_tenant_balance_credits{{tenant="{tenant}"}}"#), 4.96);
    expect(r#"verigram_rate_limited_total{limit="phone"}"#, 1.0);
    expect(r#"verigram_sender_messages_total{account="sandbox"}"#, 3.0);
    expect(r#"verigram_sender_accounts{state="active"}"#, 0.0);
    expect(r#"verigram_sender_accounts{state="paused"}"#, 1.0);
    expect(r#"verigram_sender_accounts{state="disabled"}"#, 0.0);
    expect(r#"verigram_report_attempts_total{outcome="failed"}"#, 0.0);
    expect(r#"verigram_report_duration_seconds_count{outcome="delivered"}"#, 4.0);
    expect("verigram_reports_retried_total", 0.0);
    expect("verigram_reports_dead_lettered_total", 0.0);
    // E's job waits in the queue, untouched, for an account to claim it with (and will then
    // be done without a message).
    expect(r#"verigram_queue_jobs{state="queued"}"#, 1.0);
    expect(&format!(r#"verigram_tenant_queue_jobs{{state="queued",tenant="{tenant}"}}"#), 1.0);
    expect(&format!(r#"verigram_tenant_queue_jobs{{state="waiting",tenant="{tenant}"}}"#), 0.0);
    assert!(value(&samples, &format!(r#"verigram_tenant_queue_oldest_job_age_seconds{{tenant="{tenant}"}}"#)) >= 0.0);
    expect("verigram_jobs_reclaimed_total", 0.0);
    expect(r#"verigram_store_operation_duration_seconds_count{op="create_request"}"#, 5.0);
    expect("verigram_store_up", 1.0);
    let store = backend.store_kind();
    let build = format!(
        r#"verigram_build_info{{role="all",sender="sandbox",store="{store}",version="{}"}}"#,
        env!("CARGO_PKG_VERSION")
    );
    expect(&build, 1.0);
    // Labels are bounded: no phone number, code or request id anywhere.
    for series in samples.keys() {
        for secret in ["1555111000", "4321", &a, &b, &c, &d, &e] {
            assert!(!series.contains(secret), "{secret} in the series {series}");
        }
    }
}

/// With `metrics.listen`, the metrics are served there and not on the API's port.
async fn metrics_have_their_own_listener_when_asked(backend: Backend) {
    let app = spawn_app_with(backend, |c| set_key(c, "metrics.listen", "\"127.0.0.1:0\"")).await;
    let port = app.metrics_port.expect("a listener of its own");
    let own = scrape(&app, &format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(value(&own, "verigram_store_up"), 1.0);
    let on_api = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(!on_api.contains("verigram_"), "the API's port does not show the metrics: {on_api}");
}

/// Each application owns its registry: what one counts, the other does not see.
async fn two_apps_in_one_process_count_apart(backend: Backend) {
    let (one, other) = (spawn_app(backend).await, spawn_app(backend).await);
    let t = one.create_tenant("1", None).await;
    one.send(&t, PHONE).await;
    let series = r#"verigram_api_requests_total{method="sendVerificationMessage",outcome="ok"}"#;
    assert_eq!(value(&scrape(&one, &one.url("/metrics")).await, series), 1.0);
    // The other app has the series too (born at 0), and its own count.
    assert_eq!(value(&scrape(&other, &other.url("/metrics")).await, series), 0.0);
}
