//! What every test module uses: `spawn_app` (a real server on port 0, its own Redis when
//! asked, a manual clock), a typed client for the Gateway, admin and sandbox APIs, and the
//! `both_backends!` macro that runs a behavioural test on the memory and the Redis store.

mod app;
mod keyspace;
pub mod receiver;
mod reply;

pub use app::{set_key, spawn_app, spawn_app_with, spawn_app_with_resolver, Backend, Tenant, TestApp, PEPPER};
pub use keyspace::dump_keyspace;
pub use reply::{assert_no_null, micros, Reply};
pub use serde_json::{json, Value};
pub use std::time::Duration;

use std::future::Future;
use std::time::Instant;

/// A phone number of the sandbox that no test treats as the tenant's own.
pub const PHONE: &str = "+15551234567";
/// `PHONE` as the API echoes it: digits only.
pub const PHONE_DIGITS: &str = "15551234567";

/// Polls `probe` until it answers `Some`, at most 10 s (then fails naming `what`).
pub async fn wait_for<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after 10 s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Runs each listed `async fn name(backend: Backend)` as three tests, `memory::name`,
/// `redis::name` and `cluster::name` (a local Redis Cluster of three primaries and three
/// replicas). Attributes before a name (`#[ignore = "…"]`) apply to all.
macro_rules! both_backends {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {
        mod memory {
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Backend::Memory).await
                }
            )*
        }
        mod redis {
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Backend::Redis).await
                }
            )*
        }
        mod cluster {
            $(
                $(#[$meta])*
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(crate::helpers::Backend::Cluster).await
                }
            )*
        }
    };
}
