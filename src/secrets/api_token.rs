//! API tokens: 32 random bytes in URL-safe base64, found by a keyed SHA-256.

use super::Pepper;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// A token as a client presents it. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken(String);

impl ApiToken {
    /// The longest text looked up at all; anything longer is invalid without a store read.
    pub const MAX_LEN: usize = 256;

    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Any non-empty printable ASCII up to `MAX_LEN`: the store decides whether it exists.
    pub fn parse(input: &str) -> Option<Self> {
        let ok = !input.is_empty() && input.len() <= Self::MAX_LEN && input.bytes().all(|b| b.is_ascii_graphic());
        ok.then(|| Self(input.to_owned()))
    }

    /// The token's text: shown once to the operator who creates it, and used for signing keys.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(***)")
    }
}

/// Derives the key under which tokens are looked up. Tokens carry 256 bits of entropy, so one
/// keyed hash is enough (no slow hash): the lookup is one store read.
#[derive(Clone)]
pub struct TokenKeys {
    lookup: Hmac<Sha256>,
    limits: Hmac<Sha256>,
}

impl TokenKeys {
    pub fn new(pepper: &Pepper) -> Self {
        // A key of its own, derived from the pepper, so token and code hashes never share a key.
        let derived = keyed(pepper.bytes(), b"verigram/api-token-lookup/v1");
        let limits = keyed(pepper.bytes(), b"verigram/limit-keys/v1");
        Self { lookup: hmac_with(&derived), limits: hmac_with(&limits) }
    }

    /// The name a rate limit keeps for a phone number, an address or a token id: keyed, so
    /// the store holds no personal data in its key names, and short.
    pub fn limit_key(&self, what: &str) -> String {
        let mut mac = self.limits.clone();
        mac.update(what.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..12])
    }

    pub fn lookup_key(&self, token: &ApiToken) -> String {
        let mut mac = self.lookup.clone();
        mac.update(token.0.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

fn hmac_with(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts every key length"))
}

fn keyed(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut mac = hmac_with(key);
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_43_url_safe_characters() {
        let t = ApiToken::generate();
        assert_eq!(t.expose().len(), 43);
        assert!(t.expose().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(t, ApiToken::generate());
        assert_eq!(format!("{t:?}"), "ApiToken(***)");
    }

    #[test]
    fn lookup_keys_depend_on_the_pepper() {
        let t = ApiToken::generate();
        let a = TokenKeys::new(&Pepper::new(&[1; 32]).unwrap());
        let b = TokenKeys::new(&Pepper::new(&[2; 32]).unwrap());
        assert_eq!(a.lookup_key(&t), a.lookup_key(&t));
        assert_ne!(a.lookup_key(&t), b.lookup_key(&t));
        assert!(!a.lookup_key(&t).contains(t.expose()));
    }

    #[test]
    fn parse_bounds() {
        assert!(ApiToken::parse("").is_none());
        assert!(ApiToken::parse("a b").is_none());
        assert!(ApiToken::parse(&"a".repeat(257)).is_none());
        assert!(ApiToken::parse("AAEFAAAAQKI_mDsJ").is_some());
    }
}
