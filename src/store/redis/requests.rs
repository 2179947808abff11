//! Requests: created with their fee, changed by domain rules with what moves with them, and the
//! dead letters of their reports.

use super::*;
use crate::store::RequestStore;

impl RequestStore for RedisStore {
    async fn create_request(
        &self,
        tenant: &TenantId,
        change: &Change,
        retention: Retention,
        now: Timestamp,
    ) -> StoreResult<CreateOutcome> {
        let record = &change.record;
        let mut invocation = self.scripts.create_request.prepare_invoke();
        invocation
            .key(tenant_key(tenant))
            .key(request_key(tenant, record.id))
            .key(ledger_key(tenant))
            .key(jobs_key(tenant))
            .key(due_key(tenant))
            .arg(record.cost.micros())
            .arg(stored_request(1, record.created_at.plus(retention.0), record))
            .arg(retention.keep(record, now).as_millis() as u64)
            .arg(change.ledger.as_ref().map(encode_ledger).unwrap_or_default())
            .arg(self.ledger_limit);
        // On one Redis the script also updates the advisory indexes: one round trip a send.
        let single = matches!(self.conn, Conn::Single(_));
        if single {
            invocation.key(TURNS).key(DUE).arg(tenant.as_str());
        } else {
            invocation.arg("");
        }
        schedule_args(&mut invocation, change);
        let (status, detail): (i64, redis::Value) = invocation.invoke_async(&mut self.conn()).await?;
        if status == 1 {
            let balance: i64 = redis::from_redis_value(detail).map_err(|e| StoreError::Failed(Box::new(e)))?;
            if !single {
                self.announce_work(tenant, change).await?;
            }
            return Ok(CreateOutcome::Created { balance: Credits::from_micros(balance) });
        }
        let reason: String = redis::from_redis_value(detail).map_err(|e| StoreError::Failed(Box::new(e)))?;
        match reason.as_str() {
            "balance" => Ok(CreateOutcome::BalanceNotEnough),
            "tenant" => Ok(CreateOutcome::TenantNotFound),
            // A 63-bit random id collided: astronomically unlikely, and never overwritten.
            _ => Err(StoreError::Contention),
        }
    }

    /// The request, unless it is gone or past its retention by the service clock (Redis
    /// expires the key by its own clock; the two agree unless the clocks differ).
    async fn request(&self, tenant: &TenantId, id: RequestId, now: Timestamp) -> StoreResult<Option<RequestRecord>> {
        let stored: Option<String> = self.conn().get(request_key(tenant, id)).await?;
        let Some(stored) = stored else {
            return Ok(None);
        };
        let (version, end, json) = split_stored_request(&stored)?;
        if end <= now.millis() {
            return Ok(None);
        }
        decode_request(json, version).map(Some)
    }

    async fn update_request<T, F>(
        &self,
        tenant: &TenantId,
        id: RequestId,
        mut known: Option<RequestRecord>,
        retention: Retention,
        now: Timestamp,
        mut decide: F,
    ) -> StoreResult<Option<(RequestRecord, T)>>
    where
        F: FnMut(&RequestRecord) -> (Option<Change>, T) + Send,
        T: Send,
    {
        for _ in 0..MAX_CAS_ATTEMPTS {
            let current = match known.take() {
                Some(record) => record,
                None => match self.request(tenant, id, now).await? {
                    Some(record) => record,
                    None => return Ok(None),
                },
            };
            let (change, output) = decide(&current);
            let Some(change) = change else {
                return Ok(Some((current, output)));
            };
            let (record, ledger) = (&change.record, &change.ledger);
            let keep = retention.keep(record, now);
            let version = current.version + 1;
            let mut invocation = self.scripts.update_request.prepare_invoke();
            invocation
                .key(request_key(tenant, id))
                .arg(current.version)
                .arg(stored_request(version, now.plus(keep), record))
                .arg(keep.as_millis() as u64)
                .arg(now.millis());
            let moves_more =
                ledger.is_some() || change.dead_letter.is_some() || change.enqueue || !change.schedule.is_empty();
            if moves_more {
                invocation
                    .key(tenant_key(tenant))
                    .key(ledger_key(tenant))
                    .key(jobs_key(tenant))
                    .key(due_key(tenant))
                    .key(dead_key(tenant))
                    .arg(ledger.as_ref().map_or(0, |e| e.amount.micros()))
                    .arg(ledger.as_ref().map(encode_ledger).unwrap_or_default())
                    .arg(self.ledger_limit)
                    .arg(change.dead_letter.as_ref().map(encode_dead_report).unwrap_or_default())
                    .arg(crate::store::DEAD_REPORTS_KEPT);
                schedule_args(&mut invocation, &change);
            }
            let stored: i64 = invocation.invoke_async(&mut self.conn()).await?;
            match stored {
                -1 => return Ok(None),
                0 => continue,
                _ => {
                    self.announce_work(tenant, &change).await?;
                    return Ok(Some((RequestRecord { version, ..change.record }, output)));
                }
            }
        }
        Err(StoreError::Contention)
    }

    async fn dead_reports(&self, tenant: &TenantId) -> StoreResult<Vec<DeadReport>> {
        let raw: Vec<String> = self.conn().lrange(dead_key(tenant), 0, -1).await?;
        raw.iter().map(|r| decode_dead_report(r)).collect()
    }

    async fn remove_dead_report(&self, tenant: &TenantId, id: &str) -> StoreResult<bool> {
        let raw: Vec<String> = self.conn().lrange(dead_key(tenant), 0, -1).await?;
        for entry in raw {
            if decode_dead_report(&entry)?.id == id {
                let removed: u64 = self.conn().lrem(dead_key(tenant), 1, entry).await?;
                return Ok(removed > 0);
            }
        }
        Ok(false)
    }
}

impl RedisStore {
    /// Tells workers where the new work is (after the atomic step: advisory only).
    pub(super) async fn announce_work(&self, tenant: &TenantId, change: &Change) -> StoreResult<()> {
        let mut pipe = redis::pipe();
        if change.enqueue {
            pipe.cmd("ZADD").arg(TURNS).arg("NX").arg(0).arg(tenant.as_str()).ignore();
        }
        if let Some(first) = change.schedule.iter().map(|s| s.at.millis()).min() {
            // LT lowers an existing score and adds a missing member (Redis 6.2+).
            pipe.cmd("ZADD").arg(DUE).arg("LT").arg(first).arg(tenant.as_str()).ignore();
        }
        if change.enqueue || !change.schedule.is_empty() {
            let () = pipe.query_async(&mut self.conn()).await?;
        }
        Ok(())
    }
}
