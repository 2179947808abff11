//! Delivery reports: sending each request's oldest waiting report (the `Report` task), with
//! retries on the configured schedule and the dead-letter list after the last, and the
//! operators' view and replay of dead letters.

use super::Services;
use crate::callbacks::dispatch::{retry_delay, Attempt};
use crate::domain::{DeadReport, RequestId, RequestRecord, TenantId, Timestamp};
use crate::store::{Change, Scheduled, StoreError, Task};

/// What a round of `send_report` left to do with its task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportRound {
    /// Settled (sent, retried later, or given up): the task may be finished.
    Done,
    /// Nothing was tried (the host was busy): the task comes back shortly, as rescheduled.
    Rescheduled,
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("no such tenant")]
    TenantNotFound,
    #[error("no such dead letter")]
    NotFound,
    #[error("the receiver did not acknowledge the report: {0}")]
    NotAcknowledged(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Services {
    /// Sends the request's oldest waiting report once, and records what came of it: gone
    /// when acknowledged (and the next one due at once), else tried again later or, after the
    /// last retry, moved to the dead letters. Reports of one request go one at a time, in order.
    pub async fn send_report(&self, tenant: &TenantId, request: RequestId) -> Result<ReportRound, StoreError> {
        let now = self.clock.now();
        let Some(record) = self.store.request(tenant, request, now).await? else { return Ok(ReportRound::Done) };
        let Some(first) = record.pending_reports().first().cloned() else { return Ok(ReportRound::Done) };
        let Some(code) = record.code.as_ref() else { return Ok(ReportRound::Done) };
        let (Some(url), Some(key)) = (code.callback_url.clone(), code.callback_key.clone()) else {
            return Ok(ReportRound::Done);
        };
        let started = std::time::Instant::now();
        let attempt = self.reports.post(&url, &key, &first.body, &*self.clock).await;
        if attempt == Attempt::Busy {
            // The host has as many reports in flight and waiting as it may: only the task's
            // time moves (the record is not rewritten, no attempt is counted).
            return Ok(ReportRound::Rescheduled);
        }
        self.metrics.report_attempt(attempt == Attempt::Acknowledged, started);
        let now = self.clock.now();
        let schedule = &self.settings.callbacks.retry_schedule;
        let settled = self
            .update_known_request(tenant, record, self.retention(), now, |r| {
                // Only the report that was sent is settled (another worker may have settled it).
                if r.pending_reports().first() != Some(&first) {
                    return (None, None);
                }
                let change = match &attempt {
                    Attempt::Acknowledged => (next_report(r.without_first_report(), now), Settled::Sent),
                    Attempt::Busy => return (None, None),
                    Attempt::Failed(why) => {
                        let failed = r.with_failed_report(why);
                        let attempts = failed.pending_reports().first().map_or(0, |f| f.attempts);
                        match retry_delay(schedule, attempts) {
                            Some(wait) => (retry_at(failed, now.plus(wait)), Settled::Retried),
                            None => {
                                let dead = DeadReport::first_of(&failed, now);
                                let next = next_report(failed.without_first_report(), now);
                                (Change { dead_letter: dead, ..next }, Settled::DeadLettered)
                            }
                        }
                    }
                };
                (Some(change.0), Some(change.1))
            })
            .await?;
        match settled.and_then(|(_, settled)| settled) {
            Some(Settled::Retried) => self.metrics.reports_retried.inc(),
            Some(Settled::DeadLettered) => self.metrics.reports_dead_lettered.inc(),
            Some(Settled::Sent) | None => {}
        }
        match attempt {
            Attempt::Acknowledged => {
                tracing::debug!(%tenant, "delivery report acknowledged");
                // The request's next report (if any) is due now: wake this process's workers.
                self.wake.notify_waiters();
            }
            Attempt::Failed(why) => tracing::info!(%tenant, why, "delivery report failed"),
            Attempt::Busy => {}
        }
        Ok(ReportRound::Done)
    }

    /// The tenant's dead letters, newest first.
    pub async fn dead_reports(&self, tenant: &TenantId) -> Result<Vec<DeadReport>, ReportError> {
        if self.store.tenant(tenant).await?.is_none() {
            return Err(ReportError::TenantNotFound);
        }
        Ok(self.store.dead_reports(tenant).await?)
    }

    /// Sends a dead letter again, once, now (signed with a fresh timestamp); it leaves the list
    /// when the receiver acknowledges it.
    pub async fn replay_dead_report(&self, tenant: &TenantId, id: &str) -> Result<(), ReportError> {
        let dead = self.dead_reports(tenant).await?.into_iter().find(|d| d.id == id);
        let dead = dead.ok_or(ReportError::NotFound)?;
        match self.reports.post(&dead.url, &dead.key, &dead.body, &*self.clock).await {
            Attempt::Acknowledged => {
                self.store.remove_dead_report(tenant, id).await?;
                Ok(())
            }
            Attempt::Failed(why) => Err(ReportError::NotAcknowledged(why)),
            Attempt::Busy => Err(ReportError::NotAcknowledged("the host has too many reports in flight".into())),
        }
    }
}

/// What became of a report after an attempt.
enum Settled {
    Sent,
    Retried,
    DeadLettered,
}

/// `record` with its next waiting report (if any) due now.
fn next_report(record: RequestRecord, now: Timestamp) -> Change {
    let more = !record.pending_reports().is_empty();
    let mut change = Change::from(record);
    if more {
        change.schedule.push(Scheduled { task: Task::Report, at: now });
    }
    change
}

fn retry_at(record: RequestRecord, at: Timestamp) -> Change {
    Change { schedule: vec![Scheduled { task: Task::Report, at }], ..Change::from(record) }
}
