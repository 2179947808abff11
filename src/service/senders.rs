//! Operator use cases for the pool of sender accounts.

use super::Services;
use crate::domain::Backlog;
use crate::domain::{AccountKind, AccountState, PhoneNumber, SenderAccount, TelegramIdentity};
use crate::store::StoreError;

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

/// The `api_id` development accounts present (the peer does not check it).
const DEV_API_ID: i32 = 1;

impl Services {
    pub async fn sender_accounts(&self) -> Result<Vec<SenderAccount>, SenderError> {
        Ok(self.store.accounts().await?)
    }

    /// The delivery jobs not yet done: queued, and put off (no account could send, or a retry).
    pub async fn delivery_backlog(&self) -> Result<Backlog, SenderError> {
        Ok(self.store.delivery_backlog().await?)
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
    /// once, with no login.
    pub async fn add_dev_telegram_account(
        &self,
        id: &str,
        phone: &PhoneNumber,
        peer: std::net::SocketAddr,
    ) -> Result<SenderAccount, SenderError> {
        let telegram = self.sender.telegram().ok_or(SenderError::Invalid(
            "development peer accounts need the Telegram sender (sender.kind = \"telegram\")",
        ))?;
        if !SenderAccount::valid_id(id) {
            return Err(SenderError::Invalid("an account id is 1-64 of A-Z a-z 0-9 _ -"));
        }
        let account = SenderAccount {
            telegram: Some(TelegramIdentity { api_id: DEV_API_ID, phone: phone.digits().to_owned() }),
            ..SenderAccount::new(id.to_owned(), AccountKind::Telegram)
        };
        // Seeded before the account exists, so no worker takes it up half-made.
        let key = crate::delivery::telegram::dev_key::dev_auth_key(phone.digits());
        telegram.seed_session(id, peer, key).await.map_err(|e| match e {
            crate::delivery::telegram::session::SessionError::Store(e) => SenderError::Store(e),
            _ => SenderError::Invalid("the account's stored session cannot be read"),
        })?;
        if !self.store.add_account(&account).await? {
            return Err(SenderError::Exists);
        }
        Ok(account)
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
