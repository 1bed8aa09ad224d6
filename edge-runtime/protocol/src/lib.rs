//! The Lockergrid domain model, shared by every other crate, the firmware shim included.
//!
//! This crate owns the vocabulary of the product: identifiers, compartment sizes and which parcel
//! fits where, parcel eligibility, the compartment state machine (the only way a compartment's
//! state may change), pickup windows by tier, pickup codes and their keyed hashes, the parcel
//! lifecycle, the signed commands a node sends a locker, signed firmware manifests, and the MQTT topics they travel on. It does no I/O and must not depend
//! on tokio, redb or wasmtime.

pub mod code;
pub mod command;
pub mod compartment;
pub mod firmware;
pub mod geo;
pub mod ids;
pub mod lockout;
pub mod message;
pub mod parcel;
pub mod size;
pub mod tier;
pub mod time;
pub mod topic;

pub use code::{CodeHash, CodeKey, PickupCode, StationCodeKey};

/// Exactly `N` bytes from `2 × N` hex digits (either case, surrounding whitespace ignored).
pub fn from_hex<const N: usize>(text: &str) -> Option<[u8; N]> {
    let text = text.trim();
    if text.len() != N * 2 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[i * 2..i * 2 + 2], 16).ok()?;
    }
    Some(out)
}

/// Lowercase hex of `bytes`, the form hashes take in table keys and JSON.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}
pub use compartment::{CompartmentEvent, CompartmentState, IllegalMove};
pub use geo::{GeoPoint, UnitVector};
pub use ids::{CompartmentId, LockerId, OrderId, ParcelId, ReservationId, ReturnId, StationId};
pub use lockout::Lockout;
pub use parcel::{IllegalParcelMove, ParcelEvent, ParcelStatus};
pub use size::{Ineligible, ParcelSpec, Size};
pub use tier::Tier;
pub use time::{Timestamp, TimestampError};
