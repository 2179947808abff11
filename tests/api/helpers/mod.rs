//! What every test module uses: `spawn_app` (a real server on port 0, its own Redis when
//! asked, a manual clock) and a typed client for the Gateway, admin and sandbox APIs. Behavioural
//! tests run on every store with `verigram_testkit::on_every_backend!`.

mod app;
pub mod receiver;
mod reply;

pub use app::{set_key, spawn_app, spawn_app_with, spawn_app_with_resolver, Tenant, TestApp, PEPPER};
pub use reply::{assert_no_null, micros, Reply};
pub use serde_json::{json, Value};
pub use std::time::Duration;
pub use verigram_testkit::keyspace::dump_keyspace;
pub use verigram_testkit::{wait_for, wait_up_to, Backend};

/// A phone number of the sandbox that no test treats as the tenant's own.
pub const PHONE: &str = "+15551234567";
/// `PHONE` as the API echoes it: digits only.
pub const PHONE_DIGITS: &str = "15551234567";
