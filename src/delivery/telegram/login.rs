//! Signing a Telegram account in, interactively: the login code Telegram sends to the
//! account's phone, then its two-step verification password when it has one. The session
//! (with its authorization key) lands in the store, sealed, so any worker can drive the account.

use super::session::StoreSession;
use super::transport::SurfaceEverything;
use crate::domain::{Clock, SystemClock};
use crate::secrets::Pepper;
use crate::store::Store;
use grammers_client::{Client, SignInError};
use grammers_mtsender::{ConnectionParams, InvocationError, SenderPool};
use std::sync::Arc;

/// Asks the operator for the login code and, if needed, the password; or shows the QR code
/// to scan.
pub trait Prompt {
    fn code(&mut self) -> anyhow::Result<String>;
    fn password(&mut self, hint: Option<&str>) -> anyhow::Result<String>;
    /// Shows a `tg://login?token=…` link as a QR code for the phone where the account is
    /// signed in (Settings → Devices → Link Desktop Device), and the link itself.
    fn show_qr(&mut self, link: &str) -> anyhow::Result<()>;
}

/// How the account is signed in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// The login code Telegram sends to the account.
    Code,
    /// A QR code scanned with a phone where the account is signed in already.
    Qr,
}

/// Signs `account` in; afterwards it is active in the pool.
pub async fn sign_in(
    store: Arc<Store>,
    pepper: &Pepper,
    account: &str,
    api_hash: &str,
    method: Method,
    prompt: &mut dyn Prompt,
) -> anyhow::Result<()> {
    let record = store
        .accounts()
        .await?
        .into_iter()
        .find(|a| a.id == account)
        .ok_or_else(|| anyhow::anyhow!("no sender account {account:?} (add it first: verigram sender add)"))?;
    let identity = record.telegram.clone().ok_or_else(|| anyhow::anyhow!("{account:?} is not a Telegram account"))?;
    // The account's lease, as a serving process takes it to send: while it signs in, no
    // process drives the account, and a process driving it now keeps it.
    let holder = format!("sign-in:{}", uuid::Uuid::new_v4().simple());
    if !store.lease_account(account, &holder, SIGN_IN_LEASE, SystemClock.now()).await? {
        anyhow::bail!(
            "{account} is being driven by a serving process: pause it (verigram sender pause {account}) and sign it in once that process's lease on it ends (pool.lease)"
        );
    }
    let result = sign_in_leased(&store, pepper, account, &identity, api_hash, method, prompt).await;
    if let Err(e) = store.release_account(account, &holder).await {
        tracing::warn!(
            account,
            error = &e as &dyn std::error::Error,
            "could not release the account; its lease will end"
        );
    }
    result?;
    store.update_account(account, |a| Some(a.resumed())).await?;
    Ok(())
}

/// How long a sign-in may hold the account: long enough to read and type a code.
const SIGN_IN_LEASE: std::time::Duration = std::time::Duration::from_secs(15 * 60);

async fn sign_in_leased(
    store: &Arc<Store>,
    pepper: &Pepper,
    account: &str,
    identity: &crate::domain::TelegramIdentity,
    api_hash: &str,
    method: Method,
    prompt: &mut dyn Prompt,
) -> anyhow::Result<()> {
    let session = StoreSession::load(Arc::clone(store), pepper, account).await?;
    // Flood waits are told to the operator rather than slept through in silence.
    let params = ConnectionParams { retry_policy: Box::new(SurfaceEverything), ..Default::default() };
    let SenderPool { runner, handle, updates } =
        SenderPool::with_configuration(Arc::new(session), identity.api_id, params);
    let client = Client::new(handle);
    let runner = tokio::spawn(runner.run());
    let result = match method {
        Method::Code => sign_in_with(&client, &format!("+{}", identity.phone), api_hash, prompt).await,
        Method::Qr => super::qr_login::sign_in(&client, updates, identity.api_id, api_hash, prompt).await,
    };
    client.disconnect();
    let _ = runner.await;
    result
}

async fn sign_in_with(client: &Client, phone: &str, api_hash: &str, prompt: &mut dyn Prompt) -> anyhow::Result<()> {
    if client.is_authorized().await? {
        return Ok(());
    }
    let token = match client.request_login_code(phone, api_hash).await {
        Ok(token) => token,
        Err(InvocationError::Rpc(rpc)) if rpc.code == 420 => anyhow::bail!(
            "Telegram asks to wait {} s before the next login code ({})",
            rpc.value.unwrap_or_default(),
            rpc.name
        ),
        Err(e) => return Err(e.into()),
    };
    let code = prompt.code()?;
    match client.sign_in(&token, code.trim()).await {
        Ok(_) => Ok(()),
        Err(SignInError::PasswordRequired(password_token)) => check_password(client, password_token, prompt).await,
        Err(SignInError::InvalidCode) => {
            anyhow::bail!("Telegram refused the code (wrong, or too old: sign in again for a new one)")
        }
        Err(SignInError::SignUpRequired) => anyhow::bail!("the number has no Telegram account to sign in to"),
        Err(e) => Err(e.into()),
    }
}

/// The two-step verification password, asked for and proven (SRP).
pub(super) async fn check_password(
    client: &Client,
    token: grammers_client::client::PasswordToken,
    prompt: &mut dyn Prompt,
) -> anyhow::Result<()> {
    let password = prompt.password(token.hint())?;
    match client.check_password(token, password.trim_end_matches(['\r', '\n'])).await {
        Ok(_) => Ok(()),
        Err(SignInError::InvalidPassword(_)) => anyhow::bail!("Telegram refused the two-step verification password"),
        Err(e) => Err(e.into()),
    }
}
