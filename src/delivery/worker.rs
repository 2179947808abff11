//! Delivery workers: they drain the durable queue (messages to send) and run the timed tasks
//! (`ttl`, end of a code's validity). Any number of them, in any number of processes, share
//! one store; each job and task is held by one worker at a time under a lease.

use super::{templates, OutgoingMessage, SendError};
use crate::domain::{DeliveryStatus, LedgerEntry, LedgerKind, RequestRecord, Timestamp};
use crate::service::Services;
use crate::store::{Change, DueTask, Job, StoreError, Task};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What one round of a worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Worked,
    Idle,
}

#[derive(Clone)]
pub struct Worker {
    name: String,
    services: Arc<Services>,
    /// Turns true when the process stops: jobs claimed and not started go back to the queue.
    stop: Option<watch::Receiver<bool>>,
}

impl Worker {
    /// `name` identifies the worker in the queue (a consumer of the stream): unique per worker.
    pub fn new(services: Arc<Services>, name: String) -> Self {
        Self { name, services, stop: None }
    }

    fn stopping(&self) -> bool {
        self.stop.as_ref().is_some_and(|stop| *stop.borrow())
    }

    /// One round: run the timed tasks that are due, then deliver a batch of jobs. Tests drive
    /// workers with this, step by step.
    pub async fn run_once(&self) -> Result<Outcome, StoreError> {
        let s = &self.services;
        let config = &s.settings.delivery;
        let now = s.clock.now();
        let tasks = s.store.claim_due(now, now.plus(Duration::from_secs(config.task_lease)), config.batch).await?;
        for task in &tasks {
            if task.task == Task::Report {
                self.report(task.clone()).await;
                continue;
            }
            self.isolated(run_task(Arc::clone(s), task.clone())).await?;
            s.store.finish_due(task).await?;
        }
        let jobs = s.store.claim_jobs(&self.name, config.batch, Duration::from_secs(config.lease), now).await?;
        // Sandbox recipients that read on their own.
        let reads = s.sender.sandbox().map(|inbox| inbox.due_reads(now)).unwrap_or_default();
        for (tenant, request) in &reads {
            if let Err(e) = s.record_delivery(tenant, *request, DeliveryStatus::Read).await {
                tracing::warn!(error = &e as &dyn std::error::Error, "could not record a sandbox read");
            }
        }
        for job in &jobs {
            if self.stopping() {
                // The process is stopping: the jobs not started go back for another worker now,
                // rather than when their lease ends.
                s.store.defer_job(job, now).await?;
                continue;
            }
            if job.reclaimed {
                s.metrics.jobs_reclaimed.inc();
                tracing::warn!(tenant = %job.tenant, "took over a delivery job whose worker stopped");
            }
            self.isolated(deliver(Arc::clone(s), job.clone())).await?;
        }
        Ok(if tasks.is_empty() && jobs.is_empty() && reads.is_empty() { Outcome::Idle } else { Outcome::Worked })
    }

    /// Runs until `stop` turns true; finishes the job in hand first and puts the jobs it
    /// claimed but did not start back in the queue. (A worker that dies instead leaves its jobs
    /// to be taken over when their lease ends.)
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        self.stop = Some(stop.clone());
        let poll = Duration::from_millis(self.services.settings.delivery.poll_interval_ms);
        let wake = Arc::clone(&self.services.wake);
        let mut backoff = Duration::from_millis(100);
        while !*stop.borrow() {
            let pause = match self.run_once().await {
                Ok(Outcome::Worked) => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Ok(Outcome::Idle) => poll,
                Err(e) => {
                    tracing::warn!(worker = %self.name, error = &e as &dyn std::error::Error, "delivery round failed");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    backoff
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = wake.notified() => {}
                _ = stop.changed() => {}
            }
        }
        tracing::debug!(worker = %self.name, "delivery worker stopped");
    }

    /// Sends a delivery report in a task of its own, so a slow receiver holds up neither this
    /// worker nor other reports. With every report slot of the process taken, the task comes
    /// back shortly: reports never hold up message delivery.
    async fn report(&self, task: DueTask) {
        let Ok(slot) = Arc::clone(&self.services.report_slots).try_acquire_owned() else {
            let s = &self.services;
            if let Err(e) = s.store.reschedule_due(&task, s.clock.now().plus(BUSY_HOST_RETRY)).await {
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "could not put a report off; its lease will bring it back"
                );
            }
            return;
        };
        let s = Arc::clone(&self.services);
        tokio::spawn(async move {
            let _slot = slot;
            let done = match s.send_report(&task.tenant, task.request).await {
                Ok(crate::service::ReportRound::Done) => s.store.finish_due(&task).await,
                Ok(crate::service::ReportRound::Rescheduled) => {
                    s.store.reschedule_due(&task, s.clock.now().plus(BUSY_HOST_RETRY)).await
                }
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                tracing::warn!(
                    error = &e as &dyn std::error::Error,
                    "delivery report round failed; it will be retried"
                );
            }
        });
    }

    /// Runs one job or task in its own task: a panic there is logged and the job is left to be
    /// taken over, instead of killing the worker.
    async fn isolated(
        &self,
        work: impl std::future::Future<Output = Result<(), StoreError>> + Send + 'static,
    ) -> Result<(), StoreError> {
        match tokio::spawn(work).await {
            Ok(result) => result,
            Err(e) => {
                tracing::error!(worker = %self.name, error = %e, "a delivery job panicked; it will be taken over");
                Ok(())
            }
        }
    }
}

/// A report whose host (or the process's report slots) was busy comes back this soon.
const BUSY_HOST_RETRY: Duration = Duration::from_millis(250);

/// Sends the message of one job, records it, then acknowledges the job. Recording comes first,
/// so a job taken over later finds the message recorded and sends nothing.
async fn deliver(s: Arc<Services>, job: Job) -> Result<(), StoreError> {
    let now = s.clock.now();
    let retention = s.retention();
    let Some(record) = s.store.request(&job.tenant, job.request, now).await? else {
        return s.store.ack_job(&job).await;
    };
    // Sent already, revoked, expired, or nothing to send: the job is done.
    let Some(sealed) = record.code.as_ref().and_then(|c| c.sealed.clone()).filter(|_| record.delivery.is_none()) else {
        return s.store.ack_job(&job).await;
    };
    if record.ttl_passed(now) {
        // Too late to send (its ttl task may not have run yet): it expires and is refunded.
        s.update_known_request(&job.tenant, record, retention, now, |r| (expiry(r, now), ())).await?;
        return s.store.ack_job(&job).await;
    }
    let code = match s.sealer.open(&job.tenant, job.request, &sealed) {
        Ok(code) => code,
        Err(e) => {
            // Sealed under another pepper: it can never be sent. Expire and refund.
            tracing::error!(tenant = %job.tenant, error = &e as &dyn std::error::Error, "cannot open a sealed code");
            s.update_known_request(&job.tenant, record, retention, now, |r| (expiry(r, now), ())).await?;
            return s.store.ack_job(&job).await;
        }
    };
    let tenant = s.store.tenant(&job.tenant).await?;
    let service_name = match record.code.as_ref().and_then(|c| c.sender_username.clone()) {
        Some(username) => username.as_str().to_owned(),
        None => tenant.as_ref().map(|t| t.name.clone()).unwrap_or_default(),
    };
    let tenant_templates = tenant.map(|t| t.settings.templates).unwrap_or_default();
    let message = OutgoingMessage {
        tenant: job.tenant.clone(),
        request: job.request,
        phone: record.phone.clone(),
        text: templates::render(&s.settings.templates, &tenant_templates, &record.phone, &service_name, &code),
    };
    let created_at = record.created_at;
    let sent = s.sender.send(message, now).await;
    let outcome = match &sent {
        Ok(_) => "sent",
        Err(SendError::RecipientUnavailable) => "unreachable",
        Err(SendError::WaitForAccount { .. }) => "deferred",
        Err(SendError::Transient) => "retry",
    };
    s.metrics.deliveries.with_label_values(&[outcome]).inc();
    match sent {
        Ok(sent) => {
            // A send can take a while (a slow network, a slow recipient): stamp it when it ended.
            let sent_at = s.clock.now();
            let recorded = s
                .update_known_request(&job.tenant, record, retention, sent_at, |r| {
                    (r.mark_sent(&sent.account, sent.message_id, sent.delivered, sent_at).map(Change::from), ())
                })
                .await?;
            let mine = recorded
                .as_ref()
                .and_then(|(r, ())| r.code.as_ref())
                .is_some_and(|c| c.message_id == Some(sent.message_id));
            if let (false, Some((current, ()))) = (mine, &recorded) {
                // Revoked or expired while the message was on its way: take it back.
                s.sender.delete(&job.tenant, current, &sent.account, sent.message_id).await;
            }
            if mine {
                let waited = (sent_at.millis() - created_at.millis()).max(0);
                s.metrics.send_delay.observe(waited as f64 / 1000.0);
                tracing::info!(account = %sent.account, at_ms = sent_at.millis(), "message sent");
            }
            if let (true, Some(peer)) = (mine, sent.recipient) {
                // So the recipient's read receipt finds this request.
                s.store
                    .remember_sent(&sent.account, peer, sent.message_id, &job.tenant, job.request, retention.0)
                    .await?;
            }
            s.store.ack_job(&job).await?;
            if mine && !sent.delivered && s.sender.sandbox().is_some() {
                // The sandbox's recipient device confirms at once.
                if let Err(e) = s.record_delivery(&job.tenant, job.request, DeliveryStatus::Delivered).await {
                    tracing::warn!(error = &e as &dyn std::error::Error, "could not record a sandbox delivery");
                }
            }
            Ok(())
        }
        Err(SendError::RecipientUnavailable) => {
            s.update_known_request(&job.tenant, record, retention, now, |r| (expiry(r, now), ())).await?;
            s.store.ack_job(&job).await
        }
        Err(SendError::WaitForAccount { after }) => {
            let config = &s.settings.delivery;
            let wait = after.clamp(Duration::from_secs(config.retry_initial), Duration::from_secs(config.retry_max));
            s.store.defer_job(&job, now.plus(wait)).await
        }
        Err(SendError::Transient) => {
            // Count the failed attempt on the request, and back off exponentially with jitter.
            let counted = s
                .update_known_request(&job.tenant, record, retention, now, |r| {
                    (Some(Change::from(r.with_failed_attempt())), r.failed_attempts())
                })
                .await?;
            let failed = counted.map_or(0, |(_, n)| n);
            let config = &s.settings.delivery;
            let wait =
                backoff(failed, Duration::from_secs(config.retry_initial), Duration::from_secs(config.retry_max));
            s.store.defer_job(&job, now.plus(wait)).await
        }
    }
}

/// The wait after the `failed`-th failure in a row (0-based): `initial × 2^failed`, at most
/// `max`, drawn uniformly from its upper half so retries of many jobs spread out.
pub fn backoff(failed: u32, initial: Duration, max: Duration) -> Duration {
    use rand::Rng;
    let ceiling = initial.saturating_mul(2u32.saturating_pow(failed.min(20))).min(max);
    let floor = ceiling / 2;
    floor + ceiling.saturating_sub(floor).mul_f64(rand::thread_rng().gen::<f64>())
}

/// `expired` with the fee refunded, for a request whose message was not delivered.
fn expiry(r: &RequestRecord, now: Timestamp) -> Option<Change> {
    let (next, refund) = r.expire_undelivered(now)?;
    let ledger = refund.map(|amount| LedgerEntry::for_request(LedgerKind::Refund, now, amount, r.id));
    Some(Change { ledger, ..Change::from(next) })
}

async fn run_task(s: Arc<Services>, task: DueTask) -> Result<(), StoreError> {
    let now = s.clock.now();
    let retention = s.retention();
    match task.task {
        Task::Ttl => {
            let Some((record, ())) =
                s.update_request(&task.tenant, task.request, retention, now, |r| (expiry(r, now), ())).await?
            else {
                return Ok(());
            };
            // Not read by the end of its ttl: the message is deleted for both sides.
            let sent = record.code.as_ref().and_then(|c| Some((c.account.clone()?, c.message_id?)));
            if let (true, Some((account, message_id))) = (record.shows_unread_message(), sent) {
                s.sender.delete(&task.tenant, &record, &account, message_id).await;
            }
        }
        Task::Validity => {
            s.update_request(&task.tenant, task.request, retention, now, |r| {
                (r.settle_expiry(now).map(Change::from), ())
            })
            .await?;
        }
        // Deliveries that were put off go back to the queue inside `claim_due`; reports are
        // sent in tasks of their own (`Worker::report`).
        Task::Deliver | Task::Report => {}
    }
    Ok(())
}

/// Records the read receipts of Telegram accounts on their requests (`read`), until the
/// service stops.
pub async fn record_reads(
    s: Arc<Services>,
    mut receipts: tokio::sync::mpsc::Receiver<super::telegram::transport::ReadReceipt>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let receipt = tokio::select! {
            r = receipts.recv() => match r {
                Some(receipt) => receipt,
                None => return,
            },
            _ = stop.changed() => return,
        };
        let read = match s.store.take_read(&receipt.account, receipt.peer, receipt.max_id).await {
            Ok(read) => read,
            Err(e) => {
                tracing::warn!(error = &e as &dyn std::error::Error, "could not look a read receipt up");
                continue;
            }
        };
        for (tenant, request) in read {
            if let Err(e) = s.record_delivery(&tenant, request, DeliveryStatus::Read).await {
                tracing::warn!(error = &e as &dyn std::error::Error, "could not record a read");
            }
        }
    }
}

/// Rebuilds the advisory work indexes now and then, until the service stops.
pub async fn repair_indexes(s: Arc<Services>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(s.settings.delivery.repair_interval);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        match s.store.repair_indexes().await {
            Ok(0) => {}
            Ok(n) => {
                tracing::warn!(entries = n, "the index of tenants with work had lost entries; repaired");
                s.wake.notify_waiters();
            }
            Err(e) => tracing::warn!(error = &e as &dyn std::error::Error, "could not repair the work index"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_within_bounds_and_jitters() {
        let (initial, max) = (Duration::from_secs(1), Duration::from_secs(300));
        for failed in 0..30 {
            let ceiling = (initial * 2u32.saturating_pow(failed.min(20))).min(max);
            for _ in 0..20 {
                let wait = backoff(failed, initial, max);
                assert!(wait >= ceiling / 2 && wait <= ceiling, "{failed}: {wait:?} outside {ceiling:?}");
            }
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| backoff(5, initial, max)).collect();
        assert!(spread.len() > 1, "jittered");
    }
}
