//! What the Redis store holds after a busy scenario: never a code, never an API token (only
//! keyed hashes), and no per-request key without an expiry.

use crate::helpers::*;
use reqwest::Method;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_holds_no_code_and_no_token() {
    let app = spawn_app(Backend::Redis).await;
    let t = app.create_tenant("5", Some("+447911123456")).await;
    // Tenant codes; later the generated ones join them. The user also enters a wrong code.
    let mut codes: Vec<String> = vec!["73916482".into(), "58203917".into(), "46372819".into()];
    let entered = "91827364";
    let mut tokens = vec![t.token.clone()];
    // Tokens: issued, rotated, revoked.
    let (_, issued) = app.admin(Method::POST, &format!("/tenants/{}/tokens", t.id), None).await;
    tokens.push(issued["token"].as_str().unwrap().to_owned());
    let rotate = format!("/tenants/{}/tokens/{}/rotate", t.id, issued["token_id"].as_str().unwrap());
    let (_, rotated) = app.admin(Method::POST, &rotate, None).await;
    tokens.push(rotated["token"].as_str().unwrap().to_owned());
    let (_, third) = app.admin(Method::POST, &format!("/tenants/{}/tokens", t.id), None).await;
    tokens.push(third["token"].as_str().unwrap().to_owned());
    app.admin(Method::DELETE, &format!("/tenants/{}/tokens/{}", t.id, third["token_id"].as_str().unwrap()), None).await;
    // Tenant codes, generated codes; right and wrong checks; a revocation; a checked send.
    let a = app.send_code(&t, PHONE, &codes[0]).await["request_id"].as_str().unwrap().to_owned();
    let b = app
        .try_call(&t, "sendVerificationMessage", json!({"phone_number": PHONE, "code": codes[1], "callback_url": "https://example.com/hook", "payload": "order-1"}))
        .await
        .unwrap()["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.check(&t, &a, Some(entered)).await.result();
    app.check(&t, &a, Some(&codes[0])).await.result();
    // Sent before it is revoked (sends are delivered by workers, a moment after the answer).
    app.settle().await;
    app.revoke(&t, &b).await.result();
    for _ in 0..3 {
        let r = app
            .try_call(&t, "sendVerificationMessage", json!({"phone_number": PHONE, "code_length": 8}))
            .await
            .unwrap();
        codes.push(app.code_for(r["request_id"].as_str().unwrap()).await);
    }
    let checked = app.try_call(&t, "checkSendAbility", json!({"phone_number": "+447911123456"})).await.unwrap();
    let checked = checked["request_id"].as_str().unwrap().to_owned();
    app.call(
        &t,
        "sendVerificationMessage",
        json!({"phone_number": "+447911123456", "code": codes[2], "request_id": checked}),
    )
    .await
    .result();
    let texts: Vec<String> = app.all_messages().await.iter().map(|m| m["text"].as_str().unwrap().to_owned()).collect();
    for code in &codes {
        assert!(texts.iter().any(|t| t.contains(code.as_str())), "the scenario sent {code}");
    }
    codes.push(entered.to_owned());

    let dump = dump_keyspace(app.redis.as_ref().unwrap()).await;
    assert!(!dump.is_empty());
    let secrets: Vec<(&str, &str)> = codes
        .iter()
        .map(|c| ("a code", c.as_str()))
        .chain(tokens.iter().map(|t| ("an API token", t.as_str())))
        .chain([("the admin token", app.admin_token.as_str()), ("the pepper", PEPPER)])
        .collect();
    for key in &dump {
        for text in std::iter::once(&key.key).chain(&key.values) {
            for (what, secret) in &secrets {
                assert!(!text.contains(secret), "{what} ({secret}) in plain text in Redis key {}: {text}", key.key);
            }
        }
    }
    // Requests hold their codes as keyed hashes, and expire.
    let requests: Vec<_> = dump.iter().filter(|k| k.key.contains(":r:")).collect();
    assert_eq!(requests.len(), 6);
    for r in &requests {
        assert!(r.pttl > 0, "request key {} has no expiry", r.key);
        assert_eq!(r.kind, "string", "{}", r.key);
        let data = r.values.join(" ");
        assert!(data.contains("$hmac-sha256$"), "every request holds its code's keyed hash: {data}");
    }
    assert!(dump.iter().filter(|k| k.key.starts_with("tok:")).all(|k| k.key.len() == "tok:{}".len() + 64));
}
