//! Operator use cases for the pool of sender accounts.

use super::Services;
use crate::domain::{turns, TenantId, Timestamp};
use crate::domain::{AccountKind, AccountState, PhoneNumber, SenderAccount, TelegramIdentity};
use crate::store::StoreError;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum SenderError {
    #[error("no such sender account")]
    NotFound,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("a sender account with this id exists")]
    Exists,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The delivery backlog as operators read it (`GET /admin/v1/delivery/backlog`).
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryBacklog {
    pub queued: u64,
    pub waiting: u64,
    /// How long the oldest queued job has waited (zero with none).
    pub oldest_age: Duration,
    /// Each tenant with jobs.
    pub tenants: Vec<TenantWork>,
}

/// One tenant's jobs not yet done.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantWork {
    pub tenant: TenantId,
    pub name: String,
    pub delivery_weight: u16,
    pub queued: u64,
    pub waiting: u64,
    pub oldest_age: Duration,
}

impl Services {
    pub async fn sender_accounts(&self) -> Result<Vec<SenderAccount>, SenderError> {
        Ok(self.store.accounts().await?)
    }

    /// The delivery jobs not yet done, in all and for each tenant with any: queued (waiting
    /// for an account, or in a worker's hands), and put off (a retry after a failure).
    pub async fn delivery_backlog(&self) -> Result<DeliveryBacklog, SenderError> {
        let backlog = self.store.delivery_backlog().await?;
        let now = self.clock.now();
        let age = |oldest: Option<Timestamp>| {
            Duration::from_millis(oldest.map_or(0, |at| (now.millis() - at.millis()).max(0)) as u64)
        };
        let mut tenants = Vec::with_capacity(backlog.tenants.len());
        for work in &backlog.tenants {
            // A tenant removed meanwhile still shows its jobs, nameless.
            let tenant = self.store.tenant(&work.tenant).await?;
            tenants.push(TenantWork {
                tenant: work.tenant.clone(),
                name: tenant.as_ref().map(|t| t.name.clone()).unwrap_or_default(),
                delivery_weight: tenant.and_then(|t| t.settings.delivery_weight).unwrap_or(turns::DEFAULT_WEIGHT),
                queued: work.queued,
                waiting: work.waiting,
                oldest_age: age(work.oldest),
            });
        }
        Ok(DeliveryBacklog {
            queued: backlog.queued,
            waiting: backlog.waiting,
            oldest_age: age(backlog.oldest),
            tenants,
        })
    }

    /// Adds a simulated account to the sandbox pool.
    pub async fn add_sandbox_account(&self, id: &str) -> Result<SenderAccount, SenderError> {
        if !SenderAccount::valid_id(id) {
            return Err(SenderError::Invalid("an account id is 1-64 of A-Z a-z 0-9 _ -"));
        }
        let account = SenderAccount::new(id.to_owned(), AccountKind::Sandbox);
        if !self.store.add_account(&account).await? {
            return Err(SenderError::Exists);
        }
        Ok(account)
    }

    /// Registers a Telegram account. It stays out of the pool (`disabled`, `NOT_SIGNED_IN`)
    /// until `verigram sender login` signs it in.
    pub async fn add_telegram_account(
        &self,
        id: &str,
        api_id: i32,
        phone: &PhoneNumber,
    ) -> Result<SenderAccount, SenderError> {
        if !SenderAccount::valid_id(id) {
            return Err(SenderError::Invalid("an account id is 1-64 of A-Z a-z 0-9 _ -"));
        }
        if api_id <= 0 {
            return Err(SenderError::Invalid("api_id is the positive number from my.telegram.org"));
        }
        let account = SenderAccount {
            telegram: Some(TelegramIdentity { api_id, phone: phone.digits().to_owned() }),
            state: AccountState::Disabled,
            reason: Some("NOT_SIGNED_IN".into()),
            ..SenderAccount::new(id.to_owned(), AccountKind::Telegram)
        };
        if !self.store.add_account(&account).await? {
            return Err(SenderError::Exists);
        }
        Ok(account)
    }

    /// Adds a Telegram account of a local development peer (`verigram-dev-telegram` at
    /// `peer`): its session is seeded with the peer's key for the number, so it is active at
    /// once, with no login. Only with `sender.dev_peers` on, and only to a loopback peer.
    ///
    /// The account is created first (disabled, so no worker takes it up half-made) and its
    /// session seeded after: an id that is taken is refused before any session is touched.
    pub async fn add_dev_telegram_account(
        &self,
        id: &str,
        phone: &PhoneNumber,
        peer: std::net::SocketAddr,
    ) -> Result<SenderAccount, SenderError> {
        let telegram = self.sender.telegram().ok_or(SenderError::Invalid(
            "development peer accounts need the Telegram sender (sender.kind = \"telegram\")",
        ))?;
        if !self.settings.sender.dev_peers {
            return Err(SenderError::Invalid(
                "development peer accounts are off: they need sender.dev_peers = true (development only)",
            ));
        }
        if !peer.ip().is_loopback() {
            return Err(SenderError::Invalid("a development peer must be on a loopback address (127.0.0.1, ::1)"));
        }
        if !SenderAccount::valid_id(id) {
            return Err(SenderError::Invalid("an account id is 1-64 of A-Z a-z 0-9 _ -"));
        }
        let account = SenderAccount {
            telegram: Some(TelegramIdentity { api_id: TelegramIdentity::DEV_API_ID, phone: phone.digits().to_owned() }),
            ..SenderAccount::new(id.to_owned(), AccountKind::Telegram)
        };
        let seeding =
            SenderAccount { state: AccountState::Disabled, reason: Some("SEEDING".into()), ..account.clone() };
        if !self.store.add_account(&seeding).await? {
            return Err(SenderError::Exists);
        }
        let key = crate::delivery::telegram::dev_key::dev_auth_key(phone.digits());
        if let Err(e) = telegram.seed_session(id, peer, key).await {
            // Nobody else's: this call made the account a moment ago.
            self.store.remove_account(id).await?;
            return Err(match e {
                crate::delivery::telegram::session::SessionError::Store(e) => SenderError::Store(e),
                _ => SenderError::Invalid("the account's stored session cannot be read"),
            });
        }
        let active = self
            .store
            .update_account(id, |a| Some(SenderAccount { state: AccountState::Active, reason: None, ..a.clone() }))
            .await?;
        active.ok_or(SenderError::NotFound)
    }

    pub async fn pause_account(&self, id: &str, note: Option<String>) -> Result<SenderAccount, SenderError> {
        let note = note.filter(|n| !n.is_empty()).map(|n| n.chars().take(256).collect());
        self.store.update_account(id, |a| Some(a.paused(note.clone()))).await?.ok_or(SenderError::NotFound)
    }

    pub async fn resume_account(&self, id: &str) -> Result<SenderAccount, SenderError> {
        let account = self.store.update_account(id, |a| Some(a.resumed())).await?.ok_or(SenderError::NotFound)?;
        // Jobs put off while no account could send may go now.
        self.wake.notify_waiters();
        Ok(account)
    }

    pub async fn remove_account(&self, id: &str) -> Result<(), SenderError> {
        if self.store.remove_account(id).await? {
            Ok(())
        } else {
            Err(SenderError::NotFound)
        }
    }
}
