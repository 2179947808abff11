//! The Telegram side of the pool: user accounts driven by grammers-client. What Telegram's
//! errors mean for the pool (`classify`), sessions kept in the store, sealed (`session`), the
//! transport that sends through accounts (`transport`), the interactive sign-in (`login`), and
//! the keys of development accounts on the local peer (`dev_key`).

pub mod classify;
pub mod dev_key;
pub mod login;
pub mod session;
pub mod transport;
