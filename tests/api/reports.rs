//! Delivery reports to `callback_url`, received by a real HTTP server: one per status change,
//! in order, signed exactly as the Gateway signs; only 200 acknowledges; failures retry on the
//! schedule with a fresh timestamp each time; redirects are never followed; after the last
//! retry a report is a dead letter that operators list and replay; reports stay verifiable
//! after the token that made the send is rotated away; a receiver that hangs holds up no one
//! else's reports.

use crate::helpers::receiver::{Answer, Received, Receiver};
use crate::helpers::*;
use reqwest::Method;
use verigram::callbacks::sign::SigningKey;

verigram_testkit::on_every_backend!(
    every_status_change_is_reported_in_order_and_signed_as_the_gateway,
    only_200_acknowledges_and_a_failed_report_is_retried_before_the_next,
    redirects_are_failures_and_never_followed,
    after_the_last_retry_a_report_is_a_dead_letter_that_can_be_replayed,
    reports_stay_verifiable_after_the_token_is_rotated,
    a_receiver_that_hangs_holds_up_no_other_tenant,
    a_receiver_that_never_answers_in_time_is_a_failure_retried_later,
    a_receiver_that_is_down_for_a_while_gets_every_report_when_back,
    names_that_resolve_to_internal_addresses_are_refused_at_send_and_at_connect,
);

/// The service with reports allowed to a receiver on loopback over http (development
/// settings), and a retry schedule of 10 s then 60 s.
async fn spawn(backend: Backend) -> TestApp {
    spawn_with(backend, |_| {}).await
}

async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut String)) -> TestApp {
    spawn_app_with(backend, |c| {
        set_key(c, "callbacks.allow_http", "true");
        set_key(c, "callbacks.allow_private_networks", "true");
        set_key(c, "callbacks.retry_schedule", "[10, 60]");
        set_key(c, "callbacks.connect_timeout_ms", "1000");
        set_key(c, "callbacks.timeout_ms", "3000");
        configure(c);
    })
    .await
}

async fn send_reporting(app: &TestApp, t: &Tenant, url: &str) -> String {
    let reply = app
        .call(t, "sendVerificationMessage", json!({"phone_number": PHONE, "code_length": 6, "callback_url": url}))
        .await;
    reply.result()["request_id"].as_str().expect("a request id").to_owned()
}

/// Failed attempts of the request's oldest waiting report, as stored.
async fn report_failures(app: &TestApp, t: &Tenant, id: &str) -> u32 {
    let (tenant, request) =
        (verigram::domain::TenantId::parse(&t.id).unwrap(), verigram::domain::RequestId::parse(id).unwrap());
    let record = app.services.store.request(&tenant, request, verigram::domain::Clock::now(&*app.clock)).await.unwrap();
    record.unwrap().pending_reports().first().map_or(0, |r| r.attempts)
}

/// Waits until `n` reports arrived and the oldest waiting one has `failures` recorded
/// failures: only then is its retry scheduled, and moving the clock on makes it due.
async fn wait_recorded(app: &TestApp, t: &Tenant, id: &str, receiver: &Receiver, n: usize, failures: u32) {
    wait_for(&format!("report {n} and {failures} recorded failure(s)"), || async {
        (receiver.received().len() >= n && report_failures(app, t, id).await == failures).then_some(())
    })
    .await;
}

fn assert_signed_by(report: &Received, token: &str) {
    assert_eq!(report.content_type, "application/json");
    assert!(report.timestamp.parse::<i64>().is_ok(), "{report:?}");
    let key = SigningKey::for_token(token);
    assert!(key.verify(&report.timestamp, report.body.as_bytes(), &report.signature), "bad signature: {report:?}");
}

fn status_of(report: &Received) -> (String, String) {
    let body = report.json();
    let s = |v: &Value| v["status"].as_str().unwrap_or_default().to_owned();
    (s(&body["delivery_status"]), s(&body["verification_status"]))
}

async fn every_status_change_is_reported_in_order_and_signed_as_the_gateway(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start().await;
    let t = app.create_tenant("1", None).await;
    let id = send_reporting(&app, &t, &receiver.url).await;
    // The sandbox: sent, then delivered at once.
    let got = receiver.wait_for(2).await;
    let code = app.code_for(&id).await;
    let checked = app.check(&t, &id, Some(&code)).await;
    assert_eq!(checked.result()["verification_status"]["status"], "code_valid");
    let got = if got.len() < 3 { receiver.wait_for(3).await } else { got };

    let statuses: Vec<(String, String)> = got.iter().map(status_of).collect();
    assert_eq!(
        statuses,
        [
            ("sent".into(), String::new()),
            ("delivered".into(), String::new()),
            ("delivered".into(), "code_valid".into())
        ]
    );
    for report in &got {
        assert_signed_by(report, &t.token);
        assert_eq!(report.path, "/cb");
        let body = report.json();
        assert_eq!(body["request_id"], id.as_str());
        assert_eq!(body["phone_number"], PHONE_DIGITS);
        assert_no_null(&body, "a report");
        assert!(body.get("remaining_balance").is_none(), "{body}");
    }
    // Nothing more: each change once.
    app.settle().await;
    assert_eq!(receiver.received().len(), 3);
}

async fn only_200_acknowledges_and_a_failed_report_is_retried_before_the_next(backend: Backend) {
    use verigram::workers::{Outcome, Worker};
    // Workers driven by hand, so "not yet" is checked by a round that saw the time.
    let app = spawn_with(backend, |c| set_key(c, "delivery.workers", "0")).await;
    let w = Worker::new(app.services.clone(), "w".into());
    let receiver = Receiver::start().await;
    receiver.script([Answer::Status(500), Answer::Status(204)]);
    let t = app.create_tenant("1", None).await;
    let id = send_reporting(&app, &t, &receiver.url).await;
    let drive = |n: usize, failures: u32| {
        let (w, receiver, app, t, id) = (&w, &receiver, &app, &t, &id);
        async move {
            wait_for(&format!("report {n} and {failures} recorded failure(s)"), || async {
                let _ = w.run_once().await;
                (receiver.received().len() >= n && report_failures(app, t, id).await == failures).then_some(())
            })
            .await
        }
    };
    drive(1, 1).await;
    assert_eq!(status_of(&receiver.received()[0]).0, "sent");
    // Retried after about 10 s (8-12 with jitter), not before; the next report waits its turn.
    app.advance(Duration::from_secs(7));
    assert_eq!(w.run_once().await.unwrap(), Outcome::Idle, "nothing due before the retry");
    assert_eq!(receiver.received().len(), 1);
    app.advance(Duration::from_secs(6));
    drive(2, 2).await;
    let second = receiver.received();
    assert_eq!(status_of(&second[1]).0, "sent", "the same report again: 204 is not 200");
    assert_ne!(second[0].timestamp, second[1].timestamp, "a fresh timestamp per attempt");
    assert_signed_by(&second[1], &t.token);
    // The second retry comes after about 60 s more (48-72); then 200, and the next report.
    app.advance(Duration::from_secs(47));
    assert_eq!(w.run_once().await.unwrap(), Outcome::Idle, "nothing due before the second retry");
    app.advance(Duration::from_secs(26));
    drive(4, 0).await;
    let statuses: Vec<String> = receiver.received().iter().map(|r| status_of(r).0).collect();
    assert_eq!(statuses, ["sent", "sent", "sent", "delivered"]);
}

async fn redirects_are_failures_and_never_followed(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start().await;
    receiver.script([Answer::Redirect("/elsewhere".into())]);
    let t = app.create_tenant("1", None).await;
    let id = send_reporting(&app, &t, &receiver.url).await;
    wait_recorded(&app, &t, &id, &receiver, 1, 1).await;
    app.advance(Duration::from_secs(13));
    let got = receiver.wait_for(2).await;
    assert!(got.iter().all(|r| r.path == "/cb"), "the redirect was not followed: {got:?}");
    assert_eq!(status_of(&got[1]).0, "sent", "the redirected report is tried again");
}

async fn after_the_last_retry_a_report_is_a_dead_letter_that_can_be_replayed(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start().await;
    receiver.script([Answer::Status(500), Answer::Status(503), Answer::Status(502)]);
    let t = app.create_tenant("1", None).await;
    let id = send_reporting(&app, &t, &receiver.url).await;
    wait_recorded(&app, &t, &id, &receiver, 1, 1).await;
    app.advance(Duration::from_secs(13));
    wait_recorded(&app, &t, &id, &receiver, 2, 2).await;
    app.advance(Duration::from_secs(73));
    // The third failure was the last retry: the report is given up, and the next one goes.
    let got = receiver.wait_for(4).await;
    assert_eq!(status_of(&got[3]).0, "delivered");

    let path = format!("/tenants/{}/reports/dead", t.id);
    let (status, dead) = wait_for("the dead letter", || async {
        let (status, dead) = app.admin(Method::GET, &path, None).await;
        (dead.as_array().is_some_and(|d| !d.is_empty())).then_some((status, dead))
    })
    .await;
    assert_eq!(status, 200);
    assert_eq!(dead.as_array().unwrap().len(), 1, "{dead}");
    let letter = &dead[0];
    assert_eq!((letter["request_id"].as_str(), letter["attempts"].as_u64()), (Some(id.as_str()), Some(3)));
    assert_eq!(letter["last_error"], "HTTP 502");
    assert_eq!(letter["url"], receiver.url.as_str());
    assert_eq!(letter["body"]["delivery_status"]["status"], "sent");
    assert!(letter.get("key").is_none(), "the signing key is never shown");

    // Replay: once, now, signed afresh; acknowledged, so it leaves the list.
    let replay = format!("{path}/{}/replay", letter["id"].as_str().unwrap());
    let (status, body) = app.admin(Method::POST, &replay, None).await;
    assert_eq!(status, 200, "{body}");
    let got = receiver.wait_for(5).await;
    assert_eq!(status_of(&got[4]).0, "sent");
    assert_signed_by(&got[4], &t.token);
    assert_eq!(app.admin(Method::GET, &path, None).await.1, json!([]));
    assert_eq!(app.admin(Method::POST, &replay, None).await.0, 404);
    assert_eq!(app.admin(Method::GET, "/tenants/00000000-0000-0000-0000-000000000000/reports/dead", None).await.0, 404);
}

async fn reports_stay_verifiable_after_the_token_is_rotated(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start().await;
    let t = app.create_tenant("1", None).await;
    let id = send_reporting(&app, &t, &receiver.url).await;
    receiver.wait_for(2).await;
    let rotate = format!("/tenants/{}/tokens/{}/rotate", t.id, t.token_id);
    let (status, rotated) = app.admin(Method::POST, &rotate, Some(json!({"overlap": 0}))).await;
    assert_eq!(status, 201, "{rotated}");
    let new_token = rotated["token"].as_str().unwrap();
    let tenant = Tenant { token: new_token.to_owned(), ..t.clone() };
    let old = app.call(&t, "checkVerificationStatus", json!({"request_id": id})).await;
    assert_eq!(old.error(), "ACCESS_TOKEN_INVALID", "the old token is gone");
    let code = app.code_for(&id).await;
    app.check(&tenant, &id, Some(&code)).await;
    let got = receiver.wait_for(3).await;
    assert_eq!(status_of(&got[2]).1, "code_valid");
    assert_signed_by(&got[2], &t.token);
}

async fn a_receiver_that_hangs_holds_up_no_other_tenant(backend: Backend) {
    let app = spawn(backend).await;
    let hanging = Receiver::start().await;
    let healthy = Receiver::start().await;
    hanging.script([Answer::Hold]);
    let slow = app.create_tenant("1", None).await;
    let other = app.create_tenant("1", None).await;
    send_reporting(&app, &slow, &hanging.url).await;
    hanging.wait_for(1).await;
    // The hanging receiver holds its connection; the other tenant's reports go meanwhile.
    send_reporting(&app, &other, &healthy.url).await;
    healthy.wait_for(2).await;
    assert_eq!(hanging.received().len(), 1, "its next report waits for the first");
    hanging.release();
    hanging.wait_for(2).await;
}

async fn a_receiver_that_never_answers_in_time_is_a_failure_retried_later(backend: Backend) {
    let app = spawn_with(backend, |c| set_key(c, "callbacks.timeout_ms", "1000")).await;
    let receiver = Receiver::start().await;
    receiver.script([Answer::Hold]);
    let t = app.create_tenant("1", None).await;
    let id = send_reporting(&app, &t, &receiver.url).await;
    wait_recorded(&app, &t, &id, &receiver, 1, 1).await;
    let (tenant, request) =
        (verigram::domain::TenantId::parse(&t.id).unwrap(), verigram::domain::RequestId::parse(&id).unwrap());
    let record = app.services.store.request(&tenant, request, verigram::domain::Clock::now(&*app.clock)).await.unwrap();
    assert_eq!(record.unwrap().pending_reports()[0].last_error.as_deref(), Some("timeout"));
    receiver.release();
    app.advance(Duration::from_secs(13));
    let got = receiver.wait_for(3).await;
    let statuses: Vec<String> = got.iter().map(|r| status_of(r).0).collect();
    assert_eq!(statuses, ["sent", "sent", "delivered"]);
}

async fn a_receiver_that_is_down_for_a_while_gets_every_report_when_back(backend: Backend) {
    let app = spawn(backend).await;
    // A port with nothing listening: connections are refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/cb");
    let t = app.create_tenant("1", None).await;
    let id = send_reporting(&app, &t, &url).await;
    wait_for("a failed attempt", || async { (report_failures(&app, &t, &id).await == 1).then_some(()) }).await;
    let (tenant, request) =
        (verigram::domain::TenantId::parse(&t.id).unwrap(), verigram::domain::RequestId::parse(&id).unwrap());
    let record = app.services.store.request(&tenant, request, verigram::domain::Clock::now(&*app.clock)).await.unwrap();
    assert_eq!(record.unwrap().pending_reports()[0].last_error.as_deref(), Some("connection failed"));
    // Back up on the same port: the retry and the report after it arrive, in order, signed.
    let receiver = Receiver::start_on(port).await;
    app.advance(Duration::from_secs(13));
    let got = receiver.wait_for(2).await;
    let statuses: Vec<String> = got.iter().map(|r| status_of(r).0).collect();
    assert_eq!(statuses, ["sent", "delivered"]);
    got.iter().for_each(|r| assert_signed_by(r, &t.token));
}

/// Looks names up from a script: each name answers its lists in turn (the last one again and
/// again): a name can resolve to a public address once and to a private one next (rebinding).
struct ScriptedResolver(parking_lot::Mutex<std::collections::HashMap<String, Vec<Vec<std::net::IpAddr>>>>);

impl verigram::callbacks::dispatch::HostResolver for ScriptedResolver {
    fn lookup(
        &self,
        host: &str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = std::io::Result<Vec<std::net::IpAddr>>> + Send + 'static>>
    {
        let mut script = self.0.lock();
        let answer = match script.get_mut(host) {
            Some(answers) if answers.len() > 1 => Ok(answers.remove(0)),
            Some(answers) => Ok(answers[0].clone()),
            None => Err(std::io::Error::new(std::io::ErrorKind::NotFound, "no such name")),
        };
        Box::pin(async move { answer })
    }
}

async fn names_that_resolve_to_internal_addresses_are_refused_at_send_and_at_connect(backend: Backend) {
    let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
    let script = [
        ("private.example.com", vec![vec![ip("10.0.0.5")]]),
        ("mapped.example.com", vec![vec![ip("::ffff:127.0.0.1")]]),
        ("nat64.example.com", vec![vec![ip("64:ff9b::a00:1")]]),
        ("mixed.example.com", vec![vec![ip("93.184.216.34"), ip("192.168.1.1")]]),
        ("public.example.com", vec![vec![ip("93.184.216.34")]]),
        // Public when the send is checked, loopback when the report connects.
        ("rebind.example.com", vec![vec![ip("93.184.216.34")], vec![ip("127.0.0.1")]]),
    ];
    let resolver = ScriptedResolver(parking_lot::Mutex::new(
        script.into_iter().map(|(name, answers)| (name.to_owned(), answers)).collect(),
    ));
    // Strict about addresses (the production rule), http allowed so the receiver can be plain.
    let app = spawn_app_with_resolver(
        backend,
        |c| {
            set_key(c, "callbacks.allow_http", "true");
            set_key(c, "callbacks.connect_timeout_ms", "1000");
            set_key(c, "callbacks.timeout_ms", "2000");
        },
        std::sync::Arc::new(resolver),
    )
    .await;
    let t = app.create_tenant("1", None).await;
    let send = |url: String| {
        let (app, t) = (&app, &t);
        async move {
            app.call(
                t,
                "sendVerificationMessage",
                json!({"phone_number": PHONE, "code_length": 6, "callback_url": url}),
            )
            .await
        }
    };
    for name in ["private", "mapped", "nat64", "mixed"] {
        let reply = send(format!("http://{name}.example.com/cb")).await;
        assert_eq!(reply.error(), "CALLBACK_URL_INVALID", "{name}");
    }
    for literal in ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "[::ffff:127.0.0.1]", "[64:ff9b::7f00:1]", "10.1.2.3"] {
        let reply = send(format!("http://{literal}/cb")).await;
        assert_eq!(reply.error(), "CALLBACK_URL_INVALID", "{literal}");
    }
    assert_eq!(app.balance(&t).await, 1_000_000, "refusals cost nothing");

    // Rebinding: accepted at send time, refused when the report connects; the receiver on
    // loopback never hears from the service.
    let receiver = Receiver::start().await;
    let port = receiver.url.trim_start_matches("http://127.0.0.1:").trim_end_matches("/cb").to_owned();
    let reply = send(format!("http://rebind.example.com:{port}/cb")).await;
    let id = reply.result()["request_id"].as_str().unwrap().to_owned();
    wait_for("the refused attempt", || async { (report_failures(&app, &t, &id).await == 1).then_some(()) }).await;
    let (tenant, request) =
        (verigram::domain::TenantId::parse(&t.id).unwrap(), verigram::domain::RequestId::parse(&id).unwrap());
    let record = app.services.store.request(&tenant, request, verigram::domain::Clock::now(&*app.clock)).await.unwrap();
    assert_eq!(record.unwrap().pending_reports()[0].last_error.as_deref(), Some("internal address refused"));
    assert!(receiver.received().is_empty());
    let ok = send("http://public.example.com/cb".into()).await;
    assert!(ok.result()["request_id"].is_string(), "a public name is accepted");
}
