//! How records are written as text in an external store. Kept apart from the domain types so
//! the domain stays free of storage formats; every read parses back into checked domain values.

use super::{StoreError, StoreResult};
use crate::domain::{
    CodeState, Credits, DeadReport, DeliveryStatus, LedgerEntry, Payload, PendingReport, PhoneNumber, RequestId,
    RequestRecord, SenderUsername, StatusAt, Timestamp, Ttl, VerificationStatus,
};
use serde::{Deserialize, Serialize};

#[derive(Serialize, Deserialize)]
struct StoredRequest {
    id: String,
    phone: String,
    created_at: i64,
    cost: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    refunded: bool,
    token_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code: Option<StoredCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    delivery: Option<(String, i64)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    verification: Option<(String, i64)>,
}

#[derive(Serialize, Deserialize)]
struct StoredCode {
    hash: String,
    valid_until: i64,
    max_attempts: u8,
    attempts: u8,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    payload: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    callback_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    callback_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sender_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    failed_attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    reports: Vec<StoredReport>,
}

#[derive(Serialize, Deserialize)]
struct StoredReport {
    body: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

const CORRUPT_REQUEST: StoreError = StoreError::Corrupt { what: "request" };

pub fn encode_request(r: &RequestRecord) -> String {
    let stored = StoredRequest {
        id: r.id.to_string(),
        phone: r.phone.digits().to_owned(),
        created_at: r.created_at.millis(),
        cost: r.cost.micros(),
        refunded: r.refunded,
        token_id: r.token_id.clone(),
        code: r.code.as_ref().map(|c| StoredCode {
            hash: c.hash.clone(),
            valid_until: c.valid_until.millis(),
            max_attempts: c.max_attempts,
            attempts: c.attempts,
            ttl: c.ttl.map(Ttl::secs),
            payload: c.payload.as_ref().map(|p| p.as_str().to_owned()),
            callback_url: c.callback_url.clone(),
            callback_key: c.callback_key.clone(),
            sender_username: c.sender_username.as_ref().map(|s| s.as_str().to_owned()),
            sealed: c.sealed.clone(),
            account: c.account.clone(),
            failed_attempts: c.failed_attempts,
            message_id: c.message_id,
            reports: c
                .reports
                .iter()
                .map(|r| StoredReport { body: r.body.clone(), attempts: r.attempts, error: r.last_error.clone() })
                .collect(),
        }),
        delivery: r.delivery.map(|d| (d.status.as_str().to_owned(), d.at.millis())),
        verification: r.verification.map(|v| (v.status.as_str().to_owned(), v.at.millis())),
    };
    // Serializing plain strings and integers cannot fail.
    serde_json::to_string(&stored).unwrap_or_default()
}

pub fn decode_request(text: &str, version: u64) -> StoreResult<RequestRecord> {
    let s: StoredRequest = serde_json::from_str(text).map_err(|_| CORRUPT_REQUEST)?;
    let code = s
        .code
        .map(|c| -> StoreResult<CodeState> {
            Ok(CodeState {
                hash: c.hash,
                valid_until: Timestamp::from_millis(c.valid_until),
                max_attempts: c.max_attempts,
                attempts: c.attempts,
                ttl: c.ttl.map(|t| Ttl::from_secs(t.into())).transpose().map_err(|_| CORRUPT_REQUEST)?,
                payload: c.payload.map(|p| Payload::parse(&p)).transpose().map_err(|_| CORRUPT_REQUEST)?,
                callback_url: c.callback_url,
                callback_key: c.callback_key,
                sender_username: c
                    .sender_username
                    .map(|u| SenderUsername::parse(&u))
                    .transpose()
                    .map_err(|_| CORRUPT_REQUEST)?,
                sealed: c.sealed,
                account: c.account,
                failed_attempts: c.failed_attempts,
                message_id: c.message_id,
                reports: c
                    .reports
                    .into_iter()
                    .map(|r| PendingReport { body: r.body, attempts: r.attempts, last_error: r.error })
                    .collect(),
            })
        })
        .transpose()?;
    Ok(RequestRecord {
        id: RequestId::parse(&s.id).map_err(|_| CORRUPT_REQUEST)?,
        phone: PhoneNumber::parse(&s.phone).map_err(|_| CORRUPT_REQUEST)?,
        created_at: Timestamp::from_millis(s.created_at),
        cost: Credits::from_micros(s.cost),
        refunded: s.refunded,
        token_id: s.token_id,
        code,
        delivery: decode_status(s.delivery, DeliveryStatus::parse)?,
        verification: decode_status(s.verification, VerificationStatus::parse)?,
        version,
    })
}

fn decode_status<S>(pair: Option<(String, i64)>, parse: fn(&str) -> Option<S>) -> StoreResult<Option<StatusAt<S>>> {
    pair.map(|(name, at)| {
        parse(&name).map(|status| StatusAt { status, at: Timestamp::from_millis(at) }).ok_or(CORRUPT_REQUEST)
    })
    .transpose()
}

/// A ledger line is stored as `<balance_after>|<entry JSON>`: the balance after the movement
/// is only known inside the atomic step, which prepends it.
pub fn encode_ledger(entry: &LedgerEntry) -> String {
    serde_json::to_string(entry).unwrap_or_default()
}

pub fn decode_ledger(line: &str) -> StoreResult<LedgerEntry> {
    let corrupt = StoreError::Corrupt { what: "ledger entry" };
    let (balance, json) = line.split_once('|').ok_or(corrupt)?;
    let mut entry: LedgerEntry =
        serde_json::from_str(json).map_err(|_| StoreError::Corrupt { what: "ledger entry" })?;
    entry.balance_after =
        Credits::from_micros(balance.parse().map_err(|_| StoreError::Corrupt { what: "ledger entry" })?);
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_round_trips() {
        let r = RequestRecord {
            id: RequestId::generate(),
            phone: PhoneNumber::parse("15551234567").unwrap(),
            created_at: Timestamp::from_millis(1_700_000_000_123),
            cost: Credits::from_micros(10_000),
            refunded: false,
            token_id: "tok_1".into(),
            code: Some(CodeState {
                hash: "$hmac-sha256$v=1$abc$def".into(),
                valid_until: Timestamp::from_millis(1_700_000_600_123),
                max_attempts: 5,
                attempts: 2,
                ttl: Some(Ttl::from_secs(60).unwrap()),
                payload: Some(Payload::parse("ü|x\"{}").unwrap()),
                callback_url: Some("https://example.com/h".into()),
                callback_key: Some("00ff".into()),
                sender_username: Some(SenderUsername::parse("myshop").unwrap()),
                sealed: Some("c2VhbGVk".into()),
                account: Some("sandbox".into()),
                failed_attempts: 2,
                message_id: Some(42),
                reports: vec![
                    PendingReport { body: "{\"a\":1}".into(), attempts: 3, last_error: Some("HTTP 500".into()) },
                    PendingReport { body: "{}".into(), attempts: 0, last_error: None },
                ],
            }),
            delivery: Some(StatusAt { status: DeliveryStatus::Read, at: Timestamp::from_millis(5) }),
            verification: Some(StatusAt { status: VerificationStatus::CodeInvalid, at: Timestamp::from_millis(6) }),
            version: 7,
        };
        assert_eq!(decode_request(&encode_request(&r), 7).unwrap(), r);
    }

    #[test]
    fn corrupt_text_is_an_error_not_a_panic() {
        assert!(decode_request("{", 1).is_err());
        assert!(decode_request(r#"{"id":"x","phone":"1","created_at":0,"cost":0,"token_id":""}"#, 1).is_err());
        assert!(decode_ledger("no-bar").is_err());
    }
}

#[derive(Serialize, Deserialize)]
struct StoredDeadReport {
    id: String,
    request: String,
    url: String,
    key: String,
    body: String,
    attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    at: i64,
}

pub fn encode_dead_report(d: &DeadReport) -> String {
    let stored = StoredDeadReport {
        id: d.id.clone(),
        request: d.request_id.to_string(),
        url: d.url.clone(),
        key: d.key.clone(),
        body: d.body.clone(),
        attempts: d.attempts,
        error: d.last_error.clone(),
        at: d.failed_at.millis(),
    };
    serde_json::to_string(&stored).unwrap_or_default()
}

pub fn decode_dead_report(text: &str) -> StoreResult<DeadReport> {
    const CORRUPT: StoreError = StoreError::Corrupt { what: "dead report" };
    let s: StoredDeadReport = serde_json::from_str(text).map_err(|_| CORRUPT)?;
    Ok(DeadReport {
        id: s.id,
        request_id: RequestId::parse(&s.request).map_err(|_| CORRUPT)?,
        url: s.url,
        key: s.key,
        body: s.body,
        attempts: s.attempts,
        last_error: s.error,
        failed_at: Timestamp::from_millis(s.at),
    })
}
