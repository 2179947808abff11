//! `spawn_app`: the service on a real socket, and a typed client for it.

use super::reply::{micros, Reply};
use super::wait_for;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use reqwest::Method;
use serde_json::{json, Value};
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;
use verigram::config::{ErrorStatus, Settings};
use verigram::domain::ManualClock;
use verigram::service::Services;
use verigram::startup::Application;
use verigram_testkit::{Backend, RedisCluster, RedisServer, RedisServerError};

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";
pub const PEPPER: &str = "test-pepper-0123456789abcdefghijklmnopqrstuv";

/// A tenant made through the admin API, with its first token.
#[derive(Debug, Clone)]
pub struct Tenant {
    pub id: String,
    pub token: String,
    pub token_id: String,
}

pub struct TestApp {
    /// `http://127.0.0.1:<port>`
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub clock: Arc<ManualClock>,
    /// The private Redis of a Redis-backed app (kept alive as long as the app).
    pub redis: Option<RedisServer>,
    /// The private Redis Cluster of a cluster-backed app (kept alive as long as the app).
    #[allow(dead_code)]
    pub cluster: Option<RedisCluster>,
    pub services: Arc<Services>,
    pub backend: Backend,
    pub error_status: ErrorStatus,
    /// The port of `/metrics` when `metrics.listen` gives it a listener of its own.
    pub metrics_port: Option<u16>,
    /// The port of the admin API when `admin.listen` gives it a listener of its own.
    pub admin_port: Option<u16>,
    handle: actix_web::dev::ServerHandle,
}

/// Replaces (or adds) `key = value` in the dotted-key TOML that `spawn_app_with` hands over.
pub fn set_key(toml: &mut String, key: &str, value: &str) {
    let prefix = format!("{key} =");
    let mut lines: Vec<String> = toml.lines().filter(|l| !l.starts_with(&prefix)).map(str::to_owned).collect();
    lines.push(format!("{key} = {value}"));
    *toml = lines.join("\n") + "\n";
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

/// Starts the service with the test defaults, then whatever `configure` changes. The TOML
/// holds dotted keys only (`codes.hash = "…"`), so `configure` may append keys or replace
/// them with `set_key`.
pub async fn spawn_app_with(backend: Backend, configure: impl FnOnce(&mut String)) -> TestApp {
    spawn_app_on(backend, configure, None).await
}

/// As `spawn_app_with`, with the resolver callback hosts are looked up with.
pub async fn spawn_app_with_resolver(
    backend: Backend,
    configure: impl FnOnce(&mut String),
    resolver: Arc<dyn verigram::callbacks::dispatch::HostResolver>,
) -> TestApp {
    spawn_app_on(backend, configure, Some(resolver)).await
}

/// The app with a scripted resolver, or (`None`) the one `serve` makes from the settings.
async fn spawn_app_on(
    backend: Backend,
    configure: impl FnOnce(&mut String),
    resolver: Option<Arc<dyn verigram::callbacks::dispatch::HostResolver>>,
) -> TestApp {
    let redis = match backend {
        Backend::Memory | Backend::Cluster => None,
        Backend::Redis => Some(RedisServer::start().unwrap_or_else(|e| match e {
            RedisServerError::NotInstalled => {
                panic!("the Redis variant of this test needs redis-server on PATH (apt-get install redis-server): {e}")
            }
            e => panic!("could not start a private redis-server: {e}"),
        })),
    };
    let cluster = (backend == Backend::Cluster)
        .then(|| RedisCluster::start().unwrap_or_else(|e| panic!("could not start a private Redis Cluster: {e}")));
    let store_url = match (&redis, &cluster) {
        (Some(redis), _) => redis.url(),
        (_, Some(cluster)) => cluster.url(),
        _ => "memory://".to_owned(),
    };
    let mut toml = String::new();
    set_key(&mut toml, "server.workers", "2");
    set_key(&mut toml, "admin.token", &format!("{ADMIN_TOKEN:?}"));
    set_key(&mut toml, "codes.pepper", &format!("{PEPPER:?}"));
    set_key(&mut toml, "codes.hash", "\"hmac-sha256\"");
    set_key(&mut toml, "store.url", &format!("{store_url:?}"));
    // Rate limits off unless a test is about them (many tests send to one number).
    for limit in ["tenant", "tenant_daily", "token", "phone", "country", "ip", "wrong_checks", "auth_failures"] {
        set_key(&mut toml, &format!("limits.{limit}"), "{ rate = 0, per = 1, burst = 1 }");
    }
    // Every scrape reads the store's gauges afresh (one read at a time still).
    set_key(&mut toml, "metrics.refresh_ms", "0");
    configure(&mut toml);
    let settings = Settings::from_toml(&toml).unwrap_or_else(|e| panic!("test settings are invalid: {e}\n{toml}"));
    let error_status = settings.api.error_status;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let clock = Arc::new(ManualClock::starting_now());
    let app = match resolver {
        Some(resolver) => Application::build_with_resolver(settings, clock.clone(), listener, resolver).await,
        None => Application::build_with(settings, clock.clone(), listener).await,
    }
    .expect("build the application");
    let port = app.port();
    let metrics_port = app.metrics_port();
    let admin_port = app.admin_port();
    let services = app.services();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("build the HTTP client");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client,
        admin_token: ADMIN_TOKEN.to_owned(),
        clock,
        redis,
        cluster,
        services,
        backend,
        error_status,
        metrics_port,
        admin_port,
        handle,
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move { handle.stop(false).await });
        }
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Moves the service's clock forward.
    pub fn advance(&self, d: Duration) {
        self.clock.advance(d);
    }

    /// Sends a request and reads the answer as a Gateway envelope (checking its invariants).
    pub async fn send_request(&self, builder: reqwest::RequestBuilder) -> Reply {
        let response = builder.send().await.expect("the service answers the HTTP request");
        Reply::gateway(response, self.error_status).await
    }

    /// A Gateway method with a JSON body and the tenant's token as `Authorization: Bearer`.
    pub async fn call(&self, tenant: &Tenant, method: &str, params: Value) -> Reply {
        self.call_as(Some(&tenant.token), method, params).await
    }

    /// As `call`, with any token (or none).
    pub async fn call_as(&self, token: Option<&str>, method: &str, params: Value) -> Reply {
        let mut b = self.client.post(self.url(&format!("/{method}"))).json(&params);
        if let Some(token) = token {
            b = b.bearer_auth(token);
        }
        self.send_request(b).await
    }

    /// As `call`: the result, or the error string.
    pub async fn try_call(&self, tenant: &Tenant, method: &str, params: Value) -> Result<Value, String> {
        self.call(tenant, method, params).await.outcome().cloned().map_err(str::to_owned)
    }

    /// The service's clock in Unix seconds (what `updated_at` shows).
    pub fn now_secs(&self) -> i64 {
        use verigram::domain::Clock;
        self.clock.now().secs()
    }

    /// A Gateway method as `GET` with the parameters in the query string.
    pub async fn call_query(&self, tenant: &Tenant, method: &str, params: &[(&str, &str)]) -> Reply {
        let b = self.client.get(self.url(&format!("/{method}"))).query(params).bearer_auth(&tenant.token);
        self.send_request(b).await
    }

    /// A Gateway method as `POST` with a form body.
    pub async fn call_form(&self, tenant: &Tenant, method: &str, params: &[(&str, &str)]) -> Reply {
        let b = self.client.post(self.url(&format!("/{method}"))).form(params).bearer_auth(&tenant.token);
        self.send_request(b).await
    }

    /// A Gateway method with a raw body of the given content type (`None`: no header).
    pub async fn call_raw(
        &self,
        tenant: Option<&Tenant>,
        http: Method,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut headers = HeaderMap::new();
        if let Some(ct) = content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_str(ct).expect("a valid content type"));
        }
        if let Some(t) = tenant {
            headers.insert(AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {}", t.token)).expect("token"));
        }
        let b = self.client.request(http, self.url(path)).headers(headers).body(body);
        self.send_request(b).await
    }

    /// `sendVerificationMessage` with a generated 6-digit code; fails unless it succeeds.
    pub async fn send(&self, tenant: &Tenant, phone: &str) -> Value {
        let reply =
            self.call(tenant, "sendVerificationMessage", json!({"phone_number": phone, "code_length": 6})).await;
        reply.result().clone()
    }

    /// `sendVerificationMessage` with the tenant's own code; fails unless it succeeds.
    pub async fn send_code(&self, tenant: &Tenant, phone: &str, code: &str) -> Value {
        let reply = self.call(tenant, "sendVerificationMessage", json!({"phone_number": phone, "code": code})).await;
        reply.result().clone()
    }

    /// `checkVerificationStatus`, with or without a code.
    /// `checkSendAbility` for `phone`: the request id whose one send is free.
    pub async fn checked_request(&self, tenant: &Tenant, phone: &str) -> String {
        let r = self.try_call(tenant, "checkSendAbility", json!({ "phone_number": phone })).await;
        r.expect("checkSendAbility succeeds")["request_id"].as_str().expect("a request_id").to_owned()
    }

    pub async fn check(&self, tenant: &Tenant, request_id: &str, code: Option<&str>) -> Reply {
        let mut params = json!({"request_id": request_id});
        if let Some(code) = code {
            params["code"] = json!(code);
        }
        self.call(tenant, "checkVerificationStatus", params).await
    }

    /// The `verification_status.status` a check answers (`None`: no verification status).
    pub async fn verification(&self, tenant: &Tenant, request_id: &str, code: Option<&str>) -> Option<String> {
        let reply = self.check(tenant, request_id, code).await;
        reply.result().get("verification_status").map(|v| v["status"].as_str().expect("a status string").to_owned())
    }

    /// The `delivery_status.status` of a request, read without a code.
    pub async fn delivery(&self, tenant: &Tenant, request_id: &str) -> Option<String> {
        let reply = self.check(tenant, request_id, None).await;
        reply.result().get("delivery_status").map(|v| v["status"].as_str().expect("a status string").to_owned())
    }

    /// Waits until the sandbox has recorded the delivery of a request.
    pub async fn wait_delivered(&self, tenant: &Tenant, request_id: &str) {
        wait_for(&format!("request {request_id} to be delivered"), || async {
            (self.delivery(tenant, request_id).await.as_deref() == Some("delivered")).then_some(())
        })
        .await;
    }

    pub async fn revoke(&self, tenant: &Tenant, request_id: &str) -> Reply {
        self.call(tenant, "revokeVerificationMessage", json!({"request_id": request_id})).await
    }

    // ---- admin API ----------------------------------------------------------------------

    /// An admin request with the admin token; answers (status, JSON body).
    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut b = self.client.request(method, self.url(&format!("/admin/v1{path}"))).bearer_auth(&self.admin_token);
        if let Some(body) = body {
            b = b.json(&body);
        }
        let response = b.send().await.expect("the admin API answers");
        assert!(response.headers().contains_key("x-request-id"), "admin answers carry X-Request-Id");
        let status = response.status().as_u16();
        let text = response.text().await.expect("an admin body");
        let body = serde_json::from_str(&text).unwrap_or_else(|e| panic!("admin answer is not JSON ({e}): {text}"));
        (status, body)
    }

    pub async fn create_tenant(&self, balance: &str, phone: Option<&str>) -> Tenant {
        let mut body = json!({"name": "Acme", "balance": balance});
        if let Some(phone) = phone {
            body["phone_number"] = json!(phone);
        }
        let (status, t) = self.admin(Method::POST, "/tenants", Some(body)).await;
        assert_eq!(status, 201, "create tenant: {t}");
        Tenant {
            id: t["id"].as_str().expect("tenant id").to_owned(),
            token: t["token"].as_str().expect("token").to_owned(),
            token_id: t["token_id"].as_str().expect("token id").to_owned(),
        }
    }

    /// The tenant as the admin API shows it.
    pub async fn tenant(&self, tenant: &Tenant) -> Value {
        let (status, t) = self.admin(Method::GET, &format!("/tenants/{}", tenant.id), None).await;
        assert_eq!(status, 200, "get tenant: {t}");
        t
    }

    /// The tenant's balance in micro-credits.
    pub async fn balance(&self, tenant: &Tenant) -> i64 {
        micros(&self.tenant(tenant).await["balance"])
    }

    /// The tenant's ledger, newest first.
    pub async fn ledger(&self, tenant: &Tenant) -> Vec<Value> {
        let (status, l) = self.admin(Method::GET, &format!("/tenants/{}/ledger", tenant.id), None).await;
        assert_eq!(status, 200, "ledger: {l}");
        l.as_array().expect("a ledger array").clone()
    }

    /// The ledger's `charge` lines, newest first.
    pub async fn charges(&self, tenant: &Tenant) -> Vec<Value> {
        self.ledger(tenant).await.into_iter().filter(|e| e["kind"] == "charge").collect()
    }

    pub async fn patch_tenant(&self, tenant: &Tenant, body: Value) -> (u16, Value) {
        self.admin(Method::PATCH, &format!("/tenants/{}", tenant.id), Some(body)).await
    }

    pub async fn put_sender(&self, tenant: &Tenant, username: &str, verified: bool) {
        let path = format!("/tenants/{}/senders/{username}", tenant.id);
        let (status, body) = self.admin(Method::PUT, &path, Some(json!({"verified": verified}))).await;
        assert_eq!(status, 200, "put sender: {body}");
    }

    /// How many times the store operation `op` ran (its latency histogram's count).
    pub fn store_ops(&self, op: &str) -> u64 {
        self.services.metrics.store_duration.with_label_values(&[op]).get_sample_count()
    }

    /// How many times the store operation `op` failed.
    pub fn store_errors(&self, op: &str) -> u64 {
        self.services.metrics.store_errors.with_label_values(&[op]).get()
    }

    /// Waits until the store operation `op` has run `n` more times (workers' rounds, say).
    pub async fn wait_store_ops(&self, op: &str, n: u64) {
        let target = self.store_ops(op) + n;
        super::wait_for(&format!("{n} more {op} operations"), || async { (self.store_ops(op) >= target).then_some(()) })
            .await
    }

    /// What the sandbox inbox shows right now, without waiting for the queue to drain.
    pub async fn sandbox_messages(&self) -> Vec<Value> {
        let response = self.client.get(self.url("/sandbox/v1/messages")).send().await.expect("the sandbox answers");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("a JSON inbox");
        body.as_array().expect("an inbox array").clone()
    }

    // ---- sandbox ------------------------------------------------------------------------

    /// Waits until the delivery workers have worked off every queued job, so what the sandbox
    /// shows is final for the sends made so far. (With Redis down there is nothing to wait for.)
    pub async fn settle(&self) {
        super::wait_for("the delivery queue to drain", || async {
            match self.services.store.delivery_backlog().await.map(|b| b.queued) {
                Ok(0) | Err(_) => Some(()),
                Ok(_) => None,
            }
        })
        .await
    }

    /// The sandbox inbox of one number (digits or `+digits`), newest first, after every
    /// queued job was worked off.
    pub async fn inbox(&self, phone: &str) -> Vec<Value> {
        self.settle().await;
        let digits = phone.trim_start_matches('+');
        let response = self
            .client
            .get(self.url("/sandbox/v1/messages"))
            .query(&[("phone_number", digits)])
            .send()
            .await
            .expect("the sandbox answers");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("a JSON inbox");
        body.as_array().expect("an inbox array").clone()
    }

    /// The newest messages to anyone, after every queued job was worked off.
    pub async fn all_messages(&self) -> Vec<Value> {
        self.settle().await;
        let response = self.client.get(self.url("/sandbox/v1/messages")).send().await.expect("the sandbox answers");
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.expect("a JSON inbox");
        body.as_array().expect("an inbox array").clone()
    }

    /// The code the sandbox message of a request shows, once a delivery worker sent it.
    pub async fn code_for(&self, request_id: &str) -> String {
        let message = self.message_for(request_id).await;
        code_in(message["text"].as_str().expect("message text"))
    }

    /// The sandbox message of a request, once a delivery worker sent it.
    pub async fn message_for(&self, request_id: &str) -> Value {
        super::wait_for(&format!("the sandbox message of request {request_id}"), || async {
            self.all_messages().await.into_iter().find(|m| m["request_id"] == request_id)
        })
        .await
    }

    /// `POST /sandbox/v1/messages/{id}/read`: (status, body).
    pub async fn read_message(&self, request_id: &str) -> (u16, Value) {
        let response = self
            .client
            .post(self.url(&format!("/sandbox/v1/messages/{request_id}/read")))
            .send()
            .await
            .expect("the sandbox answers");
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }

    /// Kills the app's Redis (fault injection).
    pub fn kill_redis(&mut self) {
        self.redis.as_mut().expect("a Redis-backed app").kill();
    }
}

/// The code in a message text: its last run of ASCII digits (every template ends with the
/// code followed by words).
pub fn code_in(text: &str) -> String {
    let bytes: Vec<char> = text.chars().collect();
    let end = bytes.iter().rposition(char::is_ascii_digit).unwrap_or_else(|| panic!("no code in {text:?}"));
    let start = bytes[..end].iter().rposition(|c| !c.is_ascii_digit()).map_or(0, |i| i + 1);
    let code: String = bytes[start..=end].iter().collect();
    assert!((4..=8).contains(&code.len()), "{code:?} in {text:?} is not a code");
    code
}
