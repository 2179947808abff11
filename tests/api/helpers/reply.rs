//! A Gateway answer, read and checked against the envelope's invariants.

use reqwest::header::HeaderMap;
use serde_json::Value;
use std::fmt;
use verigram::config::ErrorStatus;

/// One answer of a Gateway method.
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
    pub text: String,
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {}", self.status, self.text)
    }
}

/// The HTTP status an error string must come with under `mode` (spec §1).
fn expected_status(error: &str, mode: ErrorStatus) -> u16 {
    match error {
        "INTERNAL_ERROR" => return 500,
        "SERVICE_UNAVAILABLE" => return 503,
        _ if mode == ErrorStatus::Ok => return 200,
        _ => {}
    }
    match error {
        "ACCESS_TOKEN_REQUIRED" | "ACCESS_TOKEN_INVALID" => 401,
        "BALANCE_NOT_ENOUGH" => 402,
        "REQUEST_ID_INVALID" | "UNKNOWN_METHOD" => 404,
        e if e.starts_with("FLOOD_WAIT_") => 429,
        _ => 400,
    }
}

impl Reply {
    /// Reads the answer and checks what every Gateway answer must be: JSON with exactly
    /// `{ok:true,result}` or `{ok:false,error:"UPPER_SNAKE"}`, never a `null`, an
    /// `X-Request-Id` header, and the HTTP status the error mode prescribes.
    pub async fn gateway(response: reqwest::Response, mode: ErrorStatus) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("the answer body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("HTTP {status}: the answer is not JSON ({e}): {text:?}"));
        let reply = Self { status, headers, body, text };
        reply.check_envelope(mode);
        reply
    }

    fn check_envelope(&self, mode: ErrorStatus) {
        let id = self.headers.get("x-request-id").map(|v| v.to_str().unwrap_or_default().to_owned());
        assert!(id.is_some_and(|id| !id.is_empty()), "no X-Request-Id header on {self:?}");
        let ct = self.headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(ct.starts_with("application/json"), "content type {ct:?} of {self:?}");
        let object = self.body.as_object().unwrap_or_else(|| panic!("the envelope is not an object: {self:?}"));
        assert_no_null(&self.body, &self.text);
        match object.get("ok") {
            Some(Value::Bool(true)) => {
                assert!(object.len() == 2 && object.contains_key("result"), "success envelope: {self:?}");
                assert_eq!(self.status, 200, "a success answers HTTP 200: {self:?}");
            }
            Some(Value::Bool(false)) => {
                assert!(object.len() == 2, "an error envelope has exactly ok and error: {self:?}");
                let error = object["error"].as_str().unwrap_or_else(|| panic!("error is a bare string: {self:?}"));
                assert!(
                    !error.is_empty()
                        && error.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                    "error {error:?} is not UPPER_SNAKE_CASE"
                );
                assert_ne!(error, "INTERNAL_ERROR", "the service failed internally: {self:?}");
                assert_eq!(self.status, expected_status(error, mode), "HTTP status of {error} under {mode:?}");
            }
            _ => panic!("the envelope has no boolean ok: {self:?}"),
        }
    }

    /// The `result` of a success; fails on an error answer.
    #[track_caller]
    pub fn result(&self) -> &Value {
        assert_eq!(self.body["ok"], true, "expected success, got {self:?}");
        &self.body["result"]
    }

    /// The error string of a failure; fails on a success.
    #[track_caller]
    pub fn error(&self) -> &str {
        assert_eq!(self.body["ok"], false, "expected an error, got {self:?}");
        self.body["error"].as_str().expect("a string error")
    }

    /// `true` for a success, the error otherwise.
    pub fn outcome(&self) -> Result<&Value, &str> {
        if self.body["ok"] == true {
            Ok(&self.body["result"])
        } else {
            Err(self.body["error"].as_str().expect("a string error"))
        }
    }
}

/// Fails when `value` holds a `null` anywhere (optional fields are omitted, never `null`).
#[track_caller]
pub fn assert_no_null(value: &Value, context: &str) {
    match value {
        Value::Null => panic!("null in an answer: {context}"),
        Value::Array(items) => items.iter().for_each(|v| assert_no_null(v, context)),
        Value::Object(map) => map.values().for_each(|v| assert_no_null(v, context)),
        _ => {}
    }
}

/// An amount of credits (a JSON number) in micro-credits, exactly: the number must have at
/// most six fractional digits (no float noise such as `0.30000000000000004`).
#[track_caller]
pub fn micros(value: &Value) -> i64 {
    let text = match value {
        Value::Number(n) => n.to_string(),
        other => panic!("an amount of credits is a JSON number, got {other}"),
    };
    if text.contains(['e', 'E']) {
        // Exponent notation (serde_json writes 0.000001 as 1e-6): exact enough through f64 for
        // any amount a test uses, and still checked for at most six fractional digits.
        let m = (value.as_f64().expect("a number") * 1e6).round();
        assert!((value.as_f64().unwrap() * 1e6 - m).abs() < 1e-6, "{text} is not whole micro-credits");
        return m as i64;
    }
    let (neg, digits) = text.strip_prefix('-').map_or((false, text.as_str()), |d| (true, d));
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    assert!(
        !whole.is_empty() && whole.bytes().all(|b| b.is_ascii_digit()) && frac.len() <= 6,
        "{text} is not an exact amount of micro-credits"
    );
    let m = whole.parse::<i64>().expect("whole credits") * 1_000_000
        + if frac.is_empty() { 0 } else { format!("{frac:0<6}").parse::<i64>().expect("fraction") };
    if neg {
        -m
    } else {
        m
    }
}
