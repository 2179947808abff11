//! `revokeVerificationMessage`.

use crate::helpers::*;

verigram_testkit::on_every_backend!(
    revoke_answers_true_and_the_code_never_verifies,
    revoking_twice_is_fine,
    revoke_request_id_errors,
    revoke_after_verification_expires_the_request,
    revoke_after_max_attempts,
    revoke_is_not_refunded,
);

const REVOKE: &str = "revokeVerificationMessage";

async fn revoke_answers_true_and_the_code_never_verifies(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let code = app.code_for(&id).await;
    app.wait_delivered(&t, &id).await;
    app.advance(Duration::from_secs(3));
    let r = app.revoke(&t, &id).await;
    assert_eq!(r.body, json!({"ok": true, "result": true}));
    let status = app.check(&t, &id, None).await;
    let s = status.result();
    assert_eq!(s["verification_status"]["status"], "expired", "{status:?}");
    assert_eq!(s["verification_status"]["updated_at"], app.now_secs());
    // A delivered message stays: delivery_status keeps `delivered`, the inbox keeps the text.
    assert_eq!(s["delivery_status"]["status"], "delivered", "{status:?}");
    let inbox = app.inbox(PHONE).await;
    assert_eq!(inbox[0]["status"], "delivered");
    assert!(inbox[0]["text"].as_str().unwrap().contains(&code));
    // The right code never verifies.
    for _ in 0..2 {
        assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("expired"));
    }
}

async fn revoking_twice_is_fine(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let code = app.code_for(&id).await;
    app.wait_delivered(&t, &id).await;
    assert_eq!(app.revoke(&t, &id).await.result(), &json!(true));
    let first = app.check(&t, &id, None).await.result().clone();
    app.advance(Duration::from_secs(7));
    assert_eq!(app.revoke(&t, &id).await.result(), &json!(true));
    let second = app.check(&t, &id, None).await.result().clone();
    assert_eq!(first["verification_status"], second["verification_status"], "the second revocation changes nothing");
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("expired"));
}

async fn revoke_request_id_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let other = app.create_tenant("1", None).await;
    for params in [json!({}), json!({"request_id": null}), json!({"request_id": ""})] {
        assert_eq!(app.call(&t, REVOKE, params.clone()).await.error(), "REQUEST_ID_REQUIRED", "{params}");
    }
    let theirs = app.send(&other, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let code = app.code_for(&theirs).await;
    for bad in
        [json!("123456789012345"), json!(theirs), json!("abc"), json!("../1"), json!(["1"]), json!("9".repeat(20))]
    {
        let r = app.call(&t, REVOKE, json!({"request_id": bad})).await;
        assert_eq!(r.error(), "REQUEST_ID_INVALID", "{bad}");
    }
    // The other tenant's request was not revoked.
    assert_eq!(app.verification(&other, &theirs, Some(&code)).await.as_deref(), Some("code_valid"));
    // Revoke needs a token like every method.
    let r = app.call_as(None, REVOKE, json!({"request_id": theirs})).await;
    assert_eq!(r.error(), "ACCESS_TOKEN_REQUIRED");
}

async fn revoke_after_verification_expires_the_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send_code(&t, PHONE, "2468").await["request_id"].as_str().unwrap().to_owned();
    assert_eq!(app.verification(&t, &id, Some("2468")).await.as_deref(), Some("code_valid"));
    assert_eq!(app.revoke(&t, &id).await.result(), &json!(true));
    // Spec: `verification_status` becomes `expired` in every case.
    assert_eq!(app.verification(&t, &id, None).await.as_deref(), Some("expired"));
    assert_eq!(app.verification(&t, &id, Some("2468")).await.as_deref(), Some("expired"));
}

async fn revoke_after_max_attempts(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send_code(&t, PHONE, "2468").await["request_id"].as_str().unwrap().to_owned();
    for _ in 0..5 {
        app.check(&t, &id, Some("1357")).await;
    }
    assert_eq!(app.revoke(&t, &id).await.result(), &json!(true));
    assert_eq!(app.verification(&t, &id, Some("2468")).await.as_deref(), Some("expired"));
}

async fn revoke_is_not_refunded(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    app.wait_delivered(&t, &id).await;
    app.revoke(&t, &id).await.result();
    assert_eq!(app.balance(&t).await, 990_000);
    let r = app.check(&t, &id, None).await;
    assert!(r.result().get("is_refunded").is_none(), "{r:?}");
    assert_eq!(app.charges(&t).await.len(), 1);
    assert!(app.ledger(&t).await.iter().all(|e| e["kind"] != "refund"));
}
