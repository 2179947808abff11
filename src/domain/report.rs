//! Delivery reports waiting to go to a request's `callback_url`: one per change of its
//! delivery or verification status, each with the request's status as it was at that change,
//! kept on the request in order (the outbox), so a report is written in the same atomic step
//! as the change it reports.

use super::{RequestRecord, Timestamp};

/// A report not yet acknowledged by the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingReport {
    /// The JSON body: the `RequestStatus` at the change.
    pub body: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Why the last attempt failed (a status code or a kind of error; never a secret).
    pub last_error: Option<String>,
}

impl PendingReport {
    fn new(body: String) -> Self {
        Self { body, attempts: 0, last_error: None }
    }
}

impl RequestRecord {
    /// Reports waiting to go out, oldest first.
    pub fn pending_reports(&self) -> &[PendingReport] {
        self.code.as_ref().map_or(&[], |c| &c.reports)
    }

    /// `next`, the record this one becomes, with a report of the change queued when the
    /// request has a `callback_url` and its delivery or verification status (or the time of
    /// it) changed. Answers whether a report was queued.
    pub fn queue_report(&self, mut next: RequestRecord, now: Timestamp) -> (RequestRecord, bool) {
        let changed = self.delivery != next.delivery || self.verification != next.verification;
        let has_callback = next.code.as_ref().is_some_and(|c| c.callback_url.is_some());
        if !changed || !has_callback {
            return (next, false);
        }
        // Serializing a view of plain strings and integers cannot fail.
        let body = serde_json::to_string(&next.view(now, None)).unwrap_or_default();
        if let Some(code) = next.code.as_mut() {
            code.reports.push(PendingReport::new(body));
        }
        (next, true)
    }

    /// The oldest report is done with (acknowledged, or given up on).
    pub fn without_first_report(&self) -> RequestRecord {
        let mut next = self.clone();
        if let Some(code) = next.code.as_mut().filter(|c| !c.reports.is_empty()) {
            code.reports.remove(0);
        }
        next
    }

    /// The oldest report failed once more.
    pub fn with_failed_report(&self, error: &str) -> RequestRecord {
        let mut next = self.clone();
        if let Some(first) = next.code.as_mut().and_then(|c| c.reports.first_mut()) {
            first.attempts += 1;
            first.last_error = Some(error.chars().take(200).collect());
        }
        next
    }
}

/// A report that exhausted its retries: kept for operators to look at and replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadReport {
    /// Names this dead letter (for replaying it).
    pub id: String,
    pub request_id: super::RequestId,
    pub url: String,
    /// Hex signing key (SHA-256 of the token that made the send): never shown to operators.
    pub key: String,
    pub body: String,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub failed_at: Timestamp,
}

impl DeadReport {
    /// The oldest pending report of `record`, given up on at `now`.
    pub fn first_of(record: &RequestRecord, now: Timestamp) -> Option<Self> {
        let code = record.code.as_ref()?;
        let first = code.reports.first()?;
        Some(Self {
            id: uuid::Uuid::new_v4().simple().to_string(),
            request_id: record.id,
            url: code.callback_url.clone()?,
            key: code.callback_key.clone()?,
            body: first.body.clone(),
            attempts: first.attempts,
            last_error: first.last_error.clone(),
            failed_at: now,
        })
    }
}
