//! Rate limits and spending budgets, decided together for one call.

use super::*;
use crate::store::LimitStore;

impl LimitStore for MemoryStore {
    async fn limit(
        &self,
        tenant: &TenantId,
        checks: &[LimitCheck],
        now: Timestamp,
        consume: bool,
    ) -> StoreResult<Result<Vec<LimitState>, Refusal>> {
        Ok(self.inner.lock().decide_limits(tenant, checks, now, consume))
    }

    async fn give_back_limits(&self, tenant: &TenantId, checks: &[LimitCheck], now: Timestamp) -> StoreResult<()> {
        let mut inner = self.inner.lock();
        for check in checks {
            let key = (tenant.clone(), format!("{}:{}", check.kind.as_str(), check.key));
            if let Some(tat) = inner.limits.get(&key).copied() {
                let back = tat - check.rate.interval_ms();
                if back > now.millis() {
                    inner.limits.insert(key, back);
                } else {
                    inner.limits.remove(&key);
                }
            }
        }
        Ok(())
    }

    async fn admit(
        &self,
        tenant: &TenantId,
        limits: &[LimitCheck],
        budgets: &[SpendCheck],
        fee: i64,
        now: Timestamp,
    ) -> StoreResult<Result<Vec<i64>, Refusal>> {
        // Under one lock: nothing sees the limits counted and the budgets not.
        let mut inner = self.inner.lock();
        if let Err(refusal) = inner.decide_limits(tenant, limits, now, false) {
            return Ok(Err(refusal));
        }
        match inner.count_spend(tenant, budgets, fee, now) {
            Err(i) => Ok(Err(budgets[i].refusal(now))),
            Ok(spent) => {
                // Passes: the look above passed under the same lock.
                let _ = inner.decide_limits(tenant, limits, now, true);
                Ok(Ok(spent))
            }
        }
    }

    async fn spend(
        &self,
        tenant: &TenantId,
        checks: &[SpendCheck],
        amount: i64,
        now: Timestamp,
    ) -> StoreResult<Result<Vec<i64>, usize>> {
        Ok(self.inner.lock().count_spend(tenant, checks, amount, now))
    }
}

impl Inner {
    /// Rate limits (see `Store::limit`), under the caller's lock.
    pub(super) fn decide_limits(
        &mut self,
        tenant: &TenantId,
        checks: &[LimitCheck],
        now: Timestamp,
        consume: bool,
    ) -> Result<Vec<LimitState>, Refusal> {
        let key = |c: &LimitCheck| (tenant.clone(), format!("{}:{}", c.kind.as_str(), c.key));
        let mut worst: Option<Refusal> = None;
        let mut next = Vec::with_capacity(checks.len());
        for check in checks {
            match gcra(self.limits.get(&key(check)).copied(), now, check.rate) {
                Gcra::Allow { tat, .. } => next.push(tat),
                Gcra::Refuse { retry_after_ms } => {
                    let wait = Duration::from_millis(retry_after_ms.max(0) as u64);
                    if worst.is_none_or(|w| wait > w.retry_after) {
                        worst = Some(Refusal { kind: check.kind, rate: check.rate, retry_after: wait });
                    }
                }
            }
        }
        if let Some(refusal) = worst {
            return Err(refusal);
        }
        if consume {
            for (check, tat) in checks.iter().zip(&next) {
                self.limits.insert(key(check), *tat);
            }
        }
        Ok(checks.iter().zip(next).map(|(c, tat)| crate::store::limit_state(c, tat, now)).collect())
    }

    /// Spending budgets (see `Store::spend`), under the caller's lock.
    pub(super) fn count_spend(
        &mut self,
        tenant: &TenantId,
        checks: &[SpendCheck],
        amount: i64,
        now: Timestamp,
    ) -> Result<Vec<i64>, usize> {
        // Windows that ended are forgotten (Redis lets their keys expire).
        self.spent.retain(|(_, _, ends), _| *ends > now.millis());
        let key = |c: &SpendCheck| {
            (tenant.clone(), crate::store::spend_key(c, now), now.plus(c.until_next_window(now)).millis())
        };
        for (i, check) in checks.iter().enumerate() {
            let spent = self.spent.get(&key(check)).copied().unwrap_or(0);
            if amount > 0 && check.blocking && spent + amount > check.cap {
                return Err(i);
            }
        }
        Ok(checks
            .iter()
            .map(|c| {
                let spent = self.spent.entry(key(c)).or_insert(0);
                *spent += amount;
                *spent
            })
            .collect())
    }
}
