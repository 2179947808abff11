//! Transport (spec §1): where parameters come from, method names, the envelope and statuses.

use crate::helpers::*;
use reqwest::Method;

// How parameters are read and answers are framed does not depend on the store: once.
verigram_testkit::on_every_backend!(
    once:
    every_method_over_every_input_style,
    method_names_are_case_insensitive,
    integers_as_numbers_and_strings,
    null_and_empty_mean_not_given,
    body_wins_over_query,
    a_parameter_twice_in_one_source_is_invalid,
    an_unencoded_plus_reads_as_the_plus_sign,
    errors_answer_http_200_by_default,
    semantic_error_status,
    every_answer_has_a_request_id,
    other_http_methods_and_paths,
);

#[derive(Debug, Clone, Copy)]
enum Style {
    GetQuery,
    PostQuery,
    PostForm,
    PostJson,
    GetJson,
}

const STYLES: [Style; 5] = [Style::GetQuery, Style::PostQuery, Style::PostForm, Style::PostJson, Style::GetJson];

/// A method call with string parameters in one input style; the token as a Bearer header.
async fn call_in(app: &TestApp, style: Style, t: &Tenant, method: &str, params: &[(&str, &str)]) -> Reply {
    let url = app.url(&format!("/{method}"));
    let object: serde_json::Map<String, Value> = params.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    let b = match style {
        Style::GetQuery => app.client.get(url).query(params),
        Style::PostQuery => app.client.post(url).query(params),
        Style::PostForm => app.client.post(url).form(params),
        Style::PostJson => app.client.post(url).json(&object),
        Style::GetJson => app.client.get(url).json(&object),
    };
    app.send_request(b.bearer_auth(&t.token)).await
}

async fn every_method_over_every_input_style(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for style in STYLES {
        let r = call_in(&app, style, &t, "checkSendAbility", &[("phone_number", PHONE)]).await;
        let id = r.result()["request_id"].as_str().unwrap().to_owned();
        let r = call_in(
            &app,
            style,
            &t,
            "sendVerificationMessage",
            &[("phone_number", PHONE), ("request_id", &id), ("code", "4711"), ("ttl", "60"), ("payload", "p q&r=s")],
        )
        .await;
        assert_eq!(r.result()["request_id"], id.as_str(), "{style:?}");
        assert_eq!(r.result()["payload"], "p q&r=s", "{style:?}");
        let r = call_in(&app, style, &t, "checkVerificationStatus", &[("request_id", &id), ("code", "4711")]).await;
        assert_eq!(r.result()["verification_status"]["status"], "code_valid", "{style:?}");
        let r = call_in(&app, style, &t, "revokeVerificationMessage", &[("request_id", &id)]).await;
        assert_eq!(r.result(), &json!(true), "{style:?}");
        let r =
            call_in(&app, style, &t, "sendVerificationMessage", &[("phone_number", PHONE), ("code_length", "5")]).await;
        let id = r.result()["request_id"].as_str().unwrap().to_owned();
        assert_eq!(app.code_for(&id).await.len(), 5, "{style:?}");
    }
    assert_eq!(app.charges(&t).await.len(), 2 * STYLES.len());
}

async fn method_names_are_case_insensitive(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for name in
        ["SENDVERIFICATIONMESSAGE", "sendverificationmessage", "SendVerificationMessage", "sEnDvErIfIcAtIoNmEsSaGe"]
    {
        let id = app.try_call(&t, name, json!({"phone_number": PHONE, "code": "1234"})).await.unwrap()["request_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let r = app.call(&t, "CHECKVERIFICATIONSTATUS", json!({"request_id": id, "code": "1234"})).await;
        assert_eq!(r.result()["verification_status"]["status"], "code_valid", "{name}");
        let r = app.call(&t, "RevokeVerificationMessage", json!({"request_id": id})).await;
        assert_eq!(r.result(), &json!(true));
    }
    let r = app.call(&t, "CHECKSENDABILITY", json!({"phone_number": PHONE})).await;
    r.result();
    let r = app.call_query(&t, "checksendability", &[("phone_number", PHONE)]).await;
    r.result();
}

async fn integers_as_numbers_and_strings(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for (code_length, ttl) in [(json!(6), json!(60)), (json!("6"), json!("60")), (json!(6), json!("60"))] {
        let r = app
            .call(&t, "sendVerificationMessage", json!({"phone_number": PHONE, "code_length": code_length, "ttl": ttl}))
            .await;
        let id = r.result()["request_id"].as_str().unwrap().to_owned();
        assert_eq!(app.code_for(&id).await.len(), 6);
        let code = app.code_for(&id).await;
        app.advance(Duration::from_secs(60));
        assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("expired"), "ttl {ttl} applied");
    }
}

async fn null_and_empty_mean_not_given(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let optional = ["request_id", "sender_username", "callback_url", "payload", "ttl", "code"];
    for empty in [json!(null), json!("")] {
        let mut params = json!({"phone_number": PHONE, "code_length": 6});
        for name in optional {
            params[name] = empty.clone();
        }
        let r = app.call(&t, "sendVerificationMessage", params).await;
        let s = r.result();
        assert!(s.get("payload").is_none(), "{r:?}");
        assert!(s.get("remaining_balance").is_some(), "a new, charged request: {r:?}");
        let id = s["request_id"].as_str().unwrap().to_owned();
        assert_eq!(app.code_for(&id).await.len(), 6, "code empty: generated with code_length");
    }
    let mut query: Vec<(&str, &str)> = optional.iter().map(|n| (*n, "")).collect();
    query.extend([("phone_number", PHONE), ("code_length", "6")]);
    for style in STYLES {
        call_in(&app, style, &t, "sendVerificationMessage", &query).await.result();
    }
    let r = app.call_query(&t, "sendVerificationMessage", &[("phone_number", ""), ("code_length", "6")]).await;
    assert_eq!(r.error(), "PHONE_NUMBER_INVALID", "a required parameter given empty is missing");
    let r = app.call_form(&t, "checkVerificationStatus", &[("request_id", "")]).await;
    assert_eq!(r.error(), "REQUEST_ID_REQUIRED");
}

async fn body_wins_over_query(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let url = |q: &str| app.url(&format!("/sendVerificationMessage?{q}"));
    // Query wrong, body right: accepted.
    let b = app.client.post(url("phone_number=123&code_length=3")).bearer_auth(&t.token);
    let r = app.send_request(b.json(&json!({"phone_number": PHONE, "code_length": 7}))).await;
    let id = r.result()["request_id"].as_str().unwrap().to_owned();
    assert_eq!(app.code_for(&id).await.len(), 7);
    // Query right, body wrong: refused.
    let b = app.client.post(url("phone_number=%2B15551234567&code_length=6")).bearer_auth(&t.token);
    let r = app.send_request(b.json(&json!({"phone_number": "123"}))).await;
    assert_eq!(r.error(), "PHONE_NUMBER_INVALID");
    // Form bodies too; what only the query has still counts.
    let b = app.client.post(url("phone_number=123&code_length=8")).bearer_auth(&t.token);
    let r = app.send_request(b.form(&[("phone_number", PHONE)])).await;
    let id = r.result()["request_id"].as_str().unwrap().to_owned();
    assert_eq!(app.code_for(&id).await.len(), 8);
    // A body `null` is "not given" and does not fall back to the query.
    let b = app.client.post(url("phone_number=%2B15551234567&code_length=6")).bearer_auth(&t.token);
    let r = app.send_request(b.json(&json!({"phone_number": null}))).await;
    assert_eq!(r.error(), "PHONE_NUMBER_INVALID");
}

async fn a_parameter_twice_in_one_source_is_invalid(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let q = "phone_number=%2B15551234567&phone_number=%2B15551234567&code_length=6";
    let r =
        app.send_request(app.client.get(app.url(&format!("/sendVerificationMessage?{q}"))).bearer_auth(&t.token)).await;
    assert_eq!(r.error(), "PHONE_NUMBER_INVALID");
    let r = app
        .call_raw(Some(&t), Method::POST, "/sendVerificationMessage", Some("application/x-www-form-urlencoded"), q)
        .await;
    assert_eq!(r.error(), "PHONE_NUMBER_INVALID");
    let body = format!(r#"{{"phone_number":"{PHONE}","phone_number":"+15551234568","code_length":6}}"#);
    let r = app.call_raw(Some(&t), Method::POST, "/sendVerificationMessage", Some("application/json"), body).await;
    assert_eq!(r.error(), "PHONE_NUMBER_INVALID");
    let body = format!(r#"{{"phone_number":"{PHONE}","code_length":6,"code_length":6}}"#);
    let r = app.call_raw(Some(&t), Method::POST, "/sendVerificationMessage", Some("application/json"), body).await;
    assert_eq!(r.error(), "CODE_LENGTH_INVALID");
    assert!(app.inbox(PHONE).await.is_empty());
}

async fn an_unencoded_plus_reads_as_the_plus_sign(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    // What `curl -d phone_number=+1555…` and a hand-written query send.
    let r = app
        .send_request(
            app.client
                .get(app.url("/sendVerificationMessage?phone_number=+15551234567&code_length=6"))
                .bearer_auth(&t.token),
        )
        .await;
    assert_eq!(r.result()["phone_number"], PHONE_DIGITS);
    let r = app
        .call_raw(
            Some(&t),
            Method::POST,
            "/sendVerificationMessage",
            Some("application/x-www-form-urlencoded"),
            "phone_number=+15551234567&code_length=6",
        )
        .await;
    assert_eq!(r.result()["phone_number"], PHONE_DIGITS);
    // Only one leading space stands for the plus; other spaces are not digits.
    for q in ["phone_number=++15551234567", "phone_number=1555+1234567", "phone_number=15551234567+"] {
        let r = app
            .send_request(
                app.client.get(app.url(&format!("/sendVerificationMessage?{q}&code_length=6"))).bearer_auth(&t.token),
            )
            .await;
        assert_eq!(r.error(), "PHONE_NUMBER_INVALID", "{q}");
    }
}

async fn errors_answer_http_200_by_default(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("0", None).await;
    let cases = [
        (app.call_as(None, "checkSendAbility", json!({"phone_number": PHONE})).await, "ACCESS_TOKEN_REQUIRED"),
        (app.call_as(Some("x"), "checkSendAbility", json!({"phone_number": PHONE})).await, "ACCESS_TOKEN_INVALID"),
        (app.call(&t, "checkSendAbility", json!({"phone_number": PHONE})).await, "BALANCE_NOT_ENOUGH"),
        (app.call(&t, "checkSendAbility", json!({"phone_number": "1"})).await, "PHONE_NUMBER_INVALID"),
        (app.call(&t, "checkVerificationStatus", json!({"request_id": "1"})).await, "REQUEST_ID_INVALID"),
        (app.call(&t, "nope", json!({})).await, "UNKNOWN_METHOD"),
        (app.call_raw(Some(&t), Method::POST, "/checkSendAbility", Some("application/json"), "{").await, "BAD_REQUEST"),
    ];
    for (reply, error) in cases {
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body, json!({"ok": false, "error": error}));
    }
}

async fn semantic_error_status(backend: Backend) {
    let app = spawn_app_with(backend, |c| set_key(c, "api.error_status", "\"semantic\"")).await;
    let t = app.create_tenant("0", Some("+447911123456")).await;
    let cases = [
        (app.call_as(None, "checkSendAbility", json!({"phone_number": PHONE})).await, 401, "ACCESS_TOKEN_REQUIRED"),
        (app.call_as(Some("x"), "checkSendAbility", json!({"phone_number": PHONE})).await, 401, "ACCESS_TOKEN_INVALID"),
        (app.call(&t, "checkSendAbility", json!({"phone_number": PHONE})).await, 402, "BALANCE_NOT_ENOUGH"),
        (app.call(&t, "checkVerificationStatus", json!({"request_id": "1"})).await, 404, "REQUEST_ID_INVALID"),
        (app.call(&t, "nope", json!({})).await, 404, "UNKNOWN_METHOD"),
        (app.call(&t, "checkSendAbility", json!({"phone_number": "1"})).await, 400, "PHONE_NUMBER_INVALID"),
        (app.call(&t, "checkVerificationStatus", json!({})).await, 400, "REQUEST_ID_REQUIRED"),
        (app.call(&t, "sendVerificationMessage", json!({"phone_number": PHONE})).await, 400, "CODE_LENGTH_REQUIRED"),
        (
            app.call_raw(Some(&t), Method::POST, "/checkSendAbility", Some("application/json"), "{").await,
            400,
            "BAD_REQUEST",
        ),
    ];
    for (reply, status, error) in cases {
        assert_eq!((reply.status, reply.error()), (status, error), "{reply:?}");
    }
    // Successes stay 200 (the tenant's own number is free, so a zero balance is fine).
    let r = app.call(&t, "sendVerificationMessage", json!({"phone_number": "+447911123456", "code_length": 6})).await;
    assert_eq!(r.status, 200);
    r.result();
}

async fn every_answer_has_a_request_id(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let admin = |b: reqwest::RequestBuilder| b.bearer_auth(&app.admin_token);
    let requests = vec![
        app.client.get(app.url("/healthz")),
        app.client.get(app.url("/readyz")),
        app.client.get(app.url("/sandbox")),
        app.client.get(app.url("/sandbox/v1/messages")),
        app.client.get(app.url("/sandbox/v1/messages?phone_number=x")),
        app.client.post(app.url(&format!("/sandbox/v1/messages/{id}/read"))),
        app.client.post(app.url("/sandbox/v1/messages/1/read")),
        admin(app.client.get(app.url("/admin/v1/tenants"))),
        app.client.get(app.url("/admin/v1/tenants")),
        admin(app.client.get(app.url("/admin/v1/nope"))),
        app.client.get(app.url("/checkSendAbility")),
        app.client.get(app.url("/a/b/c")),
        app.client.get(app.url("/")),
        app.client.put(app.url("/checkSendAbility")),
        app.client.post(app.url("/checkSendAbility")).bearer_auth(&t.token).json(&json!({"phone_number": PHONE})),
    ];
    let mut seen = std::collections::HashSet::new();
    for b in requests {
        let r = b.send().await.unwrap();
        let header = r.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_owned());
        let header = header.unwrap_or_else(|| panic!("no X-Request-Id on {} {}", r.status(), r.url()));
        assert!(!header.is_empty());
        assert!(seen.insert(header), "each answer has its own trace id");
        assert!(r.status().as_u16() < 500, "{} {}", r.status(), r.url());
    }
}

async fn other_http_methods_and_paths(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let body = json!({"phone_number": PHONE, "code_length": 6});
    for method in [Method::PUT, Method::DELETE, Method::PATCH, Method::OPTIONS] {
        let r = app
            .send_request(
                app.client
                    .request(method.clone(), app.url("/sendVerificationMessage"))
                    .bearer_auth(&t.token)
                    .json(&body),
            )
            .await;
        assert_eq!(r.error(), "BAD_REQUEST", "{method}");
        let r = app.send_request(app.client.request(method.clone(), app.url("/nope")).bearer_auth(&t.token)).await;
        assert_eq!(r.error(), "UNKNOWN_METHOD", "{method}");
    }
    for path in ["/a/b", "/", "/sendVerificationMessage/x", "/v1/sendVerificationMessage", "/%00", "/..%2F..%2Fetc"] {
        let r = app.send_request(app.client.post(app.url(path)).bearer_auth(&t.token).json(&body)).await;
        assert_eq!(r.error(), "UNKNOWN_METHOD", "{path}");
    }
    assert!(app.inbox(PHONE).await.is_empty(), "none of those sent anything");
    assert_eq!(app.balance(&t).await, 1_000_000);
    app.send(&t, PHONE).await;
}
