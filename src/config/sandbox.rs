//! The sandbox sender's world: its simulated accounts, and recipients and accounts told to
//! misbehave, so every path of the pool can be driven without Telegram.

use super::Problems;
use crate::domain::SenderAccount;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SandboxSettings {
    /// Serve the sandbox inbox on a non-loopback address (its routes then need the admin
    /// token). Off: `serve` refuses to start the sandbox sender there.
    pub public: bool,
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

impl SandboxSettings {
    pub(super) fn validate(&self, p: &mut Problems) {
        for id in &self.accounts {
            p.check(
                SenderAccount::valid_id(id),
                format!("sandbox.accounts: {id:?} is not an account id (1-64 of A-Z a-z 0-9 _ -)"),
            );
        }
        for prefix in self.recipients.keys() {
            let digits = !prefix.is_empty() && prefix.len() <= 15 && prefix.bytes().all(|b| b.is_ascii_digit());
            p.check(digits, format!("sandbox.recipients.{prefix}: the key must be a number prefix (digits)"));
        }
    }
}
