//! Which rate limits a call counts against, decided before anything is hashed, charged,
//! queued or sent: a refused call costs nothing and changes nothing else.

use super::{Caller, ServiceError, Services};
use crate::config::SpendMode;
use crate::domain::{Credits, LimitCheck, LimitKind, PhoneNumber, Rate, Refusal, RequestId, SpendCheck, Tenant};
use std::net::IpAddr;

/// What the per-address limit keys an address by: an IPv4 address, or the /64 an IPv6 one is
/// in (one subscriber usually has a whole /64, and could rotate through it).
fn address_block(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// What `admit_call` counted against the spending budgets: the fee, in which windows.
pub(crate) struct Counted {
    budgets: Vec<SpendCheck>,
    fee: Credits,
    at: crate::domain::Timestamp,
}

impl Counted {
    pub(crate) fn nothing(at: crate::domain::Timestamp) -> Self {
        Self { budgets: Vec::new(), fee: Credits::ZERO, at }
    }
}

/// Who a call comes from, as far as limits care: the tenant, the token (when known) and the
/// client's address (when known).
pub(crate) struct Origin<'a> {
    pub tenant: &'a Tenant,
    pub token_id: Option<&'a str>,
    pub client: Option<IpAddr>,
}

impl Caller {
    pub(crate) fn origin(&self) -> Origin<'_> {
        Origin { tenant: &self.tenant, token_id: Some(&self.token.id), client: self.client }
    }
}

impl Services {
    /// The rate in force for `kind` for this tenant: its own override, else the server's.
    fn rate_for(&self, tenant: &Tenant, kind: LimitKind) -> Rate {
        tenant.settings.limits.get(&kind).copied().unwrap_or_else(|| self.settings.limits.rate(kind))
    }

    /// The limits a send (or a `checkSendAbility`) to `phone` counts against. Sends to the
    /// tenant's own number count only against the number's own limit, so tenants can test
    /// freely.
    pub(crate) fn send_limits(&self, origin: &Origin<'_>, phone: &PhoneNumber) -> Vec<LimitCheck> {
        let tenant = origin.tenant;
        let mut checks = Vec::new();
        // A key is made (some take an HMAC) only for a limit that is on.
        let mut add = |kind: LimitKind, key: &dyn Fn() -> String| {
            let rate = self.rate_for(tenant, kind);
            if !rate.is_off() {
                checks.push(LimitCheck { kind, key: key(), rate });
            }
        };
        add(LimitKind::Phone, &|| self.token_keys.limit_key(&format!("phone:{}", phone.digits())));
        if !tenant.settings.is_own_number(phone) {
            add(LimitKind::Tenant, &|| "all".into());
            add(LimitKind::TenantDaily, &|| "all".into());
            if let Some(token_id) = origin.token_id {
                add(LimitKind::Token, &|| token_id.to_owned());
            }
            add(LimitKind::Country, &|| phone.country_code().to_string());
            if let Some(ip) = origin.client {
                add(LimitKind::Ip, &|| self.token_keys.limit_key(&format!("ip:{}", address_block(ip))));
            }
        }
        checks
    }

    /// The budget of wrong codes for `phone` (over all its requests); its key (an HMAC) is
    /// made only when the budget is on.
    pub(crate) fn wrong_check_limit(&self, tenant: &Tenant, phone: &PhoneNumber) -> Vec<LimitCheck> {
        let rate = self.rate_for(tenant, LimitKind::WrongChecks);
        if rate.is_off() {
            return Vec::new();
        }
        let key = self.token_keys.limit_key(&format!("phone:{}", phone.digits()));
        vec![LimitCheck { kind: LimitKind::WrongChecks, key, rate }]
    }

    /// A request's one last guess, once its number's budget of wrong codes is used up: one
    /// check per request for as long as a request lives.
    pub(crate) fn last_guess_limit(&self, request: RequestId) -> Vec<LimitCheck> {
        let per = self.settings.store.request_retention.as_secs().max(1);
        let once = Rate { rate: 1, per, burst: 1 };
        vec![LimitCheck { kind: LimitKind::WrongChecks, key: format!("last:{request}"), rate: once }]
    }

    /// Counts the call against `checks`, or refuses it with the limit that fired (and then
    /// nothing is counted). With `consume = false` it only looks.
    pub(crate) async fn admit(
        &self,
        tenant: &Tenant,
        checks: &[LimitCheck],
        consume: bool,
    ) -> Result<(), ServiceError> {
        match self.store.limit(&tenant.id, checks, self.clock.now(), consume).await? {
            Ok(_) => Ok(()),
            Err(refusal) => Err(self.refused(refusal)),
        }
    }
}

impl Services {
    /// A destination country the tenant does not send to answers like a number that cannot
    /// receive codes (free, counted against nothing).
    pub(crate) fn admit_country(&self, tenant: &Tenant, phone: &PhoneNumber) -> Result<(), ServiceError> {
        match &tenant.settings.countries {
            Some(rule) if !rule.admits(phone.country_code()) => Err(ServiceError::PhoneNumberNotFound),
            _ => Ok(()),
        }
    }

    /// The spending budgets a paid call to `phone` counts against.
    fn spend_checks(&self, tenant: &Tenant, phone: &PhoneNumber) -> Vec<SpendCheck> {
        let mut checks = Vec::new();
        if let Some(cap) = tenant.settings.daily_spend_cap {
            checks.push(SpendCheck {
                kind: LimitKind::DailySpend,
                key: "all".into(),
                window_secs: 86_400,
                cap: cap.micros(),
                blocking: true,
            });
        }
        let country = self.settings.limits.country_hourly_spend;
        if country.cap > Credits::ZERO {
            checks.push(SpendCheck {
                kind: LimitKind::CountrySpend,
                key: phone.country_code().to_string(),
                window_secs: 3_600,
                cap: country.cap.micros(),
                blocking: country.mode == SpendMode::Block,
            });
        }
        checks
    }

    /// Admits a call to `phone` costing `fee`: its rate limits and spending budgets decided in
    /// one atomic step (all count, or nothing does and the refusal names the one that fired).
    /// A budget in watch mode that is passed is logged. Answers what was counted, to give back
    /// if the call then fails.
    pub(crate) async fn admit_call(
        &self,
        origin: &Origin<'_>,
        phone: &PhoneNumber,
        fee: Credits,
    ) -> Result<Counted, ServiceError> {
        let tenant = origin.tenant;
        let limits = self.send_limits(origin, phone);
        let budgets = if fee > Credits::ZERO { self.spend_checks(tenant, phone) } else { Vec::new() };
        let at = self.clock.now();
        match self.store.admit(&tenant.id, &limits, &budgets, fee.micros(), at).await? {
            Err(refusal) => Err(self.refused(refusal)),
            Ok(spent) => {
                for (check, spent) in budgets.iter().zip(spent) {
                    if !check.blocking && spent > check.cap {
                        self.metrics.budget_exceeded.with_label_values(&[check.kind.as_str()]).inc();
                    }
                    if !check.blocking && spent > check.cap && spent - fee.micros() <= check.cap {
                        tracing::warn!(
                            tenant = %tenant.id,
                            budget = check.kind.as_str(),
                            country = %check.key,
                            spent_micros = spent,
                            cap_micros = check.cap,
                            "spend passed a watched budget"
                        );
                    }
                }
                Ok(Counted { budgets, fee, at })
            }
        }
    }

    fn refused(&self, refusal: Refusal) -> ServiceError {
        self.metrics.limit_refusals.with_label_values(&[refusal.kind.as_str()]).inc();
        ServiceError::RateLimited(refusal)
    }

    /// Gives back what `admit_call` counted for a call that then failed: to the windows it was
    /// counted in, even if a new one has begun since.
    pub(crate) async fn give_back_spend(&self, tenant: &Tenant, counted: &Counted) {
        if counted.budgets.is_empty() {
            return;
        }
        if let Err(e) = self.store.spend(&tenant.id, &counted.budgets, -counted.fee.micros(), counted.at).await {
            tracing::warn!(error = &e as &dyn std::error::Error, "could not give back a failed call's spend");
        }
    }
}

/// One limit or budget as it stands for a given call, and what it would do to it now.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LimitExplained {
    #[schema(value_type = crate::domain::LimitKind)]
    pub limit: &'static str,
    /// `rate` per `per` seconds, `burst` at once; for spend budgets `rate` is the cap in
    /// micro-credits a window of `per` seconds.
    pub rate: Rate,
    /// Calls that would pass now (rate limits), or micro-credits spent this window (budgets).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub remaining: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub spent_micros: Option<i64>,
    /// Watch-only budgets never refuse.
    pub blocking: bool,
    /// Seconds to wait, when this one would refuse the call now.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub retry_after: Option<u64>,
}

/// What `POST /admin/v1/tenants/{id}/limits/explain` answers.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Explanation {
    /// Whether a send to the number (from the address, with the token) would pass now.
    pub allowed: bool,
    /// Why not, when it would not.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub reason: Option<String>,
    /// The fee a send would cost (0 for the tenant's own number).
    pub fee: Credits,
    pub limits: Vec<LimitExplained>,
}

impl Services {
    /// Which limits and budgets apply to a send to `phone` (from `client`, with the token
    /// `token_id` when given) and where each stands, without counting anything.
    pub async fn explain_limits(
        &self,
        tenant: &crate::domain::TenantId,
        phone: &PhoneNumber,
        client: Option<std::net::IpAddr>,
        token_id: Option<String>,
    ) -> Result<Explanation, super::TenantError> {
        let tenant = self.store.tenant(tenant).await?.ok_or(super::TenantError::NotFound)?;
        let origin = Origin { tenant: &tenant, token_id: token_id.as_deref(), client };
        let fee = self.fee(&tenant, phone);
        let mut explained = Vec::new();
        let mut reason = None;
        if self.admit_country(&tenant, phone).is_err() {
            reason = Some(format!("the tenant does not send to country code {}", phone.country_code()));
        }
        let now = self.clock.now();
        for check in self.send_limits(&origin, phone) {
            let kind = check.kind;
            let rate = check.rate;
            let (remaining, retry_after) = match self.store.limit(&tenant.id, &[check], now, false).await? {
                Ok(states) => (states.first().map(|s| s.remaining + 1), None),
                Err(refusal) => (Some(0), Some(refusal.retry_after_secs())),
            };
            if let (Some(secs), None) = (retry_after, &reason) {
                reason = Some(format!("the {} limit: FLOOD_WAIT_{secs}", kind.as_str()));
            }
            let entry = LimitExplained {
                limit: kind.as_str(),
                rate,
                remaining,
                spent_micros: None,
                blocking: true,
                retry_after,
            };
            explained.push(entry);
        }
        let spend = self.spend_checks(&tenant, phone);
        let spent = self.store.spend(&tenant.id, &spend, 0, now).await?.unwrap_or_default();
        for (check, spent) in spend.iter().zip(spent) {
            let over = fee > Credits::ZERO && spent + fee.micros() > check.cap;
            let retry_after = (over && check.blocking).then(|| check.refusal(now).retry_after_secs());
            if let (Some(secs), None) = (retry_after, &reason) {
                reason = Some(format!("the {} budget: FLOOD_WAIT_{secs}", check.kind.as_str()));
            }
            explained.push(LimitExplained {
                limit: check.kind.as_str(),
                rate: check.refusal(now).rate,
                remaining: None,
                spent_micros: Some(spent),
                blocking: check.blocking,
                retry_after,
            });
        }
        Ok(Explanation { allowed: reason.is_none(), reason, fee, limits: explained })
    }
}
