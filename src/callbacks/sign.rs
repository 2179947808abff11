//! The Gateway's report signature: lowercase hex of
//! `HMAC_SHA256(key = SHA256(api_token), message = timestamp + "\n" + raw_body)`.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The key reports of one token are signed with: SHA-256 of the token's text. A request keeps
/// this key (never the token), so its reports stay verifiable after the token is rotated.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningKey([u8; 32]);

impl SigningKey {
    pub fn for_token(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    pub fn from_hex(hex_key: &str) -> Option<Self> {
        let mut key = [0u8; 32];
        hex::decode_to_slice(hex_key, &mut key).ok()?;
        Some(Self(key))
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The `X-Request-Signature` header for one attempt.
    pub fn sign(&self, timestamp: &str, body: &[u8]) -> String {
        hex::encode(self.mac(timestamp, body).finalize().into_bytes())
    }

    /// Checks a signature in constant time (what a receiver does).
    pub fn verify(&self, timestamp: &str, body: &[u8], signature_hex: &str) -> bool {
        match hex::decode(signature_hex) {
            Ok(sig) => self.mac(timestamp, body).verify_slice(&sig).is_ok(),
            Err(_) => false,
        }
    }

    fn mac(&self, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
        // HMAC takes keys of any length; a 32-byte key cannot fail.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(timestamp.as_bytes());
        mac.update(b"\n");
        mac.update(body);
        mac
    }
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The two vectors of spec/gateway-api.md §4.
    #[test]
    fn spec_vectors() {
        let key = SigningKey::for_token("TEST_TOKEN");
        assert_eq!(
            key.sign("1700000000", br#"{"request_id":"abc"}"#),
            "ba63fd756bd9eefdac399bc598347c4754b01546d595bfe332b8e8d54aee773e"
        );
        let body = r#"{"request_id":"923583492968596","phone_number":"1999123456726","request_cost":0,"delivery_status":{"status":"revoked","updated_at":1733663990},"verification_status":{"status":"expired","updated_at":1733663989}}"#;
        assert_eq!(
            key.sign("1733663990", body.as_bytes()),
            "f9bd5badc459da385d9ddeeb022f3decc13fe102bde984977365df2339fa6058"
        );
    }

    #[test]
    fn verify_accepts_only_the_right_signature() {
        let key = SigningKey::for_token("TEST_TOKEN");
        let sig = "ba63fd756bd9eefdac399bc598347c4754b01546d595bfe332b8e8d54aee773e";
        assert!(key.verify("1700000000", br#"{"request_id":"abc"}"#, sig));
        assert!(!key.verify("1700000001", br#"{"request_id":"abc"}"#, sig));
        assert!(!SigningKey::for_token("OTHER").verify("1700000000", br#"{"request_id":"abc"}"#, sig));
        assert!(!key.verify("1700000000", br#"{"request_id":"abc"}"#, "zz"));
    }

    #[test]
    fn hex_round_trip() {
        let key = SigningKey::for_token("TEST_TOKEN");
        assert_eq!(SigningKey::from_hex(&key.to_hex()), Some(key));
    }
}
