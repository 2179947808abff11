//! The OpenAPI document (`GET /openapi.json`) against the code that answers: it is OpenAPI
//! 3.1.0 with the crate's version, its `$ref`s resolve, it lists exactly the routes the code
//! registers (read from the route tables in `src/api/`, both ways), every documented operation
//! is routed (the real server answers it with a documented status and media type), and real
//! answers of every kind validate against the documented schemas.
//!
//! Fuzzing against the document is `tests/openapi/schemathesis.sh` (needs Python and PyPI).

// Failing loudly is the point of a test (clippy.toml's allowances cover `#[test]` fns only).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use verigram::config::Settings;
use verigram::domain::ManualClock;
use verigram::startup::Application;

const ADMIN_TOKEN: &str = "openapi-test-admin-token-0123456789abcdef";
const PHONE: &str = "+15551234567";

// ------------------------------------------------------------------------------------------
// The app.

struct App {
    base: String,
    client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

impl Drop for App {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

/// The service on a loopback port: memory store, sandbox sender, admin API on, rate limits off.
async fn spawn(error_status: &str) -> App {
    let off = "{ rate = 0, per = 1, burst = 1 }";
    let mut toml = format!(
        "server.workers = 1\nadmin.token = \"{ADMIN_TOKEN}\"\n\
         codes.pepper = \"openapi-test-pepper-0123456789abcdefghijkl\"\ncodes.hash = \"hmac-sha256\"\n\
         store.url = \"memory://\"\nsender.kind = \"sandbox\"\napi.error_status = \"{error_status}\"\n\
         callbacks.allow_http = true\ncallbacks.allow_private_networks = true\n"
    );
    for limit in ["tenant", "tenant_daily", "token", "phone", "country", "ip", "wrong_checks"] {
        toml.push_str(&format!("limits.{limit} = {off}\n"));
    }
    let settings = Settings::from_toml(&toml).unwrap_or_else(|e| panic!("test settings: {e}\n{toml}"));
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Application::build_with(settings, Arc::new(ManualClock::starting_now()), listener).await.unwrap();
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(30)).build().unwrap();
    App { base, client, handle }
}

impl App {
    async fn document(&self) -> Value {
        let r = self.client.get(format!("{}/openapi.json", self.base)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
        r.json().await.unwrap()
    }

    /// Sends a request and returns the answer, checked against the document: the operation
    /// (`template` with `method`) documents the status, the media type and the body's schema.
    async fn call(
        &self,
        doc: &Value,
        method: &str,
        template: &str,
        path: &str,
        auth: Option<&str>,
        body: Body,
    ) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let mut request = self.client.request(method.parse().unwrap(), url);
        if let Some(token) = auth {
            request = request.bearer_auth(token);
        }
        request = match body {
            Body::None => request,
            Body::Json(v) => request.json(&v),
            Body::Form(pairs) => request.form(&pairs),
        };
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let media = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
        let text = response.text().await.unwrap();
        let what = format!("{method} {path} → {status} {text:.300}");
        let op = &doc["paths"][template][method.to_ascii_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented ({what})");
        let answer = &op["responses"][status.to_string()];
        assert!(answer.is_object(), "status {status} is not documented for {method} {template} ({what})");
        let Some(content) = answer["content"].as_object() else {
            assert!(text.is_empty(), "{what}: documented without a body");
            return (status, Value::Null);
        };
        let media = media.unwrap_or_else(|| panic!("{what}: no content type"));
        let essence = media.split(';').next().unwrap().trim();
        let schema = &content.get(essence).unwrap_or_else(|| panic!("{what}: {media} is not documented"))["schema"];
        if essence != "application/json" {
            return (status, Value::String(text));
        }
        let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON: {e}"));
        let mut errors = Vec::new();
        validate(doc, schema, &value, "$", &mut errors);
        assert!(errors.is_empty(), "{what}\ndoes not match its documented schema:\n{}", errors.join("\n"));
        (status, value)
    }
}

enum Body {
    None,
    Json(Value),
    Form(Vec<(&'static str, String)>),
}

// ------------------------------------------------------------------------------------------
// A small JSON Schema validator: the keywords the document uses, except `pattern` and
// `format` (no regex engine among the dependencies). It is stricter than JSON Schema in one
// way: an object may have only the properties its schema names (over all of its `allOf`,
// `oneOf` and `anyOf` parts), unless `additionalProperties` is a schema, so an answer's field
// that the document forgot is an error.

fn resolve<'a>(doc: &'a Value, reference: &str) -> &'a Value {
    let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref {reference}"));
    doc.pointer(pointer).unwrap_or_else(|| panic!("$ref {reference} does not resolve"))
}

fn is_valid(doc: &Value, schema: &Value, value: &Value) -> bool {
    let mut errors = Vec::new();
    check(doc, schema, value, "$", &mut errors);
    errors.is_empty()
}

/// Collects the property names `schema` and its parts name; false when it takes any (a map,
/// or an object schema without `properties`). Parts that are not objects add nothing.
fn named_properties(doc: &Value, schema: &Value, names: &mut BTreeSet<String>) -> bool {
    if let Some(reference) = schema["$ref"].as_str() {
        return named_properties(doc, resolve(doc, reference), names);
    }
    if schema["type"].as_str().is_some_and(|t| t != "object") {
        return true;
    }
    let mut closed = true;
    let mut composed = false;
    for key in ["allOf", "oneOf", "anyOf"] {
        for part in schema[key].as_array().into_iter().flatten() {
            composed = true;
            closed &= named_properties(doc, part, names);
        }
    }
    if let Some(properties) = schema["properties"].as_object() {
        names.extend(properties.keys().cloned());
    } else if !composed {
        closed = false;
    }
    closed && !schema["additionalProperties"].is_object()
}

fn validate(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    check(doc, schema, value, at, errors);
    if let Some(object) = value.as_object() {
        let mut names = BTreeSet::new();
        if named_properties(doc, schema, &mut names) {
            for key in object.keys().filter(|k| !names.contains(*k)) {
                errors.push(format!("{at}: property {key} is not documented"));
            }
        }
    }
}

fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64() || value.as_f64().is_some_and(|f| f.fract() == 0.0),
        "array" => value.is_array(),
        "object" => value.is_object(),
        other => panic!("unknown type {other}"),
    }
}

/// The keywords of `schema` itself (its parts are checked by `check`, the properties and items
/// by `validate`).
fn check(doc: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema["$ref"].as_str() {
        check(doc, resolve(doc, reference), value, at, errors);
    }
    if let Some(all) = schema["allOf"].as_array() {
        for s in all {
            check(doc, s, value, at, errors);
        }
    }
    if let Some(any) = schema["anyOf"].as_array() {
        if !any.iter().any(|s| is_valid(doc, s, value)) {
            errors.push(format!("{at}: matches none of anyOf: {value}"));
        }
    }
    if let Some(one) = schema["oneOf"].as_array() {
        let n = one.iter().filter(|s| is_valid(doc, s, value)).count();
        if n != 1 {
            errors.push(format!("{at}: matches {n} of oneOf (exactly one expected): {value}"));
        }
    }
    match &schema["type"] {
        Value::String(ty) if !has_type(value, ty) => errors.push(format!("{at}: not {ty}: {value}")),
        Value::Array(types) if !types.iter().any(|t| has_type(value, t.as_str().unwrap())) => {
            errors.push(format!("{at}: none of {types:?}: {value}"))
        }
        _ => {}
    }
    if let Some(values) = schema["enum"].as_array() {
        if !values.contains(value) {
            errors.push(format!("{at}: {value} is not one of {values:?}"));
        }
    }
    if let (Some(min), Some(n)) = (schema["minimum"].as_f64(), value.as_f64()) {
        if n < min {
            errors.push(format!("{at}: {n} < minimum {min}"));
        }
    }
    if let (Some(max), Some(n)) = (schema["maximum"].as_f64(), value.as_f64()) {
        if n > max {
            errors.push(format!("{at}: {n} > maximum {max}"));
        }
    }
    if let (Some(max), Some(s)) = (schema["maxLength"].as_u64(), value.as_str()) {
        if s.chars().count() as u64 > max {
            errors.push(format!("{at}: longer than {max}"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema["properties"].as_object();
        for required in schema["required"].as_array().into_iter().flatten() {
            if !object.contains_key(required.as_str().unwrap()) {
                errors.push(format!("{at}: required {required} is missing"));
            }
        }
        for (key, v) in object {
            match properties.and_then(|p| p.get(key)) {
                Some(s) => validate(doc, s, v, &format!("{at}.{key}"), errors),
                None => match &schema["additionalProperties"] {
                    Value::Bool(false) => errors.push(format!("{at}: unexpected property {key}")),
                    s @ Value::Object(_) => validate(doc, s, v, &format!("{at}.{key}"), errors),
                    _ => {}
                },
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, v) in array.iter().enumerate() {
            validate(doc, items, v, &format!("{at}[{i}]"), errors);
        }
    }
}

// ------------------------------------------------------------------------------------------
// The routes the code registers, read from its route tables.

/// `(METHOD, path)` of each `.route("…", web::method()…)` in `function`'s body in `source`,
/// under the scope's prefix (`web::scope("…")`). `web::route()` (any method) is skipped.
fn routes_in(source: &str, function: &str) -> BTreeSet<(String, String)> {
    let start = source.find(function).unwrap_or_else(|| panic!("{function} not found"));
    let body = &source[start..];
    let body = &body[..body.find("\n}\n").unwrap()];
    let prefix = body.split("web::scope(\"").nth(1).map_or("", |rest| &rest[..rest.find('"').unwrap()]);
    let mut routes = BTreeSet::new();
    for part in body.split("route(\"").skip(1) {
        let path = &part[..part.find('"').unwrap()];
        let method = part.split("web::").nth(1).unwrap();
        let method = &method[..method.find('(').unwrap()];
        if method == "route" {
            continue;
        }
        routes.insert((method.to_ascii_uppercase(), format!("{prefix}{path}")));
    }
    routes
}

/// The Gateway method names, from `GatewayMethod::as_str`.
fn gateway_methods() -> Vec<String> {
    let source = include_str!("../src/api/gateway.rs");
    let start = source.find("fn as_str(").unwrap();
    let body = &source[start..start + source[start..].find("\n    }\n").unwrap()];
    body.split("=> \"").skip(1).map(|rest| rest[..rest.find('"').unwrap()].to_owned()).collect()
}

fn registered_routes() -> BTreeSet<(String, String)> {
    let mut routes = routes_in(include_str!("../src/api/mod.rs"), "pub fn configure(");
    routes.extend(routes_in(include_str!("../src/api/admin/mod.rs"), "pub fn scope("));
    routes.extend(routes_in(include_str!("../src/api/sandbox.rs"), "pub fn scope("));
    for name in gateway_methods() {
        routes.insert(("GET".into(), format!("/{name}")));
        routes.insert(("POST".into(), format!("/{name}")));
    }
    routes
}

fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.insert((method.to_ascii_uppercase(), path.clone()));
        }
    }
    routes
}

fn refs(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

// ------------------------------------------------------------------------------------------
// The tests.

#[tokio::test]
async fn the_document_is_openapi_3_1_with_the_crate_version_and_resolves() {
    let app = spawn("ok").await;
    let doc = app.document().await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 100, "the document uses $refs: {}", all.len());
    for r in &all {
        resolve(&doc, r);
    }
    // Every operation has an id, a tag and at least one answer; ids are unique.
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{method} {path}: no operationId"));
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
            assert!(op["tags"][0].is_string(), "{method} {path}: no tag");
            assert!(!op["responses"].as_object().unwrap().is_empty(), "{method} {path}: no responses");
        }
    }
}

#[tokio::test]
async fn the_document_lists_exactly_the_registered_routes() {
    let registered = registered_routes();
    assert!(registered.len() >= 30, "the route tables were read: {registered:?}");
    assert!(registered.contains(&("GET".into(), "/openapi.json".into())), "src/api/mod.rs routes /openapi.json");
    assert!(registered.contains(&("POST".into(), "/admin/v1/tenants".into())));
    assert_eq!(gateway_methods().len(), 4);
    let app = spawn("ok").await;
    let documented = documented_routes(&app.document().await);
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&registered).collect();
    assert!(undocumented.is_empty(), "routes missing from the document: {undocumented:?}");
    assert!(unrouted.is_empty(), "documented routes the code does not register: {unrouted:?}");
}

/// Every documented operation reaches its handler: with placeholder path parameters the
/// server answers a documented status (and never the admin scope's "no such admin resource"
/// or the Gateway's `UNKNOWN_METHOD`, which would mean the route is not there).
#[tokio::test]
async fn every_documented_operation_is_routed() {
    let app = spawn("semantic").await;
    let doc = app.document().await;
    for (template, item) in doc["paths"].as_object().unwrap() {
        let path = template.replace("{id}", "00000000-0000-4000-8000-000000000000").replace('{', "x").replace('}', "");
        for method in item.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            let auth = if template.starts_with("/admin/") { Some(ADMIN_TOKEN) } else { Some("no-such-token") };
            let (status, body) = app.call(&doc, &method, template, &path, auth, Body::None).await;
            let routed = body["message"] != "no such admin resource" && body["error"] != "UNKNOWN_METHOD";
            assert!(routed, "{method} {path} → {status} {body}: not routed");
        }
    }
}

/// Real answers of every operation, successes and errors, in both `api.error_status` modes,
/// validate against the documented schemas (`App::call` checks each).
#[tokio::test]
async fn real_answers_match_the_documented_schemas() {
    for mode in ["ok", "semantic"] {
        let app = spawn(mode).await;
        let doc = app.document().await;
        exercise(&app, &doc, mode).await;
    }
}

/// Calls with one token, checked against the document.
struct Caller<'a> {
    app: &'a App,
    doc: &'a Value,
    token: Option<String>,
}

impl Caller<'_> {
    async fn call(&self, method: &str, template: &str, path: &str, body: Body) -> (u16, Value) {
        self.app.call(self.doc, method, template, path, self.token.as_deref(), body).await
    }

    /// A fixed route: the path is its own template.
    async fn at(&self, method: &str, path: &str, body: Body) -> (u16, Value) {
        let template = path.split('?').next().unwrap();
        self.call(method, template, path, body).await
    }
}

async fn exercise(app: &App, doc: &Value, mode: &str) {
    let admin = Caller { app, doc, token: Some(ADMIN_TOKEN.to_owned()) };
    let anonymous = Caller { app, doc, token: None };
    // The HTTP status of a Gateway error in this `api.error_status` mode.
    let error_status = |semantic: u16| if mode == "ok" { 200 } else { semantic };

    // Operations.
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json", "/sandbox"] {
        let (s, _) = anonymous.at("GET", path, Body::None).await;
        assert_eq!(s, 200, "{path}");
    }

    // Tenants.
    let body = json!({"name": "Acme", "balance": "10.5", "price": 0.01, "max_attempts": 3,
        "phone_number": "+447700900123", "templates": {"en": "{service}: {code}"},
        "limits": {"phone": {"rate": 100, "per": 60, "burst": 10}}, "countries": {"block": [7]},
        "daily_spend_cap": 100});
    let (s, tenant) = admin.at("POST", "/admin/v1/tenants", Body::Json(body)).await;
    assert_eq!(s, 201);
    let id = tenant["id"].as_str().unwrap().to_owned();
    let t = |suffix: &str| format!("/admin/v1/tenants/{id}{suffix}");
    assert_eq!(admin.at("POST", "/admin/v1/tenants", Body::Json(json!({"name": ""}))).await.0, 400);
    assert_eq!(admin.at("POST", "/admin/v1/tenants", Body::Json(json!([]))).await.0, 400);
    assert_eq!(anonymous.at("GET", "/admin/v1/tenants", Body::None).await.0, 401);
    admin.at("GET", "/admin/v1/tenants", Body::None).await;
    admin.call("GET", "/admin/v1/tenants/{id}", &t(""), Body::None).await;
    assert_eq!(admin.call("GET", "/admin/v1/tenants/{id}", "/admin/v1/tenants/nope", Body::None).await.0, 404);
    let patch = json!({"price": null, "max_attempts": 5, "phone_number": "", "countries": {"allow": [1, 44]}});
    admin.call("PATCH", "/admin/v1/tenants/{id}", &t(""), Body::Json(patch)).await;
    let credit = json!({"amount": 5, "note": "top-up"});
    admin.call("POST", "/admin/v1/tenants/{id}/balance", &t("/balance"), Body::Json(credit)).await;
    let debit = json!({"amount": -1000});
    assert_eq!(admin.call("POST", "/admin/v1/tenants/{id}/balance", &t("/balance"), Body::Json(debit)).await.0, 409);
    let (s, _) = admin.call("GET", "/admin/v1/tenants/{id}/ledger", &t("/ledger?limit=x"), Body::None).await;
    assert_eq!(s, 400, "a query string that does not parse answers JSON");
    let sender = "/admin/v1/tenants/{id}/senders/{username}";
    admin.call("PUT", sender, &t("/senders/@acme_codes"), Body::Json(json!({"verified": true}))).await;
    assert_eq!(admin.call("PUT", sender, &t("/senders/x"), Body::None).await.0, 400);
    let explain = json!({"phone_number": PHONE, "ip": "203.0.113.7"});
    admin.call("POST", "/admin/v1/tenants/{id}/limits/explain", &t("/limits/explain"), Body::Json(explain)).await;

    // Tokens.
    let tokens = "/admin/v1/tenants/{id}/tokens";
    let (_, issued) = admin.call("POST", tokens, &t("/tokens"), Body::Json(json!({"ip_allow": ["127.0.0.0/8"]}))).await;
    let issued_id = issued["token_id"].as_str().unwrap().to_owned();
    admin.call("POST", tokens, &t("/tokens"), Body::None).await;
    let ip_allow = "/admin/v1/tenants/{id}/tokens/{token}/ip_allow";
    admin
        .call("PUT", ip_allow, &t(&format!("/tokens/{issued_id}/ip_allow")), Body::Json(json!({"ip_allow": []})))
        .await;
    let rotate = "/admin/v1/tenants/{id}/tokens/{token}/rotate";
    let (_, rotated) = admin
        .call("POST", rotate, &t(&format!("/tokens/{issued_id}/rotate")), Body::Json(json!({"overlap": 60})))
        .await;
    let successor = rotated["token_id"].as_str().unwrap().to_owned();
    admin
        .call("DELETE", "/admin/v1/tenants/{id}/tokens/{token}", &t(&format!("/tokens/{successor}")), Body::None)
        .await;
    let (s, _) = admin.call("POST", rotate, &t(&format!("/tokens/{successor}/rotate")), Body::None).await;
    assert_eq!(s, 400, "a revoked token cannot be rotated");
    admin.call("GET", tokens, &t("/tokens"), Body::None).await;

    // Sender accounts.
    let extra = json!({"id": "extra", "kind": "sandbox"});
    assert_eq!(admin.at("POST", "/admin/v1/senders", Body::Json(extra.clone())).await.0, 201);
    assert_eq!(admin.at("POST", "/admin/v1/senders", Body::Json(extra)).await.0, 409);
    let telegram = json!({"id": "tg1", "kind": "telegram", "api_id": 12345, "phone_number": "+447700900001"});
    admin.at("POST", "/admin/v1/senders", Body::Json(telegram)).await;
    let pause = Body::Json(json!({"note": "testing"}));
    admin.call("POST", "/admin/v1/senders/{account}/pause", "/admin/v1/senders/extra/pause", pause).await;
    admin.call("POST", "/admin/v1/senders/{account}/resume", "/admin/v1/senders/extra/resume", Body::None).await;
    admin.at("GET", "/admin/v1/senders", Body::None).await;
    admin.call("DELETE", "/admin/v1/senders/{account}", "/admin/v1/senders/extra", Body::None).await;
    admin.at("GET", "/admin/v1/delivery/backlog", Body::None).await;

    // The Gateway, by every transport.
    let gateway = Caller { app, doc, token: Some(tenant["token"].as_str().unwrap().to_owned()) };
    let send = Body::Json(json!({"phone_number": 15551234567u64, "code_length": "6", "payload": "p", "ttl": 600,
        "callback_url": "http://127.0.0.1:9/hook"}));
    let (_, sent) = gateway.at("POST", "/sendVerificationMessage", send).await;
    let request_id = sent["result"]["request_id"].as_str().unwrap().to_owned();
    let form =
        vec![("phone_number", PHONE.to_owned()), ("code", "1234".into()), ("sender_username", "acme_codes".into())];
    gateway.at("POST", "/sendVerificationMessage", Body::Form(form)).await;
    gateway.at("GET", "/sendVerificationMessage?phone_number=%2B15551234567&code_length=4", Body::None).await;
    let (_, able) = gateway.at("GET", "/checkSendAbility?phone_number=%2B15551234568", Body::None).await;
    let able_id = able["result"]["request_id"].as_str().unwrap().to_owned();
    let continued = json!({"phone_number": "15551234568", "code_length": 5, "request_id": able_id});
    gateway.at("POST", "/sendVerificationMessage", Body::Json(continued)).await;
    // Errors of every status.
    for (path, body, status) in [
        ("/sendVerificationMessage", json!({"phone_number": "12"}), 400),
        ("/sendVerificationMessage", json!({"phone_number": PHONE}), 400),
        ("/checkVerificationStatus", json!({"request_id": "1"}), 404),
        ("/checkVerificationStatus", json!({}), 400),
        ("/revokeVerificationMessage", json!({"request_id": "x"}), 404),
    ] {
        let (s, answer) = gateway.at("POST", path, Body::Json(body)).await;
        assert_eq!(s, error_status(status), "{path}: {answer}");
        assert_eq!(answer["ok"], false);
    }
    let check = Body::Json(json!({"phone_number": PHONE}));
    assert_eq!(anonymous.at("POST", "/checkSendAbility", check).await.0, error_status(401));
    let wrong = Caller { app, doc, token: Some("wrong".into()) };
    let (s, _) = wrong.at("GET", "/checkSendAbility?phone_number=15551234567", Body::None).await;
    assert_eq!(s, error_status(401));
    // A tenant with one message's worth of credit and one send per number: FLOOD_WAIT (with
    // its headers), then BALANCE_NOT_ENOUGH.
    let poor = json!({"name": "Poor", "balance": 0.01, "limits": {"phone": {"rate": 1, "per": 3600, "burst": 1}}});
    let (_, poor) = admin.at("POST", "/admin/v1/tenants", Body::Json(poor)).await;
    let poor = Caller { app, doc, token: Some(poor["token"].as_str().unwrap().to_owned()) };
    let once = || Body::Json(json!({"phone_number": PHONE, "code_length": 6}));
    assert_eq!(poor.at("POST", "/sendVerificationMessage", once()).await.1["ok"], true);
    let (s, flood) = poor.at("POST", "/sendVerificationMessage", once()).await;
    assert_eq!(s, error_status(429));
    assert!(flood["error"].as_str().unwrap().starts_with("FLOOD_WAIT_"), "{flood}");
    let r = app
        .client
        .post(format!("{}/sendVerificationMessage", app.base))
        .bearer_auth(poor.token.as_deref().unwrap())
        .json(&json!({"phone_number": PHONE, "code_length": 6}))
        .send()
        .await
        .unwrap();
    for name in ["retry-after", "ratelimit-policy", "ratelimit", "x-request-id"] {
        assert!(r.headers().contains_key(name), "a FLOOD_WAIT answer carries {name}");
    }
    let other = Body::Json(json!({"phone_number": "+15551234569", "code_length": 6}));
    let (s, broke) = poor.at("POST", "/sendVerificationMessage", other).await;
    assert_eq!((s, &broke["error"]), (error_status(402), &json!("BALANCE_NOT_ENOUGH")));

    // The sandbox: the message arrives, the code checks wrong then right, the message is read.
    let mut inbox = Value::Null;
    for _ in 0..100 {
        inbox = anonymous.at("GET", "/sandbox/v1/messages?phone_number=15551234567", Body::None).await.1;
        if inbox.as_array().unwrap().iter().any(|m| m["request_id"] == request_id.as_str()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let message = inbox.as_array().unwrap().iter().find(|m| m["request_id"] == request_id.as_str()).unwrap().clone();
    let code: String = message["text"].as_str().unwrap().chars().filter(char::is_ascii_digit).collect();
    let (_, wrong) =
        gateway.at("GET", &format!("/checkVerificationStatus?request_id={request_id}&code=0000"), Body::None).await;
    assert_eq!(wrong["result"]["verification_status"]["code_entered"], "0000");
    let right = Body::Form(vec![("request_id", request_id.clone()), ("code", code.clone())]);
    let (_, right) = gateway.at("POST", "/checkVerificationStatus", right).await;
    assert_eq!(right["result"]["verification_status"]["status"], "code_valid", "{right} {code}");
    anonymous.at("GET", "/sandbox/v1/messages", Body::None).await;
    assert_eq!(anonymous.at("GET", "/sandbox/v1/messages?phone_number=12", Body::None).await.0, 400);
    let (s, _) = anonymous.at("GET", "/sandbox/v1/messages?phone_number=1&phone_number=2", Body::None).await;
    assert_eq!(s, 400, "a query string that does not parse answers JSON");
    let read = "/sandbox/v1/messages/{request_id}/read";
    let (s, _) = anonymous.call("POST", read, &format!("/sandbox/v1/messages/{request_id}/read"), Body::None).await;
    assert_eq!(s, 200);
    assert_eq!(anonymous.call("POST", read, "/sandbox/v1/messages/1/read", Body::None).await.0, 404);
    let (_, revoked) =
        gateway.at("GET", &format!("/revokeVerificationMessage?request_id={request_id}"), Body::None).await;
    assert_eq!(revoked["result"], true);
    let (_, after) =
        gateway.at("POST", "/checkVerificationStatus", Body::Json(json!({"request_id": request_id}))).await;
    assert_eq!(after["result"]["verification_status"]["status"], "expired");

    // What the admin API shows of all that.
    admin.call("GET", "/admin/v1/tenants/{id}/ledger", &t("/ledger"), Body::None).await;
    admin.call("GET", "/admin/v1/tenants/{id}/reports/dead", &t("/reports/dead"), Body::None).await;
    let replay = "/admin/v1/tenants/{id}/reports/dead/{dead}/replay";
    assert_eq!(admin.call("POST", replay, &t("/reports/dead/nope/replay"), Body::None).await.0, 404);
    admin.call("DELETE", sender, &t("/senders/acme_codes"), Body::None).await;
}
