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
    // A digit table rather than `write!` per byte: every access-log entry's hash goes through
    // here on the writer thread, where formatting was a seventh of an append's time.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut hex = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        hex.push(char::from(DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    hex
}
pub use compartment::{CompartmentEvent, CompartmentState, IllegalMove};
pub use geo::{GeoPoint, UnitVector};
pub use ids::{CompartmentId, LockerId, OrderId, ParcelId, ReservationId, ReturnId, StationId};
pub use lockout::Lockout;
pub use parcel::{IllegalParcelMove, ParcelEvent, ParcelStatus};
pub use size::{Ineligible, ParcelSpec, Size};
pub use tier::Tier;
pub use time::{Timestamp, TimestampError};

#[cfg(test)]
mod tests {
    use super::{from_hex, to_hex};

    #[test]
    fn hex_is_lowercase_two_digits_a_byte_and_reads_back() {
        let bytes: [u8; 256] = std::array::from_fn(|i| u8::try_from(i).expect("below 256"));
        let hex = to_hex(&bytes);
        assert!(hex.starts_with("000102030405060708090a0b0c0d0e0f10"));
        assert!(hex.ends_with("fdfeff"));
        assert_eq!(from_hex::<256>(&hex), Some(bytes));
        assert_eq!(from_hex::<256>(&hex.to_uppercase()), Some(bytes));
        assert_eq!(to_hex(&[]), "");
    }
}
