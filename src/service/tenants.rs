//! Operator use cases: tenants, their settings, money and tokens.

use super::Services;
use crate::callbacks::sign::SigningKey;
use crate::domain::{
    Credits, LedgerEntry, LedgerKind, PhoneNumber, SenderRegistration, SenderUsername, Tenant, TenantId,
    TenantSettings, TokenRecord,
};
use crate::secrets::ApiToken;
use crate::store::{AdjustOutcome, StoreError};
use ipnet::IpNet;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum TenantError {
    #[error("no such tenant")]
    NotFound,
    #[error("no such token")]
    TokenNotFound,
    #[error("{0}")]
    Invalid(&'static str),
    #[error("the balance would go below zero (it is {balance})")]
    WouldGoNegative { balance: Credits },
    #[error("the balance would pass the largest one held, 1,000,000,000 credits (it is {balance})")]
    WouldPassMax { balance: Credits },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct NewTenant {
    pub name: String,
    pub balance: Credits,
    pub settings: TenantSettings,
}

/// A partial update of settings: `None` leaves a value alone, `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct SettingsPatch {
    pub price: Option<Option<Credits>>,
    pub max_attempts: Option<Option<u8>>,
    pub phone_number: Option<Option<PhoneNumber>>,
    pub templates: Option<std::collections::BTreeMap<String, String>>,
    /// Replaces the tenant's own rate limits (empty: the server's apply).
    pub limits: Option<std::collections::BTreeMap<crate::domain::LimitKind, crate::domain::Rate>>,
    pub countries: Option<Option<crate::domain::CountryRule>>,
    pub daily_spend_cap: Option<Option<Credits>>,
    pub delivery_weight: Option<Option<u16>>,
}

impl Services {
    /// Creates a tenant with its first token; the token's text is returned once, here.
    pub async fn create_tenant(&self, new: NewTenant) -> Result<(Tenant, ApiToken, TokenRecord), TenantError> {
        let name = new.name.trim();
        if name.is_empty() || name.len() > 128 {
            return Err(TenantError::Invalid("name must be 1 to 128 bytes"));
        }
        if new.balance < Credits::ZERO {
            return Err(TenantError::Invalid("balance must not be negative"));
        }
        validate_settings(&new.settings)?;
        let tenant = Tenant {
            id: TenantId::generate(),
            name: name.to_owned(),
            balance: new.balance,
            settings: new.settings,
            created_at: self.clock.now(),
        };
        let (token, record) = self.new_token(&tenant.id, Vec::new());
        self.store.create_tenant(&tenant, &record).await?;
        tracing::info!(tenant = %tenant.id, "tenant created");
        Ok((tenant, token, record))
    }

    pub async fn tenants(&self) -> Result<Vec<Tenant>, TenantError> {
        Ok(self.store.tenants().await?)
    }

    pub async fn tenant(&self, id: &TenantId) -> Result<Tenant, TenantError> {
        self.store.tenant(id).await?.ok_or(TenantError::NotFound)
    }

    /// Read, change, write: two operators editing one tenant at once may overwrite each
    /// other's change (last write wins); money is never touched here.
    pub async fn update_settings(&self, id: &TenantId, patch: SettingsPatch) -> Result<Tenant, TenantError> {
        self.edit_settings(id, |s| {
            if let Some(price) = patch.price {
                s.price = price;
            }
            if let Some(max) = patch.max_attempts {
                s.max_attempts = max;
            }
            if let Some(phone) = patch.phone_number {
                s.phone_number = phone;
            }
            if let Some(limits) = patch.limits.clone() {
                s.limits = limits;
            }
            if let Some(countries) = patch.countries.clone() {
                s.countries = countries;
            }
            if let Some(cap) = patch.daily_spend_cap {
                s.daily_spend_cap = cap;
            }
            if let Some(weight) = patch.delivery_weight {
                s.delivery_weight = weight;
            }
            if let Some(templates) = patch.templates {
                s.templates = templates;
            }
        })
        .await
    }

    pub async fn put_sender(
        &self,
        id: &TenantId,
        username: &SenderUsername,
        verified: bool,
    ) -> Result<Tenant, TenantError> {
        self.edit_settings(id, |s| {
            s.senders.insert(username.as_str().to_owned(), SenderRegistration { verified });
        })
        .await
    }

    pub async fn remove_sender(&self, id: &TenantId, username: &SenderUsername) -> Result<Tenant, TenantError> {
        self.edit_settings(id, |s| {
            s.senders.remove(username.as_str());
        })
        .await
    }

    async fn edit_settings(
        &self,
        id: &TenantId,
        edit: impl FnOnce(&mut TenantSettings),
    ) -> Result<Tenant, TenantError> {
        let mut tenant = self.tenant(id).await?;
        edit(&mut tenant.settings);
        validate_settings(&tenant.settings)?;
        if !self.store.set_settings(id, &tenant.settings).await? {
            return Err(TenantError::NotFound);
        }
        self.callers.forget_tenant(id);
        Ok(tenant)
    }

    /// Adds (or, with a negative amount, takes) credit; never below zero.
    pub async fn add_credit(
        &self,
        id: &TenantId,
        amount: Credits,
        note: Option<String>,
    ) -> Result<Credits, TenantError> {
        if amount == Credits::ZERO {
            return Err(TenantError::Invalid("amount must not be zero"));
        }
        let entry = LedgerEntry {
            at: self.clock.now(),
            kind: LedgerKind::Credit,
            amount,
            balance_after: Credits::ZERO,
            request_id: None,
            note: note.filter(|n| !n.is_empty()).map(|n| n.chars().take(256).collect()),
        };
        let outcome = self.store.adjust_balance(id, &entry).await?;
        self.callers.forget_tenant(id);
        match outcome {
            AdjustOutcome::Applied { balance } => Ok(balance),
            AdjustOutcome::WouldGoNegative { balance } => Err(TenantError::WouldGoNegative { balance }),
            AdjustOutcome::WouldPassMax { balance } => Err(TenantError::WouldPassMax { balance }),
            AdjustOutcome::TenantNotFound => Err(TenantError::NotFound),
        }
    }

    pub async fn ledger(&self, id: &TenantId, limit: usize) -> Result<Vec<LedgerEntry>, TenantError> {
        self.tenant(id).await?;
        Ok(self.store.ledger(id, limit).await?)
    }

    pub async fn tokens(&self, id: &TenantId) -> Result<Vec<TokenRecord>, TenantError> {
        self.tenant(id).await?;
        Ok(self.store.tokens(id).await?)
    }

    pub async fn issue_token(
        &self,
        id: &TenantId,
        ip_allow: Vec<IpNet>,
    ) -> Result<(ApiToken, TokenRecord), TenantError> {
        self.tenant(id).await?;
        let (token, record) = self.new_token(id, ip_allow);
        self.store.put_token(&record, self.clock.now()).await?;
        Ok((token, record))
    }

    /// Issues a successor with the same address list; the old token keeps working for
    /// `overlap` (default `tokens.rotation_overlap`), so clients can switch without downtime.
    pub async fn rotate_token(
        &self,
        id: &TenantId,
        token_id: &str,
        overlap: Option<Duration>,
    ) -> Result<(ApiToken, TokenRecord, TokenRecord), TenantError> {
        let mut old = self.token(id, token_id).await?;
        let now = self.clock.now();
        if !old.is_live(now) {
            return Err(TenantError::Invalid("the token is already revoked or expired"));
        }
        let (token, record) = self.new_token(id, old.ip_allow.clone());
        self.store.put_token(&record, now).await?;
        let overlap = overlap.unwrap_or(self.settings.tokens.rotation_overlap);
        let ends = now.plus(overlap);
        old.expires_at = Some(old.expires_at.map_or(ends, |at| at.min(ends)));
        self.store.put_token(&old, now).await?;
        self.callers.forget_tenant(id);
        Ok((token, record, old))
    }

    pub async fn revoke_token(&self, id: &TenantId, token_id: &str) -> Result<TokenRecord, TenantError> {
        let mut token = self.token(id, token_id).await?;
        let now = self.clock.now();
        token.revoked_at.get_or_insert(now);
        self.store.put_token(&token, now).await?;
        self.callers.forget_tenant(id);
        Ok(token)
    }

    pub async fn set_token_ip_allow(
        &self,
        id: &TenantId,
        token_id: &str,
        ip_allow: Vec<IpNet>,
    ) -> Result<TokenRecord, TenantError> {
        let mut token = self.token(id, token_id).await?;
        token.ip_allow = ip_allow;
        self.store.put_token(&token, self.clock.now()).await?;
        self.callers.forget_tenant(id);
        Ok(token)
    }

    async fn token(&self, id: &TenantId, token_id: &str) -> Result<TokenRecord, TenantError> {
        self.tokens(id).await?.into_iter().find(|t| t.id == token_id).ok_or(TenantError::TokenNotFound)
    }

    fn new_token(&self, tenant: &TenantId, ip_allow: Vec<IpNet>) -> (ApiToken, TokenRecord) {
        let token = ApiToken::generate();
        let record = TokenRecord {
            id: format!("tok_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]),
            tenant: tenant.clone(),
            lookup_key: self.token_keys.lookup_key(&token),
            signing_key: SigningKey::for_token(token.expose()).to_hex(),
            created_at: self.clock.now(),
            expires_at: None,
            revoked_at: None,
            ip_allow,
        };
        (token, record)
    }
}

fn validate_settings(s: &TenantSettings) -> Result<(), TenantError> {
    if s.max_attempts.is_some_and(|m| !TenantSettings::MAX_ATTEMPTS_RANGE.contains(&m)) {
        return Err(TenantError::Invalid("max_attempts must be from 1 to 10"));
    }
    if s.delivery_weight.is_some_and(|w| !crate::domain::turns::WEIGHT_RANGE.contains(&w)) {
        return Err(TenantError::Invalid("delivery_weight must be from 1 to 1000"));
    }
    if s.price.is_some_and(|p| p < Credits::ZERO) {
        return Err(TenantError::Invalid("price must not be negative"));
    }
    if s.daily_spend_cap.is_some_and(|c| c < Credits::ZERO) {
        return Err(TenantError::Invalid("daily_spend_cap must not be negative"));
    }
    if let Some(crate::domain::CountryRule::Allow(codes) | crate::domain::CountryRule::Block(codes)) = &s.countries {
        if codes.len() > 300 || codes.iter().any(|c| !(1..=999).contains(c)) {
            return Err(TenantError::Invalid("countries are calling codes from 1 to 999 (at most 300)"));
        }
    }
    for rate in s.limits.values() {
        if !rate.is_off() && (!(1..=31_536_000).contains(&rate.per) || rate.burst == 0) {
            return Err(TenantError::Invalid(
                "a limit is {rate, per, burst}: per from 1 s to a year, burst at least 1",
            ));
        }
    }
    for (lang, text) in &s.templates {
        if !(2..=8).contains(&lang.len()) || !lang.bytes().all(|b| b.is_ascii_lowercase()) {
            return Err(TenantError::Invalid("template languages are codes such as \"en\" or \"pt\""));
        }
        if !text.contains("{code}") || text.chars().count() > 512 {
            return Err(TenantError::Invalid("a template contains {code} and is at most 512 characters"));
        }
    }
    Ok(())
}
