//! The node runtime that the Lockergrid gateway and edge nodes share.
//!
//! It owns the durable store (one redb file, one writer task with group commit, a lock-free
//! availability snapshot), the clock abstraction the store's expiry runs on, and the built-in
//! station ranking. It depends on the protocol crate and must not depend on the gateway or on any
//! HTTP machinery; nothing outside `store/` names a redb type.

pub mod attempts;
pub mod clock;
pub mod device;
pub mod edge;
pub mod files;
pub mod pki;
pub mod plugins;
pub mod ranking;
pub mod store;
pub mod sync;

pub use clock::{Clock, ManualClock, SystemClock};
pub use store::{Store, StoreError, StoreOptions};
