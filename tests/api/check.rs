//! `checkVerificationStatus`: codes, attempts, expiry, and whose requests a tenant may see.

use crate::helpers::*;

verigram_testkit::on_every_backend!(
    correct_code_verifies_and_stays_valid,
    wrong_code_is_code_invalid_and_echoed,
    five_wrong_codes_exhaust_the_request,
    tenant_max_attempts_applies_to_new_requests,
    code_expires_after_the_default_validity,
    ttl_is_the_validity_of_the_code,
    tenant_code_verifies,
    status_check_without_code_changes_nothing,
    malformed_codes_count_as_wrong_attempts,
    request_id_required_and_invalid,
    another_tenants_request_is_invalid_and_untouched,
    a_code_verifies_only_its_own_request,
    integers_as_strings_and_numbers_in_checks,
);

const CHECK: &str = "checkVerificationStatus";

/// Sends a generated code and answers (request_id, code).
async fn sent(app: &TestApp, t: &Tenant) -> (String, String) {
    let r = app.send(t, PHONE).await;
    let id = r["request_id"].as_str().unwrap().to_owned();
    let code = app.code_for(&id).await;
    (id, code)
}

/// A code of the same length that differs from `code` in every digit.
fn wrong(code: &str) -> String {
    code.bytes().map(|b| char::from(b'0' + (b - b'0' + 1) % 10)).collect()
}

async fn correct_code_verifies_and_stays_valid(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let (id, code) = sent(&app, &t).await;
    let r = app.check(&t, &id, Some(&code)).await;
    let v = &r.result()["verification_status"];
    assert_eq!(v["status"], "code_valid", "{r:?}");
    assert_eq!(v["updated_at"], app.now_secs());
    assert_eq!(r.result()["request_id"], id.as_str());
    assert_eq!(r.result()["phone_number"], PHONE_DIGITS);
    assert!(r.result().get("remaining_balance").is_none(), "a check charges nothing: {r:?}");
    // Single use, idempotent: later checks with any code answer the same terminal status.
    app.advance(Duration::from_secs(5));
    for later in [code.as_str(), &wrong(&code), "0000", "abc"] {
        let again = app.check(&t, &id, Some(later)).await;
        assert_eq!(again.result()["verification_status"]["status"], "code_valid", "{later}: {again:?}");
        assert_eq!(again.result()["verification_status"]["updated_at"], v["updated_at"], "nothing re-evaluated");
    }
    // Even past the code's validity a verified request stays verified.
    app.advance(Duration::from_secs(3600));
    assert_eq!(app.verification(&t, &id, None).await.as_deref(), Some("code_valid"));
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("code_valid"));
}

async fn wrong_code_is_code_invalid_and_echoed(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let (id, code) = sent(&app, &t).await;
    let bad = wrong(&code);
    let r = app.check(&t, &id, Some(&bad)).await;
    let v = &r.result()["verification_status"];
    assert_eq!(v["status"], "code_invalid");
    assert_eq!(v["code_entered"], bad.as_str());
    assert_eq!(v["updated_at"], app.now_secs());
    // The entered code is echoed by the check that evaluated it, not stored for later.
    let later = app.check(&t, &id, None).await;
    assert_eq!(later.result()["verification_status"]["status"], "code_invalid");
    assert!(later.result()["verification_status"].get("code_entered").is_none(), "{later:?}");
    // Not terminal: the right code still works.
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("code_valid"));
}

async fn five_wrong_codes_exhaust_the_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let (id, code) = sent(&app, &t).await;
    let bad = wrong(&code);
    for attempt in 1..=4 {
        assert_eq!(app.verification(&t, &id, Some(&bad)).await.as_deref(), Some("code_invalid"), "attempt {attempt}");
    }
    let fifth = app.check(&t, &id, Some(&bad)).await;
    assert_eq!(fifth.result()["verification_status"]["status"], "code_max_attempts_exceeded", "{fifth:?}");
    // Terminal: the right code no longer works, and nothing changes any more.
    for later in [code.as_str(), &bad] {
        assert_eq!(app.verification(&t, &id, Some(later)).await.as_deref(), Some("code_max_attempts_exceeded"));
    }
    app.advance(Duration::from_secs(3600));
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("code_max_attempts_exceeded"));
}

async fn tenant_max_attempts_applies_to_new_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let (old_id, old_code) = sent(&app, &t).await;
    let (status, body) = app.patch_tenant(&t, json!({"max_attempts": 2})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"]["max_attempts"], 2);
    let (id, code) = sent(&app, &t).await;
    assert_eq!(app.verification(&t, &id, Some(&wrong(&code))).await.as_deref(), Some("code_invalid"));
    assert_eq!(app.verification(&t, &id, Some(&wrong(&code))).await.as_deref(), Some("code_max_attempts_exceeded"));
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("code_max_attempts_exceeded"));
    // A request keeps the limit it was sent with (5): two wrong codes do not exhaust it.
    for _ in 0..4 {
        assert_eq!(app.verification(&t, &old_id, Some(&wrong(&old_code))).await.as_deref(), Some("code_invalid"));
    }
    assert_eq!(app.verification(&t, &old_id, Some(&old_code)).await.as_deref(), Some("code_valid"));
    // A limit of 1: the first wrong code ends the request.
    app.patch_tenant(&t, json!({"max_attempts": 1})).await;
    let (id, code) = sent(&app, &t).await;
    assert_eq!(app.verification(&t, &id, Some(&wrong(&code))).await.as_deref(), Some("code_max_attempts_exceeded"));
    // Clearing it returns to the server's default of 5.
    let (status, body) = app.patch_tenant(&t, json!({"max_attempts": null})).await;
    assert_eq!(status, 200, "{body}");
    let (id, code) = sent(&app, &t).await;
    for _ in 0..4 {
        assert_eq!(app.verification(&t, &id, Some(&wrong(&code))).await.as_deref(), Some("code_invalid"));
    }
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("code_valid"));
}

async fn code_expires_after_the_default_validity(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let (early_id, early_code) = sent(&app, &t).await;
    let (late_id, late_code) = sent(&app, &t).await;
    let (idle_id, _) = sent(&app, &t).await;
    let sent_at = app.now_secs();
    app.advance(Duration::from_millis(599_999));
    assert_eq!(app.verification(&t, &early_id, Some(&early_code)).await.as_deref(), Some("code_valid"));
    app.advance(Duration::from_millis(1));
    let r = app.check(&t, &late_id, Some(&late_code)).await;
    assert_eq!(r.result()["verification_status"]["status"], "expired", "{r:?}");
    assert!(r.result()["verification_status"].get("code_entered").is_none(), "{r:?}");
    assert_eq!(r.result()["verification_status"]["updated_at"], sent_at + 600);
    // Terminal, also for a status read without a code of a request nobody checked.
    assert_eq!(app.verification(&t, &idle_id, None).await.as_deref(), Some("expired"));
    app.advance(Duration::from_secs(1));
    assert_eq!(app.verification(&t, &late_id, Some(&late_code)).await.as_deref(), Some("expired"));
    assert_eq!(app.verification(&t, &early_id, None).await.as_deref(), Some("code_valid"));
}

async fn ttl_is_the_validity_of_the_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let send = |ttl: u64| {
        app.try_call(&t, "sendVerificationMessage", json!({"phone_number": PHONE, "code_length": 6, "ttl": ttl}))
    };
    let short = send(30).await.unwrap();
    let long = send(3600).await.unwrap();
    let (short_id, long_id) = (short["request_id"].as_str().unwrap(), long["request_id"].as_str().unwrap());
    let (short_code, long_code) = (app.code_for(short_id).await, app.code_for(long_id).await);
    app.advance(Duration::from_secs(30));
    assert_eq!(app.verification(&t, short_id, Some(&short_code)).await.as_deref(), Some("expired"));
    // 3600 s is longer than the default validity of 600 s.
    app.advance(Duration::from_secs(3000));
    assert_eq!(app.verification(&t, long_id, None).await, None, "not checked yet, not expired");
    app.advance(Duration::from_secs(569));
    assert_eq!(app.verification(&t, long_id, Some(&long_code)).await.as_deref(), Some("code_valid"));
    let third = send(3600).await.unwrap();
    let third_id = third["request_id"].as_str().unwrap();
    let third_code = app.code_for(third_id).await;
    app.advance(Duration::from_secs(3600));
    assert_eq!(app.verification(&t, third_id, Some(&third_code)).await.as_deref(), Some("expired"));
    // A message delivered within its ttl is not refunded.
    let r = app.check(&t, third_id, None).await;
    assert!(r.result().get("is_refunded").is_none(), "{r:?}");
}

async fn tenant_code_verifies(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send_code(&t, PHONE, "0042").await["request_id"].as_str().unwrap().to_owned();
    assert_eq!(app.code_for(&id).await, "0042");
    assert_eq!(app.verification(&t, &id, Some("42")).await.as_deref(), Some("code_invalid"), "no numeric coercion");
    assert_eq!(app.verification(&t, &id, Some("00420")).await.as_deref(), Some("code_invalid"));
    assert_eq!(app.verification(&t, &id, Some("0042")).await.as_deref(), Some("code_valid"));
}

async fn status_check_without_code_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let (id, code) = sent(&app, &t).await;
    let first = app.check(&t, &id, None).await;
    assert!(first.result().get("verification_status").is_none(), "not checked yet: {first:?}");
    assert!(first.result().get("remaining_balance").is_none());
    let bad = wrong(&code);
    app.check(&t, &id, Some(&bad)).await;
    let after_wrong = app.check(&t, &id, None).await.result().clone();
    app.advance(Duration::from_secs(10));
    for _ in 0..20 {
        let r = app.check(&t, &id, None).await;
        assert_eq!(r.result()["verification_status"], after_wrong["verification_status"], "{r:?}");
    }
    // `null` and an empty code are "not given" as well.
    for params in [json!({"request_id": id, "code": null}), json!({"request_id": id, "code": ""})] {
        let r = app.call(&t, CHECK, params).await;
        assert_eq!(r.result()["verification_status"], after_wrong["verification_status"], "{r:?}");
    }
    // Only the one wrong attempt counted: three more are allowed before the fifth ends it.
    for _ in 0..3 {
        assert_eq!(app.verification(&t, &id, Some(&bad)).await.as_deref(), Some("code_invalid"));
    }
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("code_valid"));
}

async fn malformed_codes_count_as_wrong_attempts(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let (id, code) = sent(&app, &t).await;
    let junk = [json!("abc"), json!("123"), json!("١٢٣٤٥٦"), json!(format!(" {code}")), json!([code.clone()])];
    for (i, c) in junk.iter().enumerate() {
        let r = app.call(&t, CHECK, json!({"request_id": id, "code": c})).await;
        let expected = if i == junk.len() - 1 { "code_max_attempts_exceeded" } else { "code_invalid" };
        assert_eq!(r.result()["verification_status"]["status"], expected, "code {c}: {r:?}");
    }
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("code_max_attempts_exceeded"));
    // A 10 kB code is just another wrong one, never a 5xx.
    let (id, code) = sent(&app, &t).await;
    let r = app.call(&t, CHECK, json!({"request_id": id, "code": "1".repeat(10_000)})).await;
    assert_eq!(r.result()["verification_status"]["status"], "code_invalid");
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("code_valid"));
}

async fn request_id_required_and_invalid(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for params in [json!({}), json!({"request_id": null}), json!({"request_id": ""}), json!({"code": "1234"})] {
        assert_eq!(app.call(&t, CHECK, params.clone()).await.error(), "REQUEST_ID_REQUIRED", "{params}");
    }
    let (id, _) = sent(&app, &t).await;
    let unknown =
        if id.ends_with('1') { format!("{}2", &id[..id.len() - 1]) } else { format!("{}1", &id[..id.len() - 1]) };
    for bad in [json!(unknown), json!("abc"), json!("-1"), json!(["1"]), json!({"id": 1}), json!(true), json!(1.5)] {
        let r = app.call(&t, CHECK, json!({"request_id": bad, "code": "1234"})).await;
        assert_eq!(r.error(), "REQUEST_ID_INVALID", "{bad}");
    }
}

async fn another_tenants_request_is_invalid_and_untouched(backend: Backend) {
    let app = spawn_app(backend).await;
    let victim = app.create_tenant("1", None).await;
    let attacker = app.create_tenant("1", None).await;
    let (id, code) = sent(&app, &victim).await;
    for _ in 0..10 {
        let r = app.check(&attacker, &id, Some(&wrong(&code))).await;
        assert_eq!(r.error(), "REQUEST_ID_INVALID");
    }
    assert_eq!(app.check(&attacker, &id, Some(&code)).await.error(), "REQUEST_ID_INVALID");
    assert_eq!(app.check(&attacker, &id, None).await.error(), "REQUEST_ID_INVALID");
    assert_eq!(app.revoke(&attacker, &id).await.error(), "REQUEST_ID_INVALID");
    // The victim's request saw none of it.
    let r = app.check(&victim, &id, None).await;
    assert!(r.result().get("verification_status").is_none(), "{r:?}");
    assert_eq!(app.verification(&victim, &id, Some(&code)).await.as_deref(), Some("code_valid"));
}

async fn a_code_verifies_only_its_own_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let a = app.send_code(&t, PHONE, "11112222").await["request_id"].as_str().unwrap().to_owned();
    let b = app.send_code(&t, PHONE, "33334444").await["request_id"].as_str().unwrap().to_owned();
    assert_eq!(app.verification(&t, &b, Some("11112222")).await.as_deref(), Some("code_invalid"));
    assert_eq!(app.verification(&t, &a, Some("33334444")).await.as_deref(), Some("code_invalid"));
    assert_eq!(app.verification(&t, &a, Some("11112222")).await.as_deref(), Some("code_valid"));
    assert_eq!(app.verification(&t, &b, Some("33334444")).await.as_deref(), Some("code_valid"));
}

async fn integers_as_strings_and_numbers_in_checks(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send_code(&t, PHONE, "9876").await["request_id"].as_str().unwrap().to_owned();
    let number: u64 = id.parse().unwrap();
    let r = app.call(&t, CHECK, json!({"request_id": number, "code": 9876})).await;
    assert_eq!(r.result()["verification_status"]["status"], "code_valid", "{r:?}");
    assert_eq!(r.result()["request_id"], id.as_str(), "request_id is answered as a string");
}
