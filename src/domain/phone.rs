//! `PhoneNumber`: an E.164 number kept as digits only.

use std::fmt;

/// An E.164 phone number: a known country calling code followed by the national number,
/// 8 to 15 digits in all, stored and shown without the leading `+` (as the Gateway echoes it).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber {
    digits: String,
    country_code: u16,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an E.164 phone number")]
pub struct InvalidPhoneNumber;

const MIN_DIGITS: usize = 8;
const MAX_DIGITS: usize = 15;

impl PhoneNumber {
    /// Accepts `+` followed by digits, or digits alone. Nothing else: no spaces, dashes,
    /// parentheses, `00` prefixes or non-ASCII digits (a number is an identifier; guessing at
    /// formatting invites two spellings of one number).
    pub fn parse(input: &str) -> Result<Self, InvalidPhoneNumber> {
        let digits = input.strip_prefix('+').unwrap_or(input);
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len())
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || digits.starts_with('0')
        {
            return Err(InvalidPhoneNumber);
        }
        let country_code = country_code_of(digits).ok_or(InvalidPhoneNumber)?;
        Ok(Self { digits: digits.to_owned(), country_code })
    }

    /// Loads the calling-code metadata now (it takes a noticeable moment), so the first
    /// request does not pay for it.
    pub fn preload() {
        let _ = country_code_of("1");
    }

    pub fn digits(&self) -> &str {
        &self.digits
    }

    /// The country calling code (`1`, `44`, `7`, …): used for prices and message language.
    pub fn country_code(&self) -> u16 {
        self.country_code
    }
}

/// E.164 calling codes are prefix-free, so at most one of the 1-, 2- and 3-digit prefixes is
/// an assigned code; the metadata of libphonenumber says which.
fn country_code_of(digits: &str) -> Option<u16> {
    let db = &*phonenumber::metadata::DATABASE;
    (1..=3).find_map(|len| {
        let code: u16 = digits.get(..len)?.parse().ok()?;
        db.by_code(&code).map(|_| code)
    })
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.digits)
    }
}

impl fmt::Debug for PhoneNumber {
    // Phone numbers are personal data: debug output shows the country code and length only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber(+{}…{})", self.country_code, self.digits.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_with_and_without_plus() {
        let a = PhoneNumber::parse("+1999123456726").unwrap();
        let b = PhoneNumber::parse("1999123456726").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.digits(), "1999123456726");
        assert_eq!(a.country_code(), 1);
        assert_eq!(PhoneNumber::parse("447911123456").unwrap().country_code(), 44);
        assert_eq!(PhoneNumber::parse("380501234567").unwrap().country_code(), 380);
    }

    #[test]
    fn rejects_the_bad_inputs_of_the_test_plan() {
        for bad in [
            "",
            "+",
            "++15551234567",
            "0015551234567",
            "+1 555 123 4567",
            "+1-555-123-4567",
            "+1(555)1234567",
            "1234567",
            "+1234567890123456",
            "+0123456789",
            "+9991234567",
            "＋15551234567",
            "+１５５５１２３４５６７",
            "+١٥٥٥١٢٣٤٥٦٧",
            "+1555\u{200d}1234567",
            "+15551234567\0",
            "+15551234567\r\n",
            "+1555123456a",
            " +15551234567",
        ] {
            assert_eq!(PhoneNumber::parse(bad), Err(InvalidPhoneNumber), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_the_number() {
        let p = PhoneNumber::parse("+15551234567").unwrap();
        assert!(!format!("{p:?}").contains("5551234567"));
    }

    proptest! {
        #[test]
        fn never_panics_and_round_trips(s in "\\PC{0,24}") {
            if let Ok(p) = PhoneNumber::parse(&s) {
                prop_assert!(p.digits().bytes().all(|b| b.is_ascii_digit()));
                prop_assert_eq!(PhoneNumber::parse(p.digits()).unwrap(), p);
            }
        }

        #[test]
        fn every_plausible_number_with_a_known_code_parses(n in 10_000_000u64..999_999_999_999_999) {
            let s = n.to_string();
            let parsed = PhoneNumber::parse(&format!("+{s}"));
            prop_assert_eq!(parsed.is_ok(), country_code_of(&s).is_some());
        }
    }
}
