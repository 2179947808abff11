//! The work a store hands out: delivery jobs and timed tasks, each held by one worker under a
//! lease.

use crate::domain::{RequestId, TenantId, Timestamp};

/// What the scheduler does for a request at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Task {
    /// Queue the delivery job again (a delivery that was put off).
    Deliver,
    /// The request's `ttl` ended: expire and refund what was not delivered, delete what was
    /// not read.
    Ttl,
    /// The code's validity ended: its verification status becomes `expired`.
    Validity,
    /// Send the request's oldest waiting delivery report.
    Report,
}

impl Task {
    pub fn as_str(self) -> &'static str {
        match self {
            Task::Deliver => "send",
            Task::Ttl => "ttl",
            Task::Validity => "valid",
            Task::Report => "report",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Task::Deliver, Task::Ttl, Task::Validity, Task::Report].into_iter().find(|t| t.as_str() == s)
    }
}

/// When a job was queued, from its id (`<ms>-<n>`, a Redis stream id).
pub(crate) fn queued_at(id: &str) -> Option<Timestamp> {
    let (ms, _) = id.split_once('-')?;
    ms.parse().ok().map(Timestamp::from_millis)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    pub task: Task,
    pub at: Timestamp,
}

/// A delivery job claimed by a worker: it holds the job until it acknowledges or defers it, or
/// until the lease runs out and another worker takes it over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub tenant: TenantId,
    pub request: RequestId,
    /// The queue's id of the job.
    pub id: String,
    /// Taken over from a worker whose lease ran out.
    pub reclaimed: bool,
}

/// A timed task that came due, leased to one worker until `lease`: if the worker dies, the
/// task comes due again then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueTask {
    pub tenant: TenantId,
    pub request: RequestId,
    pub task: Task,
    pub lease: Timestamp,
}
