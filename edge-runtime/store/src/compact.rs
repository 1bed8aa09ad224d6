//! The compact binary forms of the records every hold writes. Compartments, reservations,
//! parcels and access-log entries change on every hold, deposit and pickup; records about a third
//! the size of their JSON (a hold's reservation, parcel and log entry as the unit tests build
//! them: 409 bytes against 1,145) put three times as many on a B-tree leaf, so a batch touches
//! and writes fewer pages and encodes faster.
//!
//! Every form starts with a format byte that is never `{`, so a table may hold records written as
//! JSON before the compact form existed beside compact ones: decoding goes by the first byte
//! ([`decode_with`]). Compartments were JSON until 2026-11-29, the other records until now.
//! Strings are a LEB128 length and UTF-8 bytes, timestamps eight bytes little-endian.
//!
//! Compartments, version 1: `[1][version: u64 LE][state: u8][size: u8]` then three strings with a
//! one-byte length: station id, compartment id, holding reservation id (empty for none). The
//! other records are in `compact/records.rs`.

mod records;

pub use records::{AccessEntryCodec, IdempotencyCodec, ParcelCodec, ReservationCodec};

use super::codec::{Codec, Json};
use lockergrid_model::CompartmentRecord;
use lockergrid_protocol::{CompartmentId, CompartmentState, ReservationId, Size, StationId};

const FORMAT: u8 = 1;

/// Encodes [`CompartmentRecord`]s in the compact binary form.
pub struct CompartmentCodec;

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), String> {
    let len = u8::try_from(s.len()).map_err(|_| format!("{s:?} is too long to store"))?;
    out.push(len);
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Appends `n` as LEB128: seven bits a byte, low bits first, the high bit set on all but the last.
fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends a string of any length: its length as LEB128, then its bytes.
fn put_text(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

/// Reads the record's fields in order, failing on truncation.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("record is truncated".into());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u64(&mut self) -> Result<u64, String> {
        let bytes = self.take(8)?.try_into().map_err(|_| "bad integer")?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f)
                .checked_shl(shift)
                .filter(|v| v >> shift == u64::from(b & 0x7f))
                .ok_or("integer overflows 64 bits")?;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("integer overflows 64 bits".into())
    }

    fn string(&mut self) -> Result<&'a str, String> {
        let len = usize::from(self.byte()?);
        std::str::from_utf8(self.take(len)?).map_err(|e| e.to_string())
    }

    fn text(&mut self) -> Result<&'a str, String> {
        let len = usize::try_from(self.varint()?).map_err(|_| "string too long")?;
        std::str::from_utf8(self.take(len)?).map_err(|e| e.to_string())
    }

    /// Checks the format byte a compact record starts with.
    fn format(&mut self) -> Result<(), String> {
        match self.byte()? {
            FORMAT => Ok(()),
            other => Err(format!("unknown record format {other}")),
        }
    }

    /// Fails unless every byte was read.
    fn end(&self) -> Result<(), String> {
        match self.0.is_empty() {
            true => Ok(()),
            false => Err("trailing bytes after record".into()),
        }
    }
}

/// Decodes a stored record: JSON if it starts with `{` (written before the compact form),
/// else the compact form's format byte, the fields `read` takes, and nothing after them.
fn decode_with<V: serde::Serialize + serde::de::DeserializeOwned>(
    bytes: &[u8],
    read: impl FnOnce(&mut Reader<'_>) -> Result<V, String>,
) -> Result<V, String> {
    if bytes.first() == Some(&b'{') {
        return Json::decode(bytes);
    }
    let mut r = Reader(bytes);
    r.format()?;
    let value = read(&mut r)?;
    r.end()?;
    Ok(value)
}

impl Codec<CompartmentRecord> for CompartmentCodec {
    fn encode(c: &CompartmentRecord) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(64);
        out.push(FORMAT);
        out.extend_from_slice(&c.version.to_le_bytes());
        let state = CompartmentState::ALL
            .iter()
            .position(|s| *s == c.state)
            .ok_or("unknown state")?;
        out.push(state as u8);
        out.push(c.size.index() as u8);
        put_str(&mut out, c.station.as_str())?;
        put_str(&mut out, c.id.as_str())?;
        put_str(&mut out, c.reservation.as_ref().map_or("", |r| r.as_str()))?;
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<CompartmentRecord, String> {
        decode_with(bytes, read_compartment)
    }
}

fn read_compartment(r: &mut Reader<'_>) -> Result<CompartmentRecord, String> {
    let version = r.u64()?;
    let state = *CompartmentState::ALL
        .get(usize::from(r.byte()?))
        .ok_or("bad compartment state")?;
    let size = *Size::ALL.get(usize::from(r.byte()?)).ok_or("bad size")?;
    let station = StationId::new(r.string()?).map_err(|e| e.to_string())?;
    let id = CompartmentId::new(r.string()?).map_err(|e| e.to_string())?;
    let reservation = match r.string()? {
        "" => None,
        holder => Some(ReservationId::new(holder).map_err(|e| e.to_string())?),
    };
    Ok(CompartmentRecord {
        id,
        station,
        size,
        state,
        version,
        reservation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(reservation: Option<&str>) -> CompartmentRecord {
        CompartmentRecord {
            id: CompartmentId::new("ams-centraal:M012").expect("valid"),
            station: StationId::new("ams-centraal").expect("valid"),
            size: Size::Medium,
            state: CompartmentState::Reserved,
            version: 41,
            reservation: reservation.map(|r| ReservationId::new(r).expect("valid")),
        }
    }

    #[test]
    fn records_round_trip_with_and_without_a_holder() {
        for c in [
            record(None),
            record(Some("rsv_0123456789abcdef0123456789abcdef")),
        ] {
            let bytes = CompartmentCodec::encode(&c).expect("encodes");
            assert!(bytes.len() < 80, "{} bytes", bytes.len());
            assert_eq!(CompartmentCodec::decode(&bytes), Ok(c));
        }
    }

    #[test]
    fn records_stored_as_json_before_the_compact_form_still_decode() {
        let c = record(Some("rsv_1"));
        let json = serde_json::to_vec(&c).expect("json");
        assert_eq!(CompartmentCodec::decode(&json), Ok(c));
    }

    #[test]
    fn truncated_or_tampered_bytes_are_refused_not_misread() {
        let bytes = CompartmentCodec::encode(&record(Some("rsv_1"))).expect("encodes");
        for cut in 0..bytes.len() {
            assert!(
                CompartmentCodec::decode(&bytes[..cut]).is_err(),
                "cut at {cut}"
            );
        }
        let mut bad_state = bytes.clone();
        bad_state[9] = 9;
        assert!(CompartmentCodec::decode(&bad_state).is_err());
        let mut trailing = bytes;
        trailing.push(0);
        assert!(CompartmentCodec::decode(&trailing).is_err());
    }
}
