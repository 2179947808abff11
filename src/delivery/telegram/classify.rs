//! What an error from Telegram means for the pool: park, quarantine or disable the account,
//! give up on the recipient, or try again later.

use crate::domain::AccountFailure;
use grammers_mtsender::InvocationError;
use std::time::Duration;

/// The pool's reading of a failed call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Something is wrong with the account (flood wait, spam limit, ban, logged out).
    Account(AccountFailure),
    /// The recipient cannot receive messages from us (no account, privacy, blocked us).
    Recipient(String),
    /// Nothing is known to be wrong: network trouble, Telegram's own 5xx. Try again.
    Transient(String),
}

/// The reason an account is disabled with when Telegram answers its key with `-404`.
pub const AUTH_KEY_NOT_FOUND: &str = "AUTH_KEY_NOT_FOUND";

/// A flood wait without a number: wait a minute rather than hammer.
const DEFAULT_FLOOD_WAIT: Duration = Duration::from_secs(60);

pub fn classify(error: &InvocationError) -> Failure {
    match error {
        InvocationError::Rpc(rpc) => {
            let name = rpc.name.as_str();
            if rpc.code == 420 || ["FLOOD_WAIT", "FLOOD_PREMIUM_WAIT", "SLOWMODE_WAIT"].contains(&name) {
                let wait = rpc.value.map_or(DEFAULT_FLOOD_WAIT, |s| Duration::from_secs(s.into()));
                return Failure::Account(AccountFailure::FloodWait(wait));
            }
            match name {
                "PEER_FLOOD" => Failure::Account(AccountFailure::PeerFlood),
                "PHONE_NUMBER_INVALID"
                | "PHONE_NOT_OCCUPIED"
                | "USER_PRIVACY_RESTRICTED"
                | "PRIVACY_PREMIUM_REQUIRED"
                | "USER_IS_BLOCKED"
                | "INPUT_USER_DEACTIVATED"
                | "USER_ID_INVALID"
                | "PEER_ID_INVALID" => Failure::Recipient(name.to_owned()),
                "AUTH_KEY_UNREGISTERED"
                | "AUTH_KEY_INVALID"
                | "SESSION_REVOKED"
                | "SESSION_EXPIRED"
                | "USER_DEACTIVATED"
                | "USER_DEACTIVATED_BAN"
                | "AUTH_KEY_DUPLICATED" => Failure::Account(AccountFailure::Dead(name.to_owned())),
                _ if rpc.code == 401 => Failure::Account(AccountFailure::Dead(name.to_owned())),
                _ if rpc.code >= 500 => Failure::Transient(format!("{} {name}", rpc.code)),
                // Anything else is unexpected: count it against the account's health as a
                // transient failure rather than give up on the user.
                _ => Failure::Transient(format!("{} {name}", rpc.code)),
            }
        }
        InvocationError::Io(_) => Failure::Transient("network".into()),
        // Telegram does not know the account's authorization key (it dropped the session):
        // nothing this account sends can get through until it signs in again.
        InvocationError::Transport(grammers_mtproto::transport::Error::BadStatus { status: 404 }) => {
            Failure::Account(AccountFailure::Dead(AUTH_KEY_NOT_FOUND.into()))
        }
        InvocationError::Transport(_) => Failure::Transient("transport".into()),
        InvocationError::Dropped(_) => Failure::Transient("dropped".into()),
        InvocationError::Deserialize(_) => Failure::Transient("unreadable answer".into()),
        // A session that cannot be read or an unknown data centre: this account cannot work.
        other => Failure::Account(AccountFailure::Dead(format!("{other}").chars().take(64).collect())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use grammers_mtsender::RpcError;
    use grammers_tl_types as tl;

    fn rpc(code: i32, message: &str) -> InvocationError {
        InvocationError::Rpc(RpcError::from(tl::types::RpcError { error_code: code, error_message: message.into() }))
    }

    #[test]
    fn flood_waits_park_the_account_for_the_given_time() {
        assert_eq!(
            classify(&rpc(420, "FLOOD_WAIT_31")),
            Failure::Account(AccountFailure::FloodWait(Duration::from_secs(31)))
        );
        assert_eq!(
            classify(&rpc(420, "FLOOD_PREMIUM_WAIT_5")),
            Failure::Account(AccountFailure::FloodWait(Duration::from_secs(5)))
        );
        assert_eq!(classify(&rpc(420, "FLOOD_WAIT")), Failure::Account(AccountFailure::FloodWait(DEFAULT_FLOOD_WAIT)));
    }

    #[test]
    fn spam_limits_and_dead_accounts() {
        assert_eq!(classify(&rpc(400, "PEER_FLOOD")), Failure::Account(AccountFailure::PeerFlood));
        for name in ["AUTH_KEY_UNREGISTERED", "SESSION_REVOKED", "USER_DEACTIVATED_BAN", "USER_DEACTIVATED"] {
            assert_eq!(classify(&rpc(401, name)), Failure::Account(AccountFailure::Dead(name.into())), "{name}");
        }
        let unknown_key = grammers_mtproto::transport::Error::BadStatus { status: 404 };
        assert_eq!(
            classify(&InvocationError::Transport(unknown_key)),
            Failure::Account(AccountFailure::Dead(AUTH_KEY_NOT_FOUND.into()))
        );
        assert_eq!(
            classify(&rpc(401, "SOMETHING_NEW")),
            Failure::Account(AccountFailure::Dead("SOMETHING_NEW".into()))
        );
    }

    #[test]
    fn recipients_that_cannot_receive() {
        for name in ["USER_PRIVACY_RESTRICTED", "PRIVACY_PREMIUM_REQUIRED", "PHONE_NUMBER_INVALID", "USER_IS_BLOCKED"] {
            assert_eq!(classify(&rpc(400, name)), Failure::Recipient(name.into()), "{name}");
        }
    }

    #[test]
    fn network_trouble_and_server_errors_are_transient() {
        let io = InvocationError::Io(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset"));
        assert_eq!(classify(&io), Failure::Transient("network".into()));
        assert_eq!(classify(&InvocationError::Dropped("test")), Failure::Transient("dropped".into()));
        let too_many = grammers_mtproto::transport::Error::BadStatus { status: 429 };
        assert_eq!(classify(&InvocationError::Transport(too_many)), Failure::Transient("transport".into()));
        assert!(matches!(classify(&rpc(500, "INTERNAL")), Failure::Transient(_)));
    }
}
