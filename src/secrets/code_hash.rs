//! Codes are stored only as keyed, salted hashes in PHC string form:
//!
//! - `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`: argon2id with the pepper as argon2's secret;
//! - `$hmac-sha256$v=1$<salt>$<mac>`: HMAC-SHA256 keyed with the pepper.
//!
//! Verification reads the scheme and parameters from the stored string, so changing
//! `codes.hash` or the argon2 parameters never breaks codes already in flight. The hashed text
//! binds the code to its tenant and request, so a code never verifies anywhere else.

use super::Pepper;
use crate::config::{CodeSettings, HashKind};
use crate::domain::{Code, RequestId, TenantId};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::sync::Arc;
use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashScheme {
    Argon2id(Argon2Params),
    HmacSha256,
}

impl From<&CodeSettings> for HashScheme {
    fn from(codes: &CodeSettings) -> Self {
        match codes.hash {
            HashKind::HmacSha256 => HashScheme::HmacSha256,
            HashKind::Argon2id => HashScheme::Argon2id(Argon2Params {
                memory_kib: codes.argon2.memory_kib,
                iterations: codes.argon2.iterations,
                parallelism: codes.argon2.parallelism,
            }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("stored code hash is not a hash this server understands")]
    UnknownFormat,
    #[error("argon2 failed")]
    Argon2(argon2::password_hash::Error),
    #[error("the hashing pool is shut down")]
    PoolClosed,
}

/// What a code is bound to.
#[derive(Debug, Clone)]
pub struct CodeBinding {
    pub tenant: TenantId,
    pub request: RequestId,
}

impl CodeBinding {
    fn message(&self, code: &Code) -> String {
        format!("{}\0{}\0{}", self.tenant, self.request, code.expose())
    }
}

const HMAC_ID: &str = "hmac-sha256";

/// Hashes and verifies codes. Argon2 runs on the blocking pool behind a semaphore (at most
/// `concurrency` hashes at once, so memory stays bounded at `concurrency × m`), never on the
/// async executor; HMAC takes a microsecond and runs inline.
#[derive(Clone)]
pub struct CodeHasher {
    scheme: HashScheme,
    pepper: Pepper,
    permits: Arc<Semaphore>,
}

impl CodeHasher {
    pub fn new(scheme: HashScheme, pepper: Pepper, concurrency: usize) -> Self {
        Self { scheme, pepper, permits: Arc::new(Semaphore::new(concurrency.max(1))) }
    }

    pub fn scheme(&self) -> HashScheme {
        self.scheme
    }

    pub async fn hash(&self, binding: &CodeBinding, code: &Code) -> Result<String, HashError> {
        let message = binding.message(code);
        match self.scheme {
            HashScheme::HmacSha256 => Ok(hmac_hash(&self.pepper, &message)),
            HashScheme::Argon2id(params) => {
                let pepper = self.pepper.clone();
                self.blocking(move || argon2_hash(&pepper, params, &message)).await?
            }
        }
    }

    /// Whether `code` is the one hashed into `phc`, compared in constant time.
    pub async fn verify(&self, binding: &CodeBinding, code: &Code, phc: &str) -> Result<bool, HashError> {
        let message = binding.message(code);
        if phc.starts_with(&format!("${HMAC_ID}$")) {
            return hmac_verify(&self.pepper, &message, phc);
        }
        let pepper = self.pepper.clone();
        let phc = phc.to_owned();
        self.blocking(move || argon2_verify(&pepper, &message, &phc)).await?
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T, HashError> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| HashError::PoolClosed)?;
        tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|_| HashError::PoolClosed)
    }
}

fn argon2_with(pepper: &Pepper, params: Params) -> Result<Argon2<'_>, HashError> {
    Argon2::new_with_secret(pepper.bytes(), Algorithm::Argon2id, Version::V0x13, params)
        .map_err(|e| HashError::Argon2(e.into()))
}

fn argon2_hash(pepper: &Pepper, p: Argon2Params, message: &str) -> Result<String, HashError> {
    let params =
        Params::new(p.memory_kib, p.iterations, p.parallelism, None).map_err(|e| HashError::Argon2(e.into()))?;
    let salt = SaltString::encode_b64(&random_salt()).map_err(HashError::Argon2)?;
    let hash = argon2_with(pepper, params)?.hash_password(message.as_bytes(), &salt).map_err(HashError::Argon2)?;
    Ok(hash.to_string())
}

fn argon2_verify(pepper: &Pepper, message: &str, phc: &str) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(phc).map_err(|_| HashError::UnknownFormat)?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(HashError::UnknownFormat);
    }
    let params = Params::try_from(&parsed).map_err(|_| HashError::UnknownFormat)?;
    // `verify_password` compares the tags in constant time.
    match argon2_with(pepper, params)?.verify_password(message.as_bytes(), &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::Password) => Ok(false),
        Err(e) => Err(HashError::Argon2(e)),
    }
}

fn random_salt() -> [u8; 16] {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    salt
}

fn hmac_tag(pepper: &Pepper, salt: &[u8], message: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(pepper.bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(salt);
    mac.update(message.as_bytes());
    mac
}

fn hmac_hash(pepper: &Pepper, message: &str) -> String {
    let salt = random_salt();
    let tag = hmac_tag(pepper, &salt, message).finalize().into_bytes();
    format!("${HMAC_ID}$v=1${}${}", STANDARD_NO_PAD.encode(salt), STANDARD_NO_PAD.encode(tag))
}

fn hmac_verify(pepper: &Pepper, message: &str, phc: &str) -> Result<bool, HashError> {
    let mut parts = phc.split('$');
    let (Some(""), Some(HMAC_ID), Some("v=1"), Some(salt), Some(tag), None) =
        (parts.next(), parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HashError::UnknownFormat);
    };
    let salt = STANDARD_NO_PAD.decode(salt).map_err(|_| HashError::UnknownFormat)?;
    let tag = STANDARD_NO_PAD.decode(tag).map_err(|_| HashError::UnknownFormat)?;
    // `verify_slice` compares in constant time.
    Ok(hmac_tag(pepper, &salt, message).verify_slice(&tag).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding() -> CodeBinding {
        CodeBinding { tenant: TenantId::generate(), request: RequestId::generate() }
    }

    fn hasher(scheme: HashScheme) -> CodeHasher {
        CodeHasher::new(scheme, Pepper::new(&[7; 32]).unwrap(), 2)
    }

    const ARGON: HashScheme = HashScheme::Argon2id(Argon2Params { memory_kib: 64, iterations: 1, parallelism: 1 });

    #[tokio::test]
    async fn both_schemes_verify_the_right_code_only() {
        for scheme in [ARGON, HashScheme::HmacSha256] {
            let h = hasher(scheme);
            let b = binding();
            let code = Code::parse("123456").unwrap();
            let phc = h.hash(&b, &code).await.unwrap();
            assert!(!phc.contains("123456"), "{phc}");
            assert!(h.verify(&b, &code, &phc).await.unwrap());
            assert!(!h.verify(&b, &Code::parse("123457").unwrap(), &phc).await.unwrap());
            // Bound to the request: the same code for another request does not verify.
            assert!(!h.verify(&binding(), &code, &phc).await.unwrap());
            // Keyed: a server with another pepper cannot verify it.
            let other = CodeHasher::new(scheme, Pepper::new(&[8; 32]).unwrap(), 1);
            assert!(!other.verify(&b, &code, &phc).await.unwrap());
        }
    }

    #[tokio::test]
    async fn salts_differ_and_schemes_are_read_from_the_hash() {
        let b = binding();
        let code = Code::parse("0042").unwrap();
        let h1 = hasher(HashScheme::HmacSha256).hash(&b, &code).await.unwrap();
        let h2 = hasher(HashScheme::HmacSha256).hash(&b, &code).await.unwrap();
        assert_ne!(h1, h2);
        assert!(h1.starts_with("$hmac-sha256$v=1$"));
        let a = hasher(ARGON).hash(&b, &code).await.unwrap();
        assert!(a.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{a}");
        // A server now configured for HMAC still verifies argon2 codes in flight, and back.
        assert!(hasher(HashScheme::HmacSha256).verify(&b, &code, &a).await.unwrap());
        assert!(hasher(ARGON).verify(&b, &code, &h1).await.unwrap());
    }

    #[tokio::test]
    async fn garbage_hashes_are_errors() {
        let h = hasher(HashScheme::HmacSha256);
        let code = Code::parse("1234").unwrap();
        for bad in
            ["", "$hmac-sha256$v=1$$", "$hmac-sha256$v=2$AA$AA", "$argon2i$v=19$m=64,t=1,p=1$AAAAAAAAAAA$AAAA", "plain"]
        {
            assert!(
                h.verify(&binding(), &code, bad).await.is_err() || !h.verify(&binding(), &code, bad).await.unwrap(),
                "{bad}"
            );
        }
    }
}
