//! `checkSendAbility`, and the one free send its `request_id` gives.

use crate::helpers::*;

verigram_testkit::on_every_backend!(
    check_send_ability_charges_and_answers_a_status,
    its_request_id_gives_exactly_one_free_send,
    a_different_phone_is_a_mismatch,
    unknown_or_foreign_request_ids_are_invalid,
    a_sent_request_cannot_be_sent_again,
    check_send_ability_errors,
    the_free_send_still_validates_its_parameters,
);

const ABILITY: &str = "checkSendAbility";
const SEND: &str = "sendVerificationMessage";

async fn check_send_ability_charges_and_answers_a_status(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let r = app.call(&t, ABILITY, json!({"phone_number": PHONE})).await;
    let s = r.result();
    let keys: std::collections::BTreeSet<&str> = s.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["phone_number", "remaining_balance", "request_cost", "request_id"].into(), "{r:?}");
    assert_eq!(s["phone_number"], PHONE_DIGITS);
    assert_eq!(micros(&s["request_cost"]), 10_000);
    assert_eq!(micros(&s["remaining_balance"]), 990_000);
    assert_eq!(app.balance(&t).await, 990_000);
    let charges = app.charges(&t).await;
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0]["request_id"], s["request_id"]);
    assert!(app.inbox(PHONE).await.is_empty(), "a check sends nothing");
    // Its status reads like any request's: nothing delivered, nothing verified.
    let status = app.check(&t, s["request_id"].as_str().unwrap(), None).await;
    assert!(status.result().get("delivery_status").is_none(), "{status:?}");
    assert!(status.result().get("verification_status").is_none(), "{status:?}");
}

async fn its_request_id_gives_exactly_one_free_send(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.checked_request(&t, PHONE).await;
    let r =
        app.call(&t, SEND, json!({"phone_number": PHONE, "code_length": 6, "request_id": id, "payload": "p"})).await;
    let s = r.result();
    assert_eq!(s["request_id"], id.as_str(), "the send continues the checked request");
    assert!(s.get("remaining_balance").is_none(), "the send charged nothing: {r:?}");
    assert!(s.get("delivery_status").is_none(), "queued: {r:?}");
    assert_eq!(s["payload"], "p");
    assert_eq!(app.balance(&t).await, 990_000, "one fee in all");
    assert_eq!(app.charges(&t).await.len(), 1);
    let code = app.code_for(&id).await;
    assert_eq!(app.inbox(PHONE).await.len(), 1);
    // Once only.
    let again = app.call(&t, SEND, json!({"phone_number": PHONE, "code_length": 6, "request_id": id})).await;
    assert_eq!(again.error(), "MESSAGE_ALREADY_SENT");
    assert_eq!(app.inbox(PHONE).await.len(), 1, "no second message");
    assert_eq!(app.balance(&t).await, 990_000);
    // The code of the one message verifies.
    assert_eq!(app.verification(&t, &id, Some(&code)).await.as_deref(), Some("code_valid"));
}

async fn a_different_phone_is_a_mismatch(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.checked_request(&t, PHONE).await;
    for other in ["+15551234568", "+447911123456"] {
        let r = app.call(&t, SEND, json!({"phone_number": other, "code": "1234", "request_id": id})).await;
        assert_eq!(r.error(), "PHONE_NUMBER_MISMATCH", "{other}");
        assert!(app.inbox(other).await.is_empty());
    }
    assert_eq!(app.balance(&t).await, 990_000, "a mismatch is not charged");
    // The request is still usable with its own number (with or without `+`).
    let r = app.call(&t, SEND, json!({"phone_number": PHONE_DIGITS, "code": "1234", "request_id": id})).await;
    assert_eq!(r.result()["request_id"], id.as_str());
    assert_eq!(app.balance(&t).await, 990_000);
}

async fn unknown_or_foreign_request_ids_are_invalid(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let other = app.create_tenant("1", None).await;
    let theirs = app.try_call(&other, ABILITY, json!({"phone_number": PHONE})).await.unwrap()["request_id"]
        .as_str()
        .unwrap()
        .to_owned();
    for bad in [json!(theirs), json!("100000000000000"), json!("abc"), json!("1{x}"), json!("*"), json!(["1"])] {
        let r = app.call(&t, SEND, json!({"phone_number": PHONE, "code_length": 6, "request_id": bad})).await;
        assert_eq!(r.error(), "REQUEST_ID_INVALID", "{bad}");
    }
    assert_eq!(app.balance(&t).await, 1_000_000);
    assert!(app.inbox(PHONE).await.is_empty());
    // The other tenant can still use its request.
    let r = app.call(&other, SEND, json!({"phone_number": PHONE, "code_length": 6, "request_id": theirs})).await;
    assert_eq!(r.result()["request_id"], theirs.as_str());
}

async fn a_sent_request_cannot_be_sent_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let r = app.call(&t, SEND, json!({"phone_number": PHONE, "code_length": 6, "request_id": id})).await;
    assert_eq!(r.error(), "MESSAGE_ALREADY_SENT");
    assert_eq!(app.inbox(PHONE).await.len(), 1);
    assert_eq!(app.balance(&t).await, 990_000);
}

async fn check_send_ability_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("0.01", None).await;
    assert_eq!(app.call_as(None, ABILITY, json!({"phone_number": PHONE})).await.error(), "ACCESS_TOKEN_REQUIRED");
    assert_eq!(
        app.call_as(Some("nope"), ABILITY, json!({"phone_number": PHONE})).await.error(),
        "ACCESS_TOKEN_INVALID"
    );
    for bad in [json!(null), json!(""), json!("+"), json!("123"), json!("+9991234567"), json!([PHONE])] {
        let r = app.call(&t, ABILITY, json!({"phone_number": bad})).await;
        assert_eq!(r.error(), "PHONE_NUMBER_INVALID", "{bad}");
    }
    app.try_call(&t, ABILITY, json!({"phone_number": PHONE})).await.unwrap();
    let r = app.call(&t, ABILITY, json!({"phone_number": PHONE})).await;
    assert_eq!(r.error(), "BALANCE_NOT_ENOUGH");
    assert_eq!(app.balance(&t).await, 0);
    assert_eq!(app.charges(&t).await.len(), 1);
}

async fn the_free_send_still_validates_its_parameters(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let id = app.checked_request(&t, PHONE).await;
    let base = json!({"phone_number": PHONE, "request_id": id});
    for (extra, error) in [
        (json!({}), "CODE_LENGTH_REQUIRED"),
        (json!({"code": "1"}), "CODE_INVALID"),
        (json!({"code_length": 6, "ttl": 5}), "TTL_INVALID"),
        (json!({"code_length": 6, "payload": "x".repeat(129)}), "PAYLOAD_INVALID"),
        (json!({"code_length": 6, "callback_url": "https://10.0.0.1/"}), "CALLBACK_URL_INVALID"),
        (json!({"code_length": 6, "sender_username": "unknown_shop"}), "SENDER_NOT_OWNED"),
    ] {
        let mut params = base.clone();
        params.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        assert_eq!(app.call(&t, SEND, params).await.error(), error, "{extra}");
    }
    // None of those used the request up.
    let mut params = base.clone();
    params["code"] = json!("5678");
    let r = app.call(&t, SEND, params).await;
    assert_eq!(r.result()["request_id"], id.as_str());
    assert_eq!(app.verification(&t, &id, Some("5678")).await.as_deref(), Some("code_valid"));
}
