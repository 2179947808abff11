//! The integration suite: the service on a real socket, driven over HTTP, each behavioural
//! test on both stores (`memory::…` and `redis::…`).

#[macro_use]
mod helpers;

mod health;
mod send;
mod check;
mod revoke;
mod send_ability;
