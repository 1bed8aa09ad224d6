//! Compact forms of reservations, parcels, access-log entries and idempotency records, version 1.
//! Each decodes JSON too when its first byte is `{`: records written before this form existed.
//!
//! - Reservation: `[1]` id, merchant?, order, parcel, station, compartment, `[size][tier]`,
//!   created_at, hold_until, `[status]`.
//! - Parcel: `[1]` id, reservation, merchant?, order, station, compartment, length, width, height
//!   and weight (LEB128), `[tier][status]`, reserved_at, a byte whose bits say which of stored,
//!   pickup_expires, picked_up, expired, collected and cancelled follow, then those; code hash?,
//!   recipient? (its JSON: rare, nested and still changing), code message?.
//! - Access-log entry: `[1]` seq (LEB128), at, subject, role, action, target, outcome, decided
//!   by?, previous hash, hash. A hash of 64 lowercase hex digits is kept as its 32 bytes behind a
//!   `0`, anything else as text behind a `1`. The chain hashes the entry's JSON form
//!   (`access_log.rs`), never these bytes, so an entry verifies whichever form stores it.
//! - Idempotency record: `[1]` fingerprint, reservation? (its fields as above without their
//!   format byte), return id?, message id?, created_at.
//!
//! `?` is a byte, `0` for none and `1` before the value. Enum codes below are stored: append new
//! variants, never renumber.

use super::{FORMAT, Reader, decode_with, put_text, put_varint};
use crate::codec::{Codec, Json};
use lockergrid_model::{
    AccessEntry, Actor, DecidedBy, IdempotencyRecord, Parcel, Reservation, ReservationStatus,
};
use lockergrid_protocol::{
    CompartmentId, OrderId, ParcelId, ParcelSpec, ParcelStatus, ReservationId, ReturnId, Size,
    StationId, Tier, Timestamp,
};

/// Stored codes of an enum, one list for both directions; encoding matches exhaustively, so a
/// new variant does not compile until it has a code.
macro_rules! codes {
    ($code:ident, $of:ident, $t:ty { $($v:path = $n:literal),+ $(,)? }) => {
        fn $code(v: $t) -> u8 {
            match v { $($v => $n),+ }
        }

        fn $of(code: u8) -> Result<$t, String> {
            match code {
                $($n => Ok($v),)+
                other => Err(format!("unknown {} code {other}", stringify!($t))),
            }
        }
    };
}

codes!(size_code, size_of, Size {
    Size::Small = 0, Size::Medium = 1, Size::Large = 2, Size::Oversized = 3,
});
codes!(tier_code, tier_of, Tier {
    Tier::Standard = 0, Tier::Prime = 1, Tier::Business = 2,
});
codes!(reservation_status_code, reservation_status_of, ReservationStatus {
    ReservationStatus::Held = 0,
    ReservationStatus::Deposited = 1,
    ReservationStatus::Released = 2,
    ReservationStatus::Expired = 3,
    ReservationStatus::Completed = 4,
});
codes!(parcel_status_code, parcel_status_of, ParcelStatus {
    ParcelStatus::Reserved = 0,
    ParcelStatus::Stored = 1,
    ParcelStatus::PickedUp = 2,
    ParcelStatus::Expired = 3,
    ParcelStatus::ReturnedToSender = 4,
    ParcelStatus::Cancelled = 5,
});

fn put_time(out: &mut Vec<u8>, t: Timestamp) {
    out.extend_from_slice(&t.millis().to_le_bytes());
}

fn put_opt(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => out.push(0),
        Some(s) => {
            out.push(1);
            put_text(out, s);
        }
    }
}

impl Reader<'_> {
    fn time(&mut self) -> Result<Timestamp, String> {
        self.u64().map(Timestamp)
    }

    fn present(&mut self) -> Result<bool, String> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(format!("bad presence byte {other}")),
        }
    }

    fn opt(&mut self) -> Result<Option<String>, String> {
        Ok(match self.present()? {
            true => Some(self.text()?.to_owned()),
            false => None,
        })
    }

    fn id<T>(
        &mut self,
        new: fn(String) -> Result<T, lockergrid_protocol::ids::InvalidId>,
    ) -> Result<T, String> {
        new(self.text()?.to_owned()).map_err(|e| e.to_string())
    }

    fn u32(&mut self) -> Result<u32, String> {
        u32::try_from(self.varint()?).map_err(|_| "integer overflows 32 bits".into())
    }

    /// A hash as `put_hash` wrote it.
    fn hash(&mut self) -> Result<String, String> {
        match self.byte()? {
            0 => Ok(lockergrid_protocol::to_hex(self.take(32)?)),
            1 => Ok(self.text()?.to_owned()),
            other => Err(format!("bad hash form {other}")),
        }
    }
}

/// Encodes [`Reservation`]s in the compact binary form.
pub struct ReservationCodec;

/// A reservation's fields, without the format byte: an idempotency record embeds them.
fn put_reservation(out: &mut Vec<u8>, r: &Reservation) {
    put_text(out, r.id.as_str());
    put_opt(out, r.merchant.as_deref());
    put_text(out, r.order_id.as_str());
    put_text(out, r.parcel_id.as_str());
    put_text(out, r.station_id.as_str());
    put_text(out, r.compartment_id.as_str());
    out.push(size_code(r.size));
    out.push(tier_code(r.tier));
    put_time(out, r.created_at);
    put_time(out, r.hold_until);
    out.push(reservation_status_code(r.status));
}

fn read_reservation(r: &mut Reader<'_>) -> Result<Reservation, String> {
    Ok(Reservation {
        id: r.id(ReservationId::new)?,
        merchant: r.opt()?,
        order_id: r.id(OrderId::new)?,
        parcel_id: r.id(ParcelId::new)?,
        station_id: r.id(StationId::new)?,
        compartment_id: r.id(CompartmentId::new)?,
        size: size_of(r.byte()?)?,
        tier: tier_of(r.byte()?)?,
        created_at: r.time()?,
        hold_until: r.time()?,
        status: reservation_status_of(r.byte()?)?,
    })
}

impl Codec<Reservation> for ReservationCodec {
    fn encode(r: &Reservation) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(128);
        out.push(FORMAT);
        put_reservation(&mut out, r);
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Reservation, String> {
        decode_with(bytes, read_reservation)
    }
}

/// Encodes [`Parcel`]s in the compact binary form.
pub struct ParcelCodec;

/// The optional timestamps of a parcel, in the order of their presence bits.
fn parcel_times(p: &Parcel) -> [Option<Timestamp>; 6] {
    [
        p.stored_at,
        p.pickup_expires_at,
        p.picked_up_at,
        p.expired_at,
        p.collected_at,
        p.cancelled_at,
    ]
}

impl Codec<Parcel> for ParcelCodec {
    fn encode(p: &Parcel) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(192);
        out.push(FORMAT);
        put_text(&mut out, p.id.as_str());
        put_text(&mut out, p.reservation_id.as_str());
        put_opt(&mut out, p.merchant.as_deref());
        put_text(&mut out, p.order_id.as_str());
        put_text(&mut out, p.station_id.as_str());
        put_text(&mut out, p.compartment_id.as_str());
        for n in [
            p.spec.length_mm,
            p.spec.width_mm,
            p.spec.height_mm,
            p.spec.weight_g,
        ] {
            put_varint(&mut out, u64::from(n));
        }
        out.push(tier_code(p.tier));
        out.push(parcel_status_code(p.status));
        put_time(&mut out, p.reserved_at);
        let times = parcel_times(p);
        let mask = times
            .iter()
            .enumerate()
            .fold(0u8, |m, (i, t)| m | (u8::from(t.is_some()) << i));
        out.push(mask);
        times
            .into_iter()
            .flatten()
            .for_each(|t| put_time(&mut out, t));
        put_opt(&mut out, p.code_hash.as_deref());
        let recipient = p.recipient.as_ref().map(Json::encode).transpose()?;
        match recipient {
            None => out.push(0),
            Some(json) => {
                out.push(1);
                put_varint(&mut out, json.len() as u64);
                out.extend_from_slice(&json);
            }
        }
        put_opt(&mut out, p.code_message.as_deref());
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<Parcel, String> {
        decode_with(bytes, read_parcel)
    }
}

fn read_parcel(r: &mut Reader<'_>) -> Result<Parcel, String> {
    let (id, reservation_id, merchant) =
        (r.id(ParcelId::new)?, r.id(ReservationId::new)?, r.opt()?);
    let (order_id, station_id, compartment_id) = (
        r.id(OrderId::new)?,
        r.id(StationId::new)?,
        r.id(CompartmentId::new)?,
    );
    let spec = ParcelSpec {
        length_mm: r.u32()?,
        width_mm: r.u32()?,
        height_mm: r.u32()?,
        weight_g: r.u32()?,
    };
    let (tier, status, reserved_at) =
        (tier_of(r.byte()?)?, parcel_status_of(r.byte()?)?, r.time()?);
    let mask = r.byte()?;
    if mask >> 6 != 0 {
        return Err(format!("bad timestamp mask {mask:#x}"));
    }
    let mut times = [None; 6];
    for (i, t) in times.iter_mut().enumerate() {
        if mask & (1 << i) != 0 {
            *t = Some(r.time()?);
        }
    }
    let [
        stored_at,
        pickup_expires_at,
        picked_up_at,
        expired_at,
        collected_at,
        cancelled_at,
    ] = times;
    let code_hash = r.opt()?;
    let recipient = match r.present()? {
        true => {
            let len = usize::try_from(r.varint()?).map_err(|_| "recipient too long")?;
            Some(Json::decode(r.take(len)?)?)
        }
        false => None,
    };
    let code_message = r.opt()?;
    Ok(Parcel {
        id,
        reservation_id,
        merchant,
        order_id,
        station_id,
        compartment_id,
        spec,
        tier,
        status,
        reserved_at,
        stored_at,
        pickup_expires_at,
        picked_up_at,
        expired_at,
        collected_at,
        cancelled_at,
        code_hash,
        recipient,
        code_message,
    })
}

/// Encodes [`AccessEntry`]s in the compact binary form.
pub struct AccessEntryCodec;

fn put_hash(out: &mut Vec<u8>, hex: &str) {
    // Only the exact form `to_hex` writes goes as bytes, so decoding gives back the same text.
    let canonical = hex.len() == 64 && !hex.bytes().any(|c| c.is_ascii_uppercase());
    match lockergrid_protocol::from_hex::<32>(hex).filter(|_| canonical) {
        Some(bytes) => {
            out.push(0);
            out.extend_from_slice(&bytes);
        }
        None => {
            out.push(1);
            put_text(out, hex);
        }
    }
}

impl Codec<AccessEntry> for AccessEntryCodec {
    fn encode(e: &AccessEntry) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(160);
        out.push(FORMAT);
        put_varint(&mut out, e.seq);
        put_time(&mut out, e.at);
        for s in [
            &e.actor.subject,
            &e.actor.role,
            &e.action,
            &e.target,
            &e.outcome,
        ] {
            put_text(&mut out, s);
        }
        match &e.decided_by {
            None => out.push(0),
            Some(d) => {
                out.push(1);
                for s in [&d.world, &d.plugin, &d.version, &d.digest] {
                    put_text(&mut out, s);
                }
                put_opt(&mut out, d.fallback.as_deref());
            }
        }
        put_hash(&mut out, &e.prev_hash);
        put_hash(&mut out, &e.hash);
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<AccessEntry, String> {
        decode_with(bytes, read_entry)
    }
}

fn read_entry(r: &mut Reader<'_>) -> Result<AccessEntry, String> {
    let (seq, at) = (r.varint()?, r.time()?);
    let actor = Actor {
        subject: r.text()?.to_owned(),
        role: r.text()?.to_owned(),
    };
    let (action, target, outcome) = (
        r.text()?.to_owned(),
        r.text()?.to_owned(),
        r.text()?.to_owned(),
    );
    let decided_by = match r.present()? {
        true => Some(DecidedBy {
            world: r.text()?.to_owned(),
            plugin: r.text()?.to_owned(),
            version: r.text()?.to_owned(),
            digest: r.text()?.to_owned(),
            fallback: r.opt()?,
        }),
        false => None,
    };
    let (prev_hash, hash) = (r.hash()?, r.hash()?);
    Ok(AccessEntry {
        seq,
        at,
        actor,
        action,
        target,
        outcome,
        decided_by,
        prev_hash,
        hash,
    })
}

/// Encodes [`IdempotencyRecord`]s in the compact binary form.
pub struct IdempotencyCodec;

impl Codec<IdempotencyRecord> for IdempotencyCodec {
    fn encode(k: &IdempotencyRecord) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(192);
        out.push(FORMAT);
        put_text(&mut out, &k.fingerprint);
        match &k.answer {
            None => out.push(0),
            Some(reservation) => {
                out.push(1);
                put_reservation(&mut out, reservation);
            }
        }
        put_opt(&mut out, k.return_id.as_ref().map(|r| r.as_str()));
        put_opt(&mut out, k.message_id.as_deref());
        put_time(&mut out, k.created_at);
        Ok(out)
    }

    fn decode(bytes: &[u8]) -> Result<IdempotencyRecord, String> {
        decode_with(bytes, read_idempotency)
    }
}

fn read_idempotency(r: &mut Reader<'_>) -> Result<IdempotencyRecord, String> {
    let fingerprint = r.text()?.to_owned();
    let answer = match r.present()? {
        true => Some(read_reservation(r)?),
        false => None,
    };
    let return_id = r
        .opt()?
        .map(ReturnId::new)
        .transpose()
        .map_err(|e| e.to_string())?;
    let message_id = r.opt()?;
    let created_at = r.time()?;
    Ok(IdempotencyRecord {
        fingerprint,
        answer,
        return_id,
        message_id,
        created_at,
    })
}

#[cfg(test)]
mod tests;
