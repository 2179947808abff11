//! The optional parameters of a send: `ttl`, `payload`, `callback_url`, `sender_username`.

use super::address;
use std::time::Duration;
use url::{Host, Url};

/// How long a message may take to be delivered before it is deleted and refunded: 30–3600 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ttl(u16);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("ttl is an integer number of seconds from 30 to 3600")]
pub struct InvalidTtl;

impl Ttl {
    pub const MIN: u16 = 30;
    pub const MAX: u16 = 3600;

    pub fn parse(input: &str) -> Result<Self, InvalidTtl> {
        let secs: u16 = input.parse().map_err(|_| InvalidTtl)?;
        Self::from_secs(secs.into())
    }

    pub fn from_secs(secs: u64) -> Result<Self, InvalidTtl> {
        match u16::try_from(secs) {
            Ok(s) if (Self::MIN..=Self::MAX).contains(&s) => Ok(Self(s)),
            _ => Err(InvalidTtl),
        }
    }

    pub fn secs(self) -> u16 {
        self.0
    }

    pub fn duration(self) -> Duration {
        Duration::from_secs(self.0.into())
    }
}

/// The tenant's own data echoed in every status: at most 128 bytes of UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("payload is at most 128 bytes")]
pub struct InvalidPayload;

impl Payload {
    pub const MAX_BYTES: usize = 128;

    pub fn parse(input: &str) -> Result<Self, InvalidPayload> {
        if input.len() <= Self::MAX_BYTES {
            Ok(Self(input.to_owned()))
        } else {
            Err(InvalidPayload)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a callback URL may point at, from `callbacks.allow_http` and
/// `callbacks.allow_private_networks`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallbackPolicy {
    pub allow_http: bool,
    pub allow_private_networks: bool,
}

/// An absolute `https` URL of at most 256 bytes, without user info, whose host is a name or a
/// public address. Host names are resolved and checked again when a report is sent (SSRF).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackUrl(Url);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("callback_url must be an https URL of at most 256 bytes with a public host")]
pub struct InvalidCallbackUrl;

impl CallbackUrl {
    pub const MAX_BYTES: usize = 256;

    pub fn parse(input: &str, policy: CallbackPolicy) -> Result<Self, InvalidCallbackUrl> {
        if input.len() > Self::MAX_BYTES || input.bytes().any(|b| b.is_ascii_control() || b == b' ') {
            return Err(InvalidCallbackUrl);
        }
        let url = Url::parse(input).map_err(|_| InvalidCallbackUrl)?;
        let scheme_ok = url.scheme() == "https" || (policy.allow_http && url.scheme() == "http");
        if !scheme_ok || !url.username().is_empty() || url.password().is_some() {
            return Err(InvalidCallbackUrl);
        }
        // The WHATWG parser has already turned decimal, octal and hex IPv4 spellings into
        // dotted form, so `https://2130706433/` arrives here as 127.0.0.1.
        let public = match url.host() {
            None => false,
            Some(Host::Domain(name)) => !address::is_internal_name(name),
            Some(Host::Ipv4(ip)) => address::is_public(ip.into()),
            Some(Host::Ipv6(ip)) => address::is_public(ip.into()),
        };
        if !public && !policy.allow_private_networks {
            return Err(InvalidCallbackUrl);
        }
        if url.host().is_none() {
            return Err(InvalidCallbackUrl);
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// The host as the URL names it (an IPv6 literal in brackets).
    pub fn host(&self) -> &str {
        self.0.host_str().unwrap_or_default()
    }
}

/// A Telegram username (`@` optional): 5–32 characters of ASCII letters, digits and `_`,
/// starting with a letter. Kept in lower case: Telegram usernames are case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SenderUsername(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not a Telegram username")]
pub struct InvalidSenderUsername;

impl SenderUsername {
    pub fn parse(input: &str) -> Result<Self, InvalidSenderUsername> {
        let name = input.strip_prefix('@').unwrap_or(input);
        let valid = (5..=32).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && name.as_bytes().first().is_some_and(u8::is_ascii_alphabetic);
        if valid {
            Ok(Self(name.to_ascii_lowercase()))
        } else {
            Err(InvalidSenderUsername)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const STRICT: CallbackPolicy = CallbackPolicy { allow_http: false, allow_private_networks: false };

    #[test]
    fn ttl_bounds() {
        for ok in ["30", "3600", "600"] {
            assert!(Ttl::parse(ok).is_ok());
        }
        for bad in ["29", "3601", "0", "-30", "30.0", "abc", "99999999999999999999", "", "1e3"] {
            assert_eq!(Ttl::parse(bad), Err(InvalidTtl), "{bad:?}");
        }
    }

    #[test]
    fn payload_counts_bytes() {
        assert!(Payload::parse(&"a".repeat(128)).is_ok());
        assert!(Payload::parse(&"a".repeat(129)).is_err());
        // 64 two-byte characters are 128 bytes; one more is 130.
        assert!(Payload::parse(&"é".repeat(64)).is_ok());
        assert!(Payload::parse(&"é".repeat(65)).is_err());
    }

    #[test]
    fn callback_urls() {
        assert!(CallbackUrl::parse("https://example.com/hook?x=1", STRICT).is_ok());
        assert!(CallbackUrl::parse("https://example.com:8443/hook", STRICT).is_ok());
        let long = format!("https://example.com/{}", "a".repeat(240));
        assert!(CallbackUrl::parse(&long, STRICT).is_err());
        for bad in [
            "http://example.com/",
            "file:///etc/passwd",
            "gopher://example.com/",
            "ftp://example.com/",
            "https://127.0.0.1/",
            "https://2130706433/",
            "https://0177.0.0.1/",
            "https://0x7f000001/",
            "https://[::1]/",
            "https://[::ffff:169.254.169.254]/",
            "https://169.254.169.254/",
            "https://10.0.0.1/",
            "https://192.168.1.1/",
            "https://user:pass@example.com/",
            "https://localhost/",
            "https://printer.local/",
            "https://example.com/%00\n",
            "/relative",
            "https://[64:ff9b::7f00:1]/",
            "https://100.64.0.1/",
            "https://0.0.0.0/",
            "",
        ] {
            assert_eq!(CallbackUrl::parse(bad, STRICT), Err(InvalidCallbackUrl), "{bad:?}");
        }
        let dev = CallbackPolicy { allow_http: true, allow_private_networks: true };
        assert!(CallbackUrl::parse("http://127.0.0.1:9000/hook", dev).is_ok());
    }

    #[test]
    fn usernames() {
        assert_eq!(SenderUsername::parse("@MyShop").unwrap().as_str(), "myshop");
        for bad in ["", "@", "abcd", "1shop", "my-shop", &"a".repeat(33), "shop\u{0}x"] {
            assert!(SenderUsername::parse(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn callback_parser_never_panics(s in "\\PC{0,300}") {
            let _ = CallbackUrl::parse(&s, STRICT);
        }

        #[test]
        fn accepted_callback_urls_are_https_and_short(s in "https://[a-z0-9.:@\\[\\]/%-]{0,60}") {
            if let Ok(url) = CallbackUrl::parse(&s, STRICT) {
                prop_assert!(url.as_str().starts_with("https://"));
                prop_assert!(s.len() <= CallbackUrl::MAX_BYTES);
            }
        }
    }
}
