//! The bad inputs of security.md §6.1 that reach the Gateway methods, in every input style.

use crate::helpers::*;

// Refused by the parameter parser, before any store operation: once.
verigram_testkit::on_every_backend!(
    once:
    bad_phone_numbers_in_every_style,
    phone_number_length_bounds,
    phone_number_json_types,
    a_megabyte_request_id_in_the_query_is_not_a_5xx,
);

// What a bad request id leaves behind, and a payload's round trip, are the store's business:
// every backend.
mod stored {
    use super::{bad_request_ids_are_invalid_and_leave_no_trace, control_characters_in_every_text_parameter};
    verigram_testkit::on_every_backend!(
        bad_request_ids_are_invalid_and_leave_no_trace,
        control_characters_in_every_text_parameter,
    );
}

const BAD_PHONES: &[&str] = &[
    "+",
    "++15551234567",
    "0015551234567",
    "+1 555 123 4567",
    "+1-555-123-4567",
    "+1(555)1234567",
    "+1.555.123.4567",
    "1234567",
    "+1234567",
    "+1234567890123456",
    "+99912345678",
    "+0123456789",
    "+١٥٥٥١٢٣٤٥٦٧",
    "+۱۵۵۵۱۲۳۴۵۶۷",
    "+１５５５１２３４５６７",
    "＋15551234567",
    "+1555\u{200d}1234567",
    "+1555\u{200b}1234567",
    "\u{202e}+15551234567",
    "+15551234567\u{0}",
    "\u{0}+15551234567",
    "+15551234567\r\n",
    "+15551234567\r\nX-Injected: 1",
    "+15551234567 ",
    "  15551234567",
    "+1555123456a",
    "tel:+15551234567",
    "+15551234567;ext=1",
    "-15551234567",
];

#[derive(Debug, Clone, Copy)]
enum Style {
    Query,
    Form,
    Json,
}

async fn call_in(app: &TestApp, style: Style, t: &Tenant, method: &str, params: &[(&str, &str)]) -> Reply {
    let url = app.url(&format!("/{method}"));
    let b = match style {
        Style::Query => app.client.get(url).query(params),
        Style::Form => app.client.post(url).form(params),
        Style::Json => {
            let object: serde_json::Map<String, Value> =
                params.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
            app.client.post(url).json(&object)
        }
    };
    app.send_request(b.bearer_auth(&t.token)).await
}

async fn bad_phone_numbers_in_every_style(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for style in [Style::Query, Style::Form, Style::Json] {
        for phone in BAD_PHONES {
            let send = [("phone_number", *phone), ("code_length", "6")];
            let r = call_in(&app, style, &t, "sendVerificationMessage", &send).await;
            assert_eq!(r.error(), "PHONE_NUMBER_INVALID", "{style:?} send {phone:?}");
            let r = call_in(&app, style, &t, "checkSendAbility", &[("phone_number", phone)]).await;
            assert_eq!(r.error(), "PHONE_NUMBER_INVALID", "{style:?} checkSendAbility {phone:?}");
        }
    }
    assert_eq!(app.balance(&t).await, 1_000_000, "no bad number was charged");
    assert!(app.all_messages().await.is_empty(), "nothing was sent");
}

async fn phone_number_length_bounds(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    // E.164: 8 to 15 digits with a known country calling code.
    for (phone, ok) in [
        ("+12345678", true),
        ("+1234567", false),
        ("+123456789012345", true),
        ("+1234567890123456", false),
        ("+447911123456", true),
        ("+380501234567", true),
        ("+9991234567", false),
    ] {
        let r = app.call(&t, "sendVerificationMessage", json!({"phone_number": phone, "code_length": 6})).await;
        match r.outcome() {
            Ok(s) => assert!(ok && s["phone_number"] == phone.trim_start_matches('+'), "{phone}: {r:?}"),
            Err(e) => assert!(!ok && e == "PHONE_NUMBER_INVALID", "{phone}: {r:?}"),
        }
    }
}

async fn phone_number_json_types(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for bad in [
        json!(null),
        json!(""),
        json!([PHONE]),
        json!({"n": PHONE}),
        json!(true),
        json!(1.5e10),
        json!(-15551234567i64),
    ] {
        let r = app.call(&t, "sendVerificationMessage", json!({"phone_number": bad, "code_length": 6})).await;
        assert_eq!(r.error(), "PHONE_NUMBER_INVALID", "{bad}");
    }
    // Scalars become text (spec §1: integers as numbers or strings): a JSON number that is an
    // E.164 number in digits is that number.
    let r = app.call(&t, "sendVerificationMessage", json!({"phone_number": 15551234567u64, "code_length": 6})).await;
    assert_eq!(r.result()["phone_number"], PHONE_DIGITS);
    assert_eq!(app.all_messages().await.len(), 1);
}

async fn bad_request_ids_are_invalid_and_leave_no_trace(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let real = app.send(&t, PHONE).await["request_id"].as_str().unwrap().to_owned();
    let bad: Vec<String> = [
        "0",
        "../../etc/passwd",
        "..",
        "{t:x}",
        "1}{",
        "{1}",
        "*",
        "1*",
        "?",
        "[1]",
        "1 2",
        " 1",
        "١٢٣٤٥",
        "１２３４５",
        "-1",
        "+1",
        "0x10",
        "1e15",
        "1.0",
        "12:34",
        "1\u{0}",
        "123\r\n",
        "9223372036854775808",
        "18446744073709551616",
        "99999999999999999999999999",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .chain([format!("{real}*"), format!("{real}:x"), format!(" {real}"), format!("{{{real}}}")])
    .collect();
    for style in [Style::Query, Style::Form, Style::Json] {
        for id in &bad {
            let r =
                call_in(&app, style, &t, "checkVerificationStatus", &[("request_id", id), ("code", "123456")]).await;
            assert_eq!(r.error(), "REQUEST_ID_INVALID", "{style:?} check {id:?}");
            let r = call_in(&app, style, &t, "revokeVerificationMessage", &[("request_id", id)]).await;
            assert_eq!(r.error(), "REQUEST_ID_INVALID", "{style:?} revoke {id:?}");
            let send = [("phone_number", PHONE), ("code_length", "6"), ("request_id", id)];
            let r = call_in(&app, style, &t, "sendVerificationMessage", &send).await;
            assert_eq!(r.error(), "REQUEST_ID_INVALID", "{style:?} send {id:?}");
        }
    }
    // The real request is untouched by all of that.
    let code = app.code_for(&real).await;
    assert_eq!(app.verification(&t, &real, Some(&code)).await.as_deref(), Some("code_valid"));
    assert_eq!(app.charges(&t).await.len(), 1);
    // No odd key was ever made from them.
    if let Some(redis) = &app.redis {
        let keys: Vec<String> = dump_keyspace(redis).await.into_iter().map(|k| k.key).collect();
        let tenant = format!("{{t:{}}}", t.id);
        for key in &keys {
            let fixed = ["verigram:tenants", "verigram:senders", "{verigram}:due"];
            let turns = ["{verigram}:turns", "{verigram}:turn_clock", "{verigram}:turn_costs"];
            let ok = fixed.into_iter().chain(turns).any(|fixed| fixed == key.as_str())
                || key.starts_with("{s:")
                || (key.starts_with("tok:{") && key.len() == "tok:{}".len() + 64)
                || [":tenant", ":ledger", ":tokens", ":jobs", ":due"].iter().any(|s| *key == format!("{tenant}{s}"))
                || key.strip_prefix(&format!("{tenant}:r:")).is_some_and(|id| id == real);
            assert!(ok, "unexpected Redis key {key:?} among {keys:?}");
        }
    }
}

async fn a_megabyte_request_id_in_the_query_is_not_a_5xx(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for size in [10_000, 1_000_000] {
        let url = app.url(&format!("/checkVerificationStatus?request_id={}", "7".repeat(size)));
        let response = app.client.get(url).bearer_auth(&t.token).send().await;
        // Past the server's header limits the connection may answer 4xx or be closed; it never
        // answers 5xx and the service keeps working.
        if let Ok(response) = response {
            assert!(response.status().as_u16() < 500, "{size}: {}", response.status());
            if response.status() == 200 {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body, json!({"ok": false, "error": "REQUEST_ID_INVALID"}), "{size}");
            }
        }
    }
    app.send(&t, PHONE).await;
}

async fn control_characters_in_every_text_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    app.put_sender(&t, "goodshop", true).await;
    for (name, bad, error) in [
        ("code", "1234\r\n", "CODE_INVALID"),
        ("sender_username", "goodshop\r\nX: 1", "SENDER_USERNAME_INVALID"),
        ("sender_username", "goodshop\u{0}", "SENDER_USERNAME_INVALID"),
        ("callback_url", "https://example.com/\r\nX-Injected: 1", "CALLBACK_URL_INVALID"),
        ("callback_url", "https://example.com/%00\u{0}", "CALLBACK_URL_INVALID"),
        ("ttl", "60\r\n", "TTL_INVALID"),
        ("code_length", "6\u{0}", "CODE_LENGTH_INVALID"),
    ] {
        for style in [Style::Query, Style::Form, Style::Json] {
            let mut params = vec![("phone_number", PHONE), (name, bad)];
            if name != "code" && name != "code_length" {
                params.push(("code_length", "6"));
            }
            let r = call_in(&app, style, &t, "sendVerificationMessage", &params).await;
            assert_eq!(r.error(), error, "{style:?} {name}={bad:?}");
        }
    }
    // A payload is the tenant's own data: any UTF-8 within 128 bytes, echoed exactly.
    let payload = "line1\r\nline2\u{0}\u{202e}<script>\"'";
    let r = app
        .call(&t, "sendVerificationMessage", json!({"phone_number": PHONE, "code_length": 6, "payload": payload}))
        .await;
    assert_eq!(r.result()["payload"], payload);
    assert_eq!(app.all_messages().await.len(), 1);
}
