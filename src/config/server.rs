//! How a process serves: its listener, its role, the API's error statuses, the admin API's
//! token, and where metrics and logs go.

use super::{secret_value, Problems};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::net::SocketAddr;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub listen: SocketAddr,
    pub body_limit: usize,
    pub workers: usize,
    pub role: Role,
    /// Seconds a stopping process gives requests in flight and jobs in hand.
    #[serde(with = "super::duration::seconds")]
    pub shutdown_grace: Duration,
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

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    pub token: SecretString,
    pub token_file: String,
    /// Where the admin API is served on its own; empty: on the API's listener.
    pub listen: String,
}

/// The shortest admin token taken: it guards every tenant's money and tokens, so it must be as
/// hard to guess as a key (32 characters of `openssl rand -hex 24` or `-base64 24` are 144 bits
/// or more).
pub const ADMIN_TOKEN_MIN_CHARS: usize = 32;

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
    /// A bearer token `/metrics` requires (or a file holding it); empty: none.
    pub token: SecretString,
    pub token_file: String,
    /// The gauges read from the store (queue, accounts, balances) are read at most this often,
    /// by one scrape at a time: scrapes never multiply the store's work.
    #[serde(with = "super::duration::millis")]
    pub refresh_ms: Duration,
    /// How long a scrape waits for that read before it answers with what it has (and
    /// `verigram_store_up 0` when the store did not answer).
    #[serde(with = "super::duration::millis")]
    pub store_wait_ms: Duration,
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

impl ServerSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        p.check((1024..=1 << 20).contains(&self.body_limit), "server.body_limit: must be from 1024 to 1048576 bytes");
        p.check(
            (Duration::from_secs(1)..=Duration::from_secs(3600)).contains(&self.shutdown_grace),
            "server.shutdown_grace: must be from 1 to 3600 seconds",
        );
    }
}

impl AdminSettings {
    /// The admin API's token; `None` turns the admin API off.
    pub fn token(&self) -> Result<Option<SecretString>, String> {
        let token = secret_value(&self.token, &self.token_file, "admin.token")?;
        match token {
            Some(t) if t.expose_secret().chars().count() < ADMIN_TOKEN_MIN_CHARS => Err(format!(
                "admin.token: must be at least {ADMIN_TOKEN_MIN_CHARS} characters: it guards every tenant's money and \
                     tokens (make one with `openssl rand -hex 24`)"
            )),
            other => Ok(other),
        }
    }

    /// The separate listener's address, if one is set (validation has read it).
    pub fn own_listener(&self) -> Option<SocketAddr> {
        self.listen.parse().ok()
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        if let Err(problem) = self.token() {
            p.push(problem);
        }
        p.check(
            self.listen.is_empty() || self.listen.parse::<SocketAddr>().is_ok(),
            "admin.listen: must be empty or an address such as 127.0.0.1:8081",
        );
    }
}

impl MetricsSettings {
    /// The bearer token `/metrics` requires, if any.
    pub fn token(&self) -> Result<Option<SecretString>, String> {
        secret_value(&self.token, &self.token_file, "metrics.token")
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        p.check(
            self.listen.is_empty() || self.listen.parse::<SocketAddr>().is_ok(),
            "metrics.listen: must be empty or an address such as 0.0.0.0:9464",
        );
        p.check(self.refresh_ms <= Duration::from_secs(60), "metrics.refresh_ms: must be at most 60000");
        p.check(
            (Duration::from_millis(10)..=Duration::from_secs(5)).contains(&self.store_wait_ms),
            "metrics.store_wait_ms: must be from 10 to 5000",
        );
        if let Err(problem) = self.token() {
            p.push(problem);
        }
    }
}

impl LogSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.level) {
            p.push(format!("log.level: {e}"));
        }
    }
}
