//! Tenants (the businesses that call the API), their settings, tokens and ledger.

use super::{Credits, PhoneNumber, RequestId, SenderUsername, Timestamp};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// A tenant's id: a UUID in its hyphenated text form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a tenant id is a UUID")]
pub struct InvalidTenantId;

impl TenantId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().hyphenated().to_string())
    }

    pub fn parse(input: &str) -> Result<Self, InvalidTenantId> {
        let id = uuid::Uuid::try_parse(input).map_err(|_| InvalidTenantId)?;
        Ok(Self(id.hyphenated().to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    pub balance: Credits,
    pub settings: TenantSettings,
    pub created_at: Timestamp,
}

/// What a tenant may change about how its requests are handled. Absent values fall back to
/// the server's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantSettings {
    /// Price of one message, overriding the server's price table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub price: Option<Credits>,
    /// Wrong codes allowed per request, 1–10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 1, maximum = 10)]
    pub max_attempts: Option<u8>,
    /// The tenant's own number: sends to it are free.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "phone_serde")]
    #[schema(value_type = Option<String>, nullable = false, pattern = "^[1-9][0-9]{7,14}$")]
    pub phone_number: Option<PhoneNumber>,
    /// Channel usernames the tenant may send on behalf of, and whether each is verified.
    #[serde(default)]
    pub senders: BTreeMap<String, SenderRegistration>,
    /// The tenant's own message templates by language (`{service}`, `{code}`), over the server's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub templates: BTreeMap<String, String>,
    /// The tenant's own rate limits, over the server's (`limits.*`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<super::LimitKind, super::Rate>,
    /// Which destination countries (calling codes) the tenant may send to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub countries: Option<CountryRule>,
    /// At most this much spent a day (UTC), across all sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub daily_spend_cap: Option<Credits>,
    /// The tenant's share of the sender pool while several tenants have messages waiting,
    /// 1–1000 (1 when absent): a tenant of weight 3 sends three messages for each one of a
    /// tenant of weight 1. Set by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 1, maximum = 1000)]
    pub delivery_weight: Option<u16>,
}

/// Destination countries by calling code: only these, or all but these.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CountryRule {
    Allow(Vec<u16>),
    Block(Vec<u16>),
}

impl CountryRule {
    pub fn admits(&self, country_code: u16) -> bool {
        match self {
            CountryRule::Allow(codes) => codes.contains(&country_code),
            CountryRule::Block(codes) => !codes.contains(&country_code),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SenderRegistration {
    pub verified: bool,
}

impl TenantSettings {
    pub const MAX_ATTEMPTS_RANGE: std::ops::RangeInclusive<u8> = 1..=10;

    /// What one of the tenant's messages costs it in delivery turns.
    pub fn turn_cost(&self) -> u64 {
        super::turns::cost(self.delivery_weight.unwrap_or(super::turns::DEFAULT_WEIGHT))
    }

    pub fn is_own_number(&self, phone: &PhoneNumber) -> bool {
        self.phone_number.as_ref() == Some(phone)
    }

    pub fn sender(&self, username: &SenderUsername) -> Option<SenderRegistration> {
        self.senders.get(username.as_str()).copied()
    }
}

mod phone_serde {
    use super::PhoneNumber;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(p: &Option<PhoneNumber>, s: S) -> Result<S::Ok, S::Error> {
        match p {
            Some(p) => s.serialize_str(p.digits()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PhoneNumber>, D::Error> {
        Option::<String>::deserialize(d)?.map(|s| PhoneNumber::parse(&s).map_err(serde::de::Error::custom)).transpose()
    }
}

/// One API token's record. The token itself is never stored: `lookup_key` is its keyed hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub tenant: TenantId,
    /// Hex of HMAC-SHA256(server key, token): how a presented token is found.
    pub lookup_key: String,
    /// Hex SHA-256 of the token: the key delivery reports are signed with (spec §4).
    pub signing_key: String,
    pub created_at: Timestamp,
    /// Set when the token was rotated away or revoked: it stops working at this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<Timestamp>,
    /// Client addresses the token may be used from; empty means anywhere.
    #[serde(default)]
    pub ip_allow: Vec<IpNet>,
}

impl TokenRecord {
    /// Neither revoked nor past its end.
    pub fn is_live(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }

    /// Live, and presented from an allowed address.
    pub fn is_usable(&self, now: Timestamp, client: Option<IpAddr>) -> bool {
        let live = self.is_live(now);
        let allowed = self.ip_allow.is_empty()
            || client.is_some_and(|ip| self.ip_allow.iter().any(|net| net.contains(&canonical(ip))));
        live && allowed
    }
}

/// `::ffff:a.b.c.d` (how a dual-stack socket shows an IPv4 client) compared as `a.b.c.d`.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// `charge` (a request's fee), `refund` (a fee returned: not delivered within `ttl`), `credit`
/// (money added or taken by an operator).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LedgerKind {
    /// A request's fee.
    Charge,
    /// A fee returned (message not delivered within `ttl`).
    Refund,
    /// Money added or taken by an operator.
    Credit,
}

/// One line of a tenant's balance history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub at: Timestamp,
    pub kind: LedgerKind,
    /// Signed change of the balance: a charge is negative.
    pub amount: Credits,
    pub balance_after: Credits,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl LedgerEntry {
    pub fn for_request(kind: LedgerKind, at: Timestamp, amount: Credits, id: RequestId) -> Self {
        Self { at, kind, amount, balance_after: Credits::ZERO, request_id: Some(id.to_string()), note: None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(ip_allow: &[&str]) -> TokenRecord {
        TokenRecord {
            id: "tok_1".into(),
            tenant: TenantId::generate(),
            lookup_key: String::new(),
            signing_key: String::new(),
            created_at: Timestamp::from_millis(0),
            expires_at: None,
            revoked_at: None,
            ip_allow: ip_allow.iter().map(|s| s.parse().unwrap()).collect(),
        }
    }

    #[test]
    fn ip_allow_lists() {
        let now = Timestamp::from_millis(1);
        let t = token(&["10.0.0.0/8", "2001:db8::/32"]);
        assert!(t.is_usable(now, Some("10.1.2.3".parse().unwrap())));
        assert!(t.is_usable(now, Some("::ffff:10.1.2.3".parse().unwrap())));
        assert!(t.is_usable(now, Some("2001:db8::5".parse().unwrap())));
        assert!(!t.is_usable(now, Some("11.0.0.1".parse().unwrap())));
        assert!(!t.is_usable(now, None));
        assert!(token(&[]).is_usable(now, None));
    }

    #[test]
    fn expiry_and_revocation() {
        let mut t = token(&[]);
        t.expires_at = Some(Timestamp::from_millis(10));
        assert!(t.is_usable(Timestamp::from_millis(9), None));
        assert!(!t.is_usable(Timestamp::from_millis(10), None));
        t.expires_at = None;
        t.revoked_at = Some(Timestamp::from_millis(5));
        assert!(!t.is_usable(Timestamp::from_millis(1), None));
    }

    #[test]
    fn tenant_ids() {
        let id = TenantId::generate();
        assert_eq!(TenantId::parse(id.as_str()).unwrap(), id);
        assert!(TenantId::parse("{t:x}").is_err());
        assert!(TenantId::parse("../x").is_err());
    }
}
