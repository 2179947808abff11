//! The delivery queue and the timed tasks: claims under a lease, acknowledgements, deferrals, and
//! the backlog.

use super::*;
use crate::store::QueueStore;

impl QueueStore for MemoryStore {
    async fn claim_next(&self, _consumer: &str, lease: Duration, now: Timestamp) -> StoreResult<Option<Job>> {
        let mut guard = self.inner.lock();
        let inner = &mut *guard;
        let queues = &inner.queues;
        // The tenant with the lowest turn tag among those with a job to claim (ties by id).
        let clock = inner.turn_clock;
        let next = queues
            .iter()
            .filter(|(_, q)| q.claimable(lease, now))
            .map(|(tenant, _)| (turns::start(inner.turns.get(tenant).copied(), clock), tenant))
            .min();
        let Some((start, tenant)) = next.map(|(start, tenant)| (start, tenant.clone())) else {
            return Ok(None);
        };
        let cost =
            inner.tenants.get(&tenant).map_or(turns::cost(turns::DEFAULT_WEIGHT), |t| t.tenant.settings.turn_cost());
        inner.turns.insert(tenant.clone(), start + cost);
        inner.turn_clock = clock.max(start);
        let Some(queue) = inner.queues.get_mut(&tenant) else { return Ok(None) };
        let job = if let Some(id) = queue.stale(lease, now) {
            queue.leased.get_mut(&id).map(|(request, since)| {
                *since = now;
                Job { tenant: tenant.clone(), request: *request, id: id.clone(), reclaimed: true }
            })
        } else {
            queue.ready.pop_front().map(|(id, request)| {
                queue.leased.insert(id.clone(), (request, now));
                Job { tenant: tenant.clone(), request, id, reclaimed: false }
            })
        };
        Ok(job)
    }

    async fn has_jobs(&self) -> StoreResult<bool> {
        Ok(!self.inner.lock().queues.is_empty())
    }

    async fn ack_job(&self, job: &Job) -> StoreResult<()> {
        self.inner.lock().finish_job(job);
        Ok(())
    }

    async fn defer_job(&self, job: &Job, until: Timestamp) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        inner.finish_job(job);
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
        let mut waiting: HashMap<&TenantId, u64> = HashMap::new();
        for (tenant, _, _) in inner.due_at.keys().filter(|(_, _, task)| *task == Task::Deliver) {
            *waiting.entry(tenant).or_default() += 1;
        }
        let mut backlog = Backlog::default();
        for tenant in inner.tenants.keys() {
            let queue = inner.queues.get(tenant);
            let ids = queue.into_iter().flat_map(|q| q.ready.iter().map(|(id, _)| id).chain(q.leased.keys()));
            backlog.add(TenantBacklog {
                tenant: tenant.clone(),
                queued: queue.map_or(0, |q| (q.ready.len() + q.leased.len()) as u64),
                waiting: waiting.get(tenant).copied().unwrap_or(0),
                oldest: ids.filter_map(|id| crate::store::queued_at(id)).min(),
            });
        }
        Ok(backlog)
    }
}
