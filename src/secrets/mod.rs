//! The server's secrets and what is derived from them: keyed hashes of codes and of API tokens.

mod api_token;
mod code_hash;
mod code_seal;

pub use api_token::{ApiToken, TokenKeys};
pub use code_hash::{Argon2Params, CodeBinding, CodeHasher, HashError, HashScheme};
pub use code_seal::{CodeSealer, SealError, Sealer};

use std::sync::Arc;

/// The server-side secret that keys every stored hash. It lives in configuration or the
/// environment, never in the store: without it a leaked store cannot be brute-forced.
#[derive(Clone)]
pub struct Pepper(Arc<[u8]>);

impl Pepper {
    pub const MIN_BYTES: usize = crate::config::PEPPER_MIN_BYTES;

    pub fn new(bytes: &[u8]) -> Option<Self> {
        (bytes.len() >= Self::MIN_BYTES).then(|| Self(bytes.into()))
    }

    /// The configured pepper (`CodeSettings::pepper`).
    pub fn from_secret(secret: &secrecy::SecretString) -> Option<Self> {
        use secrecy::ExposeSecret;
        Self::new(secret.expose_secret().as_bytes())
    }

    /// A fresh random pepper, for the embedded store that keeps nothing anyway.
    pub fn generate() -> Self {
        use rand::RngCore;
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Self(bytes.to_vec().into())
    }

    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Pepper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pepper(***)")
    }
}
