//! Delivery reports to a tenant's `callback_url`. So far: the Gateway's signature and the
//! address checks; the outbox and dispatcher come with the delivery-report work.

pub mod sign;
pub mod ssrf;
