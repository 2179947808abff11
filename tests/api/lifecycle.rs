//! A request's life beyond the happy path: retention, `ttl` deletion, revoked checks.

use crate::helpers::*;

verigram_testkit::on_every_backend!(
    a_revoked_checked_request_sends_nothing,
    unread_messages_are_deleted_at_ttl,
    ledger_keeps_the_newest_lines,
);

/// `store.request_retention`: how long a request can be queried after it was created.
async fn requests_are_forgotten_after_retention(backend: Backend) {
    let app = spawn_app_with(backend, |c| set_key(c, "store.request_retention", "7200")).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let code = app.code_for(&id).await;
    app.advance(Duration::from_secs(7199));
    assert_eq!(app.verification(&t, &id, None).await.as_deref(), Some("expired"));
    app.advance(Duration::from_secs(1));
    for r in [app.check(&t, &id, None).await, app.check(&t, &id, Some(&code)).await, app.revoke(&t, &id).await] {
        assert_eq!(r.error(), "REQUEST_ID_INVALID", "past retention");
    }
}

mod retention {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn memory() {
        super::requests_are_forgotten_after_retention(crate::helpers::Backend::Memory).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn redis() {
        super::requests_are_forgotten_after_retention(crate::helpers::Backend::Redis).await
    }
}

/// A revoked request never verifies, so a send that continues a revoked `checkSendAbility`
/// request would deliver a code the user can never use.
async fn a_revoked_checked_request_sends_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.checked_request(&t, PHONE).await;
    assert_eq!(app.revoke(&t, &id).await.result(), &json!(true));
    let r =
        app.call(&t, "sendVerificationMessage", json!({"phone_number": PHONE, "code": "1234", "request_id": id})).await;
    let outcome = r.outcome().cloned().map_err(str::to_owned);
    assert!(app.inbox(PHONE).await.is_empty(), "a message went out for a revoked request: {outcome:?}");
    assert!(outcome.is_err(), "{outcome:?}");
}

/// Spec: "If delivered within `ttl` there is no refund; an unread message is still deleted at
/// `ttl`."
async fn unread_messages_are_deleted_at_ttl(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let r =
        app.try_call(&t, "sendVerificationMessage", json!({"phone_number": PHONE, "code_length": 6, "ttl": 30})).await;
    let id = r.unwrap()["request_id"].as_str().unwrap().to_owned();
    app.wait_delivered(&t, &id).await;
    app.advance(Duration::from_secs(31));
    wait_for("the unread message to be deleted at its ttl", || async {
        let inbox = app.inbox(PHONE).await;
        (inbox[0]["status"] == "deleted").then_some(())
    })
    .await;
    assert_eq!(app.inbox(PHONE).await[0]["text"], "");
    let s = app.check(&t, &id, None).await;
    assert_eq!(s.result()["delivery_status"]["status"], "delivered", "delivered in time: {s:?}");
    assert!(s.result().get("is_refunded").is_none(), "no refund: {s:?}");
    assert_eq!(app.balance(&t).await, 990_000);
}

async fn ledger_keeps_the_newest_lines(backend: Backend) {
    let app = spawn_app_with(backend, |c| set_key(c, "store.ledger_limit", "3")).await;
    let t = app.create_tenant("1", None).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned());
    }
    let ledger = app.ledger(&t).await;
    let listed: Vec<&str> = ledger.iter().map(|e| e["request_id"].as_str().unwrap()).collect();
    assert_eq!(listed, [ids[4].as_str(), &ids[3], &ids[2]]);
    assert_eq!(app.balance(&t).await, 950_000, "the cap trims history, never money");
}
