//! The four Gateway methods.

use super::{ServiceError, Services};
use crate::callbacks::dispatch::HostCheck;
use crate::domain::{
    CallbackUrl, Code, CodeLength, CodeMatch, CodeState, ContinueError, Credits, DeliveryStatus, LedgerEntry,
    LedgerKind, Payload, PhoneNumber, RequestId, RequestRecord, RequestStatusView, SenderUsername, Tenant, TenantId,
    Timestamp, TokenRecord, Ttl,
};
use crate::secrets::{ApiToken, CodeBinding};
use crate::store::{Change, CreateOutcome, Scheduled, Task};
use std::net::IpAddr;
use std::sync::Arc;

/// The tenant and token behind an authenticated call.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Shared with the cache of callers (`tokens.cache_ms`): a call clones no settings.
    pub tenant: Arc<Tenant>,
    pub token: Arc<TokenRecord>,
    /// The client's address (behind a trusted proxy, the one it names), for the per-address limit.
    pub client: Option<IpAddr>,
}

/// Where the code of a send comes from.
#[derive(Debug, Clone)]
pub enum CodeSpec {
    Given(Code),
    Generate(CodeLength),
}

/// A `sendVerificationMessage` call, every parameter parsed.
#[derive(Debug, Clone)]
pub struct SendCommand {
    pub phone: PhoneNumber,
    pub code: CodeSpec,
    pub request_id: Option<RequestId>,
    pub sender_username: Option<SenderUsername>,
    pub callback_url: Option<CallbackUrl>,
    pub payload: Option<Payload>,
    pub ttl: Option<Ttl>,
}

/// What the user typed, as `checkVerificationStatus` received it.
#[derive(Debug, Clone)]
pub enum EnteredCode {
    Digits(Code),
    /// Not 4–8 digits: it cannot match, and counts as a wrong attempt.
    Malformed,
}

impl Services {
    /// Finds the caller of a Gateway method by its token. `client` is what the per-address
    /// limits count against; `vouched` the address a token's `ip_allow` may admit (`None` when
    /// it is only a proxy's, standing in for a hop that could not be read).
    pub async fn authenticate(
        &self,
        token: &ApiToken,
        client: Option<IpAddr>,
        vouched: Option<IpAddr>,
    ) -> Result<Caller, ServiceError> {
        let now = self.clock.now();
        let key = self.token_keys.lookup_key(token);
        let (record, tenant) = match self.callers.get(&key) {
            Some(found) => found,
            None => {
                let record = Arc::new(self.store.find_token(&key).await?.ok_or(ServiceError::AccessTokenInvalid)?);
                let tenant =
                    Arc::new(self.store.tenant(&record.tenant).await?.ok_or(ServiceError::AccessTokenInvalid)?);
                self.callers.put(&record, &tenant);
                (record, tenant)
            }
        };
        // Checked on every call, cached or not: an expiry takes effect on time.
        if !record.is_usable(now, vouched) {
            return Err(ServiceError::AccessTokenInvalid);
        }
        Ok(Caller { tenant, token: record, client })
    }

    #[tracing::instrument(skip_all, fields(tenant = %caller.tenant.id))]
    pub async fn send(&self, caller: &Caller, cmd: SendCommand) -> Result<RequestStatusView, ServiceError> {
        let tenant = &caller.tenant;
        let own_number = tenant.settings.is_own_number(&cmd.phone);
        if let Some(username) = &cmd.sender_username {
            match tenant.settings.sender(username) {
                None => return Err(ServiceError::SenderNotOwned),
                Some(reg) if !reg.verified && !own_number => return Err(ServiceError::SenderNotVerified),
                Some(_) => {}
            }
        }
        // The send that uses a checkSendAbility request was counted with it (its one free send).
        let mut counted = super::limits::Counted::nothing(self.clock.now());
        if cmd.request_id.is_none() {
            self.admit_country(tenant, &cmd.phone)?;
            let fee = self.fee(tenant, &cmd.phone);
            counted = self.admit_call(&caller.origin(), &cmd.phone, fee).await?;
        }
        let sent = self.send_counted(caller, cmd).await;
        if sent.is_err() {
            self.give_back_spend(tenant, &counted).await;
        }
        sent
    }

    /// The rest of a send, once its limits and budgets let it through.
    async fn send_counted(&self, caller: &Caller, cmd: SendCommand) -> Result<RequestStatusView, ServiceError> {
        if let Some(url) = &cmd.callback_url {
            self.check_callback_host(&caller.tenant.id, url.host()).await?;
        }
        let code = match &cmd.code {
            CodeSpec::Given(code) => code.clone(),
            CodeSpec::Generate(len) => Code::generate(*len),
        };
        let (record, remaining_balance) = match cmd.request_id {
            Some(id) => (self.continue_checked_request(caller, id, &cmd, &code).await?, None),
            None => self.create_sent_request(caller, &cmd, &code).await?,
        };
        // The delivery job is queued with the request: wake this process's workers, if any.
        self.wake.notify_waiters();
        Ok(record.view(self.clock.now(), remaining_balance))
    }

    #[tracing::instrument(skip_all, fields(tenant = %caller.tenant.id))]
    pub async fn check_send_ability(
        &self,
        caller: &Caller,
        phone: PhoneNumber,
    ) -> Result<RequestStatusView, ServiceError> {
        // Counted before Telegram is asked: enumerating numbers is what the limits stop.
        let tenant = &caller.tenant;
        self.admit_country(tenant, &phone)?;
        let fee = self.fee(tenant, &phone);
        let counted = self.admit_call(&caller.origin(), &phone, fee).await?;
        if !self.sender.can_reach(&phone).await {
            // The limits stay counted (asking is what they limit); the fee was not spent.
            self.give_back_spend(tenant, &counted).await;
            return Err(ServiceError::PhoneNumberNotFound);
        }
        let now = self.clock.now();
        let record = self.new_record(caller, phone, now, None);
        match self.charge_and_store(caller, record, now).await {
            Ok((record, balance)) => Ok(record.view(now, balance)),
            Err(e) => {
                self.give_back_spend(tenant, &counted).await;
                Err(e)
            }
        }
    }

    /// Refuses a callback host with an internal address, as far as DNS tells within the send's
    /// budget; a tenant whose look-ups find no address skips them for a while (`lookups.rs`).
    async fn check_callback_host(&self, tenant: &TenantId, host: &str) -> Result<(), ServiceError> {
        if self.fruitless_lookups.skip(tenant) {
            return Ok(());
        }
        match self.reports.check_host(host).await {
            HostCheck::Acceptable => Ok(()),
            HostCheck::Internal => Err(ServiceError::CallbackUrlInvalid),
            HostCheck::Unknown => {
                self.fruitless_lookups.found_nothing(tenant);
                Ok(())
            }
        }
    }

    #[tracing::instrument(skip_all, fields(tenant = %caller.tenant.id))]
    pub async fn check_verification(
        &self,
        caller: &Caller,
        id: RequestId,
        entered: Option<EnteredCode>,
    ) -> Result<RequestStatusView, ServiceError> {
        let tenant = &caller.tenant.id;
        let now = self.clock.now();
        let current = self.store.request(tenant, id, now).await?.ok_or(ServiceError::RequestIdInvalid)?;
        let Some(entered) = entered else {
            return Ok(current.view(now, None));
        };
        // The number's budget of wrong codes (over all its requests) is taken before the code
        // is looked at, so guesses made at once cannot all slip past it; a right code gives it
        // back. A request that takes no more checks only looks at it. Once the budget is used
        // up, checks are not refused (that would lock the real user out): each request gets
        // one last guess, taken as atomically, and a wrong one ends it (docs/security.md).
        let budget = self.wrong_check_limit(&caller.tenant, &current.phone);
        let counts = current.accepts_checks(now);
        let last = match self.admit(&caller.tenant, &budget, counts).await {
            Ok(()) => false,
            // A request that takes no more checks, or has no code yet (made by
            // checkSendAbility), has nothing to guess at.
            Err(ServiceError::RateLimited(_)) if !counts || current.code.is_none() => false,
            Err(ServiceError::RateLimited(_)) => {
                self.admit(&caller.tenant, &self.last_guess_limit(id), true).await?;
                true
            }
            Err(e) => return Err(e),
        };
        // Hash only when the answer can still change: a terminal request costs no CPU.
        let wrong = if last { CodeMatch::WrongAndLast } else { CodeMatch::Wrong };
        let outcome = match (&current.code, &entered) {
            (Some(state), EnteredCode::Digits(code)) if current.accepts_checks(now) => {
                let binding = CodeBinding { tenant: tenant.clone(), request: id };
                if self.hasher.verify(&binding, code, &state.hash).await? {
                    CodeMatch::Correct
                } else {
                    wrong
                }
            }
            _ => wrong,
        };
        if counts && !last && outcome == CodeMatch::Correct {
            if let Err(e) = self.store.give_back_limits(tenant, &budget, self.clock.now()).await {
                tracing::warn!(error = &e as &dyn std::error::Error, "could not give back a right code's budget");
            }
        }
        let (record, evaluated) = self
            .update_known_request(tenant, current, self.retention(), now, |r| {
                let evaluated = r.accepts_checks(now);
                (r.record_check(outcome, now).map(Change::from), evaluated)
            })
            .await?
            .ok_or(ServiceError::RequestIdInvalid)?;
        self.wake_for_reports(&record);
        // The code entered is echoed by the call that evaluated it, and never stored.
        let mut status = record.view(now, None);
        if let (true, EnteredCode::Digits(code), Some(v)) = (evaluated, &entered, status.verification_status.as_mut()) {
            v.code_entered = Some(code.expose().to_owned());
        }
        Ok(status)
    }

    #[tracing::instrument(skip_all, fields(tenant = %caller.tenant.id))]
    pub async fn revoke(&self, caller: &Caller, id: RequestId) -> Result<(), ServiceError> {
        let tenant = &caller.tenant.id;
        let now = self.clock.now();
        let (record, delete) = self
            .update_request(tenant, id, self.retention(), now, |r| {
                let (next, delete) = r.revoke(now);
                let changed = RequestRecord { version: r.version, ..next.clone() } != *r;
                (changed.then(|| Change::from(next)), delete)
            })
            .await?
            .ok_or(ServiceError::RequestIdInvalid)?;
        self.wake_for_reports(&record);
        let sent = record.code.as_ref().and_then(|c| Some((c.account.clone()?, c.message_id?)));
        if let (true, Some((account, message_id))) = (delete, sent) {
            self.sender.delete(tenant, &record, &account, message_id).await;
        }
        Ok(())
    }

    /// A change made outside a worker round may have queued a report: wake this process's
    /// workers so it goes now rather than at their next poll.
    fn wake_for_reports(&self, record: &RequestRecord) {
        if !record.pending_reports().is_empty() {
            self.wake.notify_waiters();
        }
    }

    /// Moves a request's delivery status forward when the sender reports progress.
    pub async fn record_delivery(
        &self,
        tenant: &TenantId,
        id: RequestId,
        to: DeliveryStatus,
    ) -> Result<(), ServiceError> {
        let now = self.clock.now();
        self.update_request(tenant, id, self.retention(), now, |r| (r.advance_delivery(to, now).map(Change::from), ()))
            .await?;
        Ok(())
    }

    /// The tenant's balance read now (the caller's may be up to `tokens.cache_ms` old).
    async fn fresh_balance(&self, tenant: &TenantId) -> Result<Credits, ServiceError> {
        let tenant = self.store.tenant(tenant).await?.ok_or(ServiceError::AccessTokenInvalid)?;
        Ok(tenant.balance)
    }

    pub(crate) fn fee(&self, tenant: &Tenant, phone: &PhoneNumber) -> Credits {
        if tenant.settings.is_own_number(phone) {
            Credits::ZERO
        } else {
            tenant.settings.price.unwrap_or_else(|| self.settings.billing.price_for(phone))
        }
    }

    fn new_record(
        &self,
        caller: &Caller,
        phone: PhoneNumber,
        now: Timestamp,
        code: Option<CodeState>,
    ) -> RequestRecord {
        RequestRecord {
            id: RequestId::generate(),
            cost: self.fee(&caller.tenant, &phone),
            phone,
            created_at: now,
            refunded: false,
            token_id: caller.token.id.clone(),
            code,
            delivery: None,
            verification: None,
            version: 0,
        }
    }

    /// Stores a new request and takes its fee in one atomic step, with its delivery job and
    /// timed tasks when it has a message. Answers the balance after the charge when there was
    /// one.
    async fn charge_and_store(
        &self,
        caller: &Caller,
        record: RequestRecord,
        now: Timestamp,
    ) -> Result<(RequestRecord, Option<Credits>), ServiceError> {
        let charge = record.cost.is_positive().then(|| {
            LedgerEntry::for_request(LedgerKind::Charge, now, Credits::from_micros(-record.cost.micros()), record.id)
        });
        let change = Change { ledger: charge, ..delivery_change(record) };
        match self.store.create_request(&caller.tenant.id, &change, self.retention(), now).await? {
            CreateOutcome::Created { balance } => {
                let tenant = caller.tenant.id.as_str();
                if change.enqueue {
                    self.metrics.sends_accepted.with_label_values(&[tenant]).inc();
                }
                if let Some(charge) = &change.ledger {
                    self.metrics.billed(tenant, -charge.amount.micros());
                }
                let charged = change.record.cost.is_positive().then_some(balance);
                Ok((RequestRecord { version: 1, ..change.record }, charged))
            }
            CreateOutcome::BalanceNotEnough => Err(ServiceError::BalanceNotEnough),
            CreateOutcome::TenantNotFound => Err(ServiceError::AccessTokenInvalid),
        }
    }

    fn code_state(
        &self,
        caller: &Caller,
        cmd: &SendCommand,
        code: &Code,
        id: RequestId,
        hash: String,
        now: Timestamp,
    ) -> CodeState {
        let validity = cmd.ttl.map_or_else(|| self.settings.codes.default_validity, Ttl::duration);
        CodeState {
            hash,
            valid_until: now.plus(validity),
            max_attempts: caller.tenant.settings.max_attempts.unwrap_or(self.settings.codes.max_attempts),
            attempts: 0,
            ttl: cmd.ttl,
            payload: cmd.payload.clone(),
            callback_url: cmd.callback_url.as_ref().map(|u| u.as_str().to_owned()),
            callback_key: cmd.callback_url.as_ref().map(|_| caller.token.signing_key.clone()),
            sender_username: cmd.sender_username.clone(),
            sealed: Some(self.sealer.seal(&caller.tenant.id, id, code)),
            account: None,
            failed_attempts: 0,
            message_id: None,
            reports: Vec::new(),
        }
    }

    async fn create_sent_request(
        &self,
        caller: &Caller,
        cmd: &SendCommand,
        code: &Code,
    ) -> Result<(RequestRecord, Option<Credits>), ServiceError> {
        let now = self.clock.now();
        let mut record = self.new_record(caller, cmd.phone.clone(), now, None);
        // The balance loaded at authentication tells cheaply, before any hashing, that the fee
        // cannot be covered; the atomic store step decides for real.
        if caller.tenant.balance < record.cost && self.fresh_balance(&caller.tenant.id).await? < record.cost {
            return Err(ServiceError::BalanceNotEnough);
        }
        let binding = CodeBinding { tenant: caller.tenant.id.clone(), request: record.id };
        let hash = self.hasher.hash(&binding, code).await?;
        record.code = Some(self.code_state(caller, cmd, code, record.id, hash, now));
        self.charge_and_store(caller, record, now).await
    }

    /// A send with the `request_id` of a `checkSendAbility`: free, once, to the same number.
    async fn continue_checked_request(
        &self,
        caller: &Caller,
        id: RequestId,
        cmd: &SendCommand,
        code: &Code,
    ) -> Result<RequestRecord, ServiceError> {
        let tenant = &caller.tenant.id;
        let now = self.clock.now();
        let current = self.store.request(tenant, id, now).await?.ok_or(ServiceError::RequestIdInvalid)?;
        // Refuse early (before hashing) what the atomic step would refuse anyway.
        current.can_attach_code(&cmd.phone).map_err(continue_error)?;
        let hash = self.hasher.hash(&CodeBinding { tenant: tenant.clone(), request: id }, code).await?;
        let state = self.code_state(caller, cmd, code, id, hash, now);
        let (record, result) = self
            .update_known_request(tenant, current, self.retention(), now, |r| {
                match r.attach_code(&cmd.phone, state.clone()) {
                    Ok(next) => (Some(delivery_change(next)), Ok(())),
                    Err(e) => (None, Err(e)),
                }
            })
            .await?
            .ok_or(ServiceError::RequestIdInvalid)?;
        result.map_err(continue_error)?;
        self.metrics.sends_accepted.with_label_values(&[tenant.as_str()]).inc();
        Ok(record)
    }
}

fn continue_error(e: ContinueError) -> ServiceError {
    match e {
        ContinueError::MessageAlreadySent => ServiceError::MessageAlreadySent,
        ContinueError::PhoneNumberMismatch => ServiceError::PhoneNumberMismatch,
        // A revoked request is no longer one a send can use.
        ContinueError::Revoked => ServiceError::RequestIdInvalid,
    }
}

/// A request with a message to send: its delivery job, the end of its code's validity, and its
/// `ttl` go with it into the store.
fn delivery_change(record: RequestRecord) -> Change {
    let mut change = Change::from(record);
    if let Some(code) = &change.record.code {
        change.enqueue = true;
        change.schedule.push(Scheduled { task: Task::Validity, at: code.valid_until });
        if let Some(ttl) = code.ttl {
            change.schedule.push(Scheduled { task: Task::Ttl, at: change.record.created_at.plus(ttl.duration()) });
        }
    }
    change
}
