//! verigram: a self-hosted, multi-tenant verification-code service that speaks the Telegram
//! Gateway API. See README.md for what it does and how to run it, docs/architecture.md for how
//! the code is organised.

pub mod api;
pub mod callbacks;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod domain;
pub mod metrics;
pub mod secrets;
pub mod service;
pub mod startup;
pub mod store;
pub mod telemetry;
pub mod workers;
