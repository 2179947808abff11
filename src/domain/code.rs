//! Verification codes: the tenant's own or one we generate, and the length of a generated one.

use rand::{rngs::OsRng, Rng};
use std::fmt;

pub const MIN_LEN: usize = 4;
pub const MAX_LEN: usize = 8;

/// A code of 4 to 8 ASCII digits. Its `Debug` never shows the digits.
#[derive(Clone, PartialEq, Eq)]
pub struct Code(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a code is 4 to 8 ASCII digits")]
pub struct InvalidCode;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a code length is an integer from 4 to 8")]
pub struct InvalidCodeLength;

impl Code {
    pub fn parse(input: &str) -> Result<Self, InvalidCode> {
        if (MIN_LEN..=MAX_LEN).contains(&input.len()) && input.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(input.to_owned()))
        } else {
            Err(InvalidCode)
        }
    }

    /// A fresh code from the OS CSPRNG. `gen_range` samples uniformly (rejection sampling), so
    /// every code of the length is equally likely: no modulo bias.
    pub fn generate(len: CodeLength) -> Self {
        let n = len.0 as u32;
        let value = OsRng.gen_range(0..10u64.pow(n));
        Self(format!("{value:0width$}", width = len.0 as usize))
    }

    /// The digits, for hashing and for the message text only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Code(***)")
    }
}

/// How many digits a generated code has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLength(u8);

impl CodeLength {
    pub fn parse(input: &str) -> Result<Self, InvalidCodeLength> {
        let n: u8 = input.parse().map_err(|_| InvalidCodeLength)?;
        if (MIN_LEN..=MAX_LEN).contains(&(n as usize)) {
            Ok(Self(n))
        } else {
            Err(InvalidCodeLength)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_codes() {
        assert!(Code::parse("1234").is_ok());
        assert!(Code::parse("12345678").is_ok());
        for bad in ["123", "123456789", "12a4", " 1234", "1234 ", "١٢٣٤", "１２３４", "-1234", "12.4", ""] {
            assert_eq!(Code::parse(bad), Err(InvalidCode), "{bad:?}");
        }
    }

    #[test]
    fn parses_lengths() {
        assert!(CodeLength::parse("4").is_ok());
        assert!(CodeLength::parse("8").is_ok());
        for bad in ["3", "9", "-6", "6.0", "1e3", "99999999999999999999", "", " 6"] {
            assert_eq!(CodeLength::parse(bad), Err(InvalidCodeLength), "{bad:?}");
        }
    }

    #[test]
    fn generated_codes_have_the_length_and_digits_are_uniform() {
        let mut counts = [0u32; 10];
        for len in 4..=8u8 {
            for _ in 0..2000 {
                let c = Code::generate(CodeLength(len));
                assert_eq!(c.expose().len(), len as usize);
                for b in c.expose().bytes() {
                    counts[(b - b'0') as usize] += 1;
                }
            }
        }
        // 60,000 digits: each digit expects 6,000; a biased generator is far outside ±10 %.
        let total: u32 = counts.iter().sum();
        for c in counts {
            let expected = total / 10;
            assert!(c.abs_diff(expected) < expected / 10, "{counts:?}");
        }
    }

    #[test]
    fn debug_hides_the_code() {
        assert_eq!(format!("{:?}", Code::parse("123456").unwrap()), "Code(***)");
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_4_to_8_ascii_digits(s in "\\PC{0,12}") {
            let ok = (4..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
            prop_assert_eq!(Code::parse(&s).is_ok(), ok);
        }
    }
}
