//! The sender pool through the running service: account failures drive the pool, messages
//! move to healthy accounts, jobs wait while no account can send, and unreachable recipients
//! are refused or refunded. Sandbox accounts and recipients behave as configured.

use crate::helpers::*;
use verigram::domain::{AccountState, SenderAccount};

verigram_testkit::on_every_backend!(
    a_flood_waiting_account_hands_the_message_to_another,
    peer_flood_quarantines_and_a_ban_disables,
    jobs_wait_while_every_account_is_parked,
    unreachable_recipients_are_refused_or_refunded,
    operators_manage_the_pool,
    tenant_templates_override_the_servers,
    sandbox_recipients_that_read_on_their_own,
    failures_on_the_way_retry_with_growing_waits,
);

async fn accounts(app: &TestApp) -> Vec<SenderAccount> {
    app.services.store.accounts().await.unwrap()
}

fn account<'a>(all: &'a [SenderAccount], id: &str) -> &'a SenderAccount {
    all.iter().find(|a| a.id == id).unwrap_or_else(|| panic!("no account {id} in {all:?}"))
}

async fn a_flood_waiting_account_hands_the_message_to_another(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        set_key(c, "sandbox.accounts", r#"["flooded", "healthy"]"#);
        set_key(c, "sandbox.account_behaviour.flooded", "{ flood_wait = { seconds = 60 } }");
    })
    .await;
    let t = app.create_tenant("1", None).await;
    // The first message alone: the flooded account (first in id order) is tried and parked.
    let first = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    app.wait_delivered(&t, &first).await;
    let mut ids = vec![first];
    for _ in 0..2 {
        ids.push(app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        app.wait_delivered(&t, id).await;
    }
    assert_eq!(app.inbox(PHONE).await.len(), 3, "every message went out, once");
    let all = accounts(&app).await;
    let flooded = account(&all, "flooded");
    assert!(matches!(flooded.state, AccountState::FloodWait { .. }), "{flooded:?}");
    assert_eq!(flooded.reason.as_deref(), Some("FLOOD_WAIT_60"));
    assert_eq!((flooded.sent, flooded.flood_waits), (0, 1), "parked once, never retried early");
    assert_eq!(account(&all, "healthy").sent, 3);
}

async fn peer_flood_quarantines_and_a_ban_disables(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        set_key(c, "sandbox.accounts", r#"["a-spammy", "b-banned", "c-healthy"]"#);
        set_key(c, "sandbox.account_behaviour.a-spammy", r#""peer_flood""#);
        set_key(c, "sandbox.account_behaviour.b-banned", r#""banned""#);
    })
    .await;
    let t = app.create_tenant("1", None).await;
    // Accounts that never sent are tried in id order: the two troubled ones come first.
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    app.wait_delivered(&t, &id).await;
    let all = accounts(&app).await;
    let spammy = account(&all, "a-spammy");
    assert_eq!((spammy.state, spammy.reason.as_deref()), (AccountState::Quarantined, Some("PEER_FLOOD")));
    let banned = account(&all, "b-banned");
    assert_eq!((banned.state, banned.reason.as_deref()), (AccountState::Disabled, Some("USER_DEACTIVATED_BAN")));
    assert_eq!(account(&all, "c-healthy").sent, 1);
    // Out of the pool for good: later messages never try them again.
    let second = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    app.wait_delivered(&t, &second).await;
    let all = accounts(&app).await;
    assert_eq!(account(&all, "a-spammy").failures, 1);
    assert_eq!(account(&all, "b-banned").failures, 1);
    assert_eq!(account(&all, "c-healthy").sent, 2);
}

async fn jobs_wait_while_every_account_is_parked(backend: Backend) {
    let app = spawn_app_with(backend, |c| set_key(c, "sandbox.accounts", r#"["only"]"#)).await;
    let t = app.create_tenant("1", None).await;
    let until = verigram::domain::Timestamp::from_millis((app.now_secs() + 120) * 1000);
    app.services
        .store
        .update_account("only", |a| Some(SenderAccount { state: AccountState::FloodWait { until }, ..a.clone() }))
        .await
        .unwrap();
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    // The workers find no account, so they claim nothing: the job waits in its queue, never
    // taken, put off or rewritten, however many rounds pass.
    app.wait_store_ops("accounts", 3).await;
    let (claims, deferrals) = (app.store_ops("claim_next"), app.store_ops("defer_job"));
    app.wait_store_ops("accounts", 20).await;
    assert_eq!((app.store_ops("claim_next"), app.store_ops("defer_job")), (claims, deferrals), "the job was touched");
    assert_eq!(deferrals, 0);
    assert!(app.sandbox_messages().await.is_empty(), "nothing sent");
    assert_eq!(app.delivery(&t, &id).await, None, "still queued");
    assert_eq!(app.admin(reqwest::Method::GET, "/delivery/backlog", None).await.1["queued"], 1);
    assert_eq!(app.charges(&t).await.len(), 1, "charged once, and not refunded while waiting");
    // When the account may send again, the job comes back and goes out.
    app.advance(Duration::from_secs(301));
    app.wait_delivered(&t, &id).await;
    assert_eq!(app.inbox(PHONE).await.len(), 1);
    assert_eq!(account(&accounts(&app).await, "only").state, AccountState::Active);
}

async fn unreachable_recipients_are_refused_or_refunded(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        set_key(c, "sandbox.recipients.\"1555000\"", r#""not_on_telegram""#);
        set_key(c, "sandbox.recipients.\"1555001\"", r#""privacy_restricted""#);
    })
    .await;
    let t = app.create_tenant("1", None).await;
    for phone in ["+15550001234", "+15550011234"] {
        let r = app.call(&t, "checkSendAbility", json!({"phone_number": phone})).await;
        assert_eq!(r.error(), "PHONE_NUMBER_NOT_FOUND", "{phone}");
    }
    assert_eq!(app.balance(&t).await, 1_000_000, "refusals are free");
    // A send is accepted (the API does not ask Telegram), then expires and is refunded.
    let id = app.send(&t, "+15550001234").await["request_id"].as_str().unwrap().to_owned();
    let expired = wait_for("the unreachable send to expire", || async {
        let r = app.check(&t, &id, None).await;
        (r.result()["delivery_status"]["status"] == "expired").then(|| r.result().clone())
    })
    .await;
    assert_eq!(expired["is_refunded"], true);
    assert_eq!(app.balance(&t).await, 1_000_000);
    assert!(app.inbox("+15550001234").await.is_empty());
    // Other numbers are unaffected.
    let ok = app.call(&t, "checkSendAbility", json!({"phone_number": PHONE})).await;
    assert_eq!(ok.result()["request_cost"], 0.01);
}

async fn operators_manage_the_pool(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(backend).await;
    let (status, list) = app.admin(Method::GET, "/senders", None).await;
    assert_eq!(status, 200);
    assert_eq!(list[0]["id"], "sandbox");
    assert_eq!((list[0]["kind"].as_str(), list[0]["state"].as_str()), (Some("sandbox"), Some("active")));
    let add = |body: Value| app.admin(Method::POST, "/senders", Some(body));
    assert_eq!(add(json!({"id": "extra", "kind": "sandbox"})).await.0, 201);
    assert_eq!(add(json!({"id": "extra", "kind": "sandbox"})).await.0, 409);
    assert_eq!(add(json!({"id": "bad id!", "kind": "sandbox"})).await.0, 400);
    assert_eq!(add(json!({"id": "tg", "kind": "telegram"})).await.0, 400, "api_id and phone_number are required");
    let (status, tg) =
        add(json!({"id": "tg", "kind": "telegram", "api_id": 12345, "phone_number": "+447911123456"})).await;
    assert_eq!(status, 201, "{tg}");
    assert_eq!((tg["state"].as_str(), tg["reason"].as_str()), (Some("disabled"), Some("NOT_SIGNED_IN")));
    assert_eq!(tg["telegram"], json!({"api_id": 12345, "phone": "447911123456"}), "no api_hash is stored");
    assert_eq!(app.admin(Method::DELETE, "/senders/tg", None).await.0, 200);
    for id in ["sandbox", "extra"] {
        let (status, a) =
            app.admin(Method::POST, &format!("/senders/{id}/pause"), Some(json!({"note": "maintenance"}))).await;
        assert_eq!((status, a["state"].as_str(), a["reason"].as_str()), (200, Some("paused"), Some("maintenance")));
    }
    // No account may send: the job waits in the queue, and is counted, for its tenant too.
    let t = app.create_tenant("1", None).await;
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    app.wait_store_ops("accounts", 3).await;
    assert!(app.sandbox_messages().await.is_empty());
    let (status, backlog) = app.admin(Method::GET, "/delivery/backlog", None).await;
    assert_eq!((status, &backlog["queued"], &backlog["waiting"]), (200, &json!(1), &json!(0)), "{backlog}");
    let tenants = backlog["tenants"].as_array().unwrap();
    assert_eq!(tenants.len(), 1, "{backlog}");
    assert_eq!(tenants[0]["tenant"], t.id.as_str());
    assert_eq!(
        (&tenants[0]["queued"], &tenants[0]["waiting"], &tenants[0]["delivery_weight"]),
        (&json!(1), &json!(0), &json!(1))
    );
    let (status, a) = app.admin(Method::POST, "/senders/extra/resume", None).await;
    assert_eq!((status, a["state"].as_str()), (200, Some("active")));
    // The job goes out as soon as an account may send: nothing to wait out.
    app.wait_delivered(&t, &id).await;
    let (_, backlog) = app.admin(Method::GET, "/delivery/backlog", None).await;
    assert_eq!((&backlog["queued"], &backlog["waiting"], &backlog["tenants"]), (&json!(0), &json!(0), &json!([])));
    let (_, list) = app.admin(Method::GET, "/senders", None).await;
    let extra = list.as_array().unwrap().iter().find(|a| a["id"] == "extra").unwrap();
    assert_eq!(extra["sent"], 1);
    assert_eq!(app.admin(Method::DELETE, "/senders/extra", None).await.0, 200);
    assert_eq!(app.admin(Method::DELETE, "/senders/extra", None).await.0, 404);
    assert_eq!(app.admin(Method::POST, "/senders/nobody/resume", None).await.0, 404);
}

async fn tenant_templates_override_the_servers(backend: Backend) {
    use reqwest::Method;
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let path = format!("/tenants/{}", t.id);
    let (status, _) = app.admin(Method::PATCH, &path, Some(json!({"templates": {"de": "no placeholder"}}))).await;
    assert_eq!(status, 400, "a template must show the code");
    let (status, body) =
        app.admin(Method::PATCH, &path, Some(json!({"templates": {"de": "{service}-Code: {code}"}}))).await;
    assert_eq!(status, 200, "{body}");
    let de = app.send_code(&t, "+4915112345678", "2468").await["request_id"].as_str().unwrap().to_owned();
    assert_eq!(app.message_for(&de).await["text"], "Acme-Code: 2468");
    let en = app.send_code(&t, PHONE, "1357").await["request_id"].as_str().unwrap().to_owned();
    assert_eq!(app.message_for(&en).await["text"], "Your code for Acme: 1357. Do not give it to anyone.");
    let (status, body) = app.admin(Method::PATCH, &path, Some(json!({"templates": null}))).await;
    assert_eq!((status, body["settings"].get("templates")), (200, None));
}

async fn sandbox_recipients_that_read_on_their_own(backend: Backend) {
    use verigram::workers::{Outcome, Worker};
    // Workers driven by hand, so "not yet" is checked after a round that saw the time.
    let app = spawn_app_with(backend, |c| {
        set_key(c, "delivery.workers", "0");
        set_key(c, "sandbox.recipients.\"1555003\"", "{ reads_after = { seconds = 30 } }");
    })
    .await;
    let worker = Worker::new(app.services.clone(), "w".into());
    let work_off = || async { while worker.run_once().await.unwrap() == Outcome::Worked {} };
    let t = app.create_tenant("1", None).await;
    let reader = app.send(&t, "+15550031234").await["request_id"].as_str().unwrap().to_owned();
    let other = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    work_off().await;
    assert_eq!(app.delivery(&t, &reader).await.as_deref(), Some("delivered"));
    app.advance(Duration::from_secs(29));
    work_off().await;
    assert_eq!(app.delivery(&t, &reader).await.as_deref(), Some("delivered"), "not yet");
    app.advance(Duration::from_secs(1));
    work_off().await;
    assert_eq!(app.delivery(&t, &reader).await.as_deref(), Some("read"));
    assert_eq!(app.inbox("+15550031234").await[0]["status"], "read");
    assert_eq!(app.delivery(&t, &other).await.as_deref(), Some("delivered"), "others never read on their own");
}

async fn failures_on_the_way_retry_with_growing_waits(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        set_key(c, "sandbox.accounts", r#"["down"]"#);
        set_key(c, "sandbox.account_behaviour.down", r#""network_down""#);
        set_key(c, "delivery.retry_initial", "10");
    })
    .await;
    let t = app.create_tenant("1", None).await;
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let request_id = verigram::domain::RequestId::parse(&id).unwrap();
    let tenant = verigram::domain::TenantId::parse(&t.id).unwrap();
    let attempts = || async {
        let now = verigram::domain::Clock::now(&*app.clock);
        let r = app.services.store.request(&tenant, request_id, now).await.unwrap().unwrap();
        r.failed_attempts()
    };
    wait_for("the first failed attempt", || async { (attempts().await == 1).then_some(()) }).await;
    // The first wait is 5-10 s (half to all of retry_initial): nothing before 5 s.
    app.advance(Duration::from_millis(4_900));
    app.settle().await;
    assert_eq!(attempts().await, 1, "no retry before the backoff");
    // Then the job comes back, fails again, and waits longer (10-20 s).
    app.advance(Duration::from_millis(5_200));
    wait_for("the second failed attempt", || async { (attempts().await == 2).then_some(()) }).await;
    app.advance(Duration::from_millis(9_000));
    app.settle().await;
    assert_eq!(attempts().await, 2, "the second wait is at least 10 s");
    assert!(app.inbox(PHONE).await.is_empty(), "nothing went out");
    let account = account(&accounts(&app).await, "down").clone();
    assert_eq!(account.state, AccountState::Active, "a network failure is nobody's fault");
    assert_eq!(app.delivery(&t, &id).await, None, "still queued, not lost");
}
