//! Rate limits and budgets: each limit fires at its configured rate and recovers on schedule
//! (the manual clock, no sleeps); a refusal is `FLOOD_WAIT_<seconds>` with `Retry-After` and
//! `RateLimit-Policy`/`RateLimit` naming the limit, and changes nothing else; the wrong-code
//! budget survives a new request to the number; two processes on one Redis share a limit.

use crate::helpers::*;
use reqwest::Method;

verigram_testkit::on_every_backend!(
    the_phone_limit_stops_a_burst_and_recovers_on_schedule,
    a_refused_call_changes_nothing,
    each_limit_fires_for_its_own_key_only,
    the_client_address_comes_from_a_trusted_proxy_only,
    sends_to_the_tenants_own_number_are_exempt_from_the_tenant_limits,
    a_wrong_code_burst_never_locks_the_real_user_out,
    once_the_budget_is_used_up_each_request_gets_one_guess,
    tenants_override_the_servers_limits,
    a_refusal_is_429_in_semantic_mode,
    tenants_choose_their_destination_countries,
    the_daily_spend_cap_holds_until_the_next_day,
    a_call_that_fails_gives_its_spend_back,
    the_country_spend_budget_watches_or_blocks,
    explain_says_which_limits_apply_and_why_a_send_would_not_pass,
    a_call_refused_by_a_budget_counts_against_no_limit,
    guesses_made_at_once_cannot_slip_past_the_wrong_code_budget,
);

mod shared_redis {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_processes_on_one_redis_enforce_one_limit() {
        super::two_processes_on_one_redis_enforce_one_limit().await
    }
}

/// The service with one limit on (the test harness switches them all off).
async fn with_limit(backend: Backend, limit: &str, rate: &str, more: impl FnOnce(&mut String)) -> TestApp {
    spawn_app_with(backend, |c| {
        set_key(c, &format!("limits.{limit}"), rate);
        more(c);
    })
    .await
}

/// A raw send: the whole HTTP answer (for its headers).
async fn send_raw(app: &TestApp, t: &Tenant, phone: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/sendVerificationMessage"))
        .bearer_auth(&t.token)
        .json(&json!({"phone_number": phone, "code_length": 6}));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("the service answers")
}

async fn send_error(app: &TestApp, t: &Tenant, phone: &str) -> Option<String> {
    let body: Value = send_raw(app, t, phone, &[]).await.json().await.expect("JSON");
    body["error"].as_str().map(str::to_owned)
}

async fn the_phone_limit_stops_a_burst_and_recovers_on_schedule(backend: Backend) {
    let app = with_limit(backend, "phone", "{ rate = 1, per = 60, burst = 3 }", |_| {}).await;
    let t = app.create_tenant("1", None).await;
    for _ in 0..3 {
        assert_eq!(send_error(&app, &t, PHONE).await, None, "the burst passes");
    }
    let refused = send_raw(&app, &t, PHONE, &[]).await;
    let header = |name: &str| refused.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(header("retry-after").as_deref(), Some("60"));
    assert_eq!(header("ratelimit-policy").as_deref(), Some("\"phone\";q=1;w=60"));
    assert_eq!(header("ratelimit").as_deref(), Some("\"phone\";r=0;t=60"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body, json!({"ok": false, "error": "FLOOD_WAIT_60"}));
    assert_eq!(send_error(&app, &t, "+15557654321").await, None, "another number is not limited");

    app.advance(Duration::from_secs(59));
    assert_eq!(send_error(&app, &t, PHONE).await.as_deref(), Some("FLOOD_WAIT_1"));
    app.advance(Duration::from_secs(1));
    assert_eq!(send_error(&app, &t, PHONE).await, None, "one more after a minute");
    assert_eq!(send_error(&app, &t, PHONE).await.as_deref(), Some("FLOOD_WAIT_60"));
    // checkSendAbility counts too: it would tell who is on Telegram.
    let ability = app.call(&t, "checkSendAbility", json!({"phone_number": PHONE})).await;
    assert_eq!(ability.error(), "FLOOD_WAIT_60");
}

async fn a_refused_call_changes_nothing(backend: Backend) {
    let app = with_limit(backend, "phone", "{ rate = 1, per = 600, burst = 1 }", |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let first = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    app.wait_delivered(&t, &first).await;
    let (balance, ledger) = (app.balance(&t).await, app.ledger(&t).await.len());
    let inbox = app.inbox(PHONE).await.len();
    let backlog = app.services.store.delivery_backlog().await.unwrap();
    assert_eq!(send_error(&app, &t, PHONE).await.as_deref(), Some("FLOOD_WAIT_600"));
    let free = app.checked_request(&t, "+15557654321").await;
    let with_id = app
        .call(
            &t,
            "sendVerificationMessage",
            json!({"phone_number": "+15557654321", "code_length": 6, "request_id": free}),
        )
        .await;
    assert!(with_id.result()["request_id"].is_string(), "its one send was counted with the checkSendAbility");
    assert_eq!(app.balance(&t).await, balance - 10_000, "only the checkSendAbility was charged");
    assert_eq!(app.ledger(&t).await.len(), ledger + 1);
    assert_eq!(app.inbox(PHONE).await.len(), inbox, "nothing sent");
    assert_eq!(app.services.store.delivery_backlog().await.unwrap().waiting, backlog.waiting);
}

async fn each_limit_fires_for_its_own_key_only(backend: Backend) {
    let burst_two = "{ rate = 1, per = 3600, burst = 2 }";
    // Per tenant: another tenant is not affected.
    let app = with_limit(backend, "tenant", burst_two, |_| {}).await;
    let (a, b) = (app.create_tenant("1", None).await, app.create_tenant("1", None).await);
    assert_eq!(send_error(&app, &a, "+15550000001").await, None);
    assert_eq!(send_error(&app, &a, "+15550000002").await, None);
    assert_eq!(send_error(&app, &a, "+15550000003").await.as_deref(), Some("FLOOD_WAIT_3600"));
    assert_eq!(send_error(&app, &b, "+15550000003").await, None);
    app.advance(Duration::from_secs(3600));
    assert_eq!(send_error(&app, &a, "+15550000003").await, None, "recovered after an interval");
    drop(app);

    // Per token: the tenant's other token is not affected.
    let app = with_limit(backend, "token", burst_two, |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let (_, issued) = app.admin(Method::POST, &format!("/tenants/{}/tokens", t.id), None).await;
    let other = Tenant { token: issued["token"].as_str().unwrap().to_owned(), ..t.clone() };
    assert_eq!(send_error(&app, &t, "+15550000001").await, None);
    assert_eq!(send_error(&app, &t, "+15550000002").await, None);
    let refused = send_raw(&app, &t, "+15550000003", &[]).await;
    assert_eq!(refused.headers()["ratelimit-policy"], "\"token\";q=1;w=3600");
    assert_eq!(send_error(&app, &other, "+15550000003").await, None);
    app.advance(Duration::from_secs(3600));
    assert_eq!(send_error(&app, &t, "+15550000003").await, None, "recovered after an interval");
    drop(app);

    // Per country calling code: another country is not affected.
    let app = with_limit(backend, "country", burst_two, |_| {}).await;
    let t = app.create_tenant("1", None).await;
    assert_eq!(send_error(&app, &t, "+15550000001").await, None);
    assert_eq!(send_error(&app, &t, "+15550000002").await, None);
    assert_eq!(send_error(&app, &t, "+15550000003").await.as_deref(), Some("FLOOD_WAIT_3600"));
    assert_eq!(send_error(&app, &t, "+447911123456").await, None);
    app.advance(Duration::from_secs(3600));
    assert_eq!(send_error(&app, &t, "+15550000003").await, None, "recovered after an interval");
    drop(app);

    // Per tenant per day: a budget.
    let app = with_limit(backend, "tenant_daily", "{ rate = 2, per = 86400, burst = 2 }", |_| {}).await;
    let t = app.create_tenant("1", None).await;
    assert_eq!(send_error(&app, &t, "+15550000001").await, None);
    assert_eq!(send_error(&app, &t, "+15550000002").await, None);
    let refused = send_raw(&app, &t, "+15550000003", &[]).await;
    assert_eq!(refused.headers()["ratelimit-policy"], "\"tenant_daily\";q=2;w=86400");
    app.advance(Duration::from_secs(43_200));
    assert_eq!(send_error(&app, &t, "+15550000003").await, None, "half a day later, one more");
}

async fn the_client_address_comes_from_a_trusted_proxy_only(backend: Backend) {
    let burst_two = "{ rate = 1, per = 3600, burst = 2 }";
    let app =
        with_limit(backend, "ip", burst_two, |c| set_key(c, "limits.trusted_proxies", r#"["127.0.0.1/32"]"#)).await;
    let t = app.create_tenant("1", None).await;
    let from = |ip: &'static str| [("x-forwarded-for", ip)];
    let status =
        |r: reqwest::Response| async move { r.json::<Value>().await.unwrap()["error"].as_str().map(str::to_owned) };
    assert_eq!(status(send_raw(&app, &t, "+15550000001", &from("203.0.113.5")).await).await, None);
    assert_eq!(status(send_raw(&app, &t, "+15550000002", &from("198.51.100.1, 203.0.113.5")).await).await, None);
    let refused = send_raw(&app, &t, "+15550000003", &from("203.0.113.5")).await;
    assert_eq!(refused.headers()["ratelimit-policy"], "\"ip\";q=1;w=3600");
    assert_eq!(status(send_raw(&app, &t, "+15550000003", &from("203.0.113.6")).await).await, None, "another client");
    app.advance(Duration::from_secs(3600));
    assert_eq!(status(send_raw(&app, &t, "+15550000004", &from("203.0.113.5")).await).await, None, "recovered");
    // An address with a port is the address; IPv6 clients are counted by their /64.
    assert_eq!(
        status(send_raw(&app, &t, "+15550000005", &from("203.0.113.5:4711")).await).await.as_deref(),
        Some("FLOOD_WAIT_3600")
    );
    for (phone, v6) in [("+15550000006", "2001:db8:1:2::1"), ("+15550000007", "2001:db8:1:2::2")] {
        assert_eq!(status(send_raw(&app, &t, phone, &from(v6)).await).await, None);
    }
    let refused = send_raw(&app, &t, "+15550000008", &from("2001:db8:1:2:ffff::9")).await;
    assert_eq!(refused.headers()["ratelimit-policy"], "\"ip\";q=1;w=3600", "the same /64");
    // A hop that cannot be read counts against the proxy that passed it on (here the
    // connection's own address): garbage in the header never escapes the per-address limit.
    for phone in ["+15550000011", "+15550000012"] {
        assert_eq!(status(send_raw(&app, &t, phone, &from("unknown")).await).await, None);
    }
    let refused = send_raw(&app, &t, "+15550000013", &from("203.0.113.9, unknown")).await;
    assert_eq!(refused.headers()["ratelimit-policy"], "\"ip\";q=1;w=3600", "the proxy's own budget");
    // But the proxy's address stands in only to be counted against: a token allowed from the
    // proxy's network is not let in by a client whose own hop cannot be read.
    let path = format!("/tenants/{}/tokens/{}/ip_allow", t.id, t.token_id);
    let (put, _) = app.admin(Method::PUT, &path, Some(json!({"ip_allow": ["127.0.0.0/8", "203.0.113.7/32"]}))).await;
    assert_eq!(put, 200);
    app.advance(Duration::from_secs(3600));
    assert_eq!(status(send_raw(&app, &t, "+15550000021", &from("203.0.113.7")).await).await, None, "allowed");
    let forged = send_raw(&app, &t, "+15550000022", &from("garbage")).await;
    assert_eq!(status(forged).await.as_deref(), Some("ACCESS_TOKEN_INVALID"), "not vouched for");
    drop(app);

    // Without a trusted proxy the header is the client's own claim and is ignored.
    let app = with_limit(backend, "ip", burst_two, |_| {}).await;
    let t = app.create_tenant("1", None).await;
    assert_eq!(status(send_raw(&app, &t, "+15550000001", &from("203.0.113.5")).await).await, None);
    assert_eq!(status(send_raw(&app, &t, "+15550000002", &from("203.0.113.6")).await).await, None);
    let refused = send_raw(&app, &t, "+15550000003", &from("203.0.113.7")).await;
    assert_eq!(refused.headers()["ratelimit-policy"], "\"ip\";q=1;w=3600", "one address: the connection's");
}

async fn sends_to_the_tenants_own_number_are_exempt_from_the_tenant_limits(backend: Backend) {
    let app = with_limit(backend, "tenant", "{ rate = 1, per = 3600, burst = 1 }", |_| {}).await;
    let t = app.create_tenant("1", Some(PHONE)).await;
    for _ in 0..5 {
        assert_eq!(send_error(&app, &t, PHONE).await, None, "the tenant's own number");
    }
    assert_eq!(send_error(&app, &t, "+15550000001").await, None);
    assert_eq!(send_error(&app, &t, "+15550000002").await.as_deref(), Some("FLOOD_WAIT_3600"));
}

async fn a_wrong_code_burst_never_locks_the_real_user_out(backend: Backend) {
    let app = with_limit(backend, "wrong_checks", "{ rate = 3, per = 86400, burst = 3 }", |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let status = |r: &Reply| r.result()["verification_status"]["status"].as_str().unwrap().to_owned();
    // Someone who cannot receive the code asks for one to the victim's number and enters junk:
    // the number's budget (3) goes, then the request's one last guess ends it.
    let junk = app.send_code(&t, PHONE, "1234").await["request_id"].as_str().unwrap().to_owned();
    for _ in 0..3 {
        assert_eq!(status(&app.check(&t, &junk, Some("9999")).await), "code_invalid");
    }
    assert_eq!(status(&app.check(&t, &junk, Some("9998")).await), "code_max_attempts_exceeded");
    let after = app.check(&t, &junk, Some("1234")).await;
    assert_eq!(status(&after), "code_max_attempts_exceeded", "an ended request takes no more guesses");
    assert!(after.result()["verification_status"].get("code_entered").is_none(), "and evaluates none");

    // The victim's own request, right after: the right code is accepted at once, no wait.
    let victim = app.send_code(&t, PHONE, "5678").await["request_id"].as_str().unwrap().to_owned();
    assert_eq!(status(&app.check(&t, &victim, Some("5678")).await), "code_valid");
    // The trade-off: while the budget is used up, a typo is that request's last guess.
    let typo = app.send_code(&t, PHONE, "2222").await["request_id"].as_str().unwrap().to_owned();
    assert_eq!(status(&app.check(&t, &typo, Some("2223")).await), "code_max_attempts_exceeded");

    // Another number has its own budget; the right code does not use it up.
    let other = app.send_code(&t, "+15557654321", "2468").await["request_id"].as_str().unwrap().to_owned();
    for _ in 0..4 {
        assert_eq!(status(&app.check(&t, &other, Some("2468")).await), "code_valid");
    }
    // A third of a day later the budget has one more: a wrong code is an ordinary one again.
    app.advance(Duration::from_secs(28_800));
    let later = app.send_code(&t, PHONE, "1357").await["request_id"].as_str().unwrap().to_owned();
    assert_eq!(status(&app.check(&t, &later, Some("0000")).await), "code_invalid");
    assert_eq!(status(&app.check(&t, &later, Some("1357")).await), "code_valid");
}

async fn once_the_budget_is_used_up_each_request_gets_one_guess(backend: Backend) {
    let app = with_limit(backend, "wrong_checks", "{ rate = 2, per = 86400, burst = 2 }", |_| {}).await;
    let t = app.create_tenant("1", None).await;
    // Guesses evaluated: the answers that echo the code entered.
    let mut evaluated = 0;
    for n in 0..6 {
        let id = app.send_code(&t, PHONE, "424242").await["request_id"].as_str().unwrap().to_owned();
        for guess in 0..4 {
            let r = app.check(&t, &id, Some(&format!("{:06}", n * 10 + guess))).await;
            if r.result()["verification_status"].get("code_entered").is_some() {
                evaluated += 1;
            }
        }
    }
    // The budget (2), then one a request: 2 + 6 of the 24 tries, whatever the attacker does.
    assert_eq!(evaluated, 8);
}

async fn tenants_override_the_servers_limits(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let path = format!("/tenants/{}", t.id);
    let (status, body) =
        app.admin(Method::PATCH, &path, Some(json!({"limits": {"phone": {"rate": 1, "per": 60, "burst": 1}}}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"]["limits"]["phone"], json!({"rate": 1, "per": 60, "burst": 1}));
    assert_eq!(send_error(&app, &t, PHONE).await, None);
    assert_eq!(send_error(&app, &t, PHONE).await.as_deref(), Some("FLOOD_WAIT_60"));
    let (status, _) =
        app.admin(Method::PATCH, &path, Some(json!({"limits": {"phone": {"rate": 1, "per": 0, "burst": 1}}}))).await;
    assert_eq!(status, 400, "per must be at least a second");
    let (status, _) = app.admin(Method::PATCH, &path, Some(json!({"limits": {"nope": {"rate": 1}}}))).await;
    assert_eq!(status, 400);
    let (status, _) = app.admin(Method::PATCH, &path, Some(json!({"limits": null}))).await;
    assert_eq!(status, 200);
    assert_eq!(send_error(&app, &t, PHONE).await, None, "back to the server's (off in tests)");
}

async fn a_refusal_is_429_in_semantic_mode(backend: Backend) {
    let app = with_limit(backend, "phone", "{ rate = 1, per = 60, burst = 1 }", |c| {
        set_key(c, "api.error_status", r#""semantic""#)
    })
    .await;
    let t = app.create_tenant("1", None).await;
    assert_eq!(send_raw(&app, &t, PHONE, &[]).await.status(), 200);
    let refused = send_raw(&app, &t, PHONE, &[]).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "60");
}

async fn two_processes_on_one_redis_enforce_one_limit() {
    let first = with_limit(Backend::Redis, "phone", "{ rate = 1, per = 600, burst = 2 }", |_| {}).await;
    let url = first.redis.as_ref().expect("a Redis").url();
    let second = with_limit(Backend::Memory, "phone", "{ rate = 1, per = 600, burst = 2 }", |c| {
        set_key(c, "store.url", &format!("{url:?}"))
    })
    .await;
    let t = first.create_tenant("1", None).await;
    assert_eq!(send_error(&first, &t, PHONE).await, None);
    assert_eq!(send_error(&second, &t, PHONE).await, None, "the same tenant and token on the other process");
    assert!(send_error(&first, &t, PHONE).await.is_some_and(|e| e.starts_with("FLOOD_WAIT_")));
    assert!(send_error(&second, &t, PHONE).await.is_some_and(|e| e.starts_with("FLOOD_WAIT_")));
}

async fn tenants_choose_their_destination_countries(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let path = format!("/tenants/{}", t.id);
    let (status, body) = app.admin(Method::PATCH, &path, Some(json!({"countries": {"block": [44]}}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(send_error(&app, &t, "+447911123456").await.as_deref(), Some("PHONE_NUMBER_NOT_FOUND"));
    let ability = app.call(&t, "checkSendAbility", json!({"phone_number": "+447911123456"})).await;
    assert_eq!(ability.error(), "PHONE_NUMBER_NOT_FOUND");
    assert_eq!(app.balance(&t).await, 1_000_000, "refused for free");
    assert_eq!(send_error(&app, &t, PHONE).await, None);
    app.admin(Method::PATCH, &path, Some(json!({"countries": {"allow": [1]}}))).await;
    assert_eq!(send_error(&app, &t, "+4915112345678").await.as_deref(), Some("PHONE_NUMBER_NOT_FOUND"));
    assert_eq!(send_error(&app, &t, PHONE).await, None);
    let (status, _) = app.admin(Method::PATCH, &path, Some(json!({"countries": {"allow": [0]}}))).await;
    assert_eq!(status, 400);
    app.admin(Method::PATCH, &path, Some(json!({"countries": null}))).await;
    assert_eq!(send_error(&app, &t, "+4915112345678").await, None);
}

async fn the_daily_spend_cap_holds_until_the_next_day(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", Some("+15550009999")).await;
    let path = format!("/tenants/{}", t.id);
    let (status, body) = app.admin(Method::PATCH, &path, Some(json!({"daily_spend_cap": "0.02"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(send_error(&app, &t, "+15550000001").await, None);
    let ability = app.call(&t, "checkSendAbility", json!({"phone_number": "+15550000002"})).await;
    assert!(ability.result()["request_id"].is_string(), "checkSendAbility is paid: it counts");
    let refused = send_raw(&app, &t, "+15550000003", &[]).await;
    let until_midnight = 86_400 - app.now_secs() % 86_400;
    assert_eq!(refused.headers()["ratelimit-policy"], "\"daily_spend\";q=20000;w=86400");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], format!("FLOOD_WAIT_{until_midnight}"));
    assert_eq!(send_error(&app, &t, "+15550009999").await, None, "the tenant's own number is free");
    assert_eq!(app.balance(&t).await, 980_000);
    app.advance(Duration::from_secs(until_midnight as u64));
    assert_eq!(send_error(&app, &t, "+15550000003").await, None, "a new day");
}

async fn a_call_that_fails_gives_its_spend_back(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("0.01", None).await;
    let path = format!("/tenants/{}", t.id);
    app.admin(Method::PATCH, &path, Some(json!({"daily_spend_cap": "0.02"}))).await;
    assert_eq!(send_error(&app, &t, "+15550000001").await, None);
    assert_eq!(send_error(&app, &t, "+15550000002").await.as_deref(), Some("BALANCE_NOT_ENOUGH"));
    let (status, _) = app.admin(Method::POST, &format!("{path}/balance"), Some(json!({"amount": "1"}))).await;
    assert_eq!(status, 200);
    assert_eq!(send_error(&app, &t, "+15550000002").await, None, "the failed call's spend was given back");
    assert!(send_error(&app, &t, "+15550000003").await.is_some_and(|e| e.starts_with("FLOOD_WAIT_")));
}

async fn the_country_spend_budget_watches_or_blocks(backend: Backend) {
    for (mode, third_passes) in [("watch", true), ("block", false)] {
        let app = spawn_app_with(backend, |c| {
            set_key(c, "limits.country_hourly_spend", &format!("{{ cap = 0.02, mode = \"{mode}\" }}"))
        })
        .await;
        let t = app.create_tenant("1", None).await;
        assert_eq!(send_error(&app, &t, "+15550000001").await, None);
        assert_eq!(send_error(&app, &t, "+15550000002").await, None);
        let third = send_error(&app, &t, "+15550000003").await;
        assert_eq!(third.is_none(), third_passes, "{mode}: {third:?}");
        assert_eq!(send_error(&app, &t, "+447911123456").await, None, "{mode}: another country");
        if !third_passes {
            let refused = send_raw(&app, &t, "+15550000004", &[]).await;
            assert_eq!(refused.headers()["ratelimit-policy"], "\"country_spend\";q=20000;w=3600");
            app.advance(Duration::from_secs(3_600));
            assert_eq!(send_error(&app, &t, "+15550000004").await, None, "the next hour");
        }
    }
}

async fn explain_says_which_limits_apply_and_why_a_send_would_not_pass(backend: Backend) {
    let app = with_limit(backend, "phone", "{ rate = 1, per = 600, burst = 2 }", |c| {
        set_key(c, "limits.ip", "{ rate = 10, per = 1, burst = 30 }");
        set_key(c, "limits.token", "{ rate = 5, per = 1, burst = 5 }");
    })
    .await;
    let t = app.create_tenant("1", None).await;
    let settings = format!("/tenants/{}", t.id);
    app.admin(Method::PATCH, &settings, Some(json!({"daily_spend_cap": "0.02", "countries": {"block": [44]}}))).await;
    let path = format!("/tenants/{}/limits/explain", t.id);
    let ask = |body: Value| app.admin(Method::POST, &path, Some(body));
    let (status, fresh) = ask(json!({"phone_number": PHONE, "ip": "203.0.113.5", "token_id": t.token_id})).await;
    assert_eq!(status, 200, "{fresh}");
    assert_eq!((fresh["allowed"].as_bool(), fresh["fee"].as_f64()), (Some(true), Some(0.01)));
    let names: Vec<&str> = fresh["limits"].as_array().unwrap().iter().map(|l| l["limit"].as_str().unwrap()).collect();
    assert_eq!(names, ["phone", "token", "ip", "daily_spend"], "the limits and budgets that are on");
    assert_eq!(fresh["limits"][0]["remaining"], 2);
    assert_eq!(fresh["limits"][0]["rate"], json!({"rate": 1, "per": 600, "burst": 2}));

    assert_eq!(send_error(&app, &t, PHONE).await, None);
    assert_eq!(ask(json!({"phone_number": PHONE})).await.1["limits"][0]["remaining"], 1, "explaining counts nothing");
    assert_eq!(ask(json!({"phone_number": PHONE})).await.1["limits"][0]["remaining"], 1);
    assert_eq!(send_error(&app, &t, PHONE).await, None);
    let (_, blocked) = ask(json!({"phone_number": PHONE})).await;
    assert_eq!(blocked["allowed"], false);
    assert_eq!(blocked["reason"], "the phone limit: FLOOD_WAIT_600");
    assert_eq!(blocked["limits"][0]["retry_after"], 600);
    assert_eq!(send_error(&app, &t, PHONE).await.as_deref(), Some("FLOOD_WAIT_600"), "as explained");

    // Budgets and countries show too.
    let (_, other) = ask(json!({"phone_number": "+15557654321"})).await;
    assert_eq!(other["allowed"], false);
    assert_eq!(other["reason"], format!("the daily_spend budget: FLOOD_WAIT_{}", 86_400 - app.now_secs() % 86_400));
    let spend = other["limits"].as_array().unwrap().iter().find(|l| l["limit"] == "daily_spend").unwrap().clone();
    assert_eq!((spend["spent_micros"].as_i64(), spend["rate"]["rate"].as_i64()), (Some(20_000), Some(20_000)));
    let (_, uk) = ask(json!({"phone_number": "+447911123456"})).await;
    assert_eq!(uk["reason"], "the tenant does not send to country code 44");
    assert_eq!(ask(json!({"phone_number": "nope"})).await.0, 400);
    assert_eq!(ask(json!({"phone_number": PHONE, "ip": "not an address"})).await.0, 400);
    let missing = "/tenants/00000000-0000-0000-0000-000000000000/limits/explain";
    assert_eq!(app.admin(Method::POST, missing, Some(json!({"phone_number": PHONE}))).await.0, 404);
}

async fn a_call_refused_by_a_budget_counts_against_no_limit(backend: Backend) {
    let app = with_limit(backend, "phone", "{ rate = 1, per = 3600, burst = 2 }", |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let path = format!("/tenants/{}", t.id);
    app.admin(Method::PATCH, &path, Some(json!({"daily_spend_cap": "0.01"}))).await;
    assert_eq!(send_error(&app, &t, PHONE).await, None);
    let refused = send_raw(&app, &t, PHONE, &[]).await;
    assert!(refused.headers()["ratelimit-policy"].to_str().unwrap().starts_with("\"daily_spend\""));
    app.admin(Method::PATCH, &path, Some(json!({"daily_spend_cap": "1"}))).await;
    assert_eq!(send_error(&app, &t, PHONE).await, None, "the refused call took nothing of the number's limit");
    assert_eq!(send_error(&app, &t, PHONE).await.as_deref(), Some("FLOOD_WAIT_3600"));
}

async fn guesses_made_at_once_cannot_slip_past_the_wrong_code_budget(backend: Backend) {
    let app = with_limit(backend, "wrong_checks", "{ rate = 3, per = 86400, burst = 3 }", |_| {}).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send_code(&t, PHONE, "1234").await["request_id"].as_str().unwrap().to_owned();
    let guesses: Vec<_> = (0..10).map(|_| app.check(&t, &id, Some("9999"))).collect();
    let replies = futures_util::future::join_all(guesses).await;
    // Evaluated: the answers that echo the code. The rest were refused, or (coming after the
    // request ended, depending on timing) answered its final status without evaluating.
    let evaluated = replies
        .iter()
        .filter(|r| r.outcome().is_ok() && r.result()["verification_status"].get("code_entered").is_some())
        .count();
    // At most the budget and the one last guess (fewer echo when the last one landed first).
    assert!((1..=4).contains(&evaluated), "{evaluated} guesses evaluated");
    let (tenant, request) =
        (verigram::domain::TenantId::parse(&t.id).unwrap(), verigram::domain::RequestId::parse(&id).unwrap());
    let stored = app.services.store.request(&tenant, request, verigram::domain::Clock::now(&*app.clock)).await.unwrap();
    let code = stored.unwrap().code.unwrap();
    assert_eq!(code.attempts, code.max_attempts, "the last guess ended the request");
}
