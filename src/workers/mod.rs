//! The background work of a process, above the service layer: delivery workers drain the
//! durable queue (messages to send, `deliver`) and run the timed tasks (`ttl`, end of a
//! code's validity, delivery reports: `tasks`); beside them, the loops that record read
//! receipts and repair the work indexes (`upkeep`). Any number of workers, in any number of
//! processes, share one store; each job and task is held by one worker at a time under a lease.

mod deliver;
mod tasks;
mod upkeep;

pub use deliver::backoff;
pub use upkeep::{record_reads, repair_indexes};

use crate::delivery::{Leased, NoAccount};
use crate::domain::{DeliveryStatus, Timestamp};
use crate::service::{ReportRound, Services};
use crate::store::{DueTask, StoreError, Task};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// What one round of a worker did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// It did something: the next round may find more at once.
    Worked,
    /// Nothing to do.
    Idle,
    /// Nothing done, and every sender account is busy or paced until this time. Whether jobs
    /// wait is not known: a job is claimed only with an account in hand, so jobs wait in their
    /// queue, untouched, rather than being claimed and put off.
    AccountsBusy(Timestamp),
}

#[derive(Clone)]
pub struct Worker {
    name: String,
    services: Arc<Services>,
    /// Turns true when the process stops: no new job is claimed.
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

    /// One round: run the timed tasks that are due, then deliver up to a batch of messages,
    /// each through an account taken first: with an account in hand, the next job comes from
    /// the tenant whose turn it is (`Store::claim_next`). Tests drive workers with this, step
    /// by step.
    pub async fn run_once(&self) -> Result<Outcome, StoreError> {
        let s = &self.services;
        let config = &s.settings.delivery;
        let now = s.clock.now();
        let tasks = s.store.claim_due(now, now.plus(config.task_lease), config.batch).await?;
        for task in &tasks {
            if task.task == Task::Report {
                self.report(task.clone()).await;
                continue;
            }
            self.isolated(tasks::run(Arc::clone(s), task.clone())).await?;
            s.store.finish_due(task).await?;
        }
        // Sandbox recipients that read on their own.
        let reads = s.sender.sandbox().map(|inbox| inbox.due_reads(now)).unwrap_or_default();
        for (tenant, request) in &reads {
            if let Err(e) = s.record_delivery(tenant, *request, DeliveryStatus::Read).await {
                tracing::warn!(error = &e as &dyn std::error::Error, "could not record a sandbox read");
            }
        }
        let mut outcome = if tasks.is_empty() && reads.is_empty() { Outcome::Idle } else { Outcome::Worked };
        // Idle, no account is taken: a look at the queue is one cheap read.
        if !s.store.has_jobs().await? {
            return Ok(outcome);
        }
        let mut handled = 0;
        while handled < config.batch && !self.stopping() {
            let account = match s.sender.ready_account().await? {
                Ok(account) => account,
                Err(NoAccount::Until(at)) => {
                    if outcome == Outcome::Idle {
                        outcome = Outcome::AccountsBusy(at);
                    }
                    break;
                }
                Err(NoAccount::Never) => break,
            };
            if !self.deliver_next(account, &mut handled).await? {
                break;
            }
            outcome = Outcome::Worked;
        }
        Ok(outcome)
    }

    /// Claims jobs in turn and delivers them through `account` until one is sent through it
    /// (a job with nothing left to send leaves the account for the next). Answers whether
    /// there was any job.
    async fn deliver_next(&self, mut account: Leased, handled: &mut usize) -> Result<bool, StoreError> {
        let s = &self.services;
        let config = &s.settings.delivery;
        let mut any = false;
        while *handled < config.batch {
            let Some(job) = s.store.claim_next(&self.name, config.lease, s.clock.now()).await? else {
                break;
            };
            any = true;
            *handled += 1;
            if job.reclaimed {
                s.metrics.jobs_reclaimed.inc();
                tracing::warn!(tenant = %job.tenant, "took over a delivery job whose worker stopped");
            }
            match self.isolated(deliver::deliver(Arc::clone(s), job, account)).await? {
                Some(unused) => account = unused,
                None => break,
            }
        }
        Ok(any)
    }

    /// Runs until `stop` turns true; finishes the job in hand first and claims no other. (A
    /// worker that dies instead leaves its job to be taken over when its lease ends.)
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        self.stop = Some(stop.clone());
        let poll = self.services.settings.delivery.poll_interval_ms;
        let wake = Arc::clone(&self.services.wake);
        let mut backoff = Duration::from_millis(100);
        while !*stop.borrow() {
            let pause = match self.run_once().await {
                Ok(Outcome::Worked) => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Ok(Outcome::Idle) => poll,
                Ok(Outcome::AccountsBusy(at)) => {
                    // Until the soonest account is ready: the jobs wait in their queue meanwhile.
                    let wait = (at.millis() - self.services.clock.now().millis()).max(0) as u64;
                    Duration::from_millis(wait).clamp(MIN_ACCOUNT_WAIT, poll)
                }
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
                Ok(ReportRound::Done) => s.store.finish_due(&task).await,
                Ok(ReportRound::Rescheduled) => {
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
    /// taken over, instead of killing the worker (what it held, an account, is let go).
    async fn isolated<T: Default + Send + 'static>(
        &self,
        work: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        match tokio::spawn(work).await {
            Ok(result) => result,
            Err(e) => {
                tracing::error!(worker = %self.name, error = %e, "a delivery job panicked; it will be taken over");
                Ok(T::default())
            }
        }
    }
}

/// The shortest wait for an account: one busy with another worker of this process is free
/// again within a send.
const MIN_ACCOUNT_WAIT: Duration = Duration::from_millis(5);

/// A report whose host (or the process's report slots) was busy comes back this soon.
const BUSY_HOST_RETRY: Duration = Duration::from_millis(250);
