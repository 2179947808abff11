//! The pool of sender accounts: which account sends next, and what an account's failure does
//! to it. Account state lives in the store, so every process sees the same pool; each account
//! is driven by one process at a time through a renewable lease.

use crate::domain::{AccountFailure, AccountKind, Clock, Pacing, SenderAccount, Timestamp};
use crate::store::{Store, StoreResult};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone)]
pub struct Pool {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    /// This process's name in account leases.
    holder: String,
    /// The kind of account this pool drives (the configured sender).
    kind: AccountKind,
    pacing: Pacing,
    lease: Duration,
}

/// Why no account can send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAccount {
    /// One will be ready at this time.
    Until(Timestamp),
    /// None will be without an operator (all quarantined, disabled or paused, or no accounts).
    Never,
}

impl Pool {
    pub fn new(
        store: Arc<Store>,
        clock: Arc<dyn Clock>,
        holder: String,
        kind: AccountKind,
        pacing: Pacing,
        lease: Duration,
    ) -> Self {
        Self { store, clock, holder, kind, pacing, lease }
    }

    pub async fn account(&self, id: &str) -> StoreResult<Option<SenderAccount>> {
        Ok(self.store.accounts().await?.into_iter().find(|a| a.id == id))
    }

    /// Pacing applies to Telegram accounts; the sandbox's simulated accounts are not rate-limited.
    fn pacing_for(&self, account: &SenderAccount) -> Pacing {
        match account.kind {
            AccountKind::Telegram => self.pacing,
            AccountKind::Sandbox => Pacing { interval: Duration::ZERO, daily_cap: u32::MAX },
        }
    }

    /// An account that can send now, leased to this process; accounts in `skip` (tried already
    /// for this message) are passed over. The least recently used account goes first.
    pub async fn pick(&self, skip: &[String]) -> StoreResult<Result<SenderAccount, NoAccount>> {
        let mut accounts = self.store.accounts().await?;
        // After the read: accounts updated just before it are judged by a clock at least as late.
        let now = self.clock.now();
        accounts.retain(|a| a.kind == self.kind && !skip.contains(&a.id));
        accounts.sort_by_key(|a| a.last_sent_at);
        let mut soonest: Option<Timestamp> = None;
        for account in accounts {
            match account.ready_at(self.pacing_for(&account), now) {
                Some(at) if at <= now => {
                    if self.store.lease_account(&account.id, &self.holder, self.lease, now).await? {
                        return Ok(Ok(account));
                    }
                    // Driven by another process: it will be free when that lease ends at the latest.
                    soonest = Some(soonest.map_or(now.plus(self.lease), |s| s.min(now.plus(self.lease))));
                }
                Some(at) => soonest = Some(soonest.map_or(at, |s| s.min(at))),
                None => {}
            }
        }
        Ok(Err(soonest.map_or(NoAccount::Never, NoAccount::Until)))
    }

    /// The account sent a message.
    pub async fn sent(&self, id: &str) -> StoreResult<()> {
        let now = self.clock.now();
        self.store.update_account(id, |a| Some(a.after_send(now))).await?;
        Ok(())
    }

    /// Telegram answered with an account failure: park, quarantine or disable it.
    pub async fn failed(&self, id: &str, failure: &AccountFailure) -> StoreResult<()> {
        let now = self.clock.now();
        let account = self.store.update_account(id, |a| Some(a.after_failure(failure, now))).await?;
        if let Some(a) = account {
            tracing::warn!(account = %a.id, state = ?a.state, reason = a.reason.as_deref().unwrap_or(""), "sender account failed");
        }
        // A parked account is free for whichever process can use it when it is ready.
        self.store.release_account(id, &self.holder).await
    }
}
