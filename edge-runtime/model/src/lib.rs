//! The records every Lockergrid node shares, with no I/O: what the store keeps (stations,
//! compartments, reservations, parcels, codes, returns, commands, leases, the access log's
//! entries, the device registry) with the lifecycles of reservations, returns, commands and devices, the availability snapshot
//! discovery reads, the plugin model and the policy file
//! format with its signatures, the sync messages between the gateway and its edge nodes and the
//! gateway's log of them, the clock the store's expiry runs on, and the built-in station ranking.
//!
//! It depends on the protocol crate and serde (with ed25519 and SHA-256 for plugin signatures)
//! and must never depend on tokio, redb, wasmtime or anything that does I/O.

mod alert;
mod clock;
mod delivery;
mod device;
mod lifecycle;
mod maintenance;
mod plugin;
mod policy;
mod ranking;
mod records;
mod rollout;
mod snapshot;
mod sync;
mod sync_log;
mod telemetry;

pub use alert::*;
pub use clock::*;
pub use delivery::*;
pub use device::*;
pub use lifecycle::*;
pub use maintenance::*;
pub use plugin::*;
pub use policy::*;
pub use ranking::*;
pub use records::*;
pub use rollout::*;
pub use snapshot::*;
pub use sync::*;
pub use sync_log::*;
pub use telemetry::*;
