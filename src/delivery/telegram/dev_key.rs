//! The key a development account shares with the local Telegram peer
//! (`verigram-dev-telegram`): derived from the account's phone number, so a `verigram` process
//! and the peer agree on it without talking (the peer does the same derivation on its side; a
//! test checks the two agree). Only for the peer: real accounts get their keys from Telegram.

use sha2::{Digest, Sha256};

/// The 256-byte authorization key of the development account with these digits.
pub fn dev_auth_key(phone_digits: &str) -> [u8; 256] {
    let mut key = [0u8; 256];
    for (i, chunk) in key.chunks_mut(32).enumerate() {
        let block = Sha256::new()
            .chain_update(b"verigram dev-telegram auth key\0")
            .chain_update(phone_digits.as_bytes())
            .chain_update([i as u8])
            .finalize();
        chunk.copy_from_slice(&block);
    }
    key
}
