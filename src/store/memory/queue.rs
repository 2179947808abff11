//! The delivery queue and the timed tasks: claims under a lease, acknowledgements, deferrals, and
//! the backlog.

use super::*;
use crate::store::QueueStore;

impl QueueStore for MemoryStore {
    async fn claim_jobs(&self, _consumer: &str, max: usize, lease: Duration, now: Timestamp) -> StoreResult<Vec<Job>> {
        let mut inner = self.inner.lock();
        let tenants: Vec<TenantId> = {
            // Start after the tenant served last, so every tenant gets its turn.
            let after = inner.last_served.clone();
            let (later, earlier): (Vec<_>, Vec<_>) =
                inner.queues.keys().cloned().partition(|t| after.as_ref().is_none_or(|a| t > a));
            later.into_iter().chain(earlier).collect()
        };
        let mut jobs = Vec::new();
        // Round by round, one job per tenant per round.
        loop {
            let before = jobs.len();
            for tenant in &tenants {
                if jobs.len() >= max {
                    break;
                }
                let Some(queue) = inner.queues.get_mut(tenant) else { continue };
                let stale =
                    queue.leased.iter().find(|(_, (_, since))| since.plus(lease) <= now).map(|(id, _)| id.clone());
                let job = if let Some(id) = stale {
                    queue.leased.get_mut(&id).map(|(request, since)| {
                        *since = now;
                        Job { tenant: tenant.clone(), request: *request, id: id.clone(), reclaimed: true }
                    })
                } else if let Some((id, request)) = queue.ready.pop_front() {
                    queue.leased.insert(id.clone(), (request, now));
                    Some(Job { tenant: tenant.clone(), request, id, reclaimed: false })
                } else {
                    None
                };
                if let Some(job) = job {
                    inner.last_served = Some(tenant.clone());
                    jobs.push(job);
                }
            }
            if jobs.len() == before || jobs.len() >= max {
                break;
            }
        }
        inner.queues.retain(|_, q| !q.ready.is_empty() || !q.leased.is_empty());
        Ok(jobs)
    }

    async fn ack_job(&self, job: &Job) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        if let Some(queue) = inner.queues.get_mut(&job.tenant) {
            queue.leased.remove(&job.id);
        }
        Ok(())
    }

    async fn defer_job(&self, job: &Job, until: Timestamp) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        if let Some(queue) = inner.queues.get_mut(&job.tenant) {
            queue.leased.remove(&job.id);
        }
        inner.schedule(&job.tenant, job.request, Scheduled { task: Task::Deliver, at: until });
        Ok(())
    }

    async fn claim_due(&self, now: Timestamp, lease_until: Timestamp, max: usize) -> StoreResult<Vec<DueTask>> {
        let mut inner = self.inner.lock();
        let mut claimed = Vec::new();
        let mut taken = 0;
        while taken < max {
            let Some(first) = inner.due.first().cloned() else { break };
            if first.0 > now {
                break;
            }
            taken += 1;
            let (_, tenant, request, task) = first;
            if task == Task::Deliver {
                inner.unschedule(&tenant, request, task);
                inner.enqueue(&tenant, request, now);
            } else {
                inner.schedule(&tenant, request, Scheduled { task, at: lease_until });
                claimed.push(DueTask { tenant, request, task, lease: lease_until });
            }
        }
        Ok(claimed)
    }

    async fn reschedule_due(&self, task: &DueTask, at: Timestamp) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        if inner.due_at.contains_key(&(task.tenant.clone(), task.request, task.task)) {
            inner.schedule(&task.tenant, task.request, Scheduled { task: task.task, at });
        }
        Ok(())
    }

    async fn finish_due(&self, task: &DueTask) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        let key = (task.tenant.clone(), task.request, task.task);
        if inner.due_at.get(&key) == Some(&task.lease) {
            inner.unschedule(&task.tenant, task.request, task.task);
        }
        Ok(())
    }

    /// The memory store has no separate indexes to repair.
    async fn repair_indexes(&self) -> StoreResult<u64> {
        Ok(0)
    }

    async fn delivery_backlog(&self) -> StoreResult<Backlog> {
        let inner = self.inner.lock();
        let ids = inner.queues.values().flat_map(|q| q.ready.iter().map(|(id, _)| id).chain(q.leased.keys()));
        Ok(Backlog {
            queued: inner.queues.values().map(|q| (q.ready.len() + q.leased.len()) as u64).sum(),
            waiting: inner.due_at.keys().filter(|(_, _, task)| *task == Task::Deliver).count() as u64,
            oldest: ids.filter_map(|id| crate::store::queued_at(id)).min(),
        })
    }
}
