//! A code on its way to the sender. The message must show the code, but the store keeps only
//! its hash; so between the API accepting a send and a worker delivering it, the code travels
//! sealed: ChaCha20-Poly1305 under a key derived from the pepper, bound to its tenant and
//! request, and erased once the message went out.

use super::Pepper;
use crate::domain::{Code, RequestId, TenantId};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

#[derive(Clone)]
pub struct CodeSealer {
    sealer: Sealer,
}

/// Authenticated encryption under a key derived from the pepper for one purpose: what the
/// store must keep but must not show (codes on their way, Telegram session keys).
#[derive(Clone)]
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a sealed code could not be opened (wrong pepper, another request, or corrupt)")]
pub struct SealError;

const NONCE_LEN: usize = 12;

impl Sealer {
    /// `purpose` separates keys: a value sealed for one purpose never opens for another.
    pub fn new(pepper: &Pepper, purpose: &str) -> Self {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(pepper.bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        mac.update(purpose.as_bytes());
        let key = mac.finalize().into_bytes();
        Self { cipher: ChaCha20Poly1305::new(Key::from_slice(&key)) }
    }

    /// Base64 of a fresh nonce and the ciphertext; `aad` binds it to its owner.
    pub fn seal(&self, aad: &[u8], plain: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // The thread's CSPRNG (ChaCha, seeded from the OS): a random 96-bit nonce per seal
        // without a system call each.
        rand::thread_rng().fill_bytes(&mut nonce);
        // Encryption with a valid key and nonce only fails past 256 GiB.
        let sealed = self.cipher.encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad }).unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        STANDARD_NO_PAD.encode(out)
    }

    pub fn open(&self, aad: &[u8], sealed: &str) -> Result<Vec<u8>, SealError> {
        let bytes = STANDARD_NO_PAD.decode(sealed).map_err(|_| SealError)?;
        if bytes.len() <= NONCE_LEN {
            return Err(SealError);
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        self.cipher.decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad }).map_err(|_| SealError)
    }
}

impl CodeSealer {
    pub fn new(pepper: &Pepper) -> Self {
        Self { sealer: Sealer::new(pepper, "verigram/code-seal/v1") }
    }

    pub fn seal(&self, tenant: &TenantId, request: RequestId, code: &Code) -> String {
        self.sealer.seal(binding(tenant, request).as_bytes(), code.expose().as_bytes())
    }

    pub fn open(&self, tenant: &TenantId, request: RequestId, sealed: &str) -> Result<Code, SealError> {
        let plain = self.sealer.open(binding(tenant, request).as_bytes(), sealed)?;
        Code::parse(std::str::from_utf8(&plain).map_err(|_| SealError)?).map_err(|_| SealError)
    }
}

fn binding(tenant: &TenantId, request: RequestId) -> String {
    format!("{tenant}\0{request}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_for_its_request() {
        let sealer = CodeSealer::new(&Pepper::new(&[3; 32]).unwrap());
        let (tenant, request) = (TenantId::generate(), RequestId::generate());
        let code = Code::parse("123456").unwrap();
        let sealed = sealer.seal(&tenant, request, &code);
        assert!(!sealed.contains("123456"));
        assert_eq!(sealer.open(&tenant, request, &sealed).unwrap(), code);
        assert_eq!(sealer.open(&tenant, RequestId::generate(), &sealed), Err(SealError));
        assert_eq!(sealer.open(&TenantId::generate(), request, &sealed), Err(SealError));
        let other = CodeSealer::new(&Pepper::new(&[4; 32]).unwrap());
        assert_eq!(other.open(&tenant, request, &sealed), Err(SealError));
        assert_eq!(sealer.open(&tenant, request, "AAAA"), Err(SealError));
        assert_ne!(sealed, sealer.seal(&tenant, request, &code), "a fresh nonce every time");
    }
}
