//! The sandbox sender's inbox: what recipients would see.

use crate::helpers::*;
use reqwest::Method;

verigram_testkit::on_every_backend!(
    inbox_shows_each_message_with_its_code,
    delivery_moves_sent_delivered_read,
    reading_unknown_messages_or_twice,
    revoked_delivered_messages_stay_readable,
    sandbox_page_is_escaped_html,
    messages_speak_the_recipients_language,
    inbox_refuses_a_bad_phone,
    the_inbox_answers_loopback_names_only,
);

async fn inbox_shows_each_message_with_its_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let first = app.send_code(&t, PHONE, "13579").await["request_id"].as_str().unwrap().to_owned();
    app.settle().await;
    app.advance(Duration::from_secs(2));
    let second = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    app.send(&t, "+447911123456").await;
    let inbox = app.inbox(PHONE).await;
    assert_eq!(inbox.len(), 2);
    assert_eq!(inbox[0]["request_id"], second.as_str(), "newest first");
    assert_eq!(inbox[1]["request_id"], first.as_str());
    let m = &inbox[1];
    let keys: std::collections::BTreeSet<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["message_id", "phone_number", "request_id", "sent_at", "status", "text"].into(), "{m}");
    assert_eq!(m["phone_number"], PHONE_DIGITS);
    assert_eq!(m["status"], "delivered");
    assert_eq!(m["text"], "Your code for Acme: 13579. Do not give it to anyone.");
    assert_eq!(m["sent_at"].as_i64().unwrap() + 2, inbox[0]["sent_at"].as_i64().unwrap());
    assert_ne!(inbox[0]["message_id"], inbox[1]["message_id"]);
    assert_no_null(&Value::Array(inbox.clone()), "inbox");
    // `+` or not, the same inbox; everyone's newest without a number.
    assert_eq!(app.inbox(PHONE_DIGITS).await, inbox);
    assert_eq!(app.inbox("447911123456").await.len(), 1);
    assert_eq!(app.all_messages().await.len(), 3);
    assert_eq!(app.inbox("+15550000000").await, Vec::<Value>::new());
}

async fn delivery_moves_sent_delivered_read(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let sent_at = app.now_secs();
    let r = app.send(&t, PHONE).await;
    // Accepted and queued: no delivery status until a worker sent it.
    assert!(r.get("delivery_status").is_none(), "{r}");
    let id = r["request_id"].as_str().unwrap().to_owned();
    app.wait_delivered(&t, &id).await;
    app.advance(Duration::from_secs(5));
    let (status, body) = app.read_message(&id).await;
    assert_eq!((status, body), (200, json!({"ok": true, "status": "read"})));
    let s = app.check(&t, &id, None).await;
    assert_eq!(s.result()["delivery_status"], json!({"status": "read", "updated_at": sent_at + 5}));
    assert_eq!(app.inbox(PHONE).await[0]["status"], "read");
    // Reading is about delivery only: the code still verifies.
    let code = app.code_for(&id).await;
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("code_valid"));
    assert_eq!(app.delivery(&t, &id).await.as_deref(), Some("read"));
}

async fn reading_unknown_messages_or_twice(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    app.wait_delivered(&t, &id).await;
    assert_eq!(app.read_message(&id).await.0, 200);
    let updated = app.check(&t, &id, None).await.result()["delivery_status"].clone();
    app.advance(Duration::from_secs(9));
    assert_eq!(app.read_message(&id).await, (200, json!({"ok": true, "status": "read"})));
    assert_eq!(app.check(&t, &id, None).await.result()["delivery_status"], updated, "read once");
    for unknown in ["100000000000000", "abc", "%7B%7D", "1%2F..%2F2"] {
        let (status, body) = app.read_message(unknown).await;
        assert_eq!((status, &body["error"]), (404, &json!("not_found")), "{unknown}");
    }
    // Reading takes a POST: a GET (a link preview, a crawler) marks nothing read.
    let other = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    app.wait_delivered(&t, &other).await;
    let r = app.client.get(app.url(&format!("/sandbox/v1/messages/{other}/read"))).send().await.unwrap();
    assert!(r.status().as_u16() < 500, "{}", r.status());
    assert_eq!(app.delivery(&t, &other).await.as_deref(), Some("delivered"));
    assert_eq!(app.inbox(PHONE).await[0]["status"], "delivered");
}

async fn revoked_delivered_messages_stay_readable(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let code = app.code_for(&id).await;
    app.wait_delivered(&t, &id).await;
    app.revoke(&t, &id).await.result();
    let m = &app.inbox(PHONE).await[0];
    assert_eq!(m["status"], "delivered", "{m}");
    assert!(m["text"].as_str().unwrap().contains(&code));
    assert_eq!(app.read_message(&id).await.0, 200);
    assert_eq!(app.delivery(&t, &id).await.as_deref(), Some("read"));
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("expired"), "but never verifies");
}

async fn sandbox_page_is_escaped_html(backend: Backend) {
    let app = spawn_app(backend).await;
    let evil = "<script>alert('x')</script>&\"";
    let (status, body) = app.admin(Method::POST, "/tenants", Some(json!({"name": evil, "balance": 1}))).await;
    assert_eq!(status, 201);
    let t = Tenant {
        id: body["id"].as_str().unwrap().into(),
        token: body["token"].as_str().unwrap().into(),
        token_id: body["token_id"].as_str().unwrap().into(),
    };
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let code = app.code_for(&id).await;
    for path in ["/sandbox", "/sandbox/"] {
        let r = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/html"), "{ct}");
        assert_eq!(r.headers()["cache-control"], "no-store");
        assert!(r.headers().contains_key("content-security-policy"));
        let html = r.text().await.unwrap();
        assert!(html.contains(&id) && html.contains(&code), "the page shows the message");
        assert!(!html.contains("<script>alert"), "tenant names are escaped");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"), "{html}");
    }
}

async fn messages_speak_the_recipients_language(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for (phone, start) in [
        ("+4915112345678", "Ihr Code für Acme: "),
        ("+380501234567", "Ваш код для Acme: "),
        ("+33612345678", "Votre code pour Acme : "),
        (PHONE, "Your code for Acme: "),
    ] {
        let id = app.send_code(&t, phone, "8642").await["request_id"].as_str().unwrap().to_owned();
        let m = &app.inbox(phone).await[0];
        let text = m["text"].as_str().unwrap();
        assert!(text.starts_with(&format!("{start}8642")), "{phone}: {text}");
        assert_eq!(app.code_for(&id).await, "8642");
    }
}

async fn inbox_refuses_a_bad_phone(backend: Backend) {
    let app = spawn_app(backend).await;
    for bad in ["abc", "123", "+9991234567", "1555 1234567"] {
        let r = app.client.get(app.url("/sandbox/v1/messages")).query(&[("phone_number", bad)]).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "phone_number_invalid");
    }
}

/// A page of another site that points a name of its own at 127.0.0.1 (DNS rebinding) reaches
/// the loopback listener with that name as Host: the inbox does not answer it.
async fn the_inbox_answers_loopback_names_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let url = app.url("/sandbox/v1/messages");
    for (host, status) in [("rebound.attacker.example", 403), ("localhost", 200), ("127.0.0.1", 200), ("[::1]", 200)] {
        let port = url.split(':').nth(2).and_then(|rest| rest.split('/').next()).unwrap();
        let reply = app.client.get(&url).header("host", format!("{host}:{port}")).send().await.unwrap();
        assert_eq!(reply.status(), status, "Host: {host}");
    }
}
