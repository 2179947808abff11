//! Rate limits and spending budgets, decided together for one call.

use super::*;
use crate::store::LimitStore;

impl LimitStore for RedisStore {
    async fn limit(
        &self,
        tenant: &TenantId,
        checks: &[LimitCheck],
        now: Timestamp,
        consume: bool,
    ) -> StoreResult<Result<Vec<LimitState>, Refusal>> {
        match self.run_admit(tenant, checks, &[], 0, now, consume).await? {
            Ok(tats) => {
                Ok(Ok(checks.iter().zip(tats).map(|(c, tat)| crate::store::limit_state(c, tat, now)).collect()))
            }
            Err(refusal) => Ok(Err(refusal)),
        }
    }

    async fn give_back_limits(&self, tenant: &TenantId, checks: &[LimitCheck], now: Timestamp) -> StoreResult<()> {
        let mut invocation = self.scripts.give_back.prepare_invoke();
        invocation.arg(now.millis());
        for check in checks {
            invocation.key(format!("{{t:{tenant}}}:rl:{}:{}", check.kind.as_str(), check.key));
            invocation.arg(check.rate.interval_ms());
        }
        let _: i64 = invocation.invoke_async(&mut self.conn()).await?;
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
        Ok(self.run_admit(tenant, limits, budgets, fee, now, true).await?.map(|out| out[limits.len()..].to_vec()))
    }

    async fn spend(
        &self,
        tenant: &TenantId,
        checks: &[SpendCheck],
        amount: i64,
        now: Timestamp,
    ) -> StoreResult<Result<Vec<i64>, usize>> {
        let mut invocation = self.scripts.spend.prepare_invoke();
        invocation.arg(amount);
        for check in checks {
            invocation.key(format!("{{t:{tenant}}}:spend:{}", crate::store::spend_key(check, now)));
            invocation.arg(check.cap).arg(if check.blocking { "1" } else { "0" });
        }
        for check in checks {
            // Kept a minute past the window's end, for clock differences between processes.
            invocation.arg(check.until_next_window(now).as_millis() as u64 + 60_000);
        }
        let answer: Vec<i64> = invocation.invoke_async(&mut self.conn()).await?;
        match answer.as_slice() {
            [0, spent @ ..] if spent.len() == checks.len() => Ok(Ok(spent.to_vec())),
            [i] if *i >= 1 && (*i as usize) <= checks.len() => Ok(Err(*i as usize - 1)),
            _ => Err(StoreError::Corrupt { what: "spend answer" }),
        }
    }
}

impl RedisStore {
    /// Runs `admit.lua`: the limits' TATs and the budgets' spending after the call (counted
    /// when `consume`), or the refusal.
    pub(super) async fn run_admit(
        &self,
        tenant: &TenantId,
        limits: &[LimitCheck],
        budgets: &[SpendCheck],
        fee: i64,
        now: Timestamp,
        consume: bool,
    ) -> StoreResult<Result<Vec<i64>, Refusal>> {
        let mut invocation = self.scripts.admit.prepare_invoke();
        invocation.arg(now.millis()).arg(limits.len()).arg(fee).arg(if consume { "1" } else { "0" });
        for check in limits {
            invocation.key(format!("{{t:{tenant}}}:rl:{}:{}", check.kind.as_str(), check.key));
            invocation.arg(check.rate.interval_ms()).arg(check.rate.tolerance_ms());
        }
        for check in budgets {
            invocation.key(format!("{{t:{tenant}}}:spend:{}", crate::store::spend_key(check, now)));
            invocation.arg(check.cap).arg(if check.blocking { "1" } else { "0" });
            invocation.arg(check.until_next_window(now).as_millis() as u64 + 60_000);
        }
        let answer: Vec<i64> = invocation.invoke_async(&mut self.conn()).await?;
        match answer.as_slice() {
            [0, rest @ ..] if rest.len() == limits.len() + budgets.len() => Ok(Ok(rest.to_vec())),
            [1, i, wait] if *i >= 1 && (*i as usize) <= limits.len() => {
                let check = &limits[*i as usize - 1];
                let retry_after = Duration::from_millis((*wait).max(0) as u64);
                Ok(Err(Refusal { kind: check.kind, rate: check.rate, retry_after }))
            }
            [2, j] if *j >= 1 && (*j as usize) <= budgets.len() => Ok(Err(budgets[*j as usize - 1].refusal(now))),
            _ => Err(StoreError::Corrupt { what: "admission answer" }),
        }
    }
}
