//! What verigram's tests and benchmarks start and wait on, so each test crate need not carry
//! its own copy: a private `redis-server` (or Redis Cluster) per test, the `verigram` binary as
//! a child process, a receiver of delivery reports, the waiting helper with a deadline, and the
//! macro that runs a behavioural test on every store backend.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod dns;
pub mod http;
pub mod keyspace;
pub mod process;
pub mod prometheus;
mod redis;
mod wait;

pub use redis::{RedisCluster, RedisServer, RedisServerError};
pub use wait::{poll_up_to, wait_for, wait_up_to};

/// A store backend a behavioural test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Redis,
    /// Redis Cluster: three primaries, three replicas.
    Cluster,
}

impl Backend {
    /// What `/readyz` and `verigram_build_info` call the store.
    pub fn store_kind(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::Redis | Backend::Cluster => "redis",
        }
    }

    /// Redis, on one node or a cluster: Redis's clock for leases, real keys.
    pub fn is_redis(self) -> bool {
        self != Backend::Memory
    }
}

/// Runs each listed `async fn name(backend: Backend)` as three tests, `memory::name`,
/// `redis::name` and `cluster::name` (a local Redis Cluster of three primaries and three
/// replicas). Attributes before a name (`#[ignore = "…"]`) apply to all three.
///
/// `on_every_backend!(once: name, …)` runs tests that do not depend on the store (parsing,
/// HTTP framing: refused before any store operation) once, as `once::name`, on the memory
/// store.
#[macro_export]
macro_rules! on_every_backend {
    (once: $($(#[$meta:meta])* $name:ident),* $(,)?) => {
        mod once {
            $(
                $(#[$meta])*
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Memory).await
                }
            )*
        }
    };
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {
        mod memory {
            $(
                $(#[$meta])*
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Memory).await
                }
            )*
        }
        mod redis {
            $(
                $(#[$meta])*
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Redis).await
                }
            )*
        }
        mod cluster {
            $(
                $(#[$meta])*
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Cluster).await
                }
            )*
        }
    };
}
