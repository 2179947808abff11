//! Money: integer micro-credits inside, credits as JSON numbers outside.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// An amount of money in micro-credits (1 credit = 1,000,000). Integer arithmetic only, so no
/// charge or refund ever rounds money into or out of existence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, utoipa::ToSchema)]
#[schema(
    value_type = f64,
    description = "An amount of credits as a JSON number (`0.01`; whole amounts as integers: `5`), exact to \
                   6 fractional digits. Where the admin API reads one, a decimal string (`\"0.01\"`) is accepted too.",
    example = 0.01
)]
pub struct Credits(i64);

pub const MICROS_PER_CREDIT: i64 = 1_000_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an amount of credits is a decimal number with at most 6 fractional digits, at most 1,000,000,000 either way")]
pub struct InvalidCredits;

impl Credits {
    pub const ZERO: Credits = Credits(0);

    /// The largest amount taken anywhere, and the largest balance: 10^15 micro-credits. Two
    /// of them added stay below 2^53, so the store's Lua (whose numbers are doubles) computes
    /// every sum of money exactly.
    pub const MAX: Credits = Credits(1_000_000_000 * MICROS_PER_CREDIT);

    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Parses a decimal such as `12`, `0.01`, `-3.5` exactly (no floating point on the way).
    pub fn parse(input: &str) -> Result<Self, InvalidCredits> {
        let (negative, rest) = match input.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, input),
        };
        let (whole, frac) = rest.split_once('.').unwrap_or((rest, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > 6 {
            return Err(InvalidCredits);
        }
        if rest.contains('.') && frac.is_empty() {
            return Err(InvalidCredits);
        }
        let whole: i64 = whole.parse().map_err(|_| InvalidCredits)?;
        let frac_micros: i64 = format!("{frac:0<6}").parse().map_err(|_| InvalidCredits)?;
        let micros =
            whole.checked_mul(MICROS_PER_CREDIT).and_then(|w| w.checked_add(frac_micros)).ok_or(InvalidCredits)?;
        if micros > Self::MAX.0 {
            return Err(InvalidCredits);
        }
        Ok(Self(if negative { -micros } else { micros }))
    }

    pub fn checked_add(self, other: Credits) -> Option<Credits> {
        self.0.checked_add(other.0).map(Credits)
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// The JSON number a client sees. `f64` renders the shortest text that round-trips, so
    /// 10,000 micro-credits print as `0.01`.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / MICROS_PER_CREDIT as f64
    }
}

impl fmt::Display for Credits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / MICROS_PER_CREDIT as u64;
        let frac = abs % MICROS_PER_CREDIT as u64;
        if frac == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let frac = format!("{frac:06}");
            write!(f, "{sign}{whole}.{}", frac.trim_end_matches('0'))
        }
    }
}

impl Serialize for Credits {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 % MICROS_PER_CREDIT == 0 {
            s.serialize_i64(self.0 / MICROS_PER_CREDIT)
        } else {
            s.serialize_f64(self.as_f64())
        }
    }
}

/// Accepts a JSON number or a decimal string; a number is read from its exact text, never
/// through a float.
impl<'de> Deserialize<'de> for Credits {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(serde_json::Number),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Number(n) => Credits::parse_json_number(&n.to_string()),
            Raw::Text(t) => Credits::parse(t.trim()),
        }
        .map_err(serde::de::Error::custom)
    }
}

impl Credits {
    /// Parses the text of a JSON number, which may be in exponent form: `serde_json` writes
    /// amounts under 0.0001 credits that way (`1e-6` is one micro-credit). The exponent only
    /// moves the decimal point, so this stays exact.
    fn parse_json_number(text: &str) -> Result<Self, InvalidCredits> {
        let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
            return Credits::parse(text);
        };
        let exponent: i32 = exponent.parse().map_err(|_| InvalidCredits)?;
        if exponent.abs() > 30 {
            return Err(InvalidCredits);
        }
        let (sign, unsigned) = mantissa.strip_prefix('-').map_or(("", mantissa), |rest| ("-", rest));
        let (whole, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        let digits = format!("{whole}{frac}");
        let point = whole.len() as i32 + exponent;
        let decimal = if point <= 0 {
            format!("0.{}{digits}", "0".repeat(point.unsigned_abs() as usize))
        } else if point as usize >= digits.len() {
            format!("{digits}{}", "0".repeat(point as usize - digits.len()))
        } else {
            let (w, f) = digits.split_at(point as usize);
            format!("{w}.{f}")
        };
        Credits::parse(&format!("{sign}{decimal}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_bounded_so_every_sum_stays_exact_in_a_double() {
        assert_eq!(Credits::parse("1000000000"), Ok(Credits::MAX));
        assert_eq!(Credits::parse("-1000000000"), Ok(Credits::from_micros(-Credits::MAX.micros())));
        assert_eq!(Credits::parse("1000000000.000001"), Err(InvalidCredits));
        assert_eq!(Credits::parse("9223372036854"), Err(InvalidCredits));
        assert_eq!(serde_json::from_str::<Credits>("1e10").map_err(|_| ()), Err(()));
        // Two of the largest added: exact as f64 (what Redis's Lua computes with).
        let sum = 2 * Credits::MAX.micros();
        assert!(sum < 1 << 53);
        assert_eq!(sum as f64 as i64, sum);
    }
    use proptest::prelude::*;

    #[test]
    fn parses_exactly() {
        assert_eq!(Credits::parse("0.01").unwrap().micros(), 10_000);
        assert_eq!(Credits::parse("12").unwrap().micros(), 12_000_000);
        assert_eq!(Credits::parse("-3.5").unwrap().micros(), -3_500_000);
        assert_eq!(Credits::parse("0.000001").unwrap().micros(), 1);
        for bad in ["", ".5", "5.", "0.0000001", "1e3", "abc", "1,5", "--1", "9223372036855"] {
            assert!(Credits::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn serializes_as_json_numbers() {
        let j = |m| serde_json::to_string(&Credits::from_micros(m)).unwrap();
        assert_eq!(j(10_000), "0.01");
        assert_eq!(j(0), "0");
        assert_eq!(j(49_990_000), "49.99");
        assert_eq!(j(5_000_000), "5");
    }

    #[test]
    fn deserializes_numbers_and_strings() {
        let c: Credits = serde_json::from_str("0.07").unwrap();
        assert_eq!(c.micros(), 70_000);
        let c: Credits = serde_json::from_str("\"100.5\"").unwrap();
        assert_eq!(c.micros(), 100_500_000);
        assert!(serde_json::from_str::<Credits>("1e-7").is_err());
        // serde_json writes small amounts in exponent form; they read back exactly.
        assert_eq!(serde_json::to_string(&Credits::from_micros(1)).unwrap(), "1e-6");
        for (text, micros) in [("1e-6", 1), ("1.5e-5", 15), ("-2.5E-5", -25), ("1e2", 100_000_000)] {
            let c: Credits = serde_json::from_str(text).unwrap();
            assert_eq!(c.micros(), micros, "{text}");
        }
        assert!(serde_json::from_str::<Credits>("1.5e-7").is_err());
        assert!(serde_json::from_str::<Credits>("1e400").is_err());
    }

    proptest! {
        #[test]
        fn display_round_trips(m in -1_000_000_000_000i64..1_000_000_000_000) {
            let c = Credits::from_micros(m);
            prop_assert_eq!(Credits::parse(&c.to_string()).unwrap(), c);
        }

        #[test]
        fn json_round_trips(m in prop_oneof![-1_000_000i64..1_000_000, -1_000_000_000_000i64..1_000_000_000_000]) {
            let c = Credits::from_micros(m);
            let back: Credits = serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
            prop_assert_eq!(back, c);
        }
    }
}
