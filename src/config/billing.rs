//! What a message costs: the default price and the prices per destination country.

use super::Problems;
use crate::domain::{Credits, PhoneNumber};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingSettings {
    pub price: Credits,
    pub country_prices: BTreeMap<String, Credits>,
}

impl BillingSettings {
    /// The price of one message to `phone` when the tenant has no price of its own.
    pub fn price_for(&self, phone: &PhoneNumber) -> Credits {
        self.country_prices.get(&phone.country_code().to_string()).copied().unwrap_or(self.price)
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        p.check(self.price >= Credits::ZERO, "billing.price: must not be negative");
        for (code, price) in &self.country_prices {
            let valid_code =
                (1..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()) && !code.starts_with('0');
            p.check(
                valid_code,
                format!("billing.country_prices.{code}: key must be a country calling code such as \"44\""),
            );
            p.check(*price >= Credits::ZERO, format!("billing.country_prices.{code}: must not be negative"));
        }
    }
}
