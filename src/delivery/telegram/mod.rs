//! The Telegram side of the pool: user accounts driven by grammers-client. So far the parts
//! that need no network: what Telegram's errors mean for the pool (`classify`) and sessions kept
//! in the store, sealed (`session`). The transport that signs accounts in and sends through
//! them is the next step.

pub mod classify;
pub mod login;
pub mod session;
pub mod transport;
