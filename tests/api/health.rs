//! Probes, and failing closed when the store goes away.

use crate::helpers::*;

verigram_testkit::on_every_backend!(healthz_and_readyz_answer);

async fn healthz_and_readyz_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let store = app.backend.store_kind();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ready", "store": store}));
}

/// Redis goes away mid-run: readiness fails, every Gateway method answers
/// `SERVICE_UNAVAILABLE` (5xx), nothing is sent, and the process keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_fails_closed() {
    let mut app = spawn_app_with(Backend::Redis, |c| set_key(c, "store.timeout_ms", "250")).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let code = app.code_for(&id).await;
    app.kill_redis();
    wait_for("/readyz to report the store down", || async {
        let r = app.client.get(app.url("/readyz")).send().await.unwrap();
        (r.status() == 503).then_some(())
    })
    .await;
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "unavailable", "store": "redis"}));
    let calls = [
        ("sendVerificationMessage", json!({"phone_number": PHONE, "code_length": 6})),
        ("sendVerificationMessage", json!({"phone_number": PHONE, "code": "1234", "request_id": id})),
        ("checkSendAbility", json!({"phone_number": PHONE})),
        ("checkVerificationStatus", json!({"request_id": id, "code": code})),
        ("checkVerificationStatus", json!({"request_id": id})),
        ("revokeVerificationMessage", json!({"request_id": id})),
    ];
    for _ in 0..2 {
        for (method, params) in &calls {
            let r = app.call(&t, method, params.clone()).await;
            assert_eq!((r.status, r.error()), (503, "SERVICE_UNAVAILABLE"), "{method} {params}");
        }
    }
    // The token is looked up (in the store) before any parameter is read.
    let r = app.call(&t, "sendVerificationMessage", json!({"phone_number": "1", "code_length": 6})).await;
    assert_eq!(r.error(), "SERVICE_UNAVAILABLE");
    let r = app.call_as(None, "checkSendAbility", json!({"phone_number": PHONE})).await;
    assert_eq!(r.error(), "ACCESS_TOKEN_REQUIRED");
    // The admin API fails closed too, with its own error.
    let response = app
        .client
        .get(app.url(&format!("/admin/v1/tenants/{}", t.id)))
        .bearer_auth(&app.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.json::<Value>().await.unwrap()["error"], "unavailable");
    // Nothing was sent; the process is alive.
    assert_eq!(app.inbox(PHONE).await.len(), 1);
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
