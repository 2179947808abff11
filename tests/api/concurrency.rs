//! Invariants under concurrent calls: no overdraft, no double charge, no extra attempts, no
//! second message for one request.

use crate::helpers::*;
use futures_util::future::join_all;
use std::collections::BTreeSet;

verigram_testkit::on_every_backend!(
    concurrent_paid_sends_never_overdraw,
    concurrent_wrong_checks_never_exceed_the_limit,
    concurrent_correct_checks_all_agree,
    concurrent_mixed_checks_agree_with_the_final_status,
    concurrent_free_sends_of_one_checked_request,
    concurrent_sends_of_two_tenants_stay_apart,
    a_revocation_racing_correct_checks_wins,
    credits_racing_paid_sends_keep_the_books_exact,
);

/// The ledger's amounts (opening balance included) add up to the balance.
async fn assert_books_balance(app: &TestApp, t: &Tenant) {
    let ledger = app.ledger(t).await;
    let sum: i64 = ledger.iter().map(|e| micros(&e["amount"])).sum();
    assert_eq!(sum, app.balance(t).await, "ledger {ledger:?}");
    if let Some(newest) = ledger.first() {
        assert_eq!(micros(&newest["balance_after"]), app.balance(t).await);
    }
}

async fn concurrent_paid_sends_never_overdraw(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("0.05", None).await;
    let calls =
        (0..50).map(|_| app.call(&t, "sendVerificationMessage", json!({"phone_number": PHONE, "code_length": 6})));
    let replies = join_all(calls).await;
    let ok: Vec<&Value> = replies.iter().filter_map(|r| r.outcome().ok()).collect();
    let errors: Vec<&str> = replies.iter().filter_map(|r| r.outcome().err()).collect();
    assert_eq!(ok.len(), 5, "exactly the balance's worth of sends succeeded");
    assert!(errors.iter().all(|e| *e == "BALANCE_NOT_ENOUGH"), "{errors:?}");
    // Each charge saw its own balance: 0.04, 0.03, 0.02, 0.01 and 0, each once.
    let left: BTreeSet<i64> = ok.iter().map(|r| micros(&r["remaining_balance"])).collect();
    assert_eq!(left, [0, 10_000, 20_000, 30_000, 40_000].into());
    assert_eq!(app.balance(&t).await, 0);
    let charges = app.charges(&t).await;
    assert_eq!(charges.len(), 5);
    let charged: BTreeSet<&str> = charges.iter().map(|c| c["request_id"].as_str().unwrap()).collect();
    let answered: BTreeSet<&str> = ok.iter().map(|r| r["request_id"].as_str().unwrap()).collect();
    assert_eq!(charged, answered, "the ledger lists exactly the answered requests");
    assert!(charges.iter().all(|c| micros(&c["amount"]) == -10_000));
    assert_eq!(app.inbox(PHONE).await.len(), 5, "nothing sent without a charge");
    assert_books_balance(&app, &t).await;
}

async fn concurrent_wrong_checks_never_exceed_the_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send_code(&t, PHONE, "24680").await["request_id"].as_str().unwrap().to_owned();
    let wrong: Vec<String> = (0..50).map(|i| format!("{}", 10_000 + i)).collect();
    let replies = join_all(wrong.iter().map(|c| app.check(&t, &id, Some(c)))).await;
    let statuses: Vec<&str> =
        replies.iter().map(|r| r.result()["verification_status"]["status"].as_str().unwrap()).collect();
    let invalid = statuses.iter().filter(|s| **s == "code_invalid").count();
    let exceeded = statuses.iter().filter(|s| **s == "code_max_attempts_exceeded").count();
    assert_eq!((invalid, exceeded), (4, 46), "only five attempts counted: {statuses:?}");
    // The checks that were evaluated echo their code: exactly five.
    let evaluated = replies.iter().filter(|r| r.result()["verification_status"].get("code_entered").is_some()).count();
    assert_eq!(evaluated, 5);
    assert_eq!(app.verification(&t, &id, None).await.as_deref(), Some("code_max_attempts_exceeded"));
    // The right code never verifies after the limit, not even many times at once.
    let late = join_all((0..10).map(|_| app.check(&t, &id, Some("24680")))).await;
    for r in late {
        assert_eq!(r.result()["verification_status"]["status"], "code_max_attempts_exceeded", "{r:?}");
    }
}

async fn concurrent_correct_checks_all_agree(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let code = app.code_for(&id).await;
    let replies = join_all((0..20).map(|_| app.check(&t, &id, Some(&code)))).await;
    let updated: BTreeSet<i64> = replies
        .iter()
        .map(|r| {
            let v = &r.result()["verification_status"];
            assert_eq!(v["status"], "code_valid", "{r:?}");
            v["updated_at"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(updated.len(), 1, "one verification, seen by all: {updated:?}");
    assert_eq!(app.verification(&t, &id, None).await.as_deref(), Some("code_valid"));
    // Nothing was counted as an attempt: wrong codes afterwards change nothing either.
    for _ in 0..6 {
        assert_eq!(app.verification(&t, &id, Some("000000")).await.as_deref(), Some("code_valid"));
    }
}

async fn concurrent_mixed_checks_agree_with_the_final_status(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for _ in 0..3 {
        let id = app.send_code(&t, PHONE, "97531").await["request_id"].as_str().unwrap().to_owned();
        let codes: Vec<&str> = (0..12).map(|i| if i == 6 { "97531" } else { "11111" }).collect();
        let replies = join_all(codes.iter().map(|c| app.check(&t, &id, Some(c)))).await;
        let right = replies[6].result()["verification_status"]["status"].as_str().unwrap().to_owned();
        assert!(right == "code_valid" || right == "code_max_attempts_exceeded", "{right}");
        let final_status = app.verification(&t, &id, None).await.unwrap();
        assert_eq!(right, final_status, "the right code's answer is the request's fate");
        let invalid = replies.iter().filter(|r| r.result()["verification_status"]["status"] == "code_invalid").count();
        assert!(invalid <= 4, "at most four wrong codes answered code_invalid: {invalid}");
        if final_status == "code_max_attempts_exceeded" {
            assert_eq!(invalid, 4, "five wrong attempts ended it");
        }
    }
}

async fn concurrent_free_sends_of_one_checked_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.checked_request(&t, PHONE).await;
    let sends = (0..20).map(|i| {
        let params = json!({"phone_number": PHONE, "code": format!("{}", 5000 + i), "request_id": id});
        app.call(&t, "sendVerificationMessage", params)
    });
    let replies = join_all(sends).await;
    let ok: Vec<&Value> = replies.iter().filter_map(|r| r.outcome().ok()).collect();
    assert_eq!(ok.len(), 1, "one send per checked request");
    assert!(replies.iter().filter_map(|r| r.outcome().err()).all(|e| e == "MESSAGE_ALREADY_SENT"));
    let inbox = app.inbox(PHONE).await;
    assert_eq!(inbox.len(), 1, "no second message");
    let code = app.code_for(&id).await;
    assert_eq!(
        app.verification(&t, &id, Some(&code)).await.as_deref(),
        Some("code_valid"),
        "the delivered code is the stored one"
    );
    assert_eq!(app.balance(&t).await, 990_000);
    assert_eq!(app.charges(&t).await.len(), 1);
}

async fn concurrent_sends_of_two_tenants_stay_apart(backend: Backend) {
    let app = spawn_app(backend).await;
    let a = app.create_tenant("0.1", None).await;
    let b = app.create_tenant("0.03", None).await;
    let calls = (0..40).map(|i| {
        let t = if i % 2 == 0 { &a } else { &b };
        app.call(t, "sendVerificationMessage", json!({"phone_number": PHONE, "code_length": 4}))
    });
    let replies = join_all(calls).await;
    let ok = |n: usize| replies.iter().skip(n).step_by(2).filter(|r| r.outcome().is_ok()).count();
    assert_eq!((ok(0), ok(1)), (10, 3));
    assert_eq!((app.balance(&a).await, app.balance(&b).await), (0, 0));
    assert_eq!((app.charges(&a).await.len(), app.charges(&b).await.len()), (10, 3));
}

async fn a_revocation_racing_correct_checks_wins(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for _ in 0..3 {
        let id = app.send_code(&t, PHONE, "80808").await["request_id"].as_str().unwrap().to_owned();
        let checks = join_all((0..10).map(|_| app.check(&t, &id, Some("80808"))));
        let (checks, revoked) = tokio::join!(checks, app.revoke(&t, &id));
        assert_eq!(revoked.result(), &json!(true));
        for r in &checks {
            let s = r.result()["verification_status"]["status"].as_str().unwrap();
            assert!(s == "code_valid" || s == "expired", "{r:?}");
        }
        // Spec: after a revocation `verification_status` is `expired` in every case.
        assert_eq!(app.verification(&t, &id, None).await.as_deref(), Some("expired"));
        assert_eq!(app.verification(&t, &id, Some("80808")).await.as_deref(), Some("expired"));
    }
}

async fn credits_racing_paid_sends_keep_the_books_exact(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("0", None).await;
    let path = format!("/tenants/{}/balance", t.id);
    let sends = join_all(
        (0..30).map(|_| app.call(&t, "sendVerificationMessage", json!({"phone_number": PHONE, "code_length": 6}))),
    );
    let credits = join_all((0..5).map(|_| app.admin(reqwest::Method::POST, &path, Some(json!({"amount": "0.02"})))));
    let (sends, credits) = tokio::join!(sends, credits);
    assert!(credits.iter().all(|(status, _)| *status == 200), "{credits:?}");
    let ok = sends.iter().filter(|r| r.outcome().is_ok()).count();
    assert!(sends.iter().filter_map(|r| r.outcome().err()).all(|e| e == "BALANCE_NOT_ENOUGH"));
    assert!(ok <= 10, "never more sends than the credit paid for: {ok}");
    assert_eq!(app.balance(&t).await, 100_000 - 10_000 * ok as i64);
    assert_eq!(app.charges(&t).await.len(), ok);
    assert_eq!(app.inbox(PHONE).await.len(), ok);
    assert_books_balance(&app, &t).await;
}
