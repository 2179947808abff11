//! How much delivery work is waiting: what operators watch and the workers drain.

use super::Timestamp;

/// Delivery jobs not yet done (see `store::Store::delivery_backlog`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Backlog {
    /// In the queue, or claimed by a worker.
    pub queued: u64,
    /// Put off until a later time.
    pub waiting: u64,
    /// When the oldest job in the queue was queued (by the store's clock: Redis's own on
    /// Redis).
    #[serde(skip)]
    pub oldest: Option<Timestamp>,
}

impl Backlog {
    pub fn total(&self) -> u64 {
        self.queued + self.waiting
    }
}
