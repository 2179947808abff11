//! Gateway parameters: from the query string and from a form or JSON body, merged into one
//! map of strings (the body wins over the query). Only strings come out of here; turning them
//! into domain values is the methods' business.

use super::error::GatewayError;
use actix_web::http::header::{self, HeaderMap};
use futures_util::StreamExt;
use serde::de::{Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// One parameter as the client sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Param<'a> {
    /// Not given, `null`, or (for the caller to decide) empty.
    Absent,
    Text(&'a str),
    /// Given in a form no parameter accepts: an array, an object, or twice in one source.
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    Null,
    Invalid,
}

#[derive(Debug, Default)]
pub struct GatewayParams(HashMap<String, Value>);

impl GatewayParams {
    /// The parameter; an empty string reads as absent ("not given", spec §1).
    pub fn get(&self, name: &str) -> Param<'_> {
        match self.0.get(name) {
            None | Some(Value::Null) => Param::Absent,
            Some(Value::Text(t)) if t.is_empty() => Param::Absent,
            Some(Value::Text(t)) => Param::Text(t),
            Some(Value::Invalid) => Param::Invalid,
        }
    }

    /// Reads the query string and the body (at most `limit` bytes, within `deadline`).
    pub async fn extract(
        query: &str,
        headers: &HeaderMap,
        mut payload: actix_web::web::Payload,
        limit: usize,
        deadline: Duration,
    ) -> Result<Self, GatewayError> {
        let mut params = Self::default();
        params.merge(parse_form(query.as_bytes()));
        let declared =
            headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(GatewayError::BadRequest);
        }
        let read = async {
            let mut body = Vec::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|_| GatewayError::BadRequest)?;
                if body.len() + chunk.len() > limit {
                    return Err(GatewayError::BadRequest);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(body)
        };
        let body = tokio::time::timeout(deadline, read).await.map_err(|_| GatewayError::BadRequest)??;
        if !body.is_empty() {
            params.merge(parse_body(headers, &body)?);
        }
        Ok(params)
    }

    fn merge(&mut self, other: HashMap<String, Value>) {
        self.0.extend(other);
    }
}

fn parse_body(headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, Value>, GatewayError> {
    let encoding = headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes());
    if encoding.is_some_and(|e| !e.eq_ignore_ascii_case(b"identity")) {
        // No decompression at all: a compressed body is refused, so no gzip bomb can expand.
        return Err(GatewayError::BadRequest);
    }
    let content_type =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_ascii_lowercase();
    let (mime, params) = content_type.split_once(';').unwrap_or((&content_type, ""));
    let charset_ok = params
        .split(';')
        .filter_map(|p| p.trim().strip_prefix("charset="))
        .all(|c| c.trim_matches('"').eq_ignore_ascii_case("utf-8"));
    if !charset_ok {
        return Err(GatewayError::BadRequest);
    }
    let text = std::str::from_utf8(body).map_err(|_| GatewayError::BadRequest)?;
    match mime.trim() {
        "application/json" => parse_json(text),
        "application/x-www-form-urlencoded" => Ok(parse_form(text.as_bytes())),
        _ => Err(GatewayError::BadRequest),
    }
}

/// `a=1&b=2`. A name given twice is ambiguous, so it reads as invalid.
fn parse_form(bytes: &[u8]) -> HashMap<String, Value> {
    let mut map = HashMap::new();
    for (key, value) in url::form_urlencoded::parse(bytes) {
        map.entry(key.into_owned()).and_modify(|v| *v = Value::Invalid).or_insert(Value::Text(value.into_owned()));
    }
    map
}

fn parse_json(text: &str) -> Result<HashMap<String, Value>, GatewayError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut de = serde_json::Deserializer::from_str(text);
    let JsonParams(map) = JsonParams::deserialize(&mut de).map_err(|_| GatewayError::BadRequest)?;
    de.end().map_err(|_| GatewayError::BadRequest)?;
    Ok(map)
}

/// A JSON object of parameters. Scalars become text (`6` and `"6"` alike), `null` is absent,
/// arrays, objects and duplicate keys are invalid values of their parameter.
struct JsonParams(HashMap<String, Value>);

impl<'de> Deserialize<'de> for JsonParams {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor;
        impl<'de> Visitor<'de> for ObjectVisitor {
            type Value = JsonParams;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object of parameters")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<JsonParams, A::Error> {
                let mut map = HashMap::new();
                while let Some(key) = access.next_key::<String>()? {
                    let value = match access.next_value::<serde_json::Value>()? {
                        serde_json::Value::Null => Value::Null,
                        serde_json::Value::String(s) => Value::Text(s),
                        serde_json::Value::Number(n) => Value::Text(n.to_string()),
                        serde_json::Value::Bool(b) => Value::Text(b.to_string()),
                        serde_json::Value::Array(_) | serde_json::Value::Object(_) => Value::Invalid,
                    };
                    map.entry(key).and_modify(|v| *v = Value::Invalid).or_insert(value);
                }
                Ok(JsonParams(map))
            }
        }
        d.deserialize_map(ObjectVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn json(text: &str) -> HashMap<String, Value> {
        parse_json(text).unwrap()
    }

    #[test]
    fn json_values() {
        let m = json(r#"{"a":"x","b":6,"c":null,"d":[1],"e":{"f":1},"g":true,"h":1.5}"#);
        assert_eq!(m["a"], Value::Text("x".into()));
        assert_eq!(m["b"], Value::Text("6".into()));
        assert_eq!(m["c"], Value::Null);
        assert_eq!(m["d"], Value::Invalid);
        assert_eq!(m["e"], Value::Invalid);
        assert_eq!(m["g"], Value::Text("true".into()));
        assert_eq!(m["h"], Value::Text("1.5".into()));
        assert_eq!(json(r#"{"a":"1","a":"2"}"#)["a"], Value::Invalid);
        assert_eq!(json("\u{feff}{\"a\":\"1\"}")["a"], Value::Text("1".into()));
    }

    #[test]
    fn bad_json_is_a_bad_request() {
        for bad in [
            "",
            "[]",
            "\"x\"",
            "{",
            "{\"a\":1} x",
            "nul",
            &format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000)),
        ] {
            assert_eq!(parse_json(bad), Err(GatewayError::BadRequest), "{}", &bad[..bad.len().min(20)]);
        }
    }

    #[test]
    fn forms() {
        let m = parse_form(b"phone_number=%2B1555&code=12+34&x=1&x=2");
        assert_eq!(m["phone_number"], Value::Text("+1555".into()));
        assert_eq!(m["code"], Value::Text("12 34".into()));
        assert_eq!(m["x"], Value::Invalid);
    }

    #[test]
    fn body_overrides_query() {
        let mut p = GatewayParams::default();
        p.merge(parse_form(b"a=query&b=only"));
        p.merge(json(r#"{"a":"body"}"#));
        assert_eq!(p.get("a"), Param::Text("body"));
        assert_eq!(p.get("b"), Param::Text("only"));
        assert_eq!(p.get("c"), Param::Absent);
        p.merge(parse_form(b"e="));
        assert_eq!(p.get("e"), Param::Absent);
    }

    proptest! {
        #[test]
        fn parsers_never_panic(s in "\\PC{0,200}") {
            let _ = parse_json(&s);
            let _ = parse_form(s.as_bytes());
        }

        #[test]
        fn any_json_object_of_strings_round_trips(m in proptest::collection::hash_map("[a-z_]{1,12}", "\\PC{0,20}", 0..8)) {
            let text = serde_json::to_string(&m).unwrap();
            let parsed = json(&text);
            for (k, v) in m {
                prop_assert_eq!(&parsed[&k], &Value::Text(v));
            }
        }
    }
}
