//! Pickup codes: eight digits drawn from a CSPRNG, handed to the customer once, and stored only as
//! a keyed hash bound to the station where the code is valid.

use crate::ids::StationId;
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;
use std::fmt;
use subtle::ConstantTimeEq;

/// Number of digits in a pickup code.
pub const CODE_DIGITS: usize = 8;

/// A plaintext pickup code. It exists only between generation and the response that hands it out,
/// and between the keypad and the hash lookup; `Debug` never prints it.
#[derive(Clone, PartialEq, Eq)]
pub struct PickupCode(String);

/// A string that is not eight ASCII digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a pickup code is exactly 8 digits")]
pub struct MalformedCode;

impl PickupCode {
    /// A fresh code, uniform over 00000000–99999999, from the thread-local CSPRNG.
    pub fn generate() -> PickupCode {
        let n: u32 = rand::rng().random_range(0..100_000_000);
        PickupCode(format!("{n:08}"))
    }

    /// Parses a code typed at a keypad.
    pub fn parse(s: &str) -> Result<PickupCode, MalformedCode> {
        if s.len() == CODE_DIGITS && s.bytes().all(|b| b.is_ascii_digit()) {
            Ok(PickupCode(s.to_owned()))
        } else {
            Err(MalformedCode)
        }
    }

    /// The digits, for the one response that hands the code out.
    pub fn reveal(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PickupCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PickupCode(********)")
    }
}

/// The secret key codes are hashed with. Held by the nodes that verify codes; never logged.
#[derive(Clone)]
pub struct CodeKey([u8; 32]);

impl CodeKey {
    /// A key from its 32 secret bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> CodeKey {
        CodeKey(bytes)
    }

    /// The key `station`'s codes are hashed with: HMAC-SHA256 over a purpose label, a zero byte
    /// and the station id. A node or locker that verifies one station's codes holds only that
    /// station's key, never this one.
    pub fn station(&self, station: &StationId) -> StationCodeKey {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC-SHA256 accepts a key of any length");
        mac.update(b"lockergrid station code key v1");
        mac.update(&[0]);
        mac.update(station.as_str().as_bytes());
        StationCodeKey(mac.finalize().into_bytes().into())
    }

    /// The keyed hash of `code` as entered at `station`, with the station's key: binding the
    /// station means a code is useless at any other locker.
    pub fn hash(&self, station: &StationId, code: &PickupCode) -> CodeHash {
        self.station(station).hash(code)
    }
}

/// One station's code key (see [`CodeKey::station`]). Never logged.
#[derive(Clone, PartialEq, Eq)]
pub struct StationCodeKey([u8; 32]);

impl StationCodeKey {
    /// A key from its 32 secret bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> StationCodeKey {
        StationCodeKey(bytes)
    }

    /// Its secret bytes, to hand to the edge node or locker that verifies the station's codes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The keyed hash of `code`: HMAC-SHA256 over the digits.
    pub fn hash(&self, code: &PickupCode) -> CodeHash {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .expect("HMAC-SHA256 accepts a key of any length");
        mac.update(code.0.as_bytes());
        CodeHash(mac.finalize().into_bytes().into())
    }
}

impl fmt::Debug for StationCodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StationCodeKey(..)")
    }
}

impl fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeKey(..)")
    }
}

/// A keyed hash of a pickup code, the only form in which a code is stored.
#[derive(Clone, Copy, Eq)]
pub struct CodeHash([u8; 32]);

impl CodeHash {
    /// The hash in lowercase hex, as used for table keys.
    pub fn to_hex(&self) -> String {
        crate::to_hex(&self.0)
    }
}

impl PartialEq for CodeHash {
    fn eq(&self, other: &Self) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for CodeHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CodeHash({}…)", &self.to_hex()[..8])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn station(s: &str) -> StationId {
        StationId::new(s).expect("valid id")
    }

    #[test]
    fn generated_codes_are_eight_digits() {
        for _ in 0..1_000 {
            let code = PickupCode::generate();
            assert_eq!(PickupCode::parse(code.reveal()), Ok(code));
        }
    }

    #[test]
    fn generated_codes_spread_over_the_whole_range() {
        let distinct: std::collections::HashSet<String> = (0..1_000)
            .map(|_| PickupCode::generate().reveal().to_owned())
            .collect();
        assert!(distinct.len() > 990, "{} distinct of 1000", distinct.len());
    }

    #[test]
    fn malformed_codes_are_refused() {
        for bad in ["", "1234567", "123456789", "1234abcd", "１２３４５６７８"] {
            assert_eq!(PickupCode::parse(bad), Err(MalformedCode), "{bad:?}");
        }
    }

    #[test]
    fn the_hash_depends_on_key_station_and_code() {
        let key = CodeKey::from_bytes([7; 32]);
        let code = PickupCode::parse("12345678").expect("valid");
        let h = key.hash(&station("a"), &code);
        assert_eq!(h, key.hash(&station("a"), &code));
        assert_ne!(h, key.hash(&station("b"), &code));
        assert_ne!(h, CodeKey::from_bytes([8; 32]).hash(&station("a"), &code));
        let other = PickupCode::parse("12345679").expect("valid");
        assert_ne!(h, key.hash(&station("a"), &other));
    }

    #[test]
    fn a_station_key_hashes_exactly_as_the_region_key_does_at_that_station_only() {
        let key = CodeKey::from_bytes([7; 32]);
        let code = PickupCode::parse("12345678").expect("valid");
        let a = key.station(&station("a"));
        assert_eq!(a.hash(&code), key.hash(&station("a"), &code));
        assert_ne!(a.hash(&code), key.hash(&station("b"), &code));
        assert_ne!(a, key.station(&station("b")));
        assert_eq!(StationCodeKey::from_bytes(a.to_bytes()), a);
        assert!(!format!("{a:?}").contains(&format!("{}", a.to_bytes()[0])));
    }

    #[test]
    fn debug_output_never_shows_the_code() {
        let code = PickupCode::parse("12345678").expect("valid");
        assert!(!format!("{code:?}").contains("1234"));
    }
}
