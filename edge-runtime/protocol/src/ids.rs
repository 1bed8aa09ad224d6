//! Identifier newtypes. Each kind of id is its own type so that a station id can never be passed
//! where a compartment id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest identifier accepted anywhere; ids travel in URLs, MQTT topics and table keys.
pub const MAX_ID_LEN: usize = 64;

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidId {
    /// The string is empty.
    #[error("identifier is empty")]
    Empty,
    /// The string is longer than [`MAX_ID_LEN`].
    #[error("identifier is {0} bytes long, the limit is {MAX_ID_LEN}")]
    TooLong(usize),
    /// The string holds a character outside `[A-Za-z0-9._:-]`.
    #[error("identifier contains {0:?}; only letters, digits, '.', '_', ':' and '-' are allowed")]
    BadChar(char),
}

/// Checks the shared identifier syntax: 1 to 64 characters from `[A-Za-z0-9._:-]`, so that an id is
/// safe as a URL path segment, an MQTT topic level and a file name.
pub fn validate_id(s: &str) -> Result<(), InvalidId> {
    if s.is_empty() {
        return Err(InvalidId::Empty);
    }
    if s.len() > MAX_ID_LEN {
        return Err(InvalidId::TooLong(s.len()));
    }
    match s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')))
    {
        Some(c) => Err(InvalidId::BadChar(c)),
        None => Ok(()),
    }
}

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses and validates an identifier.
            pub fn new(s: impl Into<String>) -> Result<Self, InvalidId> {
                let s = s.into();
                validate_id(&s)?;
                Ok(Self(s))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = InvalidId;
            fn try_from(s: String) -> Result<Self, InvalidId> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{:?}", self.0)
            }
        }
    };
}

string_id!(
    /// A locker station (one site with a bank of compartments), e.g. `ams-centraal`.
    StationId
);
string_id!(
    /// One compartment, unique across the region, e.g. `ams-centraal:M012`.
    CompartmentId
);
string_id!(
    /// A reservation (a hold on one compartment for one order).
    ReservationId
);
string_id!(
    /// A parcel tracked from reservation to pickup or expiry.
    ParcelId
);
string_id!(
    /// The checkout service's order reference.
    OrderId
);
string_id!(
    /// A return authorisation: one parcel a customer may drop off at one station.
    ReturnId
);
string_id!(
    /// A locker controller (the device behind one station's doors), the identity in its
    /// certificate and its MQTT client id.
    LockerId
);

impl CompartmentId {
    /// The id of the `n`th compartment (from 1) of `size` at a station (or its locker):
    /// `{station}:{letter}{n:03}`, e.g. `ams-zuid:M007`.
    pub fn numbered(station: &str, size: crate::size::Size, n: u32) -> Result<Self, InvalidId> {
        CompartmentId::new(format!("{station}:{}{n:03}", size.letter()))
    }
}

#[cfg(test)]
mod tests;
