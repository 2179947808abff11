//! How much delivery work is waiting, and whose message goes next: what operators watch and
//! the workers drain.

use super::{TenantId, Timestamp};

/// Delivery jobs not yet done (see `store::Store::delivery_backlog`), in all and per tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Backlog {
    /// In the queue, or claimed by a worker.
    pub queued: u64,
    /// Put off until a later time (a retry after a failure on the way).
    pub waiting: u64,
    /// When the oldest job in the queue was queued (by the store's clock: Redis's own on
    /// Redis).
    #[serde(skip)]
    pub oldest: Option<Timestamp>,
    /// Every tenant with jobs, by tenant id.
    #[serde(skip)]
    pub tenants: Vec<TenantBacklog>,
}

/// One tenant's share of the backlog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantBacklog {
    pub tenant: TenantId,
    pub queued: u64,
    pub waiting: u64,
    pub oldest: Option<Timestamp>,
}

impl Backlog {
    pub fn total(&self) -> u64 {
        self.queued + self.waiting
    }

    /// Adds one tenant's jobs (tenants without any are left out).
    pub fn add(&mut self, tenant: TenantBacklog) {
        self.queued += tenant.queued;
        self.waiting += tenant.waiting;
        self.oldest = self.oldest.into_iter().chain(tenant.oldest).min();
        if tenant.queued + tenant.waiting > 0 {
            self.tenants.push(tenant);
        }
    }
}

/// Whose message goes next when a sender account is free: tenants with jobs take turns,
/// weighted (start-time fair queueing). Each tenant in the queue carries a turn tag; the next
/// job comes from the tenant with the lowest tag, whose tag then moves on by its turn's cost,
/// `TURN_UNIT / weight`: with weights 1 and 3, the second tenant sends three messages for each
/// one of the first. A tenant that comes back to work starts at the tag of the turn served
/// last, so idle time earns no burst, and a tenant's new message waits behind at most one
/// message of each other tenant with work (`weight` of them for a heavier one), never behind
/// a backlog.
pub mod turns {
    /// The cost of one turn at weight 1. Tags stay integers: exact in a Redis score (a double)
    /// for 9 × 10⁹ messages at weight 1.
    pub const TURN_UNIT: u64 = 1_000_000;

    /// The weight of a tenant that has none set.
    pub const DEFAULT_WEIGHT: u16 = 1;

    /// Weights an operator may give: at most a thousand turns for one of the lightest.
    pub const WEIGHT_RANGE: std::ops::RangeInclusive<u16> = 1..=1000;

    /// What one message costs a tenant of this weight, in turn tag units.
    pub fn cost(weight: u16) -> u64 {
        TURN_UNIT / u64::from(weight.clamp(*WEIGHT_RANGE.start(), *WEIGHT_RANGE.end()))
    }

    /// Where a tenant whose tag is `tag` (none: it just came to the queue) starts its turn
    /// when the turn served last started at `clock`.
    pub fn start(tag: Option<u64>, clock: u64) -> u64 {
        tag.map_or(clock, |t| t.max(clock))
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        /// Simulates tenants that always have work: the shares follow the weights exactly.
        #[test]
        fn shares_follow_the_weights_and_a_newcomer_goes_next() {
            let weights = [1u16, 2, 3];
            let mut tags: Vec<Option<u64>> = vec![None; 3];
            let mut clock = 0;
            let mut served = [0u32; 3];
            for _ in 0..600 {
                let (i, at) = (0..3).map(|i| (i, start(tags[i], clock))).min_by_key(|&(i, at)| (at, i)).unwrap();
                clock = clock.max(at);
                tags[i] = Some(at + cost(weights[i]));
                served[i] += 1;
            }
            assert_eq!(served, [100, 200, 300]);
            // A tenant coming to the queue now starts at the clock: it goes next.
            let newcomer = start(None, clock);
            assert!(tags.iter().all(|t| t.unwrap() >= newcomer), "{tags:?} {newcomer}");
            assert_eq!(cost(0), TURN_UNIT, "out-of-range weights are clamped");
            assert_eq!(cost(5000), TURN_UNIT / 1000);
        }
    }
}
