//! What a change of one request carries with it, how a creation or an adjustment went, and how
//! long a request's state is kept.

use crate::domain::{Credits, DeadReport, LedgerEntry, RequestRecord, Timestamp};
use std::time::Duration;

use super::{Scheduled, Task};

/// How a request is created together with its fee.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateOutcome {
    /// Stored and charged; the balance after the charge.
    Created {
        balance: Credits,
    },
    BalanceNotEnough,
    TenantNotFound,
}

/// How an operator's balance adjustment went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdjustOutcome {
    Applied {
        balance: Credits,
    },
    /// The balance would go below zero; nothing changed.
    WouldGoNegative {
        balance: Credits,
    },
    /// The balance would pass `Credits::MAX`; nothing changed.
    WouldPassMax {
        balance: Credits,
    },
    TenantNotFound,
}

/// A change of one request decided by a domain rule, with what moves with it atomically: money
/// (a charge or a refund, with its ledger line), a delivery job, timed tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub record: RequestRecord,
    /// A balance movement of `amount` (negative: a charge) and its ledger line.
    pub ledger: Option<LedgerEntry>,
    /// Queue a delivery job for the request.
    pub enqueue: bool,
    /// Timed tasks for the request (a task scheduled again moves to the new time).
    pub schedule: Vec<Scheduled>,
    /// A report given up on, for the tenant's dead-letter list.
    pub dead_letter: Option<DeadReport>,
}

impl From<RequestRecord> for Change {
    fn from(record: RequestRecord) -> Self {
        Self { record, ledger: None, enqueue: false, schedule: Vec::new(), dead_letter: None }
    }
}

impl Change {
    /// The change with a report of it queued for the request's `callback_url` (when a status
    /// changed), and the dispatching task scheduled if no report was waiting before: the
    /// outbox is written in the same atomic step as the change it reports.
    fn reporting(mut self, before: &RequestRecord, now: Timestamp) -> Self {
        let (record, queued) = before.queue_report(self.record, now);
        self.record = record;
        if queued && before.pending_reports().is_empty() {
            self.schedule.push(Scheduled { task: Task::Report, at: now });
        }
        self
    }
}

/// Every change of a request goes through this: reports of status changes are queued with it.
pub(super) fn reporting<T, F>(mut decide: F, now: Timestamp) -> impl FnMut(&RequestRecord) -> (Option<Change>, T) + Send
where
    F: FnMut(&RequestRecord) -> (Option<Change>, T) + Send,
{
    move |before| {
        let (change, output) = decide(before);
        (change.map(|c| c.reporting(before, now)), output)
    }
}

/// How long per-request state is kept, counted from the request's creation.
#[derive(Debug, Clone, Copy)]
pub struct Retention(pub Duration);

impl Retention {
    /// What is left of the retention at `now` (never less than a second, so a write never
    /// makes a key that is already gone).
    pub fn remaining(self, created_at: Timestamp, now: Timestamp) -> Duration {
        let end = created_at.plus(self.0).millis();
        Duration::from_millis((end - now.millis()).max(1000) as u64)
    }

    /// How long to keep `record` from `now`: its retention, or longer while it has reports
    /// waiting (each retry re-extends it), so no report vanishes with its request.
    pub fn keep(self, record: &RequestRecord, now: Timestamp) -> Duration {
        let remaining = self.remaining(record.created_at, now);
        if record.pending_reports().is_empty() {
            remaining
        } else {
            remaining.max(KEEP_WITH_REPORTS)
        }
    }
}

/// Longer than the longest wait between two report attempts (`callbacks.retry_schedule`
/// allows at most 7 days, 8.4 with jitter).
const KEEP_WITH_REPORTS: Duration = Duration::from_secs(9 * 86_400);
