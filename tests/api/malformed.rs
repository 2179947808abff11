//! Malformed and oversized bodies: answered in the envelope, never a 5xx, and the service
//! keeps working afterwards.

use crate::helpers::*;
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

// Refused by the HTTP layer or the parameter parser, before any store operation: once.
verigram_testkit::on_every_backend!(
    once:
    malformed_bodies_answer_bad_request_and_change_nothing,
    duplicate_json_keys_are_an_invalid_parameter,
    bom_charset_and_mime_case_are_accepted,
    body_limit_is_exact,
    one_megabyte_body_limit,
    bodies_over_the_default_limit,
    chunked_bodies_count_against_the_limit,
    http_framing_abuse_is_refused,
    a_body_that_never_arrives_times_out_in_the_envelope,
);

const SEND: &str = "/sendVerificationMessage";

fn valid_json() -> String {
    format!(r#"{{"phone_number":"{PHONE}","code_length":6}}"#)
}

/// A valid send body of exactly `len` bytes (padded with an unknown parameter).
fn json_of_len(len: usize) -> String {
    let head = format!(r#"{{"phone_number":"{PHONE}","code_length":6,"pad":""#);
    let body = format!("{head}{}\"}}", "x".repeat(len - head.len() - 2));
    assert_eq!(body.len(), len);
    body
}

/// The service still sends, checks and bills normally.
async fn still_healthy(app: &TestApp, t: &Tenant, sent_before: usize) {
    let r = app.send(t, PHONE).await;
    let id = r["request_id"].as_str().unwrap();
    let code = app.code_for(id).await;
    assert_eq!(app.verification(t, id, Some(&code)).await.as_deref(), Some("code_valid"));
    assert_eq!(app.inbox(PHONE).await.len(), sent_before + 1, "only the healthy send went out");
}

async fn malformed_bodies_answer_bad_request_and_change_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let deep = format!(r#"{{"phone_number":"{PHONE}","code_length":6,"x":{}1{}}}"#, "[".repeat(5000), "]".repeat(5000));
    assert!(deep.len() < 16 * 1024, "inside the default body limit: only the nesting is wrong");
    let gz = [0x1f_u8, 0x8b, 0x08, 0, 0, 0, 0, 0, 0, 0x03, 0x03, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    // (what, content type, body, content encoding)
    type Case<'a> = (&'a str, Option<&'a str>, Vec<u8>, Option<&'a str>);
    let cases: Vec<Case> = vec![
        ("invalid JSON", Some("application/json"), b"{".to_vec(), None),
        ("JSON with a trailing comma", Some("application/json"), b"{\"phone_number\":\"1\",}".to_vec(), None),
        ("a JSON array", Some("application/json"), format!("[{}]", valid_json()).into_bytes(), None),
        ("a JSON string", Some("application/json"), b"\"phone_number\"".to_vec(), None),
        ("a JSON number", Some("application/json"), b"15551234567".to_vec(), None),
        ("JSON null", Some("application/json"), b"null".to_vec(), None),
        ("JSON with trailing bytes", Some("application/json"), format!("{} x", valid_json()).into_bytes(), None),
        ("two JSON objects", Some("application/json"), format!("{0}{0}", valid_json()).into_bytes(), None),
        ("deeply nested JSON", Some("application/json"), deep.into_bytes(), None),
        (
            "non-UTF-8 JSON",
            Some("application/json"),
            b"{\"phone_number\":\"+1555\xff\xfe\",\"code_length\":6}".to_vec(),
            None,
        ),
        ("a UTF-16 BOM", Some("application/json"), [&[0xff, 0xfe][..], valid_json().as_bytes()].concat(), None),
        (
            "non-UTF-8 form",
            Some("application/x-www-form-urlencoded"),
            b"phone_number=%2B15551234567&code_length=6&x=\xff".to_vec(),
            None,
        ),
        ("text/plain", Some("text/plain"), valid_json().into_bytes(), None),
        ("no content type", None, valid_json().into_bytes(), None),
        ("application/xml", Some("application/xml"), b"<phone_number>15551234567</phone_number>".to_vec(), None),
        ("a content type lie", Some("application/json"), b"phone_number=%2B15551234567&code_length=6".to_vec(), None),
        ("charset=latin1", Some("application/json; charset=latin1"), valid_json().into_bytes(), None),
        (
            "charset=iso-8859-1 form",
            Some("application/x-www-form-urlencoded; charset=iso-8859-1"),
            b"phone_number=%2B15551234567&code_length=6".to_vec(),
            None,
        ),
        ("gzip", Some("application/json"), gz.to_vec(), Some("gzip")),
        ("gzip label on plain JSON", Some("application/json"), valid_json().into_bytes(), Some("gzip")),
        ("deflate", Some("application/json"), valid_json().into_bytes(), Some("deflate")),
        ("br", Some("application/json"), valid_json().into_bytes(), Some("br")),
    ];
    for (what, content_type, body, encoding) in cases {
        let mut b = app.client.post(app.url(SEND)).bearer_auth(&t.token).body(body);
        if let Some(ct) = content_type {
            b = b.header("content-type", ct);
        }
        if let Some(enc) = encoding {
            b = b.header("content-encoding", enc);
        }
        let r = app.send_request(b).await;
        assert_eq!(r.error(), "BAD_REQUEST", "{what}");
        assert!(app.inbox(PHONE).await.is_empty(), "{what}: nothing sent");
    }
    // multipart/form-data is optional (spec §1): refused, or understood.
    let multipart = format!(
        "--XyZ\r\nContent-Disposition: form-data; name=\"phone_number\"\r\n\r\n{PHONE}\r\n--XyZ\r\nContent-Disposition: form-data; name=\"code_length\"\r\n\r\n6\r\n--XyZ--\r\n"
    );
    let r = app.call_raw(Some(&t), Method::POST, SEND, Some("multipart/form-data; boundary=XyZ"), multipart).await;
    let sent = match r.outcome() {
        Err(e) => {
            assert_eq!(e, "BAD_REQUEST");
            0
        }
        Ok(s) => {
            assert_eq!(s["phone_number"], PHONE_DIGITS);
            1
        }
    };
    assert_eq!(app.balance(&t).await, 1_000_000 - 10_000 * sent as i64, "no error was charged");
    still_healthy(&app, &t, sent).await;
}

async fn duplicate_json_keys_are_an_invalid_parameter(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for (body, error) in [
        (format!(r#"{{"phone_number":"{PHONE}","phone_number":"{PHONE}","code_length":6}}"#), "PHONE_NUMBER_INVALID"),
        (format!(r#"{{"phone_number":"{PHONE}","code":"1234","code":"5678"}}"#), "CODE_INVALID"),
        (format!(r#"{{"phone_number":"{PHONE}","code_length":6,"ttl":60,"ttl":61}}"#), "TTL_INVALID"),
        (
            format!(
                r#"{{"access_token":"{0}","access_token":"{0}","phone_number":"{PHONE}","code_length":6}}"#,
                t.token
            ),
            "ACCESS_TOKEN_INVALID",
        ),
    ] {
        // The last case carries the token only as its (duplicated) parameter.
        let bearer = (error != "ACCESS_TOKEN_INVALID").then_some(&t);
        let r = app.call_raw(bearer, Method::POST, SEND, Some("application/json"), body).await;
        assert_eq!(r.error(), error);
    }
    assert!(app.inbox(PHONE).await.is_empty());
}

async fn bom_charset_and_mime_case_are_accepted(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let form = "phone_number=%2B15551234567&code_length=6";
    let cases: Vec<(&str, String, Option<&str>)> = vec![
        ("application/json", format!("\u{feff}{}", valid_json()), None),
        ("application/json; charset=utf-8", valid_json(), None),
        ("application/json;charset=UTF-8", valid_json(), None),
        ("application/json; charset=\"utf-8\"", valid_json(), None),
        ("Application/JSON", valid_json(), None),
        ("application/json", valid_json(), Some("identity")),
        ("application/x-www-form-urlencoded; charset=utf-8", form.to_owned(), None),
        ("application/json", format!(" \n{}\n ", valid_json()), None),
    ];
    let n = cases.len();
    for (ct, body, encoding) in cases {
        let mut b = app.client.post(app.url(SEND)).bearer_auth(&t.token).header("content-type", ct).body(body);
        if let Some(enc) = encoding {
            b = b.header("content-encoding", enc);
        }
        let r = app.send_request(b).await;
        assert_eq!(r.result()["phone_number"], PHONE_DIGITS, "{ct} {encoding:?}");
    }
    assert_eq!(app.inbox(PHONE).await.len(), n);
    // An empty body with a JSON content type: the query's parameters alone.
    let b = app.client.post(app.url(&format!("{SEND}?phone_number=%2B15551234567&code_length=6")));
    let r = app.send_request(b.bearer_auth(&t.token).header("content-type", "application/json").body("")).await;
    r.result();
}

async fn body_limit_is_exact(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let limit = 16 * 1024;
    let r = app.call_raw(Some(&t), Method::POST, SEND, Some("application/json"), json_of_len(limit)).await;
    r.result();
    let r = app.call_raw(Some(&t), Method::POST, SEND, Some("application/json"), json_of_len(limit + 1)).await;
    assert_eq!(r.error(), "BAD_REQUEST");
    let form = |len: usize| {
        let head = "phone_number=%2B15551234567&code_length=6&pad=";
        format!("{head}{}", "x".repeat(len - head.len()))
    };
    let ct = Some("application/x-www-form-urlencoded");
    app.call_raw(Some(&t), Method::POST, SEND, ct, form(limit)).await.result();
    assert_eq!(app.call_raw(Some(&t), Method::POST, SEND, ct, form(limit + 1)).await.error(), "BAD_REQUEST");
    assert_eq!(app.inbox(PHONE).await.len(), 2);
    still_healthy(&app, &t, 2).await;
}

async fn one_megabyte_body_limit(backend: Backend) {
    let app = spawn_app_with(backend, |c| set_key(c, "server.body_limit", "1048576")).await;
    let t = app.create_tenant("1", None).await;
    let limit = 1 << 20;
    let ct = Some("application/json");
    app.call_raw(Some(&t), Method::POST, SEND, ct, json_of_len(limit)).await.result();
    assert_eq!(app.call_raw(Some(&t), Method::POST, SEND, ct, json_of_len(limit + 1)).await.error(), "BAD_REQUEST");
    // 100,000 nested arrays fit in the limit; the nesting is refused, without a stack overflow.
    let deep =
        format!(r#"{{"phone_number":"{PHONE}","code_length":6,"x":{}1{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
    assert_eq!(app.call_raw(Some(&t), Method::POST, SEND, ct, deep).await.error(), "BAD_REQUEST");
    let deep = format!(
        r#"{{"phone_number":"{PHONE}","code_length":6,"x":{}}}"#,
        "{\"a\":".repeat(100_000) + "1" + &"}".repeat(100_000)
    );
    assert_eq!(app.call_raw(Some(&t), Method::POST, SEND, ct, deep).await.error(), "BAD_REQUEST");
    // A request_id of a megabyte is just an invalid one.
    let huge = "1".repeat(1_000_000);
    let r = app.call(&t, "checkVerificationStatus", json!({"request_id": huge, "code": "1234"})).await;
    assert_eq!(r.error(), "REQUEST_ID_INVALID");
    let r = app.call(&t, "revokeVerificationMessage", json!({"request_id": huge})).await;
    assert_eq!(r.error(), "REQUEST_ID_INVALID");
    let r = app
        .call(&t, "sendVerificationMessage", json!({"phone_number": PHONE, "code_length": 6, "request_id": huge}))
        .await;
    assert_eq!(r.error(), "REQUEST_ID_INVALID");
    let r =
        app.call(&t, "sendVerificationMessage", json!({"phone_number": "1".repeat(1_000_000), "code_length": 6})).await;
    assert_eq!(r.error(), "PHONE_NUMBER_INVALID");
    still_healthy(&app, &t, 1).await;
}

async fn bodies_over_the_default_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    for size in [16 * 1024 + 1, 100 * 1024, 1 << 20, 8 << 20] {
        let r = app.call_raw(Some(&t), Method::POST, SEND, Some("application/json"), json_of_len(size)).await;
        assert_eq!(r.error(), "BAD_REQUEST", "{size} bytes");
    }
    still_healthy(&app, &t, 0).await;
}

/// Writes a raw HTTP/1.1 request and reads the whole answer (the request asks to close).
async fn raw_http(app: &TestApp, request: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    // The server may answer before it has read everything: a failed write is fine, the answer counts.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(15), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server answered and closed within 15 s");
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line: {text:?}"));
    assert!(text.to_ascii_lowercase().contains("\r\nx-request-id: "), "{text}");
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_owned()).unwrap_or_default();
    (status, body)
}

fn chunked(t: &Tenant, body: &str, chunk: usize) -> Vec<u8> {
    let mut req = format!(
        "POST {SEND} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        t.token
    )
    .into_bytes();
    for part in body.as_bytes().chunks(chunk) {
        req.extend(format!("{:x}\r\n", part.len()).into_bytes());
        req.extend(part);
        req.extend(b"\r\n");
    }
    req.extend(b"0\r\n\r\n");
    req
}

async fn chunked_bodies_count_against_the_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let (status, body) = raw_http(&app, &chunked(&t, &json_of_len(16 * 1024), 1000)).await;
    assert_eq!(status, 200);
    let answer: Value = serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_eq!(answer["ok"], true, "{answer}");
    let (status, body) = raw_http(&app, &chunked(&t, &json_of_len(64 * 1024), 4096)).await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_str::<Value>(body.trim()).unwrap(), json!({"ok": false, "error": "BAD_REQUEST"}));
    still_healthy(&app, &t, 1).await;
}

/// Writes raw bytes, then reads what comes back until the server closes (at most 20 s).
/// Answers the raw text (empty when the server closed without answering).
async fn raw_exchange(app: &TestApp, parts: &[&[u8]], pause: Duration) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    for part in parts {
        if stream.write_all(part).await.is_err() {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server answered and closed within 20 s");
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_of(answer: &str) -> Option<u16> {
    answer.strip_prefix("HTTP/1.1 ").and_then(|s| s.get(..3)).and_then(|s| s.parse().ok())
}

async fn http_framing_abuse_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let body = valid_json();
    let head = |extra: &str| {
        format!(
            "POST {SEND} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nConnection: close\r\n{extra}\r\n",
            t.token
        )
    };
    let cases = [
        (
            "Content-Length and chunked",
            format!(
                "{}{:x}\r\n{body}\r\n0\r\n\r\n",
                head(&format!("Content-Length: {}\r\nTransfer-Encoding: chunked\r\n", body.len())),
                body.len()
            ),
        ),
        (
            "two different Content-Lengths",
            format!("{}{body}", head(&format!("Content-Length: {}\r\nContent-Length: 5\r\n", body.len()))),
        ),
        ("a negative Content-Length", format!("{}{body}", head("Content-Length: -1\r\n"))),
        (
            "an 8 MB header",
            format!("{}{body}", head(&format!("Content-Length: {}\r\nX-Big: {}\r\n", body.len(), "a".repeat(8 << 20)))),
        ),
        (
            "10,000 headers",
            format!("{}{body}", head(&format!("Content-Length: {}\r\n{}", body.len(), "X-H: 1\r\n".repeat(10_000)))),
        ),
    ];
    for (what, request) in cases {
        let answer = raw_exchange(&app, &[request.as_bytes()], Duration::ZERO).await;
        let status = status_of(&answer);
        assert!(status.is_none_or(|s| (400..500).contains(&s)), "{what}: {}", &answer[..answer.len().min(300)]);
    }
    assert!(app.inbox(PHONE).await.is_empty(), "none of them was processed");
    still_healthy(&app, &t, 0).await;
}

async fn a_body_that_never_arrives_times_out_in_the_envelope(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_tenant("1", None).await;
    let body = valid_json();
    let head = format!(
        "POST {SEND} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        t.token,
        body.len() + 10
    );
    let started = std::time::Instant::now();
    let answer = raw_exchange(&app, &[head.as_bytes(), &body.as_bytes()[..10]], Duration::from_millis(100)).await;
    assert!(started.elapsed() < Duration::from_secs(15), "the server gave up on the body in time");
    assert_eq!(status_of(&answer), Some(200), "{answer}");
    assert!(answer.ends_with(r#"{"ok":false,"error":"BAD_REQUEST"}"#), "{answer}");
    assert!(app.inbox(PHONE).await.is_empty());
    still_healthy(&app, &t, 0).await;
}
