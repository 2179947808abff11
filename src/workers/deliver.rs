//! One delivery job: the message rendered and handed to the sender, then what its outcome
//! means for the request and the job, each outcome in its own function.

use crate::delivery::{templates, Leased, NoAccount, OutgoingMessage, SendError, SentMessage};
use crate::domain::{AccountFailure, DeliveryStatus, LedgerEntry, LedgerKind, RequestRecord, Timestamp};
use crate::service::Services;
use crate::store::{Change, Job, StoreError};
use std::sync::Arc;
use std::time::Duration;

/// Sends the message of one job through `account`, records it, then acknowledges the job.
/// Recording comes first, so a job taken over later finds the message recorded and sends
/// nothing. A job with nothing to send gives the account back for the next job.
pub(super) async fn deliver(s: Arc<Services>, job: Job, account: Leased) -> Result<Option<Leased>, StoreError> {
    let now = s.clock.now();
    let Some(record) = s.store.request(&job.tenant, job.request, now).await? else {
        s.store.ack_job(&job).await?;
        return Ok(Some(account));
    };
    if record.delivery.is_some_and(|d| d.status == DeliveryStatus::Sent) && s.sender.sandbox().is_some() {
        // Sent by a worker that could not record the sandbox device's confirmation (the
        // store failed after the send was recorded): record it now.
        confirm_sandbox_delivery(&s, &job, record, now).await?;
        s.store.ack_job(&job).await?;
        return Ok(Some(account));
    }
    // Sent already, revoked, expired, or nothing to send: the job is done.
    let Some(sealed) = record.code.as_ref().and_then(|c| c.sealed.clone()).filter(|_| record.delivery.is_none()) else {
        s.store.ack_job(&job).await?;
        return Ok(Some(account));
    };
    if record.ttl_passed(now) {
        // Too late to send (its ttl task may not have run yet): it expires and is refunded.
        expire(&s, &job, record, now).await?;
        return Ok(Some(account));
    }
    let code = match s.sealer.open(&job.tenant, job.request, &sealed) {
        Ok(code) => code,
        Err(e) => {
            // Sealed under another pepper: it can never be sent. Expire and refund.
            tracing::error!(tenant = %job.tenant, error = &e as &dyn std::error::Error, "cannot open a sealed code");
            expire(&s, &job, record, now).await?;
            return Ok(Some(account));
        }
    };
    let tenant = s.store.tenant(&job.tenant).await?;
    let service_name = match record.code.as_ref().and_then(|c| c.sender_username.clone()) {
        Some(username) => username.as_str().to_owned(),
        None => tenant.as_ref().map(|t| t.name.clone()).unwrap_or_default(),
    };
    let tenant_templates = tenant.map(|t| t.settings.templates).unwrap_or_default();
    let message = OutgoingMessage {
        tenant: job.tenant.clone(),
        request: job.request,
        phone: record.phone.clone(),
        text: templates::render(&s.settings.templates, &tenant_templates, &record.phone, &service_name, &code),
    };
    let mut leased = account;
    if let Some(prior) = record.handed_to().filter(|a| s.sender.pins_accounts() && *a != leased.account.id) {
        // Handed to `prior` before, with the outcome lost: only `prior` can send it without
        // the user seeing it twice.
        match s.sender.take_account(prior).await? {
            Ok(it) => leased = it,
            Err(NoAccount::Until(at)) => {
                let after = Duration::from_millis((at.millis() - now.millis()).max(0) as u64);
                s.metrics.deliveries.with_label_values(&["deferred"]).inc();
                on_no_account(&s, &job, after, now).await?;
                return Ok(Some(leased));
            }
            Err(NoAccount::Never) => tracing::warn!(
                account = prior,
                "the account a message was handed to cannot send without an operator (paused, quarantined, disabled or removed); another sends it, and the user may get it twice"
            ),
        }
    }
    // Handed to this account before with the outcome lost: it may have sent the message, so
    // only it may try again (a flood wait is waited out; only a dead account lets go).
    let in_doubt = record.handed_to() == Some(leased.account.id.as_str()) && s.sender.pins_accounts();
    let mut record = record;
    let mut tried = Vec::new();
    let sent = loop {
        if s.sender.pins_accounts() {
            match hand_over(&s, &job, record, &leased.account.id, now).await? {
                Some(current) => record = current,
                None => {
                    // Revoked, expired or gone meanwhile: nothing to send.
                    s.store.ack_job(&job).await?;
                    return Ok(Some(leased));
                }
            }
        }
        match s.sender.send(&leased, &message, now).await {
            Err(SendError::AccountFailed(failure)) if in_doubt && !matches!(failure, AccountFailure::Dead(_)) => {
                let wait = match failure {
                    AccountFailure::FloodWait(wait) => wait,
                    _ => s.settings.delivery.retry_max,
                };
                break Err(SendError::WaitForAccount { after: wait });
            }
            Err(SendError::AccountFailed(_)) => {
                // Parked; the message goes to another account (never early to the same one).
                tried.push(leased.account.id.clone());
                match s.sender.another_account(&tried, now).await {
                    Ok(next) => leased = next,
                    Err(e) => {
                        // It did not go out: the next attempt need not wait for this account.
                        let id = leased.account.id.clone();
                        let current = s
                            .update_known_request(&job.tenant, record, s.retention(), now, |r| {
                                (r.hand_back(&id).map(Change::from), ())
                            })
                            .await?;
                        let Some((current, ())) = current else {
                            s.store.ack_job(&job).await?;
                            return Ok(None);
                        };
                        record = current;
                        break Err(e);
                    }
                }
            }
            other => break other,
        }
    };
    // `leased` lives on until here: until the send is counted, the account's pacing does not
    // show it, and another worker of this process must not take it.
    drop(leased);
    let outcome = match &sent {
        Ok(_) => "sent",
        Err(SendError::RecipientUnavailable) => "unreachable",
        Err(SendError::WaitForAccount { .. } | SendError::AccountFailed(_)) => "deferred",
        Err(SendError::Transient) => "retry",
    };
    s.metrics.deliveries.with_label_values(&[outcome]).inc();
    match sent {
        Ok(sent) => on_sent(&s, &job, record, sent).await?,
        // The recipient cannot get messages: it will not get this one later either.
        Err(SendError::RecipientUnavailable) => expire(&s, &job, record, now).await?,
        Err(SendError::WaitForAccount { after }) => on_no_account(&s, &job, after, now).await?,
        // Not reached: the loop above turns an account failure into another account or a wait.
        Err(SendError::AccountFailed(_)) => on_no_account(&s, &job, Duration::ZERO, now).await?,
        Err(SendError::Transient) => on_failure(&s, &job, record, now).await?,
    }
    Ok(None)
}

/// Records that the message is handed to `account` now (see `RequestRecord::hand_to`);
/// answers the request as it is then, or `None` when it no longer waits for a message.
async fn hand_over(
    s: &Services,
    job: &Job,
    record: RequestRecord,
    account: &str,
    now: Timestamp,
) -> Result<Option<RequestRecord>, StoreError> {
    let current = s
        .update_known_request(&job.tenant, record, s.retention(), now, |r| (r.hand_to(account).map(Change::from), ()))
        .await?;
    Ok(current.map(|(r, ())| r).filter(|r| r.handed_to() == Some(account)))
}

/// The sender accepted the message: it is recorded on the request (unless the request was
/// revoked or expired meanwhile, and then the message is taken back), remembered for read
/// receipts, and the job is done.
async fn on_sent(s: &Services, job: &Job, record: RequestRecord, sent: SentMessage) -> Result<(), StoreError> {
    let created_at = record.created_at;
    // A send can take a while (a slow network, a slow recipient): stamp it when it ended.
    let sent_at = s.clock.now();
    let recorded = s
        .update_known_request(&job.tenant, record, s.retention(), sent_at, |r| {
            (r.mark_sent(&sent.account, sent.message_id, sent.delivered, sent_at).map(Change::from), ())
        })
        .await?;
    let mine =
        recorded.as_ref().and_then(|(r, ())| r.code.as_ref()).is_some_and(|c| c.message_id == Some(sent.message_id));
    if let (false, Some((current, ()))) = (mine, &recorded) {
        // Revoked or expired while the message was on its way: take it back.
        s.sender.delete(&job.tenant, current, &sent.account, sent.message_id).await;
    }
    if mine {
        let waited = (sent_at.millis() - created_at.millis()).max(0);
        s.metrics.send_delay.with_label_values(&[job.tenant.as_str()]).observe(waited as f64 / 1000.0);
        tracing::info!(account = %sent.account, at_ms = sent_at.millis(), "message sent");
    }
    if let (true, Some(peer)) = (mine, sent.recipient) {
        // So the recipient's read receipt finds this request.
        s.store.remember_sent(&sent.account, peer, sent.message_id, &job.tenant, job.request, s.retention().0).await?;
    }
    if mine && !sent.delivered && s.sender.sandbox().is_some() {
        // The sandbox's recipient device confirms at once. Before the job is done: if this
        // fails, the job comes back and records it (see `deliver`).
        if let Some((current, ())) = recorded {
            confirm_sandbox_delivery(s, job, current, sent_at).await?;
        }
    }
    s.store.ack_job(job).await
}

/// The sandbox's recipient device confirmed the message: `sent` → `delivered`.
async fn confirm_sandbox_delivery(
    s: &Services,
    job: &Job,
    record: RequestRecord,
    now: Timestamp,
) -> Result<(), StoreError> {
    s.update_known_request(&job.tenant, record, s.retention(), now, |r| {
        (r.advance_delivery(DeliveryStatus::Delivered, now).map(Change::from), ())
    })
    .await?;
    Ok(())
}

/// The account failed on the way (a flood wait, a ban) and no other can send now: the job
/// waits until one can (within the retry bounds). Rare: a worker claims a job only with an
/// account in hand.
async fn on_no_account(s: &Services, job: &Job, after: Duration, now: Timestamp) -> Result<(), StoreError> {
    let config = &s.settings.delivery;
    let wait = after.clamp(config.retry_initial, config.retry_max);
    s.store.defer_job(job, now.plus(wait)).await
}

/// The send failed on the way: the failed attempt is counted on the request, and the job comes
/// back after an exponential backoff with jitter.
async fn on_failure(s: &Services, job: &Job, record: RequestRecord, now: Timestamp) -> Result<(), StoreError> {
    let counted = s
        .update_known_request(&job.tenant, record, s.retention(), now, |r| {
            (Some(Change::from(r.with_failed_attempt())), r.failed_attempts())
        })
        .await?;
    let failed = counted.map_or(0, |(_, n)| n);
    let config = &s.settings.delivery;
    let wait = backoff(failed, config.retry_initial, config.retry_max);
    s.store.defer_job(job, now.plus(wait)).await
}

/// The message will never go: the request expires with its fee refunded, and the job is done.
async fn expire(s: &Services, job: &Job, record: RequestRecord, now: Timestamp) -> Result<(), StoreError> {
    s.update_known_request(&job.tenant, record, s.retention(), now, |r| (expiry(r, now), ())).await?;
    s.store.ack_job(job).await
}

/// The wait after the `failed`-th failure in a row (0-based): `initial × 2^failed`, at most
/// `max`, drawn uniformly from its upper half so retries of many jobs spread out.
pub fn backoff(failed: u32, initial: Duration, max: Duration) -> Duration {
    use rand::Rng;
    let ceiling = initial.saturating_mul(2u32.saturating_pow(failed.min(20))).min(max);
    let floor = ceiling / 2;
    floor + ceiling.saturating_sub(floor).mul_f64(rand::thread_rng().gen::<f64>())
}

/// `expired` with the fee refunded, for a request whose message was not delivered.
pub(super) fn expiry(r: &RequestRecord, now: Timestamp) -> Option<Change> {
    let (next, refund) = r.expire_undelivered(now)?;
    let ledger = refund.map(|amount| LedgerEntry::for_request(LedgerKind::Refund, now, amount, r.id));
    Some(Change { ledger, ..Change::from(next) })
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_doubles_within_bounds_and_jitters() {
        let (initial, max) = (Duration::from_secs(1), Duration::from_secs(300));
        for failed in 0..30 {
            let ceiling = (initial * 2u32.saturating_pow(failed.min(20))).min(max);
            for _ in 0..20 {
                let wait = backoff(failed, initial, max);
                assert!(wait >= ceiling / 2 && wait <= ceiling, "{failed}: {wait:?} outside {ceiling:?}");
            }
        }
        let spread: std::collections::HashSet<_> = (0..20).map(|_| backoff(5, initial, max)).collect();
        assert!(spread.len() > 1, "jittered");
    }
}
