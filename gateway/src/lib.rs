//! The Lockergrid regional gateway: the HTTP checkout API with its roles and tokens, the
//! deployment file, the device plane the lockers connect to, and the process that ties the store
//! to them.
//!
//! It builds on `lockergrid-edge-runtime` for state and must not open redb itself; the `lockergrid`
//! binary in `main.rs` is a thin shell over [`cli`].

pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod devices;
pub mod edge;
pub mod metrics;
pub mod node;
pub mod notifications;
pub mod plugins;
pub mod secrets;
pub mod simulated;
