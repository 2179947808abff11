//! Money (spec §3, §6): integer micro-credits, charged exactly once per paid request, never
//! for an error.

use crate::helpers::*;
use reqwest::Method;

verigram_testkit::on_every_backend!(
    each_send_charges_the_price_exactly,
    balance_not_enough_sends_nothing,
    errors_are_never_charged,
    own_number_is_free,
    tenant_price_overrides_the_server_price,
    country_prices_apply_per_destination,
    ledger_lists_each_charge,
    operator_credit_and_debit,
    money_is_bounded_so_every_store_stays_exact,
);

const SEND: &str = "sendVerificationMessage";

async fn each_send_charges_the_price_exactly(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("0.05", None).await;
    for left in [40_000, 30_000, 20_000, 10_000, 0] {
        let r = app.send(&t, PHONE).await;
        assert_eq!(micros(&r["request_cost"]), 10_000);
        assert_eq!(micros(&r["remaining_balance"]), left);
        assert_eq!(app.balance(&t).await, left);
    }
    let r = app.call(&t, SEND, json!({"phone_number": PHONE, "code_length": 6})).await;
    assert_eq!(r.error(), "BALANCE_NOT_ENOUGH");
    assert_eq!(app.inbox(PHONE).await.len(), 5);
    // Amounts that floats cannot hold exactly stay exact: 0.1 three times is 0.3.
    let t = app.create_tenant("0.3", None).await;
    app.patch_tenant(&t, json!({"price": "0.1"})).await;
    for left in [200_000, 100_000, 0] {
        assert_eq!(micros(&app.send(&t, PHONE).await["remaining_balance"]), left);
    }
    assert_eq!(app.balance(&t).await, 0);
}

async fn balance_not_enough_sends_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for balance in ["0", "0.009999"] {
        let t = app.create_tenant(balance, None).await;
        let before = app.balance(&t).await;
        let r = app.call(&t, SEND, json!({"phone_number": PHONE, "code_length": 6})).await;
        assert_eq!(r.error(), "BALANCE_NOT_ENOUGH");
        let r = app.call(&t, SEND, json!({"phone_number": PHONE, "code": "1234", "ttl": 60, "payload": "x"})).await;
        assert_eq!(r.error(), "BALANCE_NOT_ENOUGH");
        let r = app.call(&t, "checkSendAbility", json!({"phone_number": PHONE})).await;
        assert_eq!(r.error(), "BALANCE_NOT_ENOUGH");
        assert_eq!(app.balance(&t).await, before);
        assert!(app.charges(&t).await.is_empty());
    }
    assert!(app.all_messages().await.is_empty(), "nothing was sent");
}

async fn errors_are_never_charged(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let other = app.create_tenant("1", None).await;
    app.put_sender(&t, "pending_shop", false).await;
    let checked = app.try_call(&t, "checkSendAbility", json!({"phone_number": PHONE})).await.unwrap();
    let checked = checked["request_id"].as_str().unwrap().to_owned();
    let sent = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let theirs = app.send(&other, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let balance = app.balance(&t).await;
    let ledger = app.ledger(&t).await;
    let messages = app.all_messages().await.len();
    let p = |extra: Value| {
        let mut params = json!({"phone_number": PHONE, "code_length": 6});
        params.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        params
    };
    let failures = [
        (p(json!({"phone_number": "123"})), "PHONE_NUMBER_INVALID"),
        (json!({"phone_number": PHONE}), "CODE_LENGTH_REQUIRED"),
        (p(json!({"code_length": 9})), "CODE_LENGTH_INVALID"),
        (p(json!({"code": "12"})), "CODE_INVALID"),
        (p(json!({"ttl": 5})), "TTL_INVALID"),
        (p(json!({"payload": "x".repeat(129)})), "PAYLOAD_INVALID"),
        (p(json!({"callback_url": "http://example.com"})), "CALLBACK_URL_INVALID"),
        (p(json!({"sender_username": "-"})), "SENDER_USERNAME_INVALID"),
        (p(json!({"sender_username": "not_mine"})), "SENDER_NOT_OWNED"),
        (p(json!({"sender_username": "pending_shop"})), "SENDER_NOT_VERIFIED"),
        (p(json!({"request_id": "x"})), "REQUEST_ID_INVALID"),
        (p(json!({"request_id": theirs})), "REQUEST_ID_INVALID"),
        (p(json!({"request_id": sent})), "MESSAGE_ALREADY_SENT"),
        (p(json!({"request_id": checked, "phone_number": "+15557654321"})), "PHONE_NUMBER_MISMATCH"),
    ];
    for (params, error) in failures {
        assert_eq!(app.call(&t, SEND, params).await.error(), error);
    }
    assert_eq!(app.call(&t, "checkSendAbility", json!({"phone_number": "1"})).await.error(), "PHONE_NUMBER_INVALID");
    assert_eq!(app.call(&t, "nope", p(json!({}))).await.error(), "UNKNOWN_METHOD");
    let r = app
        .call_raw(Some(&t), Method::POST, "/sendVerificationMessage", Some("text/plain"), p(json!({})).to_string())
        .await;
    assert_eq!(r.error(), "BAD_REQUEST");
    assert_eq!(app.check(&t, &theirs, Some("123456")).await.error(), "REQUEST_ID_INVALID");
    assert_eq!(app.balance(&t).await, balance);
    assert_eq!(app.ledger(&t).await, ledger);
    assert_eq!(app.all_messages().await.len(), messages);
    // Checks and revocations are free as well.
    app.check(&t, &sent, Some("000000")).await.result();
    app.revoke(&t, &sent).await.result();
    assert_eq!(app.balance(&t).await, balance);
}

async fn own_number_is_free(backend: Backend) {
    let app = spawn_app(backend).await;
    let own = "+447911123456";
    let t = app.create_tenant("0", Some(own)).await;
    for phone in [own, "447911123456"] {
        let r = app.send(&t, phone).await;
        assert_eq!(micros(&r["request_cost"]), 0);
        assert!(r.get("remaining_balance").is_none(), "nothing charged, no remaining_balance: {r}");
    }
    let r = app.try_call(&t, "checkSendAbility", json!({"phone_number": own})).await.unwrap();
    assert_eq!(micros(&r["request_cost"]), 0);
    assert!(r.get("remaining_balance").is_none(), "{r}");
    let r = app.call(&t, SEND, json!({"phone_number": own, "code": "1234", "request_id": r["request_id"]})).await;
    assert!(r.result().get("remaining_balance").is_none());
    assert_eq!(app.inbox(own).await.len(), 3);
    assert!(app.charges(&t).await.is_empty());
    assert_eq!(app.balance(&t).await, 0);
    // Any other number costs money, even if it differs in one digit.
    let r = app.call(&t, SEND, json!({"phone_number": "+447911123457", "code_length": 6})).await;
    assert_eq!(r.error(), "BALANCE_NOT_ENOUGH");
    // Changing the tenant's number moves the free number.
    let (status, body) = app.patch_tenant(&t, json!({"phone_number": "+447911123457"})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["settings"]["phone_number"], "447911123457");
    app.send(&t, "+447911123457").await;
    let r = app.call(&t, SEND, json!({"phone_number": own, "code_length": 6})).await;
    assert_eq!(r.error(), "BALANCE_NOT_ENOUGH");
}

async fn tenant_price_overrides_the_server_price(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let (status, body) = app.patch_tenant(&t, json!({"price": 0.05})).await;
    assert_eq!(status, 200, "{body}");
    let r = app.send(&t, PHONE).await;
    assert_eq!(micros(&r["request_cost"]), 50_000);
    assert_eq!(micros(&r["remaining_balance"]), 950_000);
    let r = app.try_call(&t, "checkSendAbility", json!({"phone_number": PHONE})).await.unwrap();
    assert_eq!(micros(&r["request_cost"]), 50_000);
    assert_eq!(micros(&r["remaining_balance"]), 900_000);
    // A price of 0: nothing charged.
    app.patch_tenant(&t, json!({"price": "0"})).await;
    let r = app.send(&t, PHONE).await;
    assert_eq!(micros(&r["request_cost"]), 0);
    assert!(r.get("remaining_balance").is_none(), "{r}");
    // Cleared: the server's price again.
    let (status, body) = app.patch_tenant(&t, json!({"price": null})).await;
    assert_eq!(status, 200, "{body}");
    assert!(body["settings"].get("price").is_none(), "{body}");
    assert_eq!(micros(&app.send(&t, PHONE).await["request_cost"]), 10_000);
    assert_eq!(app.balance(&t).await, 890_000);
    // A tenant made with a price of its own.
    let (status, body) =
        app.admin(Method::POST, "/tenants", Some(json!({"name": "Cheap", "balance": 1, "price": "0.002"}))).await;
    assert_eq!(status, 201, "{body}");
    let cheap = Tenant {
        id: body["id"].as_str().unwrap().into(),
        token: body["token"].as_str().unwrap().into(),
        token_id: body["token_id"].as_str().unwrap().into(),
    };
    assert_eq!(micros(&app.send(&cheap, PHONE).await["remaining_balance"]), 998_000);
}

async fn country_prices_apply_per_destination(backend: Backend) {
    let app = spawn_app_with(backend, |c| {
        set_key(c, "billing.price", "0.015");
        set_key(c, "billing.country_prices.\"44\"", "0.02");
        set_key(c, "billing.country_prices.\"380\"", "\"0.035\"");
    })
    .await;
    let t = app.create_tenant("1", None).await;
    for (phone, cost) in
        [(PHONE, 15_000), ("+447911123456", 20_000), ("+380501234567", 35_000), ("+4915112345678", 15_000)]
    {
        let r = app.send(&t, phone).await;
        assert_eq!(micros(&r["request_cost"]), cost, "{phone}");
        let r = app.try_call(&t, "checkSendAbility", json!({"phone_number": phone})).await.unwrap();
        assert_eq!(micros(&r["request_cost"]), cost, "checkSendAbility {phone}");
    }
    assert_eq!(app.balance(&t).await, 1_000_000 - 2 * (15_000 + 20_000 + 35_000 + 15_000));
    // A tenant's own price beats the country table.
    app.patch_tenant(&t, json!({"price": "0.01"})).await;
    assert_eq!(micros(&app.send(&t, "+447911123456").await["request_cost"]), 10_000);
}

async fn ledger_lists_each_charge(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let opened = app.now_secs();
    let mut ids = Vec::new();
    for _ in 0..3 {
        app.advance(Duration::from_secs(10));
        ids.push(app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned());
    }
    let checked = app.try_call(&t, "checkSendAbility", json!({"phone_number": PHONE})).await.unwrap();
    let checked = checked["request_id"].as_str().unwrap().to_owned();
    app.call(&t, SEND, json!({"phone_number": PHONE, "code_length": 6, "request_id": checked})).await.result();
    ids.push(checked);
    let ledger = app.ledger(&t).await;
    assert_eq!(ledger.len(), 5, "four charges and the opening balance: {ledger:?}");
    let opening = ledger.last().unwrap();
    assert_eq!(opening["kind"], "credit");
    assert_eq!(micros(&opening["amount"]), 1_000_000);
    assert_eq!(micros(&opening["balance_after"]), 1_000_000);
    assert_eq!(opening["at"], opened);
    let charges: Vec<&Value> = ledger.iter().rev().skip(1).collect();
    for (i, (entry, id)) in charges.iter().zip(&ids).enumerate() {
        assert_eq!(entry["kind"], "charge");
        assert_eq!(entry["request_id"], id.as_str());
        assert_eq!(micros(&entry["amount"]), -10_000);
        assert_eq!(micros(&entry["balance_after"]), 1_000_000 - 10_000 * (i as i64 + 1));
    }
    assert_eq!(charges[0]["at"], opened + 10);
    assert_eq!(charges[2]["at"], opened + 30);
    // `limit` gives the newest lines.
    let (status, newest) = app.admin(Method::GET, &format!("/tenants/{}/ledger?limit=2", t.id), None).await;
    assert_eq!(status, 200);
    assert_eq!(newest.as_array().unwrap(), &ledger[..2].to_vec());
}

async fn operator_credit_and_debit(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("0.01", None).await;
    let path = format!("/tenants/{}/balance", t.id);
    let (status, body) = app.admin(Method::POST, &path, Some(json!({"amount": "2.5", "note": "top-up"}))).await;
    assert_eq!((status, micros(&body["balance"])), (200, 2_510_000), "{body}");
    let (status, body) = app.admin(Method::POST, &path, Some(json!({"amount": -1.01}))).await;
    assert_eq!((status, micros(&body["balance"])), (200, 1_500_000), "{body}");
    // Never below zero.
    let (status, body) = app.admin(Method::POST, &path, Some(json!({"amount": "-1.500001"}))).await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(app.balance(&t).await, 1_500_000);
    for bad in [
        json!({"amount": 0}),
        json!({"amount": "0.0000001"}),
        json!({"amount": "abc"}),
        json!({}),
        json!({"amount": 1, "x": 1}),
    ] {
        let (status, body) = app.admin(Method::POST, &path, Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) = app
        .admin(Method::POST, "/tenants/00000000-0000-4000-8000-000000000000/balance", Some(json!({"amount": 1})))
        .await;
    assert_eq!(status, 404);
    // Exactly to zero is fine; then a send is refused, a credit makes it possible again.
    let (status, body) = app.admin(Method::POST, &path, Some(json!({"amount": "-1.5"}))).await;
    assert_eq!((status, micros(&body["balance"])), (200, 0), "{body}");
    assert_eq!(
        app.call(&t, SEND, json!({"phone_number": PHONE, "code_length": 6})).await.error(),
        "BALANCE_NOT_ENOUGH"
    );
    app.admin(Method::POST, &path, Some(json!({"amount": "0.01"}))).await;
    assert_eq!(micros(&app.send(&t, PHONE).await["remaining_balance"]), 0);
    let ledger = app.ledger(&t).await;
    let credits: Vec<i64> = ledger.iter().filter(|e| e["kind"] == "credit").map(|e| micros(&e["amount"])).collect();
    assert_eq!(credits, [10_000, -1_500_000, -1_010_000, 2_500_000, 10_000], "newest first, the refused one absent");
    assert!(ledger.iter().any(|e| e["note"] == "top-up"));
}

/// Amounts and balances stay at most 10^9 credits (10^15 micro-credits): the sum of two is
/// exact in Lua's doubles, so the Redis stores count money as exactly as the memory one.
async fn money_is_bounded_so_every_store_stays_exact(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) =
        app.admin(Method::POST, "/tenants", Some(json!({"name": "Big", "balance": "1000000001"}))).await;
    assert_eq!(status, 400, "an opening balance past the largest: {body}");
    let t = app.create_tenant("999999999.999999", None).await;
    let path = format!("/tenants/{}/balance", t.id);
    let (status, body) = app.admin(Method::POST, &path, Some(json!({"amount": "0.000001"}))).await;
    assert_eq!((status, micros(&body["balance"])), (200, 1_000_000_000_000_000), "{body}");
    let (status, body) = app.admin(Method::POST, &path, Some(json!({"amount": "0.000001"}))).await;
    assert_eq!(status, 409, "past the largest balance: {body}");
    for amount in [json!("1000000000.000001"), json!(1e12), json!("-9007199254.740993")] {
        let (status, body) = app.admin(Method::POST, &path, Some(json!({"amount": amount}))).await;
        assert_eq!(status, 400, "{amount}: {body}");
    }
    assert_eq!(app.balance(&t).await, 1_000_000_000_000_000, "exactly, to the micro-credit");
    let (status, body) =
        app.admin(Method::PATCH, &format!("/tenants/{}", t.id), Some(json!({"price": "1000000000.5"}))).await;
    assert_eq!(status, 400, "a price past the largest amount: {body}");
}
