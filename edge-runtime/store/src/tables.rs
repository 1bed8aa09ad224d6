//! Every table of the store, as a typed constant. Values are JSON so that a redb file can be read
//! with ordinary tools, except the records every hold writes — compartments, reservations,
//! parcels, access-log entries and idempotency keys — which use compact binary forms
//! (`compact.rs`) that still read the JSON written before them; the `_v1` suffix lets a later
//! format live beside this one.

use super::StoreError;
use super::codec::{Codec, Json};
pub use super::compact::{
    AccessEntryCodec, CompartmentCodec, IdempotencyCodec, ParcelCodec, ReservationCodec,
};
use lockergrid_model::{
    AccessEntry, AlertRecord, CodeRecord, CommandRecord, CompartmentRecord, DeviceRecord,
    IdempotencyRecord, InboxRecord, LatchFaults, LeaseRecord, LockerRecord, OutboxEntry, Parcel,
    Reservation, ReturnRecord, Revocation, StationRecord,
};
use lockergrid_model::{
    DeviceDay, EdgeDecision, PluginRecord, RolloutRecord, RolloutTarget, Rollup, Sample,
    SyncPosition,
};
use lockergrid_protocol::{CompartmentId, Lockout, StationId, Timestamp};
use redb::{Key, ReadableTable, TableDefinition};
use std::borrow::Borrow;
use std::marker::PhantomData;

/// A table whose values are `V` encoded by `C`.
pub struct Typed<K: Key + 'static, V, C = Json> {
    def: TableDefinition<'static, K, &'static [u8]>,
    name: &'static str,
    value: PhantomData<fn() -> (V, C)>,
}

impl<K: Key + 'static, V, C: Codec<V>> Typed<K, V, C> {
    const fn new(name: &'static str) -> Self {
        Typed {
            def: TableDefinition::new(name),
            name,
            value: PhantomData,
        }
    }

    /// The raw definition, for opening the table in a transaction.
    pub fn def(&self) -> TableDefinition<'static, K, &'static [u8]> {
        self.def
    }

    /// Reads and decodes one value.
    pub fn get<'k>(
        &self,
        table: &impl ReadableTable<K, &'static [u8]>,
        key: impl Borrow<K::SelfType<'k>>,
    ) -> Result<Option<V>, StoreError> {
        match table.get(key)? {
            Some(guard) => self.decode(guard.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Encodes and writes one value.
    pub fn put<'k>(
        &self,
        table: &mut redb::Table<'_, K, &'static [u8]>,
        key: impl Borrow<K::SelfType<'k>>,
        value: &V,
    ) -> Result<(), StoreError> {
        let bytes = C::encode(value).map_err(|detail| StoreError::Corrupt {
            table: self.name,
            detail,
        })?;
        table.insert(key, bytes.as_slice())?;
        Ok(())
    }

    /// Removes one value, decoding what was there.
    pub fn remove<'k>(
        &self,
        table: &mut redb::Table<'_, K, &'static [u8]>,
        key: impl Borrow<K::SelfType<'k>>,
    ) -> Result<Option<V>, StoreError> {
        match table.remove(key)? {
            Some(guard) => self.decode(guard.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Decodes every value, in key order.
    pub fn all(&self, table: &impl ReadableTable<K, &'static [u8]>) -> Result<Vec<V>, StoreError> {
        table
            .iter()?
            .map(|item| {
                let (_, v) = item?;
                self.decode(v.value())
            })
            .collect()
    }

    /// The value with the greatest key.
    pub fn last(
        &self,
        table: &impl ReadableTable<K, &'static [u8]>,
    ) -> Result<Option<V>, StoreError> {
        match table.last()? {
            Some((_, v)) => self.decode(v.value()).map(Some),
            None => Ok(None),
        }
    }

    fn decode(&self, bytes: &[u8]) -> Result<V, StoreError> {
        C::decode(bytes).map_err(|detail| StoreError::Corrupt {
            table: self.name,
            detail,
        })
    }
}

impl<V, C: Codec<V>> Typed<u64, V, C> {
    /// Up to `limit` values from key `from` on, decoded from the range itself.
    pub fn page(
        &self,
        table: &impl ReadableTable<u64, &'static [u8]>,
        from: u64,
        limit: usize,
    ) -> Result<Vec<V>, StoreError> {
        table
            .range(from..)?
            .take(limit)
            .map(|item| {
                let (_, v) = item?;
                self.decode(v.value())
            })
            .collect()
    }
}

impl<V, C: Codec<V>> Typed<&'static str, V, C> {
    /// Every key that starts with `prefix`, with its decoded value, in key order.
    pub fn with_prefix(
        &self,
        table: &impl ReadableTable<&'static str, &'static [u8]>,
        prefix: &str,
    ) -> Result<Vec<(String, V)>, StoreError> {
        let mut found = Vec::new();
        for item in table.range(prefix..)? {
            let (k, v) = item?;
            if !k.value().starts_with(prefix) {
                break;
            }
            found.push((k.value().to_owned(), self.decode(v.value())?));
        }
        Ok(found)
    }

    /// Up to `limit` values with keys from `low` up to (not including) `high`, in key order.
    pub fn between(
        &self,
        table: &impl ReadableTable<&'static str, &'static [u8]>,
        low: &str,
        high: &str,
        limit: usize,
    ) -> Result<Vec<V>, StoreError> {
        table
            .range(low..high)?
            .take(limit)
            .map(|item| {
                let (_, v) = item?;
                self.decode(v.value())
            })
            .collect()
    }

    /// Up to `limit` values `keep` accepts, from the greatest key down.
    pub fn newest(
        &self,
        table: &impl ReadableTable<&'static str, &'static [u8]>,
        limit: usize,
        mut keep: impl FnMut(&V) -> bool,
    ) -> Result<Vec<V>, StoreError> {
        let mut found = Vec::new();
        for item in table.iter()?.rev() {
            if found.len() == limit {
                break;
            }
            let (_, v) = item?;
            let value = self.decode(v.value())?;
            if keep(&value) {
                found.push(value);
            }
        }
        Ok(found)
    }

    /// Every key with its decoded value, in key order.
    pub fn entries(
        &self,
        table: &impl ReadableTable<&'static str, &'static [u8]>,
    ) -> Result<Vec<(String, V)>, StoreError> {
        table
            .iter()?
            .map(|item| {
                let (k, v) = item?;
                Ok((k.value().to_owned(), self.decode(v.value())?))
            })
            .collect()
    }
}

/// Stations by id.
pub const STATIONS_V1: Typed<&str, StationRecord> = Typed::new("stations_v1");
/// The key a compartment is stored under: its number before its station (`S001:ams-centraal`
/// for `ams-centraal:S001`). Holds take the lowest-numbered free compartment, so the compartments
/// a batch changes at many stations sit next to each other and share a few B-tree pages instead
/// of one page per station; each page a transaction touches costs a copy of its path to the root.
pub fn compartment_key(id: &CompartmentId) -> String {
    match id.as_str().rsplit_once(':') {
        Some((station, number)) => format!("{number}:{station}"),
        None => id.as_str().to_owned(),
    }
}

/// Compartments by [`compartment_key`].
pub const COMPARTMENTS_V1: Typed<&str, CompartmentRecord, CompartmentCodec> =
    Typed::new("compartments_v1");
/// Reservations by id.
pub const RESERVATIONS_V1: Typed<&str, Reservation, ReservationCodec> =
    Typed::new("reservations_v1");
/// Parcels by id.
pub const PARCELS_V1: Typed<&str, Parcel, ParcelCodec> = Typed::new("parcels_v1");
/// Active pickup codes by the hex of their keyed hash; never the code itself.
pub const CODES_V1: Typed<&str, CodeRecord> = Typed::new("codes_v1");
/// Remembered idempotency keys by `{subject}\n{key}`.
pub const IDEMPOTENCY_V1: Typed<&str, IdempotencyRecord, IdempotencyCodec> =
    Typed::new("idempotency_v1");
/// The hash-chained access log by sequence number.
pub const ACCESS_LOG_V1: Typed<u64, AccessEntry, AccessEntryCodec> = Typed::new("access_log_v1");
/// Notifications not yet delivered, by sequence number.
pub const OUTBOX_V1: Typed<u64, OutboxEntry> = Typed::new("outbox_v1");
/// Outbox sequence numbers by message id (deterministic: what it is about, the event, the
/// recipient and when), so the same message is never written twice.
pub const OUTBOX_IDS_V1: Typed<&str, u64> = Typed::new("outbox_ids_v1");
/// Messages waiting for an attempt, by [`due_key`]: when it is due, then the sequence number.
pub const OUTBOX_DUE_V1: Typed<&str, u64> = Typed::new("outbox_due_v1");
/// Outbox sequence numbers by the provider's id of the message (an SMS's id), for its status
/// callbacks.
pub const OUTBOX_PROVIDER_V1: Typed<&str, u64> = Typed::new("outbox_provider_v1");

/// The key of a message due at `at` in [`OUTBOX_DUE_V1`]: keys sort by time, then by sequence.
pub fn due_key(at: Timestamp, seq: u64) -> String {
    format!("{:020}.{seq:020}", at.millis())
}
/// Unlock commands by id.
pub const COMMANDS_V1: Typed<&str, CommandRecord> = Typed::new("commands_v1");
/// The command outbox: ids of commands not yet acknowledged, with their expiry.
pub const PENDING_COMMANDS_V1: Typed<&str, Timestamp> = Typed::new("pending_commands_v1");
/// The inbox: locker events already applied, by `{station}/{event id}`.
pub const INBOX_V1: Typed<&str, InboxRecord> = Typed::new("inbox_v1");
/// Each station's count of wrong codes (`lockergrid_protocol::lockout`), by station id; on an
/// edge node its own count, raised to the gateway's as the sync brings it.
pub const LOCKOUTS_V1: Typed<&str, Lockout> = Typed::new("lockouts_v1");
/// On the gateway: revoked bearer tokens, by `token/{id}` or `subject/{subject}`
/// (`RevokedTokens::key`), until every token each refuses has expired.
pub const REVOCATIONS_V1: Typed<&str, Revocation> = Typed::new("revocations_v1");
/// Per-locker state (the command counter) by station id.
pub const LOCKERS_V1: Typed<&str, LockerRecord> = Typed::new("lockers_v1");
/// The device registry, by locker id (DESIGN.md §9); an edge node mirrors the entries of its
/// stations, which its device front admits.
pub const DEVICES_V1: Typed<&str, DeviceRecord> = Typed::new("devices_v1");
/// Compartments whose latch failed to release, by [`compartment_key`].
pub const LATCH_FAULTS_V1: Typed<&str, LatchFaults> = Typed::new("latch_faults_v1");
/// Raw telemetry samples, by [`series_key`]; kept a day.
pub const TELEMETRY_RAW_V1: Typed<&str, Sample> = Typed::new("telemetry_raw_v1");
/// One-minute rollups, by [`series_key`] of the minute's start; kept 30 days.
pub const TELEMETRY_MINUTE_V1: Typed<&str, Rollup> = Typed::new("telemetry_minute_v1");
/// Hourly rollups, by [`series_key`] of the hour's start; kept a year.
pub const TELEMETRY_HOUR_V1: Typed<&str, Rollup> = Typed::new("telemetry_hour_v1");

/// The key of a station's time-series entry at `at`: the station, then the time zero-padded,
/// so a station's entries sort by time.
pub fn series_key(station: &StationId, at: Timestamp) -> String {
    format!("{station}/{:020}", at.millis())
}

/// Every alert, by id (ids sort by when they were raised).
pub const ALERTS_V1: Typed<&str, AlertRecord> = Typed::new("alerts_v1");
/// The alerts not yet resolved, by [`AlertRecord::open_key`]: the id of the one open record of
/// a station, source and code.
pub const OPEN_ALERTS_V1: Typed<&str, String> = Typed::new("open_alerts_v1");

/// Each station's locker activity by day, by [`device_day_key`].
pub const DEVICE_DAYS_V1: Typed<&str, DeviceDay> = Typed::new("device_days_v1");

/// The key of `station`'s device day `day` (days since the Unix epoch): the station, then the
/// day zero-padded, so a station's days sort in order.
pub fn device_day_key(station: &StationId, day: i64) -> String {
    format!("{station}/{day:08}")
}

/// Firmware rollouts, by id (ids sort by when they were created).
pub const ROLLOUTS_V1: Typed<&str, RolloutRecord> = Typed::new("rollouts_v1");
/// The lockers of each rollout, by [`RolloutTarget::key`].
pub const ROLLOUT_TARGETS_V1: Typed<&str, RolloutTarget> = Typed::new("rollout_targets_v1");

/// An edge node's sync position (key [`SYNC_POSITION`]): the version of the records it mirrors.
pub const SYNC_V1: Typed<&str, SyncPosition> = Typed::new("sync_v1");
/// The key of [`SYNC_V1`] with the edge node's sync position.
pub const SYNC_POSITION: &str = "position";
/// The key of [`EDGE_INBOX_V1`] on an edge node.
pub const OUTBOX_DRAINED: &str = "outbox";

/// Where an edge node kept the code key of each station it serves (hex, by station id) before
/// the keys moved to a file of their own; emptied into that file when the store opens.
pub const STATION_KEYS_V1: Typed<&str, String> = Typed::new("station_keys_v1");
/// On an edge node: the decisions it made itself, by its sequence number, until the gateway has
/// applied them.
pub const EDGE_OUTBOX_V1: Typed<u64, EdgeDecision> = Typed::new("edge_outbox_v1");
/// The sequence number of the last decision applied: on the gateway by edge node id, on an edge
/// node under [`OUTBOX_DRAINED`] (the last the gateway confirmed), so its numbers keep growing
/// after its outbox empties.
pub const EDGE_INBOX_V1: Typed<&str, u64> = Typed::new("edge_inbox_v1");
/// Edge nodes' leases, by station id (on an edge node: its own, as the gateway sent them).
pub const LEASES_V1: Typed<&str, LeaseRecord> = Typed::new("leases_v1");
/// Return authorisations by id.
pub const RETURNS_V1: Typed<&str, ReturnRecord> = Typed::new("returns_v1");
/// Each station's records by kind (`{station}\n{kind}\n{name}`, `station_index.rs`): its
/// compartments, active codes, stored parcels, returns that may still be dropped off and
/// returns waiting for a carrier. Values are empty.
pub const STATION_RECORDS_V1: Typed<&str, ()> = Typed::new("station_records_v1");

/// Unspent drop-off codes: keyed hash → return id.
pub const RETURN_CODES_V1: Typed<&str, String> = Typed::new("return_codes_v1");
/// On an edge node: the plugins the gateway sent, by slot (`{world}@{scope}`), verified only
/// when loaded.
pub const EDGE_PLUGINS_V1: Typed<&str, PluginRecord> = Typed::new("edge_plugins_v1");

/// The inbox key of a locker's event.
pub fn inbox_key(station: &StationId, event: &str) -> String {
    format!("{station}/{event}")
}

/// A SHA-256 over the business tables (compartments, reservations, parcels, codes), hex.
pub fn digest(rx: &redb::ReadTransaction) -> Result<String, StoreError> {
    use sha2::{Digest, Sha256};
    let mut hasher = Sha256::new();
    for def in [
        COMPARTMENTS_V1.def(),
        RESERVATIONS_V1.def(),
        PARCELS_V1.def(),
        CODES_V1.def(),
    ] {
        let table = rx.open_table(def)?;
        for item in table.iter()? {
            let (k, v) = item?;
            hasher.update(k.value().as_bytes());
            hasher.update([0]);
            hasher.update(v.value());
            hasher.update([0]);
        }
    }
    Ok(lockergrid_protocol::to_hex(&hasher.finalize()))
}
