//! Delivery reports to a tenant's `callback_url`: the Gateway's signature, the address checks,
//! and the dispatcher that posts one report. The outbox is the requests' own list of pending
//! reports (`domain::PendingReport`); workers run it as the `Report` task.

pub mod dispatch;
pub mod resolver;
pub mod sign;
