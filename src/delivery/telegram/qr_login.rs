//! Signing in with a QR code, as Telegram Desktop does: the command shows a
//! `tg://login?token=…` link as a QR code, the operator scans it with a phone where the account
//! is signed in already, and the login completes (then the two-step password, if any). No login
//! code is sent, so no code can be intercepted.

use super::login::{check_password, Prompt};
use base64::Engine;
use grammers_client::client::PasswordToken;
use grammers_client::{tl, Client};
use grammers_mtsender::InvocationError;
use grammers_session::updates::UpdatesLike;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc::Receiver;

/// How long the command waits for a scan before it gives up.
const WAIT: Duration = Duration::from_secs(5 * 60);

/// Telegram's word that the phone accepted the token shown (`updateLoginToken`).
fn accepted(update: &UpdatesLike) -> bool {
    let UpdatesLike::Updates(updates) = update else { return false };
    match updates {
        tl::enums::Updates::UpdateShort(short) => matches!(short.update, tl::enums::Update::LoginToken),
        tl::enums::Updates::Updates(all) => all.updates.iter().any(|u| matches!(u, tl::enums::Update::LoginToken)),
        _ => false,
    }
}

/// Shows each token until it expires or Telegram says the phone accepted it
/// (`updateLoginToken`), then asks again, as Telegram's clients do.
pub async fn sign_in(
    client: &Client,
    mut updates: Receiver<UpdatesLike>,
    api_id: i32,
    api_hash: &str,
    prompt: &mut dyn Prompt,
) -> anyhow::Result<()> {
    if client.is_authorized().await? {
        return Ok(());
    }
    let export =
        tl::functions::auth::ExportLoginToken { api_id, api_hash: api_hash.to_owned(), except_ids: Vec::new() };
    let deadline = Instant::now() + WAIT;
    let mut shown: Option<Vec<u8>> = None;
    while Instant::now() < deadline {
        match client.invoke(&export).await {
            Ok(tl::enums::auth::LoginToken::Token(token)) => {
                if shown.as_deref() != Some(token.token.as_slice()) {
                    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&token.token);
                    prompt.show_qr(&format!("tg://login?token={encoded}"))?;
                    shown = Some(token.token);
                }
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
                let valid = Duration::from_secs(u64::try_from(token.expires).unwrap_or(0).saturating_sub(now).max(1));
                let until = tokio::time::Instant::now() + valid.min(deadline.saturating_duration_since(Instant::now()));
                loop {
                    match tokio::time::timeout_at(until, updates.recv()).await {
                        Ok(Some(update)) if accepted(&update) => break,
                        Ok(Some(_)) => continue,
                        // Expired: ask again (a new token is shown).
                        Err(_) => break,
                        // No more updates: look again when the token expires.
                        Ok(None) => {
                            tokio::time::sleep_until(until).await;
                            break;
                        }
                    }
                }
                continue;
            }
            Ok(tl::enums::auth::LoginToken::Success(_)) => return Ok(()),
            Ok(tl::enums::auth::LoginToken::MigrateTo(to)) => anyhow::bail!(
                "the account lives in data centre {}: sign it in with the login code instead (without --qr)",
                to.dc_id
            ),
            Err(InvocationError::Rpc(rpc)) if rpc.name == "SESSION_PASSWORD_NEEDED" => {
                let tl::enums::account::Password::Password(password) =
                    client.invoke(&tl::functions::account::GetPassword {}).await?;
                return check_password(client, PasswordToken::new(password), prompt).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("no phone accepted the QR code within {} minutes", WAIT.as_secs() / 60)
}
