//! Signing an account in, as Telegram does it: a login code sent to the account's phone
//! (`auth.sendCode` → `auth.signIn`), then, for an account with two-step verification, the
//! password proven with SRP (`account.getPassword` → `auth.checkPassword`), computed as
//! Telegram computes it so a real client's proof is checked for real.

use grammers_tl_types as tl;
use num_bigint::BigUint;
use sha2::{Digest, Sha256};
use std::collections::HashMap;

/// Telegram's 2048-bit safe prime for SRP and Diffie-Hellman (with g = 3), as
/// core.telegram.org/mtproto/security_guidelines publishes it: clients check it.
const P_HEX: &str = "c71caeb9c6b1c9048e6c522f70f13f73980d40238e3e21c14934d037563d930f48198a0aa7c14058229493d22530f4dbfa336f6e0ac925139543aed44cce7c3720fd51f69458705ac68cd4fe6b6b13abdc9746512969328454f18faf8c595f642477fe96bb2a941d5bcd1d4ac8cc49880708fa9b378e3c4f3a9060bee67cf9a4a4a695811051907e162753b56b0f6b410dba74d8a84b2a14b3144e0ef1284754fd17ed950d5965b4b9dd46582db1178d169c6bc465b0d6ff9ca3928fef5b9ae4e418fc15e83ebea0f87fa9ff5eed70050ded2849f47bf959d956850ce929851f0d8115f635b105ee2e4e15d04b2454bf6f4fadf034b10403119cd8e3b92fcc5b";
pub const G: u32 = 3;

pub fn p_bytes() -> Vec<u8> {
    (0..P_HEX.len()).step_by(2).map(|i| u8::from_str_radix(&P_HEX[i..i + 2], 16).unwrap_or(0)).collect()
}

fn h(parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

fn pad256(n: &BigUint) -> [u8; 256] {
    let bytes = n.to_bytes_be();
    let mut out = [0u8; 256];
    out[256 - bytes.len().min(256)..].copy_from_slice(&bytes[bytes.len().saturating_sub(256)..]);
    out
}

/// `SH(data, salt) = H(salt | data | salt)`.
fn sh(data: &[u8], salt: &[u8]) -> [u8; 32] {
    h(&[salt, data, salt])
}

/// `PH2(password, salt1, salt2)`: the password's hash, slowed by 100,000 rounds of PBKDF2.
fn ph2(password: &str, salt1: &[u8], salt2: &[u8]) -> [u8; 32] {
    let ph1 = sh(&sh(password.as_bytes(), salt1), salt2);
    let mut derived = [0u8; 64];
    pbkdf2::pbkdf2_hmac::<sha2_11::Sha512>(&ph1, salt1, 100_000, &mut derived);
    sh(&derived, salt2)
}

/// A two-step verification password as the server keeps it: salts and the verifier
/// `v = g^x mod p` (never the password).
#[derive(Clone)]
pub struct Password {
    pub salt1: Vec<u8>,
    pub salt2: Vec<u8>,
    v: BigUint,
    pub hint: Option<String>,
}

impl Password {
    pub fn new(password: &str, hint: Option<String>) -> Self {
        let salt1: Vec<u8> = (0..40).map(|_| rand::random::<u8>()).collect();
        let salt2: Vec<u8> = (0..16).map(|_| rand::random::<u8>()).collect();
        let x = BigUint::from_bytes_be(&ph2(password, &salt1, &salt2));
        let v = BigUint::from(G).modpow(&x, &BigUint::from_bytes_be(&p_bytes()));
        Self { salt1, salt2, v, hint }
    }

    /// One sign-in attempt's server half: a random `b` and `B = k·v + g^b mod p`.
    pub fn challenge(&self) -> Challenge {
        let p = BigUint::from_bytes_be(&p_bytes());
        let b = BigUint::from_bytes_be(&(0..256).map(|_| rand::random::<u8>()).collect::<Vec<_>>());
        let k = BigUint::from_bytes_be(&h(&[&p_bytes(), &pad256(&BigUint::from(G))]));
        let g_b = (k * &self.v + BigUint::from(G).modpow(&b, &p)) % &p;
        Challenge { b, g_b: pad256(&g_b).to_vec() }
    }

    /// Whether the client's `A` and `M1` prove the password for `challenge`.
    pub fn verify(&self, challenge: &Challenge, a: &[u8], m1: &[u8]) -> bool {
        let p = BigUint::from_bytes_be(&p_bytes());
        let big_a = BigUint::from_bytes_be(a);
        if big_a == BigUint::from(0u8) || big_a >= p {
            return false;
        }
        let g_a = pad256(&big_a);
        let u = BigUint::from_bytes_be(&h(&[&g_a, &challenge.g_b]));
        // S = (A · v^u)^b mod p, the secret both sides reach.
        let s = (big_a * self.v.modpow(&u, &p) % &p).modpow(&challenge.b, &p);
        let k_a = h(&[&pad256(&s)]);
        let h_p = h(&[&p_bytes()]);
        let h_g = h(&[&pad256(&BigUint::from(G))]);
        let p_xor_g: Vec<u8> = h_p.iter().zip(h_g).map(|(x, y)| x ^ y).collect();
        let expected = h(&[&p_xor_g, &h(&[&self.salt1]), &h(&[&self.salt2]), &g_a, &challenge.g_b, &k_a]);
        expected.as_slice() == m1
    }
}

/// The server's half of one SRP exchange.
pub struct Challenge {
    b: BigUint,
    pub g_b: Vec<u8>,
}

/// An account's sign-in as the peer sees it.
#[derive(Default)]
pub struct Login {
    /// Its key is not signed in (a fresh session): every call but signing in answers
    /// `AUTH_KEY_UNREGISTERED`.
    pub signed_out: bool,
    pub password: Option<Password>,
    code: Option<Code>,
    /// The login code was right and the password is still to come.
    code_accepted: bool,
    challenges: HashMap<i64, Challenge>,
    /// The QR login token last exported, and whether the account's phone accepted it.
    qr: Option<(Vec<u8>, bool)>,
}

/// What `auth.exportLoginToken` answers.
pub enum QrLogin {
    /// A token to show as a QR code (`tg://login?token=…`), valid until `expires`.
    Token { token: Vec<u8>, expires: i32 },
    /// The phone accepted the token shown: signed in.
    Success,
}

struct Code {
    digits: String,
    hash: String,
    expired: bool,
}

type Refusal = (i32, &'static str);

impl Login {
    /// `auth.sendCode`: a new code goes to the account's phone (`code` shows it).
    pub fn send_code(&mut self) -> tl::enums::auth::SentCode {
        let digits = format!("{:05}", rand::random::<u32>() % 100_000);
        let hash = format!("{:016x}", rand::random::<u64>());
        self.code = Some(Code { digits, hash: hash.clone(), expired: false });
        self.code_accepted = false;
        tl::enums::auth::SentCode::Code(tl::types::auth::SentCode {
            r#type: tl::enums::auth::SentCodeType::App(tl::types::auth::SentCodeTypeApp { length: 5 }),
            phone_code_hash: hash,
            next_type: None,
            timeout: None,
        })
    }

    /// The login code last sent, as the account's phone shows it.
    pub fn code(&self) -> Option<String> {
        self.code.as_ref().filter(|c| !c.expired).map(|c| c.digits.clone())
    }

    /// The code sent is too old to sign in with.
    pub fn expire_code(&mut self) {
        if let Some(code) = self.code.as_mut() {
            code.expired = true;
        }
    }

    /// `auth.signIn`: signed in (`Ok`), or why not; `SESSION_PASSWORD_NEEDED` when the
    /// account has two-step verification.
    pub fn sign_in(&mut self, hash: &str, digits: Option<&str>) -> Result<(), Refusal> {
        let code = self.code.as_ref().ok_or((400, "PHONE_CODE_EMPTY"))?;
        if code.hash != hash {
            return Err((400, "PHONE_CODE_HASH_INVALID"));
        }
        if code.expired {
            return Err((400, "PHONE_CODE_EXPIRED"));
        }
        if digits != Some(code.digits.as_str()) {
            return Err((400, "PHONE_CODE_INVALID"));
        }
        self.code = None;
        if self.password.is_some() {
            self.code_accepted = true;
            return Err((401, "SESSION_PASSWORD_NEEDED"));
        }
        self.signed_out = false;
        Ok(())
    }

    /// `account.getPassword`: the SRP parameters and a fresh server half.
    pub fn get_password(&mut self) -> tl::enums::account::Password {
        let mut answer = tl::types::account::Password {
            has_recovery: false,
            has_secure_values: false,
            has_password: false,
            current_algo: None,
            srp_b: None,
            srp_id: None,
            hint: None,
            email_unconfirmed_pattern: None,
            new_algo: tl::enums::PasswordKdfAlgo::Unknown,
            new_secure_algo: tl::enums::SecurePasswordKdfAlgo::Unknown,
            secure_random: (0..256).map(|_| rand::random::<u8>()).collect(),
            pending_reset_date: None,
            login_email_pattern: None,
        };
        if let Some(password) = &self.password {
            let challenge = password.challenge();
            let srp_id = rand::random::<i64>();
            let algo = tl::types::PasswordKdfAlgoSha256Sha256Pbkdf2Hmacsha512iter100000Sha256ModPow {
                salt1: password.salt1.clone(),
                salt2: password.salt2.clone(),
                g: G as i32,
                p: p_bytes(),
            };
            answer.has_password = true;
            answer.current_algo = Some(algo.into());
            answer.srp_b = Some(challenge.g_b.clone());
            answer.srp_id = Some(srp_id);
            answer.hint = password.hint.clone();
            self.challenges.insert(srp_id, challenge);
        }
        tl::enums::account::Password::Password(answer)
    }

    /// `auth.exportLoginToken`: a new token to show, until the account's phone accepts one
    /// (`accept_qr`); then signed in, or `SESSION_PASSWORD_NEEDED` with two-step verification.
    pub fn export_login_token(&mut self, now_secs: i32) -> Result<QrLogin, Refusal> {
        if let Some((_, true)) = self.qr {
            self.qr = None;
            if self.password.is_some() {
                self.code_accepted = true;
                return Err((401, "SESSION_PASSWORD_NEEDED"));
            }
            self.signed_out = false;
            return Ok(QrLogin::Success);
        }
        let token: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
        self.qr = Some((token.clone(), false));
        Ok(QrLogin::Token { token, expires: now_secs + 30 })
    }

    /// The account's phone scans a QR code: whether it showed this account's current token.
    pub fn accept_qr(&mut self, token: &[u8]) -> bool {
        match self.qr.as_mut() {
            Some((current, accepted)) if current.as_slice() == token => {
                *accepted = true;
                true
            }
            _ => false,
        }
    }

    /// `auth.checkPassword`: signed in when the proof holds (each challenge is used once).
    pub fn check_password(&mut self, check: &tl::enums::InputCheckPasswordSrp) -> Result<(), Refusal> {
        let tl::enums::InputCheckPasswordSrp::Srp(check) = check else {
            return Err((400, "PASSWORD_HASH_INVALID"));
        };
        let password = self.password.as_ref().ok_or((400, "PASSWORD_EMPTY"))?;
        if !self.code_accepted {
            return Err((401, "AUTH_KEY_UNREGISTERED"));
        }
        let challenge = self.challenges.remove(&check.srp_id).ok_or((400, "SRP_ID_INVALID"))?;
        if !password.verify(&challenge, &check.a, &check.m1) {
            return Err((400, "PASSWORD_HASH_INVALID"));
        }
        self.code_accepted = false;
        self.signed_out = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_clients_proof_is_accepted_and_a_wrong_password_refused() {
        let password = Password::new("hunter2", None);
        let challenge = password.challenge();
        let a: Vec<u8> = (0..256).map(|_| rand::random::<u8>()).collect();
        let proof = |pw: &str| {
            grammers_crypto::two_factor_auth::calculate_2fa(
                &password.salt1,
                &password.salt2,
                &p_bytes(),
                &(G as i32),
                challenge.g_b.clone(),
                a.clone(),
                pw,
            )
        };
        let (m1, g_a) = proof("hunter2");
        assert!(password.verify(&challenge, &g_a, &m1));
        let (m1, g_a) = proof("hunter3");
        assert!(!password.verify(&challenge, &g_a, &m1));
        assert!(grammers_crypto::two_factor_auth::check_p_and_g(&p_bytes(), &(G as i32)), "Telegram's prime");
    }

    fn sent_hash(login: &mut Login) -> String {
        let tl::enums::auth::SentCode::Code(sent) = login.send_code() else { panic!("a code") };
        sent.phone_code_hash
    }

    #[test]
    fn a_login_code_is_checked_for_its_hash_its_digits_and_its_age() {
        let mut login = Login { signed_out: true, ..Login::default() };
        assert_eq!(login.sign_in("x", Some("1")), Err((400, "PHONE_CODE_EMPTY")), "no code sent");
        let hash = sent_hash(&mut login);
        let code = login.code().unwrap();
        assert_eq!(login.sign_in("other", Some(&code)), Err((400, "PHONE_CODE_HASH_INVALID")));
        assert_eq!(login.sign_in(&hash, Some("nope")), Err((400, "PHONE_CODE_INVALID")));
        login.expire_code();
        assert_eq!(login.sign_in(&hash, Some(&code)), Err((400, "PHONE_CODE_EXPIRED")));
        assert!(login.signed_out);
        let hash = sent_hash(&mut login);
        let code = login.code().unwrap();
        assert_eq!(login.sign_in(&hash, Some(&code)), Ok(()));
        assert!(!login.signed_out);
        assert_eq!(login.sign_in(&hash, Some(&code)), Err((400, "PHONE_CODE_EMPTY")), "used once");
    }

    #[test]
    fn a_qr_token_signs_in_once_the_phone_accepts_it() {
        let mut login = Login { signed_out: true, ..Login::default() };
        let Ok(QrLogin::Token { token, .. }) = login.export_login_token(0) else { panic!("a token") };
        assert!(!login.accept_qr(b"another"), "not this account's token");
        let Ok(QrLogin::Token { token: fresh, .. }) = login.export_login_token(0) else { panic!("a new token") };
        assert!(!login.accept_qr(&token), "a token shown before is stale");
        assert!(login.accept_qr(&fresh));
        assert!(matches!(login.export_login_token(0), Ok(QrLogin::Success)));
        assert!(!login.signed_out);
    }

    #[test]
    fn the_password_comes_after_the_code_and_each_challenge_is_used_once() {
        let mut login = Login { signed_out: true, password: Some(Password::new("pw", None)), ..Login::default() };
        let tl::enums::account::Password::Password(info) = login.get_password();
        let srp_id = info.srp_id.unwrap();
        let check = |srp_id| {
            tl::enums::InputCheckPasswordSrp::Srp(tl::types::InputCheckPasswordSrp {
                srp_id,
                a: vec![2],
                m1: vec![0; 32],
            })
        };
        assert_eq!(login.check_password(&check(srp_id)), Err((401, "AUTH_KEY_UNREGISTERED")), "no code yet");
        let hash = sent_hash(&mut login);
        let code = login.code().unwrap();
        assert_eq!(login.sign_in(&hash, Some(&code)), Err((401, "SESSION_PASSWORD_NEEDED")));
        assert_eq!(login.check_password(&check(srp_id)), Err((400, "PASSWORD_HASH_INVALID")));
        assert_eq!(login.check_password(&check(srp_id)), Err((400, "SRP_ID_INVALID")), "used up");
        assert!(login.signed_out);
    }
}
