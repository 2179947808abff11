//! Settings: the compiled-in defaults, then `--config FILE`, then `VERIGRAM__…` variables.
//! `load` checks everything and reports every problem at once, each named by its key.

use crate::domain::{CallbackPolicy, Credits, LimitKind, PhoneNumber, Rate, Ttl};
use crate::secrets::{Argon2Params, HashScheme, Pepper};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub const DEFAULT_CONFIG: &str = include_str!("../config/default.toml");

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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub body_limit: usize,
    pub workers: usize,
    pub role: Role,
    /// Seconds a stopping process gives requests in flight and jobs in hand.
    pub shutdown_grace: u64,
}

/// What a process does: serve the API, run delivery workers, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    All,
    Api,
    Worker,
}

impl Role {
    pub fn serves_api(self) -> bool {
        self != Role::Worker
    }

    pub fn runs_workers(self) -> bool {
        self != Role::Api
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorStatus {
    /// Every API answer is HTTP 200.
    Ok,
    /// Errors answer 400/401/402/404/429.
    Semantic,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSettings {
    pub error_status: ErrorStatus,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    pub token: String,
    pub token_file: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    pub url: String,
    pub timeout_ms: u64,
    pub request_retention: u64,
    pub ledger_limit: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HashKind {
    #[serde(rename = "argon2id")]
    Argon2id,
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeSettings {
    pub hash: HashKind,
    pub pepper: String,
    pub pepper_file: String,
    pub default_validity: u64,
    pub max_attempts: u8,
    pub hash_concurrency: usize,
    pub argon2: Argon2Settings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillingSettings {
    pub price: Credits,
    pub country_prices: BTreeMap<String, Credits>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    pub rotation_overlap: u64,
    /// Milliseconds a process keeps a token and its tenant after reading them (0: off).
    pub cache_ms: u64,
}

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
    pub call_timeout: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSettings {
    pub interval_ms: u64,
    pub daily_cap: u32,
    pub lease: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    pub accounts: Vec<String>,
    pub recipients: BTreeMap<String, RecipientBehaviour>,
    pub account_behaviour: BTreeMap<String, AccountBehaviour>,
}

/// How a sandbox recipient behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RecipientBehaviour {
    NotOnTelegram,
    PrivacyRestricted,
    Slow {
        seconds: u64,
    },
    /// Reads each message this long after it arrives (otherwise messages stay unread until
    /// someone marks them read in the inbox).
    ReadsAfter {
        seconds: u64,
    },
}

/// How a simulated sender account answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum AccountBehaviour {
    FloodWait {
        seconds: u64,
    },
    PeerFlood,
    Banned,
    /// Every send fails on the way (like a dropped connection): retried with backoff.
    NetworkDown,
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
    pub lease: u64,
    pub task_lease: u64,
    pub retry_initial: u64,
    pub retry_max: u64,
    pub poll_interval_ms: u64,
    pub repair_interval: u64,
}

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
    pub fn rate(&self, kind: LimitKind) -> Rate {
        match kind {
            LimitKind::Tenant => self.tenant,
            LimitKind::TenantDaily => self.tenant_daily,
            LimitKind::Token => self.token,
            LimitKind::Phone => self.phone,
            LimitKind::Country => self.country,
            LimitKind::Ip => self.ip,
            LimitKind::WrongChecks => self.wrong_checks,
            // Spending is budgeted in credits, not rates (`daily_spend`, `country_hourly_spend`).
            LimitKind::DailySpend | LimitKind::CountrySpend => Rate { rate: 0, per: 1, burst: 1 },
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallbackSettings {
    pub allow_http: bool,
    pub allow_private_networks: bool,
    pub connect_timeout_ms: u64,
    pub timeout_ms: u64,
    /// Reports in flight at once to one destination host (per process).
    pub per_host_concurrency: usize,
    /// Seconds to wait before each retry of a failed report; after the last, it is given up
    /// (dead-lettered).
    pub retry_schedule: Vec<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Where `/metrics` is served on its own; empty: on the API's listener.
    pub listen: String,
}

impl MetricsSettings {
    /// The separate listener's address, if one is set (validation has read it).
    pub fn own_listener(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    pub level: String,
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

/// Which store the URL selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    Memory,
    Redis,
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
        let mut problems = Vec::new();
        let mut check = |ok: bool, msg: &str| {
            if !ok {
                problems.push(msg.to_owned());
            }
        };
        check(
            (1024..=1 << 20).contains(&self.server.body_limit),
            "server.body_limit: must be from 1024 to 1048576 bytes",
        );
        check(
            Ttl::from_secs(self.codes.default_validity).is_ok(),
            "codes.default_validity: must be from 30 to 3600 seconds",
        );
        check((1..=10).contains(&self.codes.max_attempts), "codes.max_attempts: must be from 1 to 10");
        check(
            argon2::Params::new(self.codes.argon2.memory_kib, self.codes.argon2.iterations, self.codes.argon2.parallelism, None)
                .is_ok(),
            "codes.argon2: memory_kib must be at least 8 × parallelism, iterations at least 1, parallelism from 1 to 16777215",
        );
        check(
            (1..=3600).contains(&self.server.shutdown_grace),
            "server.shutdown_grace: must be from 1 to 3600 seconds",
        );
        check(
            self.metrics.listen.is_empty() || self.metrics.listen.parse::<SocketAddr>().is_ok(),
            "metrics.listen: must be empty or an address such as 0.0.0.0:9464",
        );
        check(self.store.timeout_ms >= 10, "store.timeout_ms: must be at least 10");
        check(self.store.request_retention >= 7200, "store.request_retention: must be at least 7200 seconds");
        check(self.store.ledger_limit >= 1, "store.ledger_limit: must be at least 1");
        check(self.pool.daily_cap >= 1, "pool.daily_cap: must be at least 1");
        check(self.pool.lease >= 1, "pool.lease: must be at least 1 second");
        for id in &self.sandbox.accounts {
            check(
                crate::domain::SenderAccount::valid_id(id),
                &format!("sandbox.accounts: {id:?} is not an account id (1-64 of A-Z a-z 0-9 _ -)"),
            );
        }
        for prefix in self.sandbox.recipients.keys() {
            let digits = !prefix.is_empty() && prefix.len() <= 15 && prefix.bytes().all(|b| b.is_ascii_digit());
            check(digits, &format!("sandbox.recipients.{prefix}: the key must be a number prefix (digits)"));
        }
        check(
            self.templates.text.contains_key("en"),
            "templates.text.en: the English template is required (the fallback)",
        );
        for (lang, text) in &self.templates.text {
            check(text.contains("{code}"), &format!("templates.text.{lang}: must contain {{code}}"));
        }
        for (code, lang) in &self.templates.by_country {
            check(
                self.templates.text.contains_key(lang),
                &format!("templates.by_country.{code}: no template for language {lang:?}"),
            );
        }
        let d = &self.delivery;
        check(d.workers <= 256, "delivery.workers: at most 256");
        check((1..=1000).contains(&d.batch), "delivery.batch: must be from 1 to 1000");
        check(d.lease >= 1, "delivery.lease: must be at least 1 second");
        check(self.sender.call_timeout >= 1, "sender.call_timeout: must be at least 1 second");
        for kind in [
            LimitKind::Tenant,
            LimitKind::TenantDaily,
            LimitKind::Token,
            LimitKind::Phone,
            LimitKind::Country,
            LimitKind::Ip,
            LimitKind::WrongChecks,
        ] {
            let r = self.limits.rate(kind);
            check(
                r.is_off() || r.is_sane(),
                match kind {
                    LimitKind::Tenant => "limits.tenant: per must be 1 s to a year and burst 1 to 100,000",
                    LimitKind::TenantDaily => "limits.tenant_daily: per must be 1 s to a year and burst 1 to 100,000",
                    LimitKind::Token => "limits.token: per must be 1 s to a year and burst 1 to 100,000",
                    LimitKind::Phone => "limits.phone: per must be 1 s to a year and burst 1 to 100,000",
                    LimitKind::Country => "limits.country: per must be 1 s to a year and burst 1 to 100,000",
                    LimitKind::Ip => "limits.ip: per must be 1 s to a year and burst 1 to 100,000",
                    LimitKind::WrongChecks => "limits.wrong_checks: per must be 1 s to a year and burst 1 to 100,000",
                    LimitKind::DailySpend | LimitKind::CountrySpend => "limits: spend budgets are not rates",
                },
            );
        }
        check(
            self.limits.country_hourly_spend.cap >= Credits::ZERO,
            "limits.country_hourly_spend.cap: must not be negative",
        );
        let c = &self.callbacks;
        // A report's attempt (its wait for a slot of the host, then the request) must end
        // within its task's lease, or another worker would send it too.
        check(
            c.timeout_ms.saturating_add(crate::callbacks::dispatch::HOST_WAIT.as_millis() as u64)
                < self.delivery.task_lease.saturating_mul(1000),
            "callbacks.timeout_ms: a report attempt (5 s of waiting for its host, then this) must end within delivery.task_lease",
        );
        check(
            c.connect_timeout_ms >= 1 && c.timeout_ms >= c.connect_timeout_ms,
            "callbacks.timeout_ms: must be at least callbacks.connect_timeout_ms (> 0)",
        );
        check((1..=1024).contains(&c.per_host_concurrency), "callbacks.per_host_concurrency: must be from 1 to 1024");
        check(
            c.retry_schedule.len() <= 50 && c.retry_schedule.iter().all(|s| (1..=604_800).contains(s)),
            "callbacks.retry_schedule: at most 50 waits of 1 s to 7 days",
        );
        // A send is three calls (resolve, send, tidy up); a lease shorter than that could end
        // while the message is on its way, and another worker would send it again.
        check(
            self.sender.kind != SenderKind::Telegram || self.sender.call_timeout.saturating_mul(3) < d.lease,
            "delivery.lease: must be longer than three Telegram calls (3 × sender.call_timeout)",
        );
        check(d.task_lease >= 1, "delivery.task_lease: must be at least 1 second");
        check(
            d.retry_initial >= 1 && d.retry_initial <= d.retry_max,
            "delivery.retry_initial: must be from 1 to retry_max",
        );
        check((10..=60_000).contains(&d.poll_interval_ms), "delivery.poll_interval_ms: must be from 10 to 60000");
        check(d.repair_interval >= 1, "delivery.repair_interval: must be at least 1 second");
        check(self.billing.price >= Credits::ZERO, "billing.price: must not be negative");
        for (code, price) in &self.billing.country_prices {
            let valid_code =
                (1..=3).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_digit()) && !code.starts_with('0');
            check(
                valid_code,
                &format!("billing.country_prices.{code}: key must be a country calling code such as \"44\""),
            );
            check(*price >= Credits::ZERO, &format!("billing.country_prices.{code}: must not be negative"));
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            problems.push(format!("log.level: {e}"));
        }
        let store = self.store_kind();
        if store.is_none() {
            problems.push(format!(
                "store.url: unsupported URL {:?}: use memory://, redis://, rediss://, redis+unix:// or redis+cluster://host:port,host:port,…",
                redact_url(&self.store.url)
            ));
        }
        match self.pepper() {
            Err(problem) => problems.push(problem),
            Ok(None) if store == Some(StoreKind::Redis) => problems.push(
                "codes.pepper: required with a Redis store (hashes must survive restarts): set VERIGRAM__CODES__PEPPER or codes.pepper_file"
                    .into(),
            ),
            Ok(_) => {}
        }
        if let Err(problem) = self.admin_token() {
            problems.push(problem);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError(problems))
        }
    }

    pub fn store_kind(&self) -> Option<StoreKind> {
        let url = self.store.url.as_str();
        if url == "memory://" || url == "memory" {
            Some(StoreKind::Memory)
        } else if ["redis://", "rediss://", "redis+unix://", "unix://"].iter().any(|p| url.starts_with(p))
            || crate::store::cluster_seeds(url).is_ok()
        {
            Some(StoreKind::Redis)
        } else {
            None
        }
    }

    /// The configured pepper, from `codes.pepper_file` or `codes.pepper`; `None` when neither
    /// is set.
    pub fn pepper(&self) -> Result<Option<Pepper>, String> {
        let bytes = secret_value(&self.codes.pepper, &self.codes.pepper_file, "codes.pepper")?;
        match bytes {
            None => Ok(None),
            Some(b) => Pepper::new(b.as_bytes())
                .map(Some)
                .ok_or_else(|| format!("codes.pepper: must be at least {} bytes", Pepper::MIN_BYTES)),
        }
    }

    /// The admin API's token; `None` turns the admin API off.
    pub fn admin_token(&self) -> Result<Option<String>, String> {
        let token = secret_value(&self.admin.token, &self.admin.token_file, "admin.token")?;
        match token {
            Some(t) if t.len() < 16 => Err("admin.token: must be at least 16 characters".into()),
            other => Ok(other),
        }
    }

    pub fn hash_scheme(&self) -> HashScheme {
        match self.codes.hash {
            HashKind::HmacSha256 => HashScheme::HmacSha256,
            HashKind::Argon2id => HashScheme::Argon2id(Argon2Params {
                memory_kib: self.codes.argon2.memory_kib,
                iterations: self.codes.argon2.iterations,
                parallelism: self.codes.argon2.parallelism,
            }),
        }
    }

    pub fn callback_policy(&self) -> CallbackPolicy {
        CallbackPolicy {
            allow_http: self.callbacks.allow_http,
            allow_private_networks: self.callbacks.allow_private_networks,
        }
    }

    /// The price of one message to `phone` when the tenant has no price of its own.
    pub fn price_for(&self, phone: &PhoneNumber) -> Credits {
        self.billing.country_prices.get(&phone.country_code().to_string()).copied().unwrap_or(self.billing.price)
    }

    pub fn default_validity(&self) -> Duration {
        Duration::from_secs(self.codes.default_validity)
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
            if matches!(self.admin_token(), Ok(Some(_))) { "on" } else { "off" },
            self.api.error_status,
        )
    }
}

/// Reads a secret from `<key>_file` (preferred) or `<key>`; empty means unset.
fn secret_value(inline: &str, file: &str, key: &str) -> Result<Option<String>, String> {
    if !file.is_empty() {
        let text = std::fs::read_to_string(file).map_err(|e| format!("{key}_file: cannot read {file}: {e}"))?;
        let text = text.trim_end_matches(['\r', '\n']).to_owned();
        return Ok((!text.is_empty()).then_some(text));
    }
    Ok((!inline.is_empty()).then(|| inline.to_owned()))
}

/// A URL with any password replaced, so logs and errors never show it.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        // A URL the parser does not take (a cluster's list of nodes): mask what sits between
        // the user's `:` and the last `@` of the authority, by hand.
        _ => match url.split_once("://") {
            Some((scheme, rest)) => match rest.rsplit_once('@') {
                Some((auth, hosts)) => {
                    let user = auth.split_once(':').map_or(auth, |(user, _)| user);
                    let masked = if auth.contains(':') { format!("{user}:***") } else { "***".to_owned() };
                    format!("{scheme}://{masked}@{hosts}")
                }
                None => url.to_owned(),
            },
            None => url.to_owned(),
        },
    }
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

impl fmt::Debug for AdminSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminSettings(***)")
    }
}

impl fmt::Debug for CodeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeSettings")
            .field("hash", &self.hash)
            .field("default_validity", &self.default_validity)
            .field("max_attempts", &self.max_attempts)
            .field("argon2", &self.argon2)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load() {
        let s = Settings::load_from(None, Env::prefixed("VERIGRAM_TEST_UNSET__").split("__")).unwrap();
        assert_eq!(s.store_kind(), Some(StoreKind::Memory));
        assert_eq!(s.codes.default_validity, 600);
        assert_eq!(s.codes.max_attempts, 5);
        assert_eq!(s.billing.price, Credits::from_micros(10_000));
        assert_eq!(s.api.error_status, ErrorStatus::Ok);
        assert!(s.admin_token().unwrap().is_none());
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
        assert_eq!(s.price_for(&PhoneNumber::parse("447911123456").unwrap()), Credits::from_micros(20_000));
        assert_eq!(s.price_for(&PhoneNumber::parse("15551234567").unwrap()), Credits::from_micros(10_000));
        assert!(Settings::from_toml("[billing.country_prices]\n\"uk\" = 0.02").is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Settings::from_toml(&format!(
            "[codes]\npepper = \"{}\"\n[admin]\ntoken = \"{}\"",
            "p".repeat(32),
            "a".repeat(20)
        ))
        .unwrap();
        let dbg = format!("{s:?} {}", s.summary());
        assert!(!dbg.contains(&"p".repeat(32)) && !dbg.contains(&"a".repeat(20)), "{dbg}");
        assert_eq!(redact_url("redis://:hunter2@host:6379"), "redis://:***@host:6379");
    }
}
