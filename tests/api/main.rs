//! The integration suite: the service on a real socket, driven over HTTP, each behavioural
//! test on every store (`memory::…`, `redis::…` and `cluster::…`).

// The package denies `unwrap_used`, `expect_used` and `panic` for `src/`; clippy.toml's
// `allow-*-in-tests` covers `#[test]` functions only, not the helpers and test bodies of an
// integration crate, where failing loudly is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod helpers;

mod admin;
mod auth;
mod bad_inputs;
mod billing;
mod check;
mod concurrency;
mod delivery;
mod dns;
mod failover;
mod fairness;
mod hashing;
mod health;
mod lifecycle;
mod limits;
mod malformed;
mod metrics;
mod pool;
mod reports;
mod revoke;
mod sandbox;
mod secrets;
mod send;
mod send_ability;
mod telegram;
mod throttle;
mod transport;
