//! The delivery queue and the timed tasks: claims under a lease, acknowledgements, deferrals, and
//! the backlog.

use super::*;
use crate::store::QueueStore;

impl QueueStore for RedisStore {
    async fn claim_next(&self, consumer: &str, lease: Duration, _now: Timestamp) -> StoreResult<Option<Job>> {
        let default_cost = turns::cost(turns::DEFAULT_WEIGHT);
        // Tenants whose turn found nothing to claim this time (every job in a worker's hands):
        // passed over, their turn undone by the next `take_turn`.
        let mut passed: Vec<String> = Vec::new();
        let mut undo = Turn::default();
        // Bounded: a tenant is passed over once, and this many at most.
        while passed.len() < MAX_PASSED_OVER {
            let turn: Option<(String, String, String, String)> = self
                .scripts
                .take_turn
                .key(TURNS)
                .key(TURN_CLOCK)
                .key(TURN_COSTS)
                .arg(default_cost)
                .arg(&undo.tenant)
                .arg(&undo.cost)
                .arg(&undo.start)
                .arg(&undo.clock_before)
                .arg(&passed)
                .invoke_async(&mut self.conn())
                .await?;
            let Some((tenant, start, cost, clock_before)) = turn else { return Ok(None) };
            let turn = Turn { tenant, start, cost, clock_before };
            let Ok(tenant) = TenantId::parse(&turn.tenant) else {
                let _: () = self.conn().zrem(TURNS, &turn.tenant).await?;
                undo = Turn::default();
                continue;
            };
            let claimed: Option<(String, String, u8)> = self
                .scripts
                .claim_job
                .key(jobs_key(&tenant))
                .arg(consumer)
                .arg(lease.as_millis() as u64)
                .invoke_async(&mut self.conn())
                .await?;
            match claimed {
                Some((id, request, reclaimed)) => match RequestId::parse(&request) {
                    Ok(request) => return Ok(Some(Job { tenant, request, id, reclaimed: reclaimed == 1 })),
                    // Not a job this version wrote: it leaves the queue rather than block it.
                    Err(_) => {
                        self.finish_job(&tenant, &id, None).await?;
                        undo = Turn::default();
                    }
                },
                None => {
                    self.retire_idle_tenant(&tenant).await?;
                    passed.push(turn.tenant.clone());
                    undo = turn;
                }
            }
        }
        if !undo.tenant.is_empty() {
            // (The clock stays: rare, and a turn's start at most.)
            let () = redis::cmd("ZADD")
                .arg(TURNS)
                .arg("XX")
                .arg("INCR")
                .arg(format!("-{}", undo.cost))
                .arg(&undo.tenant)
                .query_async(&mut self.conn())
                .await?;
        }
        Ok(None)
    }

    /// From the index of tenants with jobs (advisory, like every claim's view of the queue).
    async fn has_jobs(&self) -> StoreResult<bool> {
        let tenants: u64 = self.conn().zcard(TURNS).await?;
        Ok(tenants > 0)
    }

    async fn ack_job(&self, job: &Job) -> StoreResult<()> {
        self.finish_job(&job.tenant, &job.id, None).await
    }

    async fn defer_job(&self, job: &Job, until: Timestamp) -> StoreResult<()> {
        self.finish_job(&job.tenant, &job.id, Some((until, job.request))).await?;
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
            let (leased, next, requeued): (Vec<String>, Option<i64>, u64) = self
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
            if requeued > 0 {
                // Deliveries that came back to the stream need a worker to notice them.
                pipe.cmd("ZADD").arg(TURNS).arg("NX").arg(0).arg(tenant.as_str()).ignore();
            }
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
        // The set of tenants with work before turns were kept (a sorted set now, `TURNS`).
        let _: () = self.conn().del(OLD_WORK).await?;
        let tenants: Vec<String> = self.conn().smembers(TENANTS).await?;
        let mut repaired = 0;
        for raw in tenants {
            let Ok(tenant) = TenantId::parse(&raw) else { continue };
            let jobs: u64 = self.conn().xlen(jobs_key(&tenant)).await?;
            if jobs > 0 {
                repaired += self.join_turns(&tenant).await?;
            }
            // The turn cost follows the tenant's settings (written beside them, so it may lag
            // after a failure between the two writes).
            let settings: Option<String> = self.conn().hget(tenant_key(&tenant), "settings").await?;
            if let Some(settings) = settings.and_then(|s| serde_json::from_str::<TenantSettings>(&s).ok()) {
                self.mirror_turn_cost(&tenant, &settings).await?;
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
                backlog.add(TenantBacklog {
                    tenant,
                    queued: n,
                    waiting: waiting.unwrap_or(0).max(0) as u64,
                    oldest: first.ids.first().and_then(|entry| crate::store::queued_at(&entry.id)),
                });
            }
        }
        Ok(backlog)
    }
}

/// A turn `take_turn.lua` gave: the tenant, and what undoes it (all as the script wrote them).
#[derive(Default)]
struct Turn {
    tenant: String,
    start: String,
    cost: String,
    clock_before: String,
}

impl RedisStore {
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
        let _: () = self.conn().zrem(TURNS, tenant.as_str()).await?;
        let left: u64 = self.conn().xlen(jobs_key(tenant)).await?;
        if left > 0 {
            self.join_turns(tenant).await?;
        }
        Ok(())
    }

    /// Puts a tenant with jobs in the turns, unless it is there: at 0, so it starts at the
    /// clock (`take_turn.lua`). Answers 1 when it was added.
    async fn join_turns(&self, tenant: &TenantId) -> StoreResult<u64> {
        Ok(redis::cmd("ZADD").arg(TURNS).arg("NX").arg(0).arg(tenant.as_str()).query_async(&mut self.conn()).await?)
    }

    /// Acknowledges and deletes a job; with `retry`, its request's delivery comes back then.
    /// A tenant whose queue it empties leaves the turns: when it has work again it starts at
    /// the clock, not at a tag it earned earlier.
    async fn finish_job(&self, tenant: &TenantId, id: &str, retry: Option<(Timestamp, RequestId)>) -> StoreResult<()> {
        let left: u64 = self
            .scripts
            .ack_job
            .key(jobs_key(tenant))
            .key(due_key(tenant))
            .key(waiting_key(tenant))
            .arg(id)
            .arg(retry.map(|(at, _)| at.millis().to_string()).unwrap_or_default())
            .arg(retry.map(|(_, request)| request.to_string()).unwrap_or_default())
            .invoke_async(&mut self.conn())
            .await?;
        if left == 0 {
            self.retire_idle_tenant(tenant).await?;
        }
        Ok(())
    }

    /// Writes the cost of the tenant's turns where `take_turn.lua` reads it (beside the
    /// tenant's settings: the turn index's slot, not the tenant's).
    pub(super) async fn mirror_turn_cost(&self, tenant: &TenantId, settings: &TenantSettings) -> StoreResult<()> {
        let () = match settings.delivery_weight {
            Some(_) => self.conn().hset(TURN_COSTS, tenant.as_str(), settings.turn_cost()).await?,
            None => self.conn().hdel(TURN_COSTS, tenant.as_str()).await?,
        };
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
