//! Which rate limits a call counts against, decided before anything is hashed, charged,
//! queued or sent: a refused call costs nothing and changes nothing else.

use super::{Caller, ServiceError, Services};
use crate::domain::{LimitCheck, LimitKind, PhoneNumber, Rate};

impl Services {
    /// The rate in force for `kind` for this tenant: its own override, else the server's.
    fn rate_for(&self, caller: &Caller, kind: LimitKind) -> Rate {
        caller.tenant.settings.limits.get(&kind).copied().unwrap_or_else(|| self.settings.limits.rate(kind))
    }

    /// The limits a send (or a `checkSendAbility`) to `phone` counts against. Sends to the
    /// tenant's own number count only against the number's own limit, so tenants can test
    /// freely.
    pub(crate) fn send_limits(&self, caller: &Caller, phone: &PhoneNumber) -> Vec<LimitCheck> {
        let own = caller.tenant.settings.is_own_number(phone);
        let mut keys = vec![(LimitKind::Phone, self.token_keys.limit_key(&format!("phone:{}", phone.digits())))];
        if !own {
            keys.push((LimitKind::Tenant, "all".into()));
            keys.push((LimitKind::TenantDaily, "all".into()));
            keys.push((LimitKind::Token, caller.token.id.clone()));
            keys.push((LimitKind::Country, phone.country_code().to_string()));
            if let Some(ip) = caller.client {
                keys.push((LimitKind::Ip, self.token_keys.limit_key(&format!("ip:{ip}"))));
            }
        }
        self.checks(caller, keys)
    }

    /// The budget of wrong codes for `phone` (over all its requests).
    pub(crate) fn wrong_check_limit(&self, caller: &Caller, phone: &PhoneNumber) -> Vec<LimitCheck> {
        let key = self.token_keys.limit_key(&format!("phone:{}", phone.digits()));
        self.checks(caller, vec![(LimitKind::WrongChecks, key)])
    }

    fn checks(&self, caller: &Caller, keys: Vec<(LimitKind, String)>) -> Vec<LimitCheck> {
        keys.into_iter()
            .map(|(kind, key)| LimitCheck { kind, key, rate: self.rate_for(caller, kind) })
            .filter(|c| !c.rate.is_off())
            .collect()
    }

    /// Counts the call against `checks`, or refuses it with the limit that fired (and then
    /// nothing is counted). With `consume = false` it only looks.
    pub(crate) async fn admit(
        &self,
        caller: &Caller,
        checks: &[LimitCheck],
        consume: bool,
    ) -> Result<(), ServiceError> {
        match self.store.limit(&caller.tenant.id, checks, self.clock.now(), consume).await? {
            Ok(_) => Ok(()),
            Err(refusal) => Err(ServiceError::RateLimited(refusal)),
        }
    }
}
