//! Failed authentication throttled per client address, before any store work; the admin API
//! and `/metrics` behind tokens and listeners of their own.

use crate::helpers::*;
use reqwest::Method;

verigram_testkit::on_every_backend!(
    unknown_tokens_use_up_the_address_budget_then_cost_no_store_read,
    wrong_admin_tokens_are_throttled_with_retry_after,
    metrics_can_require_a_bearer_token,
    the_admin_api_can_have_a_listener_of_its_own,
);

const BURST_THREE: &str = "{ rate = 1, per = 60, burst = 3 }";

/// How many times the store was asked for a token, from `/metrics`.
async fn token_reads(app: &TestApp) -> f64 {
    let text = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    let series = r#"verigram_store_operation_duration_seconds_count{op="find_token"} "#;
    text.lines().find_map(|l| l.strip_prefix(series)).map_or(0.0, |v| v.parse().unwrap())
}

async fn unknown_tokens_use_up_the_address_budget_then_cost_no_store_read(backend: Backend) {
    let app = spawn_app_with(backend, |c| set_key(c, "limits.auth_failures", BURST_THREE)).await;
    let t = app.create_tenant("1", None).await;
    let made_up = "1:not-a-real-token-at-all-0000000000000000000000000";
    for _ in 0..3 {
        let r = app.call_as(Some(made_up), "checkSendAbility", json!({"phone_number": PHONE})).await;
        assert_eq!(r.error(), "ACCESS_TOKEN_INVALID");
    }
    let reads = token_reads(&app).await;
    for _ in 0..5 {
        let r = app.call_as(Some(made_up), "checkSendAbility", json!({"phone_number": PHONE})).await;
        assert_eq!(r.error(), "FLOOD_WAIT_60", "the address's budget is used up");
    }
    // The same address with a good token waits too: the throttle runs before the lookup.
    let r = app.call_as(Some(&t.token), "checkSendAbility", json!({"phone_number": PHONE})).await;
    assert_eq!(r.error(), "FLOOD_WAIT_60");
    assert_eq!(token_reads(&app).await, reads, "a throttled call reads no token");
    app.advance(Duration::from_secs(60));
    let r = app.call_as(Some(&t.token), "checkSendAbility", json!({"phone_number": PHONE})).await;
    assert_eq!(r.body["ok"], true, "the budget refilled: {}", r.body);
    // Good tokens never use the budget.
    for _ in 0..10 {
        let r = app.call_as(Some(&t.token), "checkSendAbility", json!({"phone_number": PHONE})).await;
        assert_eq!(r.body["ok"], true);
    }
    let metrics = app.client.get(app.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"verigram_auth_failures_total{surface="gateway"} 9"#), "{metrics}");
    assert!(metrics.contains(r#"verigram_rate_limited_total{limit="auth_failures"} 6"#), "{metrics}");
}

async fn wrong_admin_tokens_are_throttled_with_retry_after(backend: Backend) {
    let app = spawn_app_with(backend, |c| set_key(c, "limits.auth_failures", BURST_THREE)).await;
    let wrong = |token: &'static str| app.client.get(app.url("/admin/v1/tenants")).bearer_auth(token).send();
    for _ in 0..3 {
        assert_eq!(wrong("not-the-admin-token").await.unwrap().status(), 401);
    }
    let refused = wrong("not-the-admin-token").await.unwrap();
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "60");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "too_many_requests");
    // Even the right token waits: it is not compared while the address is throttled.
    let (status, _) = app.admin(Method::GET, "/tenants", None).await;
    assert_eq!(status, 429);
    app.advance(Duration::from_secs(60));
    let (status, _) = app.admin(Method::GET, "/tenants", None).await;
    assert_eq!(status, 200);
}

async fn metrics_can_require_a_bearer_token(backend: Backend) {
    let token = "metrics-token-0123456789-0123456789";
    let app = spawn_app_with(backend, |c| set_key(c, "metrics.token", &format!("{token:?}"))).await;
    let scrape = |bearer: Option<&'static str>| {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    let refused = scrape(None).await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(refused.headers()["www-authenticate"], "Bearer");
    assert!(!refused.text().await.unwrap().contains("verigram_"));
    assert_eq!(scrape(Some("wrong")).await.unwrap().status(), 401);
    let answered = scrape(Some(token)).await.unwrap();
    assert_eq!(answered.status(), 200);
    let text = answered.text().await.unwrap();
    assert!(text.contains(r#"verigram_auth_failures_total{surface="metrics"} 2"#), "{text}");
}

async fn the_admin_api_can_have_a_listener_of_its_own(backend: Backend) {
    let app = spawn_app_with(backend, |c| set_key(c, "admin.listen", "\"127.0.0.1:0\"")).await;
    let port = app.admin_port.expect("a listener of its own");
    let own = format!("http://127.0.0.1:{port}/admin/v1/tenants");
    let created = app
        .client
        .post(&own)
        .bearer_auth(&app.admin_token)
        .json(&json!({"name": "Acme", "balance": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let on_api = app.client.get(app.url("/admin/v1/tenants")).bearer_auth(&app.admin_token).send().await.unwrap();
    let on_api: Value = on_api.json().await.unwrap();
    assert_eq!(on_api["ok"], false, "the API's port has no admin routes: {on_api}");
    let probe = app.client.get(format!("http://127.0.0.1:{port}/healthz")).send().await.unwrap();
    assert_eq!(probe.status(), 200);
    let elsewhere = app.client.get(format!("http://127.0.0.1:{port}/sendVerificationMessage")).send().await.unwrap();
    assert_eq!(elsewhere.status(), 404, "only the admin API and the probe live there");
}
