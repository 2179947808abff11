//! The delivery queue and the timed tasks: claims under a lease, acknowledgements, deferrals, and
//! the backlog.

use super::*;
use crate::store::QueueStore;

impl QueueStore for RedisStore {
    async fn claim_jobs(&self, consumer: &str, max: usize, lease: Duration, _now: Timestamp) -> StoreResult<Vec<Job>> {
        let raw: Vec<String> = self.conn().smembers(WORK).await?;
        let mut tenants = Vec::with_capacity(raw.len());
        for id in raw {
            match TenantId::parse(&id) {
                Ok(t) => tenants.push(t),
                Err(_) => {
                    let _: () = self.conn().srem(WORK, &id).await?;
                }
            }
        }
        // A different order each time, so no tenant always goes first.
        use rand::seq::SliceRandom;
        tenants.shuffle(&mut rand::thread_rng());
        let mut jobs = Vec::new();
        // Pass after pass, each tenant with work takes at most its share of what is left, so
        // one backlog cannot fill the batch while another tenant waits; later passes fill the
        // batch from whoever still has jobs.
        let mut active = tenants;
        while jobs.len() < max && !active.is_empty() {
            let share = (max - jobs.len()).div_ceil(active.len()).max(1);
            let mut still = Vec::with_capacity(active.len());
            for tenant in active {
                let room = share.min(max - jobs.len());
                if room == 0 {
                    break;
                }
                let got = self.claim_from(&tenant, consumer, room, lease).await?;
                if got.is_empty() {
                    self.retire_idle_tenant(&tenant).await?;
                    continue;
                }
                let full = got.len() == room;
                jobs.extend(got);
                if full {
                    still.push(tenant);
                }
            }
            active = still;
        }
        Ok(jobs)
    }

    async fn ack_job(&self, job: &Job) -> StoreResult<()> {
        self.finish_job(job, None).await
    }

    async fn defer_job(&self, job: &Job, until: Timestamp) -> StoreResult<()> {
        self.finish_job(job, Some(until)).await?;
        self.announce_due(&job.tenant, until).await
    }

    async fn claim_due(&self, now: Timestamp, lease_until: Timestamp, max: usize) -> StoreResult<Vec<DueTask>> {
        let tenants: Vec<String> = redis::cmd("ZRANGEBYSCORE")
            .arg(DUE)
            .arg("-inf")
            .arg(now.millis())
            .arg("LIMIT")
            .arg(0)
            .arg(max.max(1))
            .query_async(&mut self.conn())
            .await?;
        let mut tasks = Vec::new();
        for raw in tenants {
            let Ok(tenant) = TenantId::parse(&raw) else {
                let _: () = self.conn().zrem(DUE, &raw).await?;
                continue;
            };
            let room = max.saturating_sub(tasks.len()).max(1);
            let (leased, next): (Vec<String>, Option<i64>) = self
                .scripts
                .claim_due
                .key(due_key(&tenant))
                .key(jobs_key(&tenant))
                .key(waiting_key(&tenant))
                .arg(now.millis())
                .arg(lease_until.millis())
                .arg(room)
                .invoke_async(&mut self.conn())
                .await?;
            let mut pipe = redis::pipe();
            // Deliveries that came back to the stream need a worker to notice them.
            pipe.sadd(WORK, tenant.as_str()).ignore();
            match next {
                Some(at) => pipe.cmd("ZADD").arg(DUE).arg(at).arg(tenant.as_str()).ignore(),
                None => pipe.zrem(DUE, tenant.as_str()).ignore(),
            };
            let () = pipe.query_async(&mut self.conn()).await?;
            for member in leased {
                let parsed = member
                    .split_once(':')
                    .and_then(|(task, id)| Some((Task::parse(task)?, RequestId::parse(id).ok()?)));
                if let Some((task, request)) = parsed {
                    tasks.push(DueTask { tenant: tenant.clone(), request, task, lease: lease_until });
                }
            }
            if tasks.len() >= max {
                break;
            }
        }
        Ok(tasks)
    }

    async fn reschedule_due(&self, task: &DueTask, at: Timestamp) -> StoreResult<()> {
        let member = format!("{}:{}", task.task.as_str(), task.request);
        let _: i64 = redis::cmd("ZADD")
            .arg(due_key(&task.tenant))
            .arg("XX")
            .arg(at.millis())
            .arg(member)
            .query_async(&mut self.conn())
            .await?;
        // The index of tenants with timed tasks must see the earlier time too (another slot
        // on a cluster: a command of its own).
        self.announce_due(&task.tenant, at).await
    }

    async fn finish_due(&self, task: &DueTask) -> StoreResult<()> {
        let _: i64 = self
            .scripts
            .finish_due
            .key(due_key(&task.tenant))
            .arg(format!("{}:{}", task.task.as_str(), task.request))
            .arg(task.lease.millis())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    async fn repair_indexes(&self) -> StoreResult<u64> {
        let tenants: Vec<String> = self.conn().smembers(TENANTS).await?;
        let mut repaired = 0;
        for raw in tenants {
            let Ok(tenant) = TenantId::parse(&raw) else { continue };
            let jobs: u64 = self.conn().xlen(jobs_key(&tenant)).await?;
            if jobs > 0 {
                let added: u64 = self.conn().sadd(WORK, tenant.as_str()).await?;
                repaired += added;
            }
            let first: Vec<(String, i64)> = self.conn().zrange_withscores(due_key(&tenant), 0, 0).await?;
            if let Some((_, at)) = first.first() {
                let current: Option<i64> = self.conn().zscore(DUE, tenant.as_str()).await?;
                if current.is_none_or(|c| c > *at) {
                    let _: () = self.conn().zadd(DUE, tenant.as_str(), *at).await?;
                    repaired += 1;
                }
            }
        }
        Ok(repaired)
    }

    /// Counts over every tenant, not the advisory work index, which may briefly miss a
    /// tenant with jobs (see `retire_idle_tenant`).
    async fn delivery_backlog(&self) -> StoreResult<Backlog> {
        // Three reads of known keys a tenant, in one round trip: the cost grows with the
        // tenants, never with their requests or jobs.
        let tenants: Vec<String> = self.conn().smembers(TENANTS).await?;
        let mut backlog = Backlog::default();
        for raw in tenants {
            if let Ok(tenant) = TenantId::parse(&raw) {
                let (n, first, waiting): (u64, redis::streams::StreamRangeReply, Option<i64>) = redis::pipe()
                    .xlen(jobs_key(&tenant))
                    .cmd("XRANGE")
                    .arg(jobs_key(&tenant))
                    .arg("-")
                    .arg("+")
                    .arg("COUNT")
                    .arg(1)
                    .get(waiting_key(&tenant))
                    .query_async(&mut self.conn())
                    .await?;
                backlog.queued += n;
                let queued_at = first.ids.first().and_then(|entry| crate::store::queued_at(&entry.id));
                backlog.oldest = backlog.oldest.into_iter().chain(queued_at).min();
                backlog.waiting += waiting.unwrap_or(0).max(0) as u64;
            }
        }
        Ok(backlog)
    }
}

impl RedisStore {
    /// Up to `room` jobs of one tenant: first those whose worker held them past the lease (it
    /// died or hung), then new ones.
    pub(super) async fn claim_from(
        &self,
        tenant: &TenantId,
        consumer: &str,
        room: usize,
        lease: Duration,
    ) -> StoreResult<Vec<Job>> {
        let mut jobs = Vec::new();
        let reclaimed: Result<StreamAutoClaimReply, _> = redis::cmd("XAUTOCLAIM")
            .arg(jobs_key(tenant))
            .arg(GROUP)
            .arg(consumer)
            .arg(lease.as_millis() as u64)
            .arg("0-0")
            .arg("COUNT")
            .arg(room)
            .query_async(&mut self.conn())
            .await;
        match reclaimed {
            Ok(reply) => jobs.extend(reply.claimed.iter().filter_map(|e| parse_job(tenant, e, true))),
            Err(e) if e.code() == Some("NOGROUP") => return Ok(jobs),
            Err(e) => return Err(e.into()),
        }
        let room = room.saturating_sub(jobs.len());
        if room == 0 {
            return Ok(jobs);
        }
        let fresh: Result<Option<StreamReadReply>, _> = redis::cmd("XREADGROUP")
            .arg("GROUP")
            .arg(GROUP)
            .arg(consumer)
            .arg("COUNT")
            .arg(room)
            .arg("STREAMS")
            .arg(jobs_key(tenant))
            .arg(">")
            .query_async(&mut self.conn())
            .await;
        match fresh {
            Ok(Some(reply)) => {
                jobs.extend(reply.keys.iter().flat_map(|k| k.ids.iter()).filter_map(|e| parse_job(tenant, e, false)))
            }
            Ok(None) => {}
            Err(e) if e.code() == Some("NOGROUP") => {}
            Err(e) => return Err(e.into()),
        }
        Ok(jobs)
    }

    /// Drops a tenant from the work index when its stream is empty. Only an empty stream is
    /// touched: a tenant whose jobs are all in other workers' hands stays, so a process that dies
    /// (or loses Redis) between the two writes below cannot hide jobs that a lease will free
    /// from every other worker until the repair sweep. A producer adds the job, then the tenant;
    /// we remove the tenant, then look at the stream again: whichever order the two interleave
    /// in, a tenant with a job ends up in the index.
    pub(super) async fn retire_idle_tenant(&self, tenant: &TenantId) -> StoreResult<()> {
        let queued: u64 = self.conn().xlen(jobs_key(tenant)).await?;
        if queued > 0 {
            return Ok(());
        }
        let _: () = self.conn().srem(WORK, tenant.as_str()).await?;
        let left: u64 = self.conn().xlen(jobs_key(tenant)).await?;
        if left > 0 {
            let _: () = self.conn().sadd(WORK, tenant.as_str()).await?;
        }
        Ok(())
    }

    pub(super) async fn finish_job(&self, job: &Job, retry_at: Option<Timestamp>) -> StoreResult<()> {
        let _left: u64 = self
            .scripts
            .ack_job
            .key(jobs_key(&job.tenant))
            .key(due_key(&job.tenant))
            .key(waiting_key(&job.tenant))
            .arg(&job.id)
            .arg(retry_at.map(|t| t.millis().to_string()).unwrap_or_default())
            .arg(job.request.to_string())
            .invoke_async(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Lowers the tenant's time in the index of tenants with timed tasks to `at`, adding it
    /// when absent (`ZADD LT` does both).
    pub(super) async fn announce_due(&self, tenant: &TenantId, at: Timestamp) -> StoreResult<()> {
        let () = redis::cmd("ZADD")
            .arg(DUE)
            .arg("LT")
            .arg(at.millis())
            .arg(tenant.as_str())
            .query_async(&mut self.conn())
            .await?;
        Ok(())
    }
}
