//! Codes and what keys them: the hash scheme and its parameters, the server's pepper, how long
//! a code is valid and how many tries it gets; the API tokens' cache and rotation overlap.

use super::{secret_value, Problems};
use crate::domain::Ttl;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use std::time::Duration;

/// The shortest pepper taken: 256 bits, as the key of HMAC-SHA256 wants.
pub const PEPPER_MIN_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum HashKind {
    #[serde(rename = "argon2id")]
    Argon2id,
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeSettings {
    pub hash: HashKind,
    pub pepper: SecretString,
    pub pepper_file: String,
    #[serde(with = "super::duration::seconds")]
    pub default_validity: Duration,
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

impl CodeSettings {
    /// The configured pepper, from `codes.pepper_file` or `codes.pepper`; `None` when neither
    /// is set.
    pub fn pepper(&self) -> Result<Option<SecretString>, String> {
        match secret_value(&self.pepper, &self.pepper_file, "codes.pepper")? {
            Some(p) if p.expose_secret().len() < PEPPER_MIN_BYTES => {
                Err(format!("codes.pepper: must be at least {PEPPER_MIN_BYTES} bytes"))
            }
            other => Ok(other),
        }
    }

    pub(super) fn validate(&self, p: &mut Problems) {
        p.check(
            Ttl::from_secs(self.default_validity.as_secs()).is_ok(),
            "codes.default_validity: must be from 30 to 3600 seconds",
        );
        p.check((1..=10).contains(&self.max_attempts), "codes.max_attempts: must be from 1 to 10");
        let a = &self.argon2;
        p.check(
            argon2::Params::new(a.memory_kib, a.iterations, a.parallelism, None).is_ok(),
            "codes.argon2: memory_kib must be at least 8 × parallelism, iterations at least 1, parallelism from 1 to 16777215",
        );
        if let Err(problem) = self.pepper() {
            p.push(problem);
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSettings {
    #[serde(with = "super::duration::seconds")]
    pub rotation_overlap: Duration,
    /// Milliseconds a process keeps a token and its tenant after reading them (0: off).
    #[serde(with = "super::duration::millis")]
    pub cache_ms: Duration,
}
