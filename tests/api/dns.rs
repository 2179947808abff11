//! Callback hosts looked up through a real (local) DNS server: what the answers decide at send
//! time, and that DNS that never answers costs a send no more than `callbacks.send_lookup_ms`
//! and costs other tenants' sends and checks nothing.

use crate::helpers::*;
use verigram_testkit::dns::{Answer, DnsServer};

// The lookups do not depend on the store: once.
verigram_testkit::on_every_backend!(
    once:
    dns_answers_decide_at_send_time_and_what_is_unknown_is_let_through,
    a_callback_host_whose_dns_never_answers_holds_up_no_one,
    after_a_fruitless_look_up_the_tenants_sends_stop_asking_dns,
);

fn with_dns(server: &DnsServer) -> impl FnOnce(&mut String) + '_ {
    move |c| {
        set_key(c, "callbacks.dns_servers", &format!("[\"{}\"]", server.addr));
        set_key(c, "callbacks.send_lookup_ms", "50");
    }
}

async fn dns_answers_decide_at_send_time_and_what_is_unknown_is_let_through(backend: Backend) {
    let dns = DnsServer::start(|name| match name {
        "inside.example.test" => Answer::Address("10.1.2.3".parse().unwrap()),
        "outside.example.test" => Answer::Address("93.184.216.34".parse().unwrap()),
        "silent.example.test" => Answer::Silent,
        _ => Answer::NotFound,
    })
    .unwrap();
    let app = spawn_app_with(backend, with_dns(&dns)).await;
    let t = app.create_tenant("1", None).await;
    let send = |host: &str| {
        let params = json!({"phone_number": PHONE, "code_length": 6, "callback_url": format!("https://{host}/cb")});
        app.call(&t, "sendVerificationMessage", params)
    };
    assert_eq!(send("inside.example.test").await.error(), "CALLBACK_URL_INVALID", "an internal address");
    for host in ["outside.example.test", "gone.example.test", "silent.example.test"] {
        let reply = send(host).await;
        assert_eq!(reply.body["ok"], true, "{host}: {}", reply.body);
    }
}

async fn a_callback_host_whose_dns_never_answers_holds_up_no_one(backend: Backend) {
    let dns = DnsServer::start(|_| Answer::Silent).unwrap();
    let app = spawn_app_with(backend, with_dns(&dns)).await;
    let (stranger, other) = (app.create_tenant("10", None).await, app.create_tenant("10", None).await);
    let code = app.send_code(&other, PHONE, "482913").await["request_id"].as_str().unwrap().to_owned();
    // Far less than the two seconds a send used to wait for such a host, far more than the
    // 50 ms it may wait now: a deadline, not a measurement (the benchmark measures).
    let client = reqwest::Client::builder().timeout(Duration::from_millis(1500)).build().unwrap();
    let call = |token: &str, method: &str, params: Value| {
        client.post(app.url(&format!("/{method}"))).bearer_auth(token.to_owned()).json(&params).send()
    };
    let sends = (0..40).map(|n| {
        let url = format!("https://h{n}.never-answers.example.test/cb");
        call(
            &stranger.token,
            "sendVerificationMessage",
            json!({"phone_number": PHONE, "code_length": 6, "callback_url": url}),
        )
    });
    let checks =
        (0..10).map(|_| call(&other.token, "checkVerificationStatus", json!({"request_id": code, "code": "482913"})));
    let (sends, checks) = tokio::join!(futures_util::future::join_all(sends), futures_util::future::join_all(checks));
    for reply in sends.into_iter().chain(checks) {
        let body: Value = reply.expect("answered within the deadline").json().await.unwrap();
        assert_eq!(body["ok"], true, "{body}");
    }
}

async fn after_a_fruitless_look_up_the_tenants_sends_stop_asking_dns(backend: Backend) {
    let dns = DnsServer::start(|name| match name {
        "inside.example.test" => Answer::Address("10.1.2.3".parse().unwrap()),
        "first.example.test" => Answer::NotFound,
        _ => Answer::Silent,
    })
    .unwrap();
    let app = spawn_app_with(backend, |c| {
        with_dns(&dns)(c);
        // No workers: no report looks the hosts up, so every question counted is a send's.
        set_key(c, "server.role", "\"api\"");
    })
    .await;
    let (slow, other) = (app.create_tenant("1", None).await, app.create_tenant("1", None).await);
    async fn send(app: &TestApp, t: &Tenant, host: &str) -> Reply {
        let params = json!({"phone_number": PHONE, "code_length": 6, "callback_url": format!("https://{host}/cb")});
        app.call(t, "sendVerificationMessage", params).await
    }
    assert_eq!(send(&app, &slow, "first.example.test").await.body["ok"], true, "not found: let through");
    let asked = wait_up_to(Duration::from_secs(5), "the first look-up's questions", || async {
        (dns.queries() > 0).then(|| dns.queries())
    })
    .await;
    // The tenant's next sends ask DNS nothing (a look-up found no address a moment ago) …
    for n in 0..20 {
        assert_eq!(send(&app, &slow, &format!("h{n}.silent.example.test")).await.body["ok"], true);
    }
    assert!(dns.queries() <= asked + 1, "{} questions after the first {asked}", dns.queries());
    // … while another tenant's are still looked up, and refused when DNS says internal.
    let before = dns.queries();
    assert_eq!(send(&app, &other, "inside.example.test").await.error(), "CALLBACK_URL_INVALID");
    assert!(dns.queries() > before, "the other tenant's host was looked up");
}
