//! Rate limits (GCRA, per tenant, token, number, country and client address), the wrong-code
//! budget, the spending budget per destination country, and the proxies believed.

use super::Problems;
use crate::domain::{Credits, LimitKind, Rate};
use serde::Deserialize;

/// Rate limits and budgets (see `domain::limits`); a `rate` of 0 switches one off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitSettings {
    pub tenant: Rate,
    pub tenant_daily: Rate,
    pub token: Rate,
    pub phone: Rate,
    pub country: Rate,
    pub ip: Rate,
    pub wrong_checks: Rate,
    /// Failed authentications per client address, per process (`service::throttle`).
    pub auth_failures: Rate,
    /// Proxies whose `X-Forwarded-For` is believed (addresses or CIDR blocks).
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Spend per destination country per hour, each country on its own (0: off).
    pub country_hourly_spend: SpendBudget,
}

/// A spending cap in credits a window; `watch` records and warns instead of refusing.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpendBudget {
    pub cap: Credits,
    pub mode: SpendMode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendMode {
    Watch,
    Block,
}

impl LimitSettings {
    /// The limits that are rates (spending is budgeted in credits: `daily_spend`,
    /// `country_hourly_spend`).
    const RATES: [(LimitKind, &'static str); 7] = [
        (LimitKind::Tenant, "limits.tenant"),
        (LimitKind::TenantDaily, "limits.tenant_daily"),
        (LimitKind::Token, "limits.token"),
        (LimitKind::Phone, "limits.phone"),
        (LimitKind::Country, "limits.country"),
        (LimitKind::Ip, "limits.ip"),
        (LimitKind::WrongChecks, "limits.wrong_checks"),
    ];

    pub fn rate(&self, kind: LimitKind) -> Rate {
        match kind {
            LimitKind::Tenant => self.tenant,
            LimitKind::TenantDaily => self.tenant_daily,
            LimitKind::Token => self.token,
            LimitKind::Phone => self.phone,
            LimitKind::Country => self.country,
            LimitKind::Ip => self.ip,
            LimitKind::WrongChecks => self.wrong_checks,
            LimitKind::AuthFailures => self.auth_failures,
            // Spending is budgeted in credits, not rates (`daily_spend`, `country_hourly_spend`).
            LimitKind::DailySpend | LimitKind::CountrySpend => Rate { rate: 0, per: 1, burst: 1 },
        }
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        for (kind, key) in Self::RATES {
            let r = self.rate(kind);
            p.check(r.is_off() || r.is_sane(), format!("{key}: per must be 1 s to a year and burst 1 to 100,000"));
        }
        let r = self.auth_failures;
        p.check(r.is_off() || r.is_sane(), "limits.auth_failures: per must be 1 s to a year and burst 1 to 100,000");
        p.check(
            self.country_hourly_spend.cap >= Credits::ZERO,
            "limits.country_hourly_spend.cap: must not be negative",
        );
    }
}
