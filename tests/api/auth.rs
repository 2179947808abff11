//! Authentication of Gateway calls: `Authorization: Bearer` or `access_token`.

use crate::helpers::*;
use reqwest::Method;

verigram_testkit::on_every_backend!(
    missing_token_is_required_for_every_method,
    token_in_header_query_form_or_json,
    header_and_parameter_must_agree,
    malformed_or_unknown_tokens_are_invalid,
    token_comes_first_in_the_validation_order,
    a_token_acts_only_for_its_tenant,
);

const METHODS: [&str; 4] =
    ["sendVerificationMessage", "checkSendAbility", "checkVerificationStatus", "revokeVerificationMessage"];

fn full_params() -> Value {
    json!({"phone_number": PHONE, "code_length": 6, "request_id": "123456789012345", "code": "1234"})
}

async fn missing_token_is_required_for_every_method(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for method in METHODS {
        assert_eq!(app.call_as(None, method, full_params()).await.error(), "ACCESS_TOKEN_REQUIRED", "{method}");
        for empty in [json!(null), json!("")] {
            let mut params = full_params();
            params["access_token"] = empty.clone();
            let r = app.call_as(None, method, params).await;
            assert_eq!(r.error(), "ACCESS_TOKEN_REQUIRED", "{method} access_token={empty}");
        }
        let r = app.send_request(app.client.get(app.url(&format!("/{method}?access_token=&phone_number=1")))).await;
        assert_eq!(r.error(), "ACCESS_TOKEN_REQUIRED", "{method}");
    }
    assert_eq!(app.balance(&t).await, 1_000_000);
}

async fn token_in_header_query_form_or_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let url = app.url("/checkSendAbility");
    let requests = vec![
        ("bearer header", app.client.post(&url).bearer_auth(&t.token).json(&json!({"phone_number": PHONE}))),
        (
            "lower-case scheme",
            app.client
                .post(&url)
                .header("authorization", format!("bearer {}", t.token))
                .json(&json!({"phone_number": PHONE})),
        ),
        (
            "upper-case scheme",
            app.client
                .post(&url)
                .header("authorization", format!("BEARER {}", t.token))
                .json(&json!({"phone_number": PHONE})),
        ),
        (
            "padded header",
            app.client
                .post(&url)
                .header("authorization", format!("Bearer   {}  ", t.token))
                .json(&json!({"phone_number": PHONE})),
        ),
        ("query", app.client.get(&url).query(&[("access_token", t.token.as_str()), ("phone_number", PHONE)])),
        (
            "query on a POST",
            app.client.post(&url).query(&[("access_token", t.token.as_str()), ("phone_number", PHONE)]),
        ),
        ("form", app.client.post(&url).form(&[("access_token", t.token.as_str()), ("phone_number", PHONE)])),
        ("json", app.client.post(&url).json(&json!({"access_token": t.token, "phone_number": PHONE}))),
        (
            "both, equal",
            app.client.post(&url).bearer_auth(&t.token).json(&json!({"access_token": t.token, "phone_number": PHONE})),
        ),
    ];
    let n = requests.len() as i64;
    for (what, b) in requests {
        let r = app.send_request(b).await;
        assert_eq!(r.result()["phone_number"], PHONE_DIGITS, "{what}");
    }
    assert_eq!(app.balance(&t).await, 1_000_000 - n * 10_000);
}

async fn header_and_parameter_must_agree(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.create_tenant("1", None).await;
    let b = app.create_tenant("1", None).await;
    let url = app.url("/checkSendAbility");
    let cases = vec![
        (
            "two valid tokens of two tenants",
            app.client.post(&url).bearer_auth(&a.token).json(&json!({"access_token": b.token, "phone_number": PHONE})),
        ),
        (
            "valid header, unknown parameter",
            app.client.post(&url).bearer_auth(&a.token).json(&json!({"access_token": "nope", "phone_number": PHONE})),
        ),
        (
            "unknown header, valid parameter",
            app.client.post(&url).bearer_auth("nope").json(&json!({"access_token": a.token, "phone_number": PHONE})),
        ),
        (
            "valid header, query parameter of another tenant",
            app.client
                .get(&url)
                .bearer_auth(&a.token)
                .query(&[("access_token", b.token.as_str()), ("phone_number", PHONE)]),
        ),
        (
            "malformed header, valid parameter",
            app.client
                .post(&url)
                .header("authorization", "Basic dXNlcjpwYXNz")
                .json(&json!({"access_token": a.token, "phone_number": PHONE})),
        ),
    ];
    for (what, request) in cases {
        assert_eq!(app.send_request(request).await.error(), "ACCESS_TOKEN_INVALID", "{what}");
    }
    assert_eq!(app.balance(&a).await, 1_000_000);
    assert_eq!(app.balance(&b).await, 1_000_000);
    // The body wins over the query for `access_token` as for every parameter: the call is B's.
    let request = app
        .client
        .post(app.url(&format!("/checkSendAbility?access_token={}", a.token)))
        .json(&json!({"access_token": b.token, "phone_number": PHONE}));
    app.send_request(request).await.result();
    assert_eq!(app.balance(&a).await, 1_000_000);
    assert_eq!(app.balance(&b).await, 990_000);
}

async fn malformed_or_unknown_tokens_are_invalid(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let url = app.url("/checkSendAbility");
    let headers = [
        "Basic dXNlcjpwYXNz".to_owned(),
        "Bearer".to_owned(),
        "Token abc".to_owned(),
        t.token.clone(),
        format!("Bearer {}", "a".repeat(257)),
        format!("Bearer {}x", t.token),
        format!("Bearer {}", &t.token[..t.token.len() - 1]),
        format!("Bearer {}", t.token.to_ascii_uppercase()),
        "Bearer AAEFAAAAQKI_mDsJ0123456789abcdefghijklmnopqrs".to_owned(),
        format!("Bearer {} {}", t.token, t.token),
    ];
    for h in headers {
        let r = app
            .send_request(app.client.post(&url).header("authorization", &h).json(&json!({"phone_number": PHONE})))
            .await;
        assert_eq!(r.error(), "ACCESS_TOKEN_INVALID", "Authorization: {h:?}");
    }
    let r = app
        .send_request(
            app.client
                .post(&url)
                .header("authorization", b"Bearer \xff\xfe".as_slice())
                .json(&json!({"phone_number": PHONE})),
        )
        .await;
    assert_eq!(r.error(), "ACCESS_TOKEN_INVALID", "a non-ASCII header");
    let params = [
        json!("a".repeat(256)),
        json!("a".repeat(257)),
        json!("a".repeat(10_000)),
        json!(format!("{} ", t.token)),
        json!(format!("{}\n", t.token)),
        json!(format!("{}\u{0}", t.token)),
        json!("tökén"),
        json!([t.token]),
        json!({"t": t.token}),
        json!(12345),
    ];
    for p in params {
        let r = app.call_as(None, "checkSendAbility", json!({"access_token": p, "phone_number": PHONE})).await;
        let shown: String = p.to_string().chars().take(40).collect();
        assert_eq!(r.error(), "ACCESS_TOKEN_INVALID", "access_token {shown}");
    }
    assert_eq!(app.balance(&t).await, 1_000_000);
}

async fn token_comes_first_in_the_validation_order(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let junk = json!({"phone_number": "x", "code": "x", "code_length": "x", "request_id": "x", "ttl": "x"});
    for method in METHODS {
        assert_eq!(app.call_as(None, method, junk.clone()).await.error(), "ACCESS_TOKEN_REQUIRED", "{method}");
        assert_eq!(app.call_as(Some("nope"), method, junk.clone()).await.error(), "ACCESS_TOKEN_INVALID", "{method}");
    }
    // With a valid token, each method's first own check.
    let expected = ["PHONE_NUMBER_INVALID", "PHONE_NUMBER_INVALID", "REQUEST_ID_INVALID", "REQUEST_ID_INVALID"];
    for (method, error) in METHODS.iter().zip(expected) {
        assert_eq!(app.call(&t, method, junk.clone()).await.error(), error, "{method}");
    }
    let r = app.call_raw(None, Method::POST, "/checkVerificationStatus", Some("application/json"), "{}").await;
    assert_eq!(r.error(), "ACCESS_TOKEN_REQUIRED");
    let r = app.call_raw(Some(&t), Method::POST, "/checkVerificationStatus", Some("application/json"), "{}").await;
    assert_eq!(r.error(), "REQUEST_ID_REQUIRED");
}

async fn a_token_acts_only_for_its_tenant(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.create_tenant("1", None).await;
    let b = app.create_tenant("2", None).await;
    let r = app.send(&a, PHONE).await;
    assert_eq!(micros(&r["remaining_balance"]), 990_000);
    let r = app.send(&b, PHONE).await;
    assert_eq!(micros(&r["remaining_balance"]), 1_990_000);
    assert_eq!(app.charges(&a).await.len(), 1);
    assert_eq!(app.charges(&b).await.len(), 1);
}
