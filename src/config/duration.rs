//! How durations are written in configuration, read in this one place. A key ending in `_ms`
//! counts milliseconds; every other duration key (and each entry of
//! `callbacks.retry_schedule`) counts whole seconds. Either may instead be a string with its
//! unit, in humantime's syntax: `"90s"`, `"1500ms"`, `"5m"`, `"2h"`, `"7d"`, `"1h 30m"`.
//! Settings hold `std::time::Duration`, so nothing downstream converts.

use serde::{Deserialize, Deserializer};
use std::time::Duration;

/// A duration as written: a count of the key's unit, or a string with its own unit.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Count(u64),
    Text(String),
}

impl Written {
    fn read(self, unit: Duration) -> Result<Duration, String> {
        match self {
            Written::Count(n) => u32::try_from(n)
                .ok()
                .and_then(|n| unit.checked_mul(n))
                .ok_or_else(|| format!("{n} is too long a duration")),
            Written::Text(text) => humantime::parse_duration(text.trim())
                .map_err(|e| format!("{text:?} is not a duration (a number, or e.g. \"90s\", \"5m\"): {e}")),
        }
    }
}

/// A duration key counted in seconds.
pub(super) mod seconds {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Written::deserialize(d)?.read(Duration::from_secs(1)).map_err(serde::de::Error::custom)
    }
}

/// A duration key counted in milliseconds (its name ends in `_ms`).
pub(super) mod millis {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Written::deserialize(d)?.read(Duration::from_millis(1)).map_err(serde::de::Error::custom)
    }
}

/// A list of durations counted in seconds.
pub(super) mod seconds_list {
    use super::*;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Duration>, D::Error> {
        Vec::<Written>::deserialize(d)?
            .into_iter()
            .map(|w| w.read(Duration::from_secs(1)))
            .collect::<Result<_, _>>()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Probe {
        #[serde(with = "seconds")]
        wait: Duration,
        #[serde(with = "millis")]
        wait_ms: Duration,
        #[serde(with = "seconds_list")]
        schedule: Vec<Duration>,
    }

    fn probe(text: &str) -> Result<Probe, toml::de::Error> {
        toml::from_str(text)
    }

    #[test]
    fn counts_are_in_the_keys_unit_and_strings_carry_their_own() {
        let p = probe("wait = 90\nwait_ms = 1500\nschedule = [10, \"1m\"]").unwrap();
        assert_eq!(p.wait, Duration::from_secs(90));
        assert_eq!(p.wait_ms, Duration::from_millis(1500));
        assert_eq!(p.schedule, [Duration::from_secs(10), Duration::from_secs(60)]);
        let p = probe("wait = \"1h 30m\"\nwait_ms = \"2s\"\nschedule = []").unwrap();
        assert_eq!(p.wait, Duration::from_secs(5400));
        assert_eq!(p.wait_ms, Duration::from_secs(2));
    }

    #[test]
    fn what_is_not_a_duration_is_refused() {
        for bad in ["wait = \"soon\"", "wait = -1", "wait = 1.5", "wait = 99999999999"] {
            assert!(probe(&format!("{bad}\nwait_ms = 1\nschedule = []")).is_err(), "{bad}");
        }
    }
}
