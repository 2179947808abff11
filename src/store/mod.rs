//! The store: whole, atomic domain operations over two backends.
//!
//! The memory backend is the embedded default (nothing installed, nothing kept across a
//! restart); the Redis backend makes each operation one Lua script over keys that share the
//! tenant's hash tag. The rules themselves (what a check or a revocation does to a request)
//! are pure functions in `domain`; the store applies their result with optimistic concurrency
//! (`update_request`), so the rules are written once for both backends.

mod change;
mod codec;
mod contract;
mod dispatch;
mod limits;
mod memory;
mod redis;
mod work;

pub use self::change::{AdjustOutcome, Change, CreateOutcome, Retention};
pub use self::contract::{AccountStore, LimitStore, QueueStore, RequestStore, StoreBackend, TenantStore};
pub use self::dispatch::{Backend, Store, OPERATIONS};
pub(crate) use self::limits::{limit_state, spend_key};
pub use self::memory::MemoryStore;
pub use self::redis::{Conn as RedisConnection, RedisStore};
pub(crate) use self::work::queued_at;
pub use self::work::{DueTask, Job, Scheduled, Task};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend cannot be reached or did not answer in time: retry later, fail closed now.
    #[error("the store is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A stored value could not be read back: a bug or a foreign write, never a client error.
    #[error("stored {what} is corrupt")]
    Corrupt { what: &'static str },
    /// The backend refused an operation (a script error, a wrong type): a bug or a
    /// misconfigured server, not worth retrying.
    #[error("the store refused an operation")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Optimistic updates kept colliding with concurrent writers.
    #[error("too many concurrent updates of one record")]
    Contention,
}

impl StoreError {
    /// Whether trying again later may succeed (workers back off on these).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::Contention)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Dead letters kept per tenant (the oldest are dropped beyond this).
pub const DEAD_REPORTS_KEPT: usize = 1000;
