//! The Lockergrid regional gateway: the HTTP checkout API with its roles and tokens, the
//! deployment file, the device plane the lockers connect to, and the process that ties the store
//! to them.
//!
//! It builds on the crates of `edge-runtime/`: the store for state (it never opens redb itself),
//! the plugin host, the device plane, and the node that decides its lockers' events; the
//! `lockergrid` binary in `main.rs` is a thin shell over [`cli`].

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod contacts;
pub mod devices;
pub mod edge;
pub mod firmware;
pub mod fleet;
pub mod metrics;
pub mod notifications;
pub mod plugins;
pub mod rollouts;
pub mod run;
pub mod secrets;
pub mod simulated;
