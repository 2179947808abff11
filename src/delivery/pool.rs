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
    /// Paced accounts this process is sending through right now: its other workers pass them
    /// over, so one account never sends two messages at once.
    busy: Arc<parking_lot::Mutex<std::collections::HashSet<String>>>,
}

/// An account this process sends one message through now. Dropping it frees the account for
/// the process's other workers (whatever became of the message), so no path can leave a
/// paced account marked busy.
pub struct Leased {
    pub account: SenderAccount,
    /// When it was taken: a send through it is paced from here.
    pub at: Timestamp,
    /// The process's busy set, for a paced account (marked in it while leased).
    busy: Option<Arc<parking_lot::Mutex<std::collections::HashSet<String>>>>,
}

impl Drop for Leased {
    fn drop(&mut self) {
        if let Some(busy) = &self.busy {
            busy.lock().remove(&self.account.id);
        }
    }
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
        Self { store, clock, holder, kind, pacing, lease, busy: Arc::default() }
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
    pub async fn pick(&self, skip: &[String]) -> StoreResult<Result<Leased, NoAccount>> {
        self.pick_among(|a| !skip.contains(&a.id)).await
    }

    /// The account `id`, leased to this process if it can send now; or when it will be able
    /// to (`Never`: it cannot without an operator, or is gone).
    pub async fn take(&self, id: &str) -> StoreResult<Result<Leased, NoAccount>> {
        self.pick_among(|a| a.id == id).await
    }

    async fn pick_among(&self, eligible: impl Fn(&SenderAccount) -> bool) -> StoreResult<Result<Leased, NoAccount>> {
        let mut accounts = self.store.accounts().await?;
        // After the read: accounts updated just before it are judged by a clock at least as late.
        let now = self.clock.now();
        accounts.retain(|a| a.kind == self.kind && eligible(a));
        accounts.sort_by_key(|a| a.last_sent_at);
        let mut soonest: Option<Timestamp> = None;
        for account in accounts {
            let paced = !self.pacing_for(&account).interval.is_zero();
            if paced && self.busy.lock().contains(&account.id) {
                // Another worker of this process is sending through it: once that send is
                // counted, the account is paced from its start, so not before an interval.
                let at = now.plus(self.pacing_for(&account).interval);
                soonest = Some(soonest.map_or(at, |s| s.min(at)));
                continue;
            }
            match account.ready_at(self.pacing_for(&account), now) {
                Some(at) if at <= now => {
                    if paced && !self.busy.lock().insert(account.id.clone()) {
                        continue;
                    }
                    // From here a paced account is marked busy: the guard unmarks it.
                    let mut leased = Leased { account, at: now, busy: paced.then(|| Arc::clone(&self.busy)) };
                    if self.store.lease_account(&leased.account.id, &self.holder, self.lease, now).await? {
                        if !paced {
                            return Ok(Ok(leased));
                        }
                        // The list was read before the mark: a send of another worker of this
                        // process may have ended in between. Judge it as it is now.
                        let Some(fresh) = self.store.update_account(&leased.account.id, |_| None).await? else {
                            continue;
                        };
                        match fresh.ready_at(self.pacing_for(&fresh), now) {
                            Some(at) if at <= now => {
                                leased.account = fresh;
                                return Ok(Ok(leased));
                            }
                            Some(at) => soonest = Some(soonest.map_or(at, |s| s.min(at))),
                            None => {}
                        }
                        continue;
                    }
                    drop(leased);
                    // Driven by another process: it will be free when that lease ends at the latest.
                    soonest = Some(soonest.map_or(now.plus(self.lease), |s| s.min(now.plus(self.lease))));
                }
                Some(at) => soonest = Some(soonest.map_or(at, |s| s.min(at))),
                None => {}
            }
        }
        Ok(Err(soonest.map_or(NoAccount::Never, NoAccount::Until)))
    }

    /// Gives up this process's leases on accounts (it is stopping): other processes can drive
    /// them at once instead of when the leases end.
    pub async fn release_all(&self) -> StoreResult<()> {
        for account in self.store.accounts().await? {
            self.store.release_account(&account.id, &self.holder).await?;
        }
        Ok(())
    }

    /// The account sent a message, taken for it at `at` (`Leased::at`): pacing counts from
    /// there, however long the send took.
    pub async fn sent(&self, id: &str, at: Timestamp) -> StoreResult<()> {
        self.store.update_account(id, |a| Some(a.after_send(at))).await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ManualClock, SenderAccount};
    use crate::store::MemoryStore;

    fn pool(store: &Arc<Store>, clock: Arc<ManualClock>) -> Pool {
        let pacing = Pacing { interval: Duration::from_secs(2), daily_cap: 100 };
        Pool::new(Arc::clone(store), clock, "p1".into(), AccountKind::Telegram, pacing, Duration::from_secs(30))
    }

    #[tokio::test]
    async fn a_paced_account_sends_one_message_at_a_time_in_a_process() {
        let store = Arc::new(Store::from(MemoryStore::new(10)));
        store.add_account(&SenderAccount::new("tg".into(), AccountKind::Telegram)).await.unwrap();
        store.add_account(&SenderAccount::new("sb".into(), AccountKind::Sandbox)).await.unwrap();
        let clock = Arc::new(ManualClock::starting_now());
        let pool = pool(&store, Arc::clone(&clock) as Arc<ManualClock>);
        let first = pool.pick(&[]).await.unwrap().unwrap();
        assert_eq!(first.account.id, "tg", "only accounts of the pool's kind");
        assert!(pool.pick(&[]).await.unwrap().is_err(), "busy in this process: another worker must not use it");
        pool.sent("tg", clock.now()).await.unwrap();
        drop(first);
        assert!(pool.pick(&[]).await.unwrap().is_err(), "paced: two seconds between sends");
        clock.advance(Duration::from_secs(2));
        let again = pool.pick(&[]).await.unwrap().unwrap();
        assert_eq!(again.account.id, "tg");
        drop(again);
        // Picked and never used (a look-up, a job that needed no message): free again at once.
        assert_eq!(pool.pick(&[]).await.unwrap().unwrap().account.id, "tg");
    }
}
