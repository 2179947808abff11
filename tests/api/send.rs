//! `sendVerificationMessage`: every parameter, every error string, the validation order.

use crate::helpers::*;

verigram_testkit::on_every_backend!(
    send_answers_a_request_status,
    phone_number_is_echoed_as_digits,
    every_successful_send_is_a_new_request,
    code_length_from_4_to_8,
    code_length_required_when_neither_code_nor_length,
    tenant_code_is_4_to_8_ascii_digits,
    code_wins_over_code_length,
    ttl_from_30_to_3600,
    payload_is_at_most_128_bytes,
    callback_url_must_be_short_https_and_public,
    callback_url_dev_switches_lift_their_rule,
    sender_username_rules,
    errors_come_in_the_validation_order,
    unknown_method_with_a_valid_token,
);

const SEND: &str = "sendVerificationMessage";

async fn send_error(app: &TestApp, t: &Tenant, params: Value) -> String {
    app.call(t, SEND, params).await.error().to_owned()
}

async fn send_answers_a_request_status(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let now = app.now_secs();
    let r = app.send(&t, PHONE).await;
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys.iter().copied().collect::<std::collections::BTreeSet<_>>(),
        ["phone_number", "remaining_balance", "request_cost", "request_id"].into(),
        "{r}"
    );
    let id = r["request_id"].as_str().unwrap();
    assert!(id.len() >= 15 && id.bytes().all(|b| b.is_ascii_digit()), "request_id {id:?} has the Gateway's look");
    assert_eq!(r["phone_number"], PHONE_DIGITS);
    assert_eq!(micros(&r["request_cost"]), 10_000);
    assert_eq!(micros(&r["remaining_balance"]), 990_000);
    // Queued with the request; a delivery worker sends it.
    assert!(r.get("delivery_status").is_none(), "absent while queued: {r}");
    app.wait_delivered(&t, id).await;
    let status = app.check(&t, id, None).await;
    assert_eq!(status.result()["delivery_status"], json!({"status": "delivered", "updated_at": now}));
    let inbox = app.inbox(PHONE).await;
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["request_id"], id);
    assert_eq!(app.code_for(id).await.len(), 6);
}

async fn phone_number_is_echoed_as_digits(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for phone in ["+447911123456", "447911123456"] {
        let r = app.send(&t, phone).await;
        assert_eq!(r["phone_number"], "447911123456", "{phone}");
    }
    assert_eq!(app.inbox("447911123456").await.len(), 2);
}

async fn every_successful_send_is_a_new_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let a = app.send(&t, PHONE).await;
    let b = app.send(&t, PHONE).await;
    assert_ne!(a["request_id"], b["request_id"]);
    assert_eq!(micros(&b["remaining_balance"]), 980_000);
    assert_eq!(app.charges(&t).await.len(), 2);
    let (code_a, code_b) =
        (app.code_for(a["request_id"].as_str().unwrap()).await, app.code_for(b["request_id"].as_str().unwrap()).await);
    // Both requests live on independently.
    assert_eq!(
        app.verification(&t, a["request_id"].as_str().unwrap(), Some(&code_a)).await.as_deref(),
        Some("code_valid")
    );
    assert_eq!(
        app.verification(&t, b["request_id"].as_str().unwrap(), Some(&code_b)).await.as_deref(),
        Some("code_valid")
    );
}

async fn code_length_from_4_to_8(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("10", None).await;
    for len in 4..=8 {
        for given in [json!(len), json!(len.to_string())] {
            let r = app.call(&t, SEND, json!({"phone_number": PHONE, "code_length": given})).await;
            let id = r.result()["request_id"].as_str().unwrap().to_owned();
            assert_eq!(app.code_for(&id).await.len(), len, "code_length {given}");
        }
    }
    let before = app.balance(&t).await;
    for bad in [
        json!(3),
        json!(9),
        json!(0),
        json!(-6),
        json!("3"),
        json!("9"),
        json!(6.5),
        json!(6.0),
        json!("6.0"),
        json!("1e3"),
        json!("abc"),
        json!(" 6"),
        json!("99999999999999999999"),
        json!(262),
        json!(true),
        json!([6]),
        json!({"n": 6}),
    ] {
        let e = send_error(&app, &t, json!({"phone_number": PHONE, "code_length": bad})).await;
        assert_eq!(e, "CODE_LENGTH_INVALID", "code_length {bad}");
    }
    assert_eq!(app.balance(&t).await, before, "errors are never charged");
}

async fn code_length_required_when_neither_code_nor_length(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for params in [
        json!({"phone_number": PHONE}),
        json!({"phone_number": PHONE, "code": null, "code_length": null}),
        json!({"phone_number": PHONE, "code": "", "code_length": ""}),
    ] {
        assert_eq!(send_error(&app, &t, params.clone()).await, "CODE_LENGTH_REQUIRED", "{params}");
    }
    let r = app.call_query(&t, SEND, &[("phone_number", PHONE_DIGITS)]).await;
    assert_eq!(r.error(), "CODE_LENGTH_REQUIRED");
    assert!(app.inbox(PHONE).await.is_empty());
}

async fn tenant_code_is_4_to_8_ascii_digits(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for code in [json!("1234"), json!("12345678"), json!("0000"), json!("00123"), json!(98765)] {
        let r = app.call(&t, SEND, json!({"phone_number": PHONE, "code": code})).await;
        let id = r.result()["request_id"].as_str().unwrap().to_owned();
        let expected = code.as_str().map_or_else(|| code.to_string(), str::to_owned);
        assert_eq!(app.code_for(&id).await, expected);
    }
    for bad in [
        "123",
        "123456789",
        "12a4",
        " 1234",
        "1234 ",
        "12 34",
        "١٢٣٤",
        "１２３４",
        "-1234",
        "12.4",
        "1e10",
        "+1234",
        "1234\n",
        "1234\u{0}",
        "1234\u{200d}",
    ] {
        let e = send_error(&app, &t, json!({"phone_number": PHONE, "code": bad, "code_length": 6})).await;
        assert_eq!(e, "CODE_INVALID", "code {bad:?}");
    }
    for bad in [json!(true), json!(["1234"]), json!({"c": "1234"}), json!(12.5)] {
        let e = send_error(&app, &t, json!({"phone_number": PHONE, "code": bad})).await;
        assert_eq!(e, "CODE_INVALID", "code {bad}");
    }
    assert_eq!(app.inbox(PHONE).await.len(), 5, "only the valid codes were sent");
}

async fn code_wins_over_code_length(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for (code, length) in [("4321", json!(8)), ("87654321", json!(4)), ("5555", json!(3)), ("6666", json!("x"))] {
        let r = app.call(&t, SEND, json!({"phone_number": PHONE, "code": code, "code_length": length})).await;
        let id = r.result()["request_id"].as_str().unwrap().to_owned();
        assert_eq!(app.code_for(&id).await, code, "code_length {length} is ignored");
        assert_eq!(app.verification(&t, &id, Some(code)).await.as_deref(), Some("code_valid"));
    }
}

async fn ttl_from_30_to_3600(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for ttl in [json!(30), json!(3600), json!("600"), json!(60), json!(null), json!("")] {
        let r = app.call(&t, SEND, json!({"phone_number": PHONE, "code_length": 6, "ttl": ttl})).await;
        assert!(r.result().get("is_refunded").is_none(), "ttl {ttl}: {r:?}");
    }
    let before = app.balance(&t).await;
    for bad in [
        json!(29),
        json!(3601),
        json!(0),
        json!(-1),
        json!(-30),
        json!(1.5),
        json!(30.0),
        json!("abc"),
        json!("1e3"),
        json!(" 60"),
        json!("99999999999999999999"),
        json!(65566),
        json!(4294967326u64),
        json!(true),
        json!([60]),
    ] {
        let e = send_error(&app, &t, json!({"phone_number": PHONE, "code_length": 6, "ttl": bad})).await;
        assert_eq!(e, "TTL_INVALID", "ttl {bad}");
    }
    assert_eq!(app.balance(&t).await, before);
    assert_eq!(app.inbox(PHONE).await.len(), 6);
}

async fn payload_is_at_most_128_bytes(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let good = ["a".repeat(128), "é".repeat(64), format!("{}ab", "€".repeat(42)), "x".into(), "😀".repeat(32)];
    for payload in &good {
        let r = app.call(&t, SEND, json!({"phone_number": PHONE, "code_length": 6, "payload": payload})).await;
        let r = r.result();
        assert_eq!(&r["payload"], payload, "the payload is echoed");
        let later = app.check(&t, r["request_id"].as_str().unwrap(), None).await;
        assert_eq!(&later.result()["payload"], payload, "and kept in every status");
    }
    for bad in ["a".repeat(129), "é".repeat(65), "€".repeat(43), "😀".repeat(33), "a".repeat(256)] {
        let e = send_error(&app, &t, json!({"phone_number": PHONE, "code_length": 6, "payload": bad})).await;
        assert_eq!(e, "PAYLOAD_INVALID", "{} bytes", bad.len());
    }
    let e = send_error(&app, &t, json!({"phone_number": PHONE, "code_length": 6, "payload": ["x"]})).await;
    assert_eq!(e, "PAYLOAD_INVALID");
    let r = app.call(&t, SEND, json!({"phone_number": PHONE, "code_length": 6, "payload": ""})).await;
    assert!(r.result().get("payload").is_none(), "an empty payload is not given: {r:?}");
}

const BAD_CALLBACKS: &[&str] = &[
    "http://example.com/hook",
    "file:///etc/passwd",
    "gopher://example.com/",
    "ftp://example.com/",
    "https://127.0.0.1/hook",
    "https://127.0.0.1:8443/hook",
    "https://2130706433/",
    "https://0177.0.0.1/",
    "https://0x7f000001/",
    "https://0x7f.0.0.1/",
    "https://[::1]/",
    "https://[::ffff:169.254.169.254]/",
    "https://[::ffff:127.0.0.1]/",
    // The local-use NAT64 prefix and SIIT lead into the operator's network, whatever they carry.
    "https://[64:ff9b:1::808:808]/",
    "https://[::ffff:0:808:808]/",
    "https://169.254.169.254/latest/meta-data/",
    "https://10.0.0.1/",
    "https://172.16.0.1/",
    "https://192.168.1.1/",
    "https://100.64.0.1/",
    "https://0.0.0.0/",
    "https://[fd00::1]/",
    "https://[fe80::1]/",
    "https://localhost/hook",
    "https://user:pass@example.com/hook",
    "https://user@example.com/hook",
    "https://example.com/%00\n",
    "https://exa mple.com/",
    "//example.com/hook",
    "/relative",
    "example.com",
    "https://",
];

async fn callback_url_must_be_short_https_and_public(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let longest = format!("https://example.com/{}", "a".repeat(256 - "https://example.com/".len()));
    assert_eq!(longest.len(), 256);
    for url in ["https://example.com/hook?x=1", "https://example.com:8443/hook", "https://93.184.216.34/", &longest] {
        let r = app.call(&t, SEND, json!({"phone_number": PHONE, "code_length": 6, "callback_url": url})).await;
        r.result();
    }
    let too_long = format!("{longest}a");
    let before = app.balance(&t).await;
    for url in BAD_CALLBACKS.iter().copied().chain([too_long.as_str()]) {
        let e = send_error(&app, &t, json!({"phone_number": PHONE, "code_length": 6, "callback_url": url})).await;
        assert_eq!(e, "CALLBACK_URL_INVALID", "{url:?}");
    }
    assert_eq!(app.balance(&t).await, before);
}

async fn callback_url_dev_switches_lift_their_rule(backend: Backend) {
    async fn send_with(app: &TestApp, t: &Tenant, url: &str) -> Result<(), String> {
        let params = json!({"phone_number": PHONE, "code_length": 6, "callback_url": url});
        app.try_call(t, SEND, params).await.map(drop)
    }
    let invalid = || Err("CALLBACK_URL_INVALID".to_owned());
    let http_only = spawn_app_with(backend, |c| set_key(c, "callbacks.allow_http", "true")).await;
    let t = http_only.create_tenant("1", None).await;
    assert_eq!(send_with(&http_only, &t, "http://example.com/hook").await, Ok(()));
    assert_eq!(send_with(&http_only, &t, "http://127.0.0.1:9000/hook").await, invalid());
    assert_eq!(send_with(&http_only, &t, "https://10.0.0.1/hook").await, invalid());
    assert_eq!(send_with(&http_only, &t, "ftp://example.com/").await, invalid());

    let private_only = spawn_app_with(backend, |c| set_key(c, "callbacks.allow_private_networks", "true")).await;
    let t = private_only.create_tenant("1", None).await;
    for url in ["https://127.0.0.1:9000/hook", "https://[::1]/", "https://10.0.0.1/", "https://localhost/"] {
        assert_eq!(send_with(&private_only, &t, url).await, Ok(()), "{url}");
    }
    assert_eq!(send_with(&private_only, &t, "http://127.0.0.1:9000/").await, invalid());
    assert_eq!(send_with(&private_only, &t, "https://u:p@10.0.0.1/").await, invalid());

    let both = spawn_app_with(backend, |c| {
        set_key(c, "callbacks.allow_http", "true");
        set_key(c, "callbacks.allow_private_networks", "true");
    })
    .await;
    let t = both.create_tenant("1", None).await;
    assert_eq!(send_with(&both, &t, "http://127.0.0.1:9000/hook").await, Ok(()));
    assert_eq!(send_with(&both, &t, "file:///etc/passwd").await, invalid());
    let long = format!("http://127.0.0.1/{}", "a".repeat(240));
    assert_eq!(send_with(&both, &t, &long).await, invalid());
}

async fn sender_username_rules(backend: Backend) {
    let app = spawn_app(backend).await;
    let own = "+447911123456";
    let t = app.create_tenant("1", Some(own)).await;
    app.put_sender(&t, "VerifiedShop", true).await;
    app.put_sender(&t, "pending_shop", false).await;
    let send = |username: Value, phone: &str| {
        app.try_call(&t, SEND, json!({"phone_number": phone, "code_length": 6, "sender_username": username}))
    };
    for bad in ["abcd", "1shop", "my-shop", "shop!", "@", &"a".repeat(33), "shop\u{0}x", "šhop1"] {
        assert_eq!(send(json!(bad), PHONE).await.unwrap_err(), "SENDER_USERNAME_INVALID", "{bad:?}");
    }
    assert_eq!(send(json!(["verifiedshop"]), PHONE).await.unwrap_err(), "SENDER_USERNAME_INVALID");
    assert_eq!(send(json!("someone_else"), PHONE).await.unwrap_err(), "SENDER_NOT_OWNED");
    assert_eq!(send(json!("pending_shop"), PHONE).await.unwrap_err(), "SENDER_NOT_VERIFIED");
    let before = app.balance(&t).await;
    assert!(app.inbox(PHONE).await.is_empty(), "nothing was sent");

    // Registered and verified, in any case and with or without `@`: sent on its behalf.
    for name in ["verifiedshop", "@VerifiedShop", "VERIFIEDSHOP"] {
        let r = send(json!(name), PHONE).await.unwrap();
        let text = app.all_messages().await.into_iter().find(|m| m["request_id"] == r["request_id"]).unwrap();
        assert!(text["text"].as_str().unwrap().contains("verifiedshop"), "{text}");
    }
    assert_eq!(app.balance(&t).await, before - 30_000);
    // The tenant's own number: an unverified sender is fine (and the send is free).
    let r = send(json!("pending_shop"), own).await.unwrap();
    assert_eq!(micros(&r["request_cost"]), 0);
    // Still not for a sender of another tenant.
    assert_eq!(send(json!("someone_else"), own).await.unwrap_err(), "SENDER_NOT_OWNED");
    // Removed senders are no longer owned.
    let (status, _) =
        app.admin(reqwest::Method::DELETE, &format!("/tenants/{}/senders/verifiedshop", t.id), None).await;
    assert_eq!(status, 200);
    assert_eq!(send(json!("verifiedshop"), PHONE).await.unwrap_err(), "SENDER_NOT_OWNED");
}

async fn errors_come_in_the_validation_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("0", None).await;
    let everything_wrong = json!({
        "phone_number": "12",
        "code": "12",
        "code_length": 99,
        "request_id": "x",
        "sender_username": "!",
        "callback_url": "http://127.0.0.1/",
        "payload": "a".repeat(200),
        "ttl": 1,
    });
    let mut params = everything_wrong;
    // token → phone → code (→ code_length) → request_id → sender_username → callback_url →
    // payload → ttl, then the service's own checks (sender ownership, balance).
    let r = app.call_as(None, SEND, params.clone()).await;
    assert_eq!(r.error(), "ACCESS_TOKEN_REQUIRED");
    let r = app.call_as(Some("wrong-token"), SEND, params.clone()).await;
    assert_eq!(r.error(), "ACCESS_TOKEN_INVALID");
    for (field, fix, next_error) in [
        ("phone_number", json!(PHONE), "CODE_INVALID"),
        ("code", json!(null), "CODE_LENGTH_INVALID"),
        ("code_length", json!(6), "REQUEST_ID_INVALID"),
        ("request_id", json!(null), "SENDER_USERNAME_INVALID"),
        ("sender_username", json!("unknown_shop"), "CALLBACK_URL_INVALID"),
        ("callback_url", json!(null), "PAYLOAD_INVALID"),
        ("payload", json!("p"), "TTL_INVALID"),
        ("ttl", json!(60), "SENDER_NOT_OWNED"),
        ("sender_username", json!(null), "BALANCE_NOT_ENOUGH"),
    ] {
        params[field] = fix;
        let r = app.call(&t, SEND, params.clone()).await;
        assert_eq!(r.error(), next_error, "after fixing {field}");
    }
    // The code error comes before the missing code_length too.
    let r = app.call(&t, SEND, json!({"phone_number": PHONE, "code": "1"})).await;
    assert_eq!(r.error(), "CODE_INVALID");
    let r = app.call(&t, SEND, json!({"phone_number": "1", "code": "1"})).await;
    assert_eq!(r.error(), "PHONE_NUMBER_INVALID");
    assert!(app.inbox(PHONE).await.is_empty());
}

async fn unknown_method_with_a_valid_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for method in ["sendMessage", "getMe", "sendVerificationMessages", "send-verification-message", "x"] {
        let r = app.call(&t, method, json!({"phone_number": PHONE, "code_length": 6})).await;
        assert_eq!(r.error(), "UNKNOWN_METHOD", "{method}");
    }
    assert!(app.inbox(PHONE).await.is_empty());
}
