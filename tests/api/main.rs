//! The integration suite: the service on a real socket, driven over HTTP, each behavioural
//! test on both stores (`memory::…` and `redis::…`).

#[macro_use]
mod helpers;

mod admin;
mod auth;
mod bad_inputs;
mod billing;
mod check;
mod health;
mod malformed;
mod revoke;
mod send;
mod send_ability;
mod transport;
