//! Probes, and failing closed when the store goes away.

use crate::helpers::*;

both_backends!(healthz_and_readyz_answer);

async fn healthz_and_readyz_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let store = match backend {
        Backend::Memory => "memory",
        Backend::Redis => "redis",
    };
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ready", "store": store}));
}
