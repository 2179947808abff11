//! The operator's API under `/admin/v1`: tenants, settings and tokens.

use crate::helpers::*;
use reqwest::Method;

verigram_testkit::on_every_backend!(
    admin_needs_its_token,
    admin_api_is_off_without_a_token,
    create_list_and_get_tenants,
    create_tenant_validates_its_input,
    admin_bodies_must_be_json_objects,
    update_tenant_settings,
    senders_are_validated,
    issue_list_and_revoke_tokens,
    rotation_keeps_the_old_token_for_the_overlap,
    rotation_with_an_explicit_overlap,
    ip_allow_lists,
);

async fn status_of(b: reqwest::RequestBuilder) -> (u16, Value) {
    let r = b.send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Whether a token works for a Gateway call (and how it fails if not).
async fn token_works(app: &TestApp, token: &str) -> Result<(), String> {
    let r = app.call_as(Some(token), "checkVerificationStatus", json!({"request_id": "100000000000000"})).await;
    match r.error() {
        "REQUEST_ID_INVALID" => Ok(()),
        other => Err(other.to_owned()),
    }
}

async fn admin_needs_its_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let paths = [
        (Method::GET, "/admin/v1/tenants".to_owned()),
        (Method::POST, "/admin/v1/tenants".to_owned()),
        (Method::GET, format!("/admin/v1/tenants/{}", t.id)),
        (Method::POST, format!("/admin/v1/tenants/{}/balance", t.id)),
        (Method::GET, format!("/admin/v1/tenants/{}/tokens", t.id)),
        (Method::DELETE, format!("/admin/v1/tenants/{}/tokens/{}", t.id, t.token_id)),
        (Method::GET, "/admin/v1/nope".to_owned()),
    ];
    let bad_auth: [Option<String>; 6] = [
        None,
        Some("Bearer wrong-admin-token-0123456789".into()),
        Some(format!("Bearer {}x", app.admin_token)),
        Some(format!("Basic {}", app.admin_token)),
        Some(app.admin_token.clone()),
        Some(format!("Bearer {}", t.token)),
    ];
    for (method, path) in &paths {
        for auth in &bad_auth {
            let mut b = app.client.request(method.clone(), app.url(path)).json(&json!({"name": "x", "amount": 1000}));
            if let Some(a) = auth {
                b = b.header("authorization", a);
            }
            let (status, body) = status_of(b).await;
            assert_eq!((status, &body["error"]), (401, &json!("unauthorized")), "{method} {path} with {auth:?}");
        }
    }
    assert_eq!(app.balance(&t).await, 1_000_000);
    assert_eq!(token_works(&app, &t.token).await, Ok(()), "the token was not revoked");
    // And the admin token is no Gateway token.
    assert_eq!(token_works(&app, &app.admin_token).await, Err("ACCESS_TOKEN_INVALID".into()));
}

async fn admin_api_is_off_without_a_token(backend: Backend) {
    for mode in ["ok", "semantic"] {
        let app = spawn_app_with(backend, |c| {
            set_key(c, "admin.token", "\"\"");
            set_key(c, "api.error_status", &format!("{mode:?}"));
        })
        .await;
        let expected_status = if mode == "ok" { 200 } else { 404 };
        for (method, path) in [(Method::GET, "/admin/v1/tenants"), (Method::POST, "/admin/v1/tenants")] {
            for auth in [None, Some("Bearer "), Some("Bearer test-admin-token-0123456789abcdef")] {
                let mut b = app.client.request(method.clone(), app.url(path)).json(&json!({"name": "x"}));
                if let Some(a) = auth {
                    b = b.header("authorization", a);
                }
                let r = app.send_request(b).await;
                assert_eq!((r.status, r.error()), (expected_status, "UNKNOWN_METHOD"), "{mode}: {method} {path}");
            }
        }
        // The Gateway works for tenants made some other way.
        let services = app.services.clone();
        let new = verigram::service::NewTenant {
            name: "Direct".into(),
            balance: verigram::domain::Credits::from_micros(1_000_000),
            settings: verigram::domain::TenantSettings::default(),
        };
        let (tenant, token, record) = services.create_tenant(new).await.unwrap();
        let t = Tenant { id: tenant.id.to_string(), token: token.expose().to_owned(), token_id: record.id };
        assert_eq!(micros(&app.send(&t, PHONE).await["remaining_balance"]), 990_000);
    }
}

async fn create_list_and_get_tenants(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, listed) = app.admin(Method::GET, "/tenants", None).await;
    assert_eq!((status, listed), (200, json!([])));
    let now = app.now_secs();
    let body = json!({"name": "  Acme Ltd ", "balance": "12.34", "phone_number": "+447911123456", "max_attempts": 3, "price": 0.02});
    let (status, a) = app.admin(Method::POST, "/tenants", Some(body)).await;
    assert_eq!(status, 201, "{a}");
    let id = a["id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "a UUID: {id}");
    assert_eq!(a["name"], "Acme Ltd");
    assert_eq!(micros(&a["balance"]), 12_340_000);
    assert_eq!(a["settings"], json!({"phone_number": "447911123456", "max_attempts": 3, "price": 0.02, "senders": {}}));
    assert_eq!(a["created_at"], now);
    let token = a["token"].as_str().unwrap();
    assert!(token.len() >= 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{token}");
    assert!(a["token_id"].as_str().unwrap().starts_with("tok_"));
    assert_no_null(&a, "created tenant");
    let b = app.create_tenant("0", None).await;
    let (status, listed) = app.admin(Method::GET, "/tenants", None).await;
    assert_eq!(status, 200);
    let mut ids: Vec<&str> = listed.as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    ids.sort_unstable();
    let mut expected = vec![id, b.id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected);
    assert!(!listed.to_string().contains(token), "listings never show tokens");
    let (status, got) = app.admin(Method::GET, &format!("/tenants/{id}"), None).await;
    assert_eq!(status, 200);
    let mut created = a.clone();
    created.as_object_mut().unwrap().retain(|k, _| k != "token" && k != "token_id");
    assert_eq!(got, created);
    for missing in ["00000000-0000-4000-8000-000000000000", "not-a-uuid", "..%2F..%2Fetc", "%7Bt%3Ax%7D"] {
        let (status, body) = app.admin(Method::GET, &format!("/tenants/{missing}"), None).await;
        assert_eq!((status, &body["error"]), (404, &json!("not_found")), "{missing}");
    }
    let (status, body) = app.admin(Method::GET, "/nope", None).await;
    assert_eq!((status, &body["error"]), (404, &json!("not_found")));
}

async fn create_tenant_validates_its_input(backend: Backend) {
    let app = spawn_app(backend).await;
    for bad in [
        json!({}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": "x".repeat(129)}),
        json!({"name": "x", "balance": -1}),
        json!({"name": "x", "balance": "0.0000001"}),
        json!({"name": "x", "balance": "lots"}),
        json!({"name": "x", "phone_number": "123"}),
        json!({"name": "x", "max_attempts": 0}),
        json!({"name": "x", "max_attempts": 11}),
        json!({"name": "x", "max_attempts": 300}),
        json!({"name": "x", "price": "-0.01"}),
        json!({"name": "x", "unknown": 1}),
    ] {
        let (status, body) = app.admin(Method::POST, "/tenants", Some(bad.clone())).await;
        assert_eq!((status, &body["error"]), (400, &json!("invalid")), "{bad}: {body}");
    }
    let b = app.client.post(app.url("/admin/v1/tenants")).bearer_auth(&app.admin_token);
    let (status, _) = status_of(b.header("content-type", "application/json").body("{")).await;
    assert_eq!(status, 400);
    let (_, listed) = app.admin(Method::GET, "/tenants", None).await;
    assert_eq!(listed, json!([]), "nothing was created");
    let (status, body) = app.admin(Method::POST, "/tenants", Some(json!({"name": "x".repeat(128)}))).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(micros(&body["balance"]), 0);
}

async fn admin_bodies_must_be_json_objects(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let cases = [
        (Method::POST, "/tenants".to_owned(), json!(["x"])),
        (Method::POST, "/tenants".to_owned(), json!(["x", "5"])),
        (Method::POST, format!("/tenants/{}/balance", t.id), json!([100])),
        (Method::PATCH, format!("/tenants/{}", t.id), json!([null, 1])),
    ];
    let mut accepted = Vec::new();
    for (method, path, body) in cases {
        let (status, answer) = app.admin(method.clone(), &path, Some(body.clone())).await;
        if (status, &answer["error"]) != (400, &json!("invalid")) {
            accepted.push(format!("{method} {path} {body} -> {status} {answer}"));
        }
    }
    assert!(accepted.is_empty(), "array bodies accepted:\n{}", accepted.join("\n"));
    let (_, listed) = app.admin(Method::GET, "/tenants", None).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "no tenant was created from an array");
    assert_eq!(app.balance(&t).await, 1_000_000);
}

async fn update_tenant_settings(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let (status, body) =
        app.patch_tenant(&t, json!({"max_attempts": 10, "price": "0.5", "phone_number": "15551230000"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["settings"],
        json!({"max_attempts": 10, "price": 0.5, "phone_number": "15551230000", "senders": {}})
    );
    // Absent fields stay, `null` clears.
    let (_, body) = app.patch_tenant(&t, json!({"price": null})).await;
    assert_eq!(body["settings"], json!({"max_attempts": 10, "phone_number": "15551230000", "senders": {}}));
    for bad in [
        json!({"max_attempts": 0}),
        json!({"max_attempts": 11}),
        json!({"price": -1}),
        json!({"phone_number": "abc"}),
        json!({"balance": 100}),
        json!({"name": "other"}),
    ] {
        let (status, body) = app.patch_tenant(&t, bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(app.tenant(&t).await["settings"]["max_attempts"], 10, "refused patches changed nothing");
    assert_eq!(app.balance(&t).await, 1_000_000);
    let (status, _) = app
        .admin(Method::PATCH, "/tenants/00000000-0000-4000-8000-000000000000", Some(json!({"max_attempts": 2})))
        .await;
    assert_eq!(status, 404);
}

async fn senders_are_validated(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let path = |name: &str| format!("/tenants/{}/senders/{name}", t.id);
    let (status, body) = app.admin(Method::PUT, &path("MyShop"), Some(json!({"verified": true}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"]["senders"], json!({"myshop": {"verified": true}}));
    let (status, body) = app.admin(Method::PUT, &path("other_shop"), None).await;
    assert_eq!(status, 200, "no body: unverified: {body}");
    assert_eq!(body["settings"]["senders"]["other_shop"], json!({"verified": false}));
    for bad in ["abcd", "1shop", "my-shop", "%7Bt%7D"] {
        let (status, body) = app.admin(Method::PUT, &path(bad), Some(json!({"verified": true}))).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = app.admin(Method::PUT, &path("goodname"), Some(json!({"verified": "yes"}))).await;
    assert_eq!(status, 400);
    let (status, body) = app.admin(Method::DELETE, &path("myshop"), None).await;
    assert_eq!(status, 200);
    assert_eq!(body["settings"]["senders"], json!({"other_shop": {"verified": false}}));
}

async fn issue_list_and_revoke_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let other = app.create_tenant("1", None).await;
    let (status, issued) = app.admin(Method::POST, &format!("/tenants/{}/tokens", t.id), None).await;
    assert_eq!(status, 201, "{issued}");
    let second = issued["token"].as_str().unwrap().to_owned();
    let second_id = issued["token_id"].as_str().unwrap().to_owned();
    assert_eq!(issued["active"], true);
    assert_eq!(issued["ip_allow"], json!([]));
    assert_eq!(token_works(&app, &t.token).await, Ok(()));
    assert_eq!(token_works(&app, &second).await, Ok(()));
    let (status, tokens) = app.admin(Method::GET, &format!("/tenants/{}/tokens", t.id), None).await;
    assert_eq!(status, 200);
    assert_eq!(tokens.as_array().unwrap().len(), 2);
    assert!(!tokens.to_string().contains(&t.token) && !tokens.to_string().contains(&second), "no token text");
    // Another tenant's path cannot revoke this tenant's token.
    let (status, _) = app.admin(Method::DELETE, &format!("/tenants/{}/tokens/{}", other.id, t.token_id), None).await;
    assert_eq!(status, 404);
    assert_eq!(token_works(&app, &t.token).await, Ok(()));
    // Revocation is immediate.
    app.advance(Duration::from_secs(1));
    let (status, revoked) = app.admin(Method::DELETE, &format!("/tenants/{}/tokens/{}", t.id, t.token_id), None).await;
    assert_eq!(status, 200, "{revoked}");
    assert_eq!(revoked["active"], false);
    assert_eq!(revoked["revoked_at"], app.now_secs());
    assert_eq!(token_works(&app, &t.token).await, Err("ACCESS_TOKEN_INVALID".into()));
    let r = app.call(&t, "sendVerificationMessage", json!({"phone_number": PHONE, "code_length": 6})).await;
    assert_eq!(r.error(), "ACCESS_TOKEN_INVALID");
    assert_eq!(token_works(&app, &second).await, Ok(()));
    // A revoked token stays revoked: it cannot be rotated back to life, nor revoked into anything else.
    let rotate = format!("/tenants/{}/tokens/{}/rotate", t.id, t.token_id);
    let (status, _) = app.admin(Method::POST, &rotate, None).await;
    assert_eq!(status, 400);
    let (status, _) = app.admin(Method::DELETE, &format!("/tenants/{}/tokens/{}", t.id, t.token_id), None).await;
    assert_eq!(status, 200, "revoking twice is fine");
    assert_eq!(token_works(&app, &t.token).await, Err("ACCESS_TOKEN_INVALID".into()));
    let (status, _) = app.admin(Method::DELETE, &format!("/tenants/{}/tokens/tok_nope", t.id), None).await;
    assert_eq!(status, 404);
    let (_, tokens) = app.admin(Method::GET, &format!("/tenants/{}/tokens", t.id), None).await;
    let active: Vec<&Value> = tokens.as_array().unwrap().iter().filter(|k| k["active"] == true).collect();
    assert_eq!(active.len(), 1);
    assert_eq!(active[0]["id"], second_id.as_str());
}

async fn rotation_keeps_the_old_token_for_the_overlap(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let (status, rotated) =
        app.admin(Method::POST, &format!("/tenants/{}/tokens/{}/rotate", t.id, t.token_id), None).await;
    assert_eq!(status, 201, "{rotated}");
    let new = rotated["token"].as_str().unwrap().to_owned();
    assert_ne!(new, t.token);
    assert_eq!(rotated["previous"]["id"], t.token_id.as_str());
    assert_eq!(rotated["previous"]["expires_at"], app.now_secs() + 86_400, "tokens.rotation_overlap");
    assert_eq!(token_works(&app, &t.token).await, Ok(()));
    assert_eq!(token_works(&app, &new).await, Ok(()));
    app.advance(Duration::from_secs(86_399));
    assert_eq!(token_works(&app, &t.token).await, Ok(()), "still inside the overlap");
    app.advance(Duration::from_secs(1));
    assert_eq!(token_works(&app, &t.token).await, Err("ACCESS_TOKEN_INVALID".into()));
    assert_eq!(token_works(&app, &new).await, Ok(()));
}

async fn rotation_with_an_explicit_overlap(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let app = &app;
    let rotate = |token_id: &str, overlap: u64| {
        let path = format!("/tenants/{}/tokens/{token_id}/rotate", t.id);
        async move { app.admin(Method::POST, &path, Some(json!({"overlap": overlap}))).await }
    };
    let (status, first) = rotate(&t.token_id, 60).await;
    assert_eq!(status, 201, "{first}");
    let first_token = first["token"].as_str().unwrap().to_owned();
    app.advance(Duration::from_secs(59));
    assert_eq!(token_works(app, &t.token).await, Ok(()));
    app.advance(Duration::from_secs(1));
    assert_eq!(token_works(app, &t.token).await, Err("ACCESS_TOKEN_INVALID".into()));
    // No overlap: the old token ends at once.
    let (status, second) = rotate(first["token_id"].as_str().unwrap(), 0).await;
    assert_eq!(status, 201, "{second}");
    assert_eq!(token_works(app, &first_token).await, Err("ACCESS_TOKEN_INVALID".into()));
    assert_eq!(token_works(app, second["token"].as_str().unwrap()).await, Ok(()));
    let (status, _) = app
        .admin(Method::POST, &format!("/tenants/{}/tokens/{}/rotate", t.id, t.token_id), Some(json!({"overlap": -1})))
        .await;
    assert_eq!(status, 400);
}

async fn ip_allow_lists(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let path = format!("/tenants/{}/tokens/{}/ip_allow", t.id, t.token_id);
    for (list, works) in [
        (json!(["10.0.0.0/8"]), false),
        (json!(["127.0.0.1/32"]), true),
        (json!(["::1/128"]), false),
        (json!(["192.0.2.0/24", "127.0.0.0/8"]), true),
        (json!(["127.0.0.2/32"]), false),
        (json!(["0.0.0.0/0"]), true),
        (json!([]), true),
    ] {
        let (status, body) = app.admin(Method::PUT, &path, Some(json!({"ip_allow": list}))).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["ip_allow"], list);
        let expected = if works { Ok(()) } else { Err("ACCESS_TOKEN_INVALID".to_owned()) };
        assert_eq!(token_works(&app, &t.token).await, expected, "ip_allow {list}");
    }
    for bad in [json!({"ip_allow": ["nope"]}), json!({"ip_allow": "10.0.0.0/8"}), json!({})] {
        let (status, _) = app.admin(Method::PUT, &path, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}");
    }
    // Issued with a list that excludes us; its successor inherits the list.
    let (status, issued) = app
        .admin(Method::POST, &format!("/tenants/{}/tokens", t.id), Some(json!({"ip_allow": ["192.0.2.0/24"]})))
        .await;
    assert_eq!(status, 201, "{issued}");
    assert_eq!(token_works(&app, issued["token"].as_str().unwrap()).await, Err("ACCESS_TOKEN_INVALID".into()));
    let rotate = format!("/tenants/{}/tokens/{}/rotate", t.id, issued["token_id"].as_str().unwrap());
    let (status, rotated) = app.admin(Method::POST, &rotate, None).await;
    assert_eq!(status, 201);
    assert_eq!(rotated["ip_allow"], json!(["192.0.2.0/24"]));
    assert_eq!(token_works(&app, rotated["token"].as_str().unwrap()).await, Err("ACCESS_TOKEN_INVALID".into()));
}
