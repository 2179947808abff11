//! Settings: the compiled-in defaults, then `--config FILE`, then `VERIGRAM__…` variables.
//! `load` checks everything and reports every problem at once, each named by its key. Each
//! section lives in its own module with its own checks; the checks that join two sections are
//! here.

mod billing;
mod callbacks;
mod codes;
mod delivery;
mod duration;
mod limits;
mod sandbox;
mod server;
mod store;

pub use billing::BillingSettings;
pub use callbacks::{CallbackSettings, HOST_WAIT};
pub use codes::{Argon2Settings, CodeSettings, HashKind, TokenSettings, PEPPER_MIN_BYTES};
pub use delivery::{DeliverySettings, PoolSettings, SenderKind, SenderSettings, TemplateSettings};
pub use limits::{LimitSettings, SpendBudget, SpendMode};
pub use sandbox::{AccountBehaviour, RecipientBehaviour, SandboxSettings};
pub use server::{
    AdminSettings, ApiSettings, ErrorStatus, LogFormat, LogSettings, MetricsSettings, Role, ServerSettings,
    ADMIN_TOKEN_MIN_CHARS,
};
pub use store::{cluster_seeds, redact_url, StoreKind, StoreSettings, CLUSTER_SCHEME};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::SecretString;
use serde::Deserialize;
use std::fmt;
use std::path::Path;

pub const DEFAULT_CONFIG: &str = include_str!("../../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    pub api: ApiSettings,
    pub admin: AdminSettings,
    pub store: StoreSettings,
    pub codes: CodeSettings,
    pub billing: BillingSettings,
    pub tokens: TokenSettings,
    pub sender: SenderSettings,
    pub pool: PoolSettings,
    pub sandbox: SandboxSettings,
    pub delivery: DeliverySettings,
    pub templates: TemplateSettings,
    pub callbacks: CallbackSettings,
    pub limits: LimitSettings,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
}

/// Everything wrong with a configuration, one line per key.
#[derive(Debug)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for problem in &self.0 {
            writeln!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// The problems found so far, one line per key.
#[derive(Debug, Default)]
pub(crate) struct Problems(Vec<String>);

impl Problems {
    pub(crate) fn check(&mut self, ok: bool, problem: impl Into<String>) {
        if !ok {
            self.0.push(problem.into());
        }
    }

    pub(crate) fn push(&mut self, problem: impl Into<String>) {
        self.0.push(problem.into());
    }
}

impl Settings {
    /// Loads defaults ← `file` ← environment (variables `VERIGRAM__SECTION__KEY`), then checks.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_from(file, Env::prefixed("VERIGRAM__").split("__"))
    }

    /// As `load`, with the environment given explicitly (tests build settings without touching
    /// the process environment).
    pub fn load_from(file: Option<&Path>, env: Env) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Toml::string(DEFAULT_CONFIG));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(ConfigError(vec![format!("--config: no such file: {}", path.display())]));
            }
            figment = figment.merge(Toml::file(path));
        }
        let settings: Settings = figment
            .merge(env)
            .extract()
            .map_err(|e| ConfigError(e.into_iter().map(|e| describe_figment_error(&e)).collect()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Builds settings from TOML text over the defaults, without the environment.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let settings: Settings = Figment::from(Toml::string(DEFAULT_CONFIG))
            .merge(Toml::string(text))
            .extract()
            .map_err(|e| ConfigError(e.into_iter().map(|e| describe_figment_error(&e)).collect()))?;
        settings.validate()?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut p = Problems::default();
        self.server.validate(&mut p);
        self.admin.validate(&mut p);
        self.store.validate(&mut p);
        self.codes.validate(&mut p);
        self.billing.validate(&mut p);
        self.sender.validate(&mut p);
        self.pool.validate(&mut p);
        self.sandbox.validate(&mut p);
        self.templates.validate(&mut p);
        self.delivery.validate(&mut p);
        self.limits.validate(&mut p);
        self.callbacks.validate(&mut p);
        self.metrics.validate(&mut p);
        self.log.validate(&mut p);
        self.validate_across(&mut p);
        if p.0.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(p.0))
        }
    }

    /// The checks that join two sections.
    fn validate_across(&self, p: &mut Problems) {
        // A send is three calls (resolve, send, tidy up); a lease shorter than that would end
        // while the message is on its way, and another worker would take the job and hand it
        // to the same account again (refused as a duplicate `random_id`, but a wasted call).
        p.check(
            self.sender.kind != SenderKind::Telegram
                || self.sender.call_timeout.saturating_mul(3) < self.delivery.lease,
            "delivery.lease: must be longer than three Telegram calls (3 × sender.call_timeout)",
        );
        // A report's attempt (its wait for a slot of the host, then the request) must end
        // within its task's lease, or another worker would send it too.
        p.check(
            self.callbacks.timeout_ms.saturating_add(HOST_WAIT) < self.delivery.task_lease,
            "callbacks.timeout_ms: a report attempt (5 s of waiting for its host, then this) must end within delivery.task_lease",
        );
        if matches!(self.codes.pepper(), Ok(None)) && self.store.kind() == Some(StoreKind::Redis) {
            p.push(
                "codes.pepper: required with a Redis store (hashes must survive restarts): set VERIGRAM__CODES__PEPPER or codes.pepper_file",
            );
        }
    }

    /// A one-line description without secrets, for start-up logs and `config check`.
    pub fn summary(&self) -> String {
        format!(
            "role={:?} listen={} store={} codes.hash={:?} sender={:?} admin_api={} error_status={:?}",
            self.server.role,
            self.server.listen,
            redact_url(&self.store.url),
            self.codes.hash,
            self.sender.kind,
            if matches!(self.admin.token(), Ok(Some(_))) { "on" } else { "off" },
            self.api.error_status,
        )
    }
}

/// Reads a secret from `<key>_file` (preferred) or `<key>`; empty means unset.
fn secret_value(inline: &SecretString, file: &str, key: &str) -> Result<Option<SecretString>, String> {
    use secrecy::ExposeSecret;
    if !file.is_empty() {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{key}_file: cannot read {file}: {e}"))?;
        let text = text.trim_end_matches(['\r', '\n']);
        return Ok((!text.is_empty()).then(|| SecretString::from(text)));
    }
    let inline = inline.expose_secret();
    Ok((!inline.is_empty()).then(|| SecretString::from(inline)))
}

fn describe_figment_error(e: &figment::Error) -> String {
    let key = e.path.join(".");
    let kind = match &e.kind {
        // The path already ends with the unknown key's name.
        figment::error::Kind::UnknownField(name, _) => {
            return format!("{}: unknown key", if key.is_empty() { name } else { &key });
        }
        kind => kind.to_string(),
    };
    if key.is_empty() {
        kind
    } else {
        format!("{key}: {kind}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Credits, PhoneNumber};
    use std::time::Duration;

    #[test]
    fn defaults_load() {
        let s = Settings::load_from(None, Env::prefixed("VERIGRAM_TEST_UNSET__").split("__")).unwrap();
        assert_eq!(s.store.kind(), Some(StoreKind::Memory));
        assert_eq!(s.codes.default_validity, Duration::from_secs(600));
        assert_eq!(s.codes.max_attempts, 5);
        assert_eq!(s.billing.price, Credits::from_micros(10_000));
        assert_eq!(s.api.error_status, ErrorStatus::Ok);
        assert!(s.admin.token().unwrap().is_none());
    }

    #[test]
    fn durations_take_a_count_of_the_keys_unit_or_a_string_with_its_own() {
        let s =
            Settings::from_toml("[store]\ntimeout_ms = \"2s\"\n[delivery]\nlease = \"2m\"\nretry_max = 600").unwrap();
        assert_eq!(s.store.timeout_ms, Duration::from_millis(2000));
        assert_eq!(s.delivery.lease, Duration::from_secs(120));
        assert_eq!(s.delivery.retry_max, Duration::from_secs(600));
        let e = Settings::from_toml("[delivery]\nlease = \"soon\"").unwrap_err();
        assert!(e.to_string().contains("delivery.lease"), "{e}");
    }

    #[test]
    fn a_tls_redis_url_is_refused_with_what_to_do_instead() {
        let e = Settings::from_toml("[store]\nurl = \"rediss://redis.example:6380/0\"").unwrap_err();
        assert!(e.to_string().contains("rediss:// (TLS) is not supported"), "{e}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = Settings::from_toml("[codes]\npeper = \"x\"").unwrap_err();
        assert!(e.to_string().contains("codes.peper: unknown key"), "{e}");
        let e = Settings::from_toml("[nope]\nx = 1").unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
    }

    #[test]
    fn invalid_values_are_named_all_at_once() {
        let e = Settings::from_toml("[codes]\nmax_attempts = 11\ndefault_validity = 5\n[server]\nbody_limit = 1")
            .unwrap_err();
        let text = e.to_string();
        for key in ["codes.max_attempts", "codes.default_validity", "server.body_limit"] {
            assert!(text.contains(key), "{text}");
        }
        let e = Settings::from_toml("[codes]\nhash = \"md5\"").unwrap_err();
        assert!(e.to_string().contains("codes.hash"), "{e}");
        let e = Settings::from_toml("[server]\nlisten = \"nowhere\"").unwrap_err();
        assert!(e.to_string().contains("server.listen"), "{e}");
    }

    #[test]
    fn a_telegram_send_must_fit_in_a_job_lease() {
        let short = "[sender]\nkind = \"telegram\"\ncall_timeout = 20\n[delivery]\nlease = 60";
        let e = Settings::from_toml(short).unwrap_err();
        assert!(e.to_string().contains("delivery.lease: must be longer than three Telegram calls"), "{e}");
        assert!(Settings::from_toml("[sender]\nkind = \"telegram\"\ncall_timeout = 19\n[delivery]\nlease = 60").is_ok());
        assert!(Settings::from_toml("[sender]\ncall_timeout = 20\n[delivery]\nlease = 60").is_ok(), "sandbox");
    }

    #[test]
    fn a_report_attempt_must_fit_in_its_task_lease() {
        let e = Settings::from_toml("[callbacks]\ntimeout_ms = 25000\n[delivery]\ntask_lease = 30").unwrap_err();
        assert!(e.to_string().contains("callbacks.timeout_ms: a report attempt"), "{e}");
        assert!(Settings::from_toml("[callbacks]\ntimeout_ms = 24999\n[delivery]\ntask_lease = 30").is_ok());
    }

    #[test]
    fn the_admin_token_is_at_least_32_characters_and_says_why() {
        let e = Settings::from_toml(&format!("[admin]\ntoken = \"{}\"", "a".repeat(31))).unwrap_err();
        assert!(e.to_string().contains("admin.token: must be at least 32 characters: it guards"), "{e}");
        let s = Settings::from_toml(&format!("[admin]\ntoken = \"{}\"", "a".repeat(32))).unwrap();
        assert!(s.admin.token().unwrap().is_some());
    }

    #[test]
    fn redis_needs_a_pepper() {
        let e = Settings::from_toml("[store]\nurl = \"redis://127.0.0.1:6379\"").unwrap_err();
        assert!(e.to_string().contains("codes.pepper"), "{e}");
        let ok = Settings::from_toml(&format!(
            "[store]\nurl = \"redis://127.0.0.1:6379\"\n[codes]\npepper = \"{}\"",
            "p".repeat(32)
        ));
        assert!(ok.is_ok());
        let e = Settings::from_toml("[codes]\npepper = \"short\"").unwrap_err();
        assert!(e.to_string().contains("codes.pepper: must be at least 32 bytes"), "{e}");
    }

    #[test]
    fn country_prices() {
        let s = Settings::from_toml("[billing.country_prices]\n\"44\" = 0.02").unwrap();
        assert_eq!(s.billing.price_for(&PhoneNumber::parse("447911123456").unwrap()), Credits::from_micros(20_000));
        assert_eq!(s.billing.price_for(&PhoneNumber::parse("15551234567").unwrap()), Credits::from_micros(10_000));
        assert!(Settings::from_toml("[billing.country_prices]\n\"uk\" = 0.02").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::from_toml(&format!(
            "[codes]\npepper = \"{}\"\n[admin]\ntoken = \"{}\"",
            "p".repeat(32),
            "a".repeat(40)
        ))
        .unwrap();
        let dbg = format!("{s:?} {}", s.summary());
        assert!(!dbg.contains(&"p".repeat(32)) && !dbg.contains(&"a".repeat(20)), "{dbg}");
        assert_eq!(redact_url("redis://:hunter2@host:6379"), "redis://:***@host:6379");
    }
}
