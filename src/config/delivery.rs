//! How messages go out: the sender (sandbox or Telegram), the pacing of sender accounts, the
//! delivery workers' batches, leases and retries, and the message templates.

use super::Problems;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    Sandbox,
    Telegram,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderSettings {
    pub kind: SenderKind,
    /// Seconds a call to Telegram may take before it counts as failed (a transient failure).
    #[serde(with = "super::duration::seconds")]
    pub call_timeout: Duration,
    /// Development only: accept accounts of a local `verigram-dev-telegram` peer (on a
    /// loopback address) through the admin API.
    pub dev_peers: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSettings {
    #[serde(with = "super::duration::millis")]
    pub interval_ms: Duration,
    pub daily_cap: u32,
    #[serde(with = "super::duration::seconds")]
    pub lease: Duration,
}

/// Message texts by language, and the language of each country calling code.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSettings {
    pub text: BTreeMap<String, String>,
    pub by_country: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliverySettings {
    pub workers: usize,
    pub batch: usize,
    #[serde(with = "super::duration::seconds")]
    pub lease: Duration,
    #[serde(with = "super::duration::seconds")]
    pub task_lease: Duration,
    #[serde(with = "super::duration::seconds")]
    pub retry_initial: Duration,
    #[serde(with = "super::duration::seconds")]
    pub retry_max: Duration,
    #[serde(with = "super::duration::millis")]
    pub poll_interval_ms: Duration,
    #[serde(with = "super::duration::seconds")]
    pub repair_interval: Duration,
}

impl SenderSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        p.check(self.call_timeout >= Duration::from_secs(1), "sender.call_timeout: must be at least 1 second");
    }
}

impl PoolSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        p.check(self.daily_cap >= 1, "pool.daily_cap: must be at least 1");
        p.check(self.lease >= Duration::from_secs(1), "pool.lease: must be at least 1 second");
    }
}

impl TemplateSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        p.check(self.text.contains_key("en"), "templates.text.en: the English template is required (the fallback)");
        for (lang, text) in &self.text {
            p.check(text.contains("{code}"), format!("templates.text.{lang}: must contain {{code}}"));
        }
        for (code, lang) in &self.by_country {
            p.check(
                self.text.contains_key(lang),
                format!("templates.by_country.{code}: no template for language {lang:?}"),
            );
        }
    }
}

impl DeliverySettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        p.check(self.workers <= 256, "delivery.workers: at most 256");
        p.check((1..=1000).contains(&self.batch), "delivery.batch: must be from 1 to 1000");
        p.check(self.lease >= Duration::from_secs(1), "delivery.lease: must be at least 1 second");
        p.check(self.task_lease >= Duration::from_secs(1), "delivery.task_lease: must be at least 1 second");
        p.check(
            self.retry_initial >= Duration::from_secs(1) && self.retry_initial <= self.retry_max,
            "delivery.retry_initial: must be from 1 to retry_max",
        );
        p.check(
            (Duration::from_millis(10)..=Duration::from_secs(60)).contains(&self.poll_interval_ms),
            "delivery.poll_interval_ms: must be from 10 to 60000",
        );
        p.check(self.repair_interval >= Duration::from_secs(1), "delivery.repair_interval: must be at least 1 second");
    }
}
