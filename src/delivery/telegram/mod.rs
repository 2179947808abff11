//! The Telegram side of the pool: user accounts driven by grammers-client. What Telegram's
//! errors mean for the pool (`classify`), sessions kept in the store, sealed (`session`), the
//! transport that sends through accounts (`transport`), signing in with a login code (`login`)
//! or a QR code (`qr_login`), and the keys of development accounts on the local peer (`dev_key`).

pub mod classify;
pub mod dev_key;
pub mod login;
pub mod qr_login;
pub mod session;
pub mod transport;
