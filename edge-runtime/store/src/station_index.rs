//! Each station's records by kind, in [`STATION_RECORDS_V1`]: what one station holds is read
//! with a range over its prefix instead of a scan of every table: for an edge node's mirror, a
//! locker's code cache, a station's returns and expired parcels waiting for a carrier, and a
//! compartment move. The writer keeps the entries with the records, through the `Tx` methods
//! here; an entry only names a record and every reader checks the record itself
//! ([`records`]), so an entry left behind is skipped, never believed.

use super::StoreError;
use super::codec::Codec;
use super::tables::Typed;
use super::tables::{CODES_V1, COMPARTMENTS_V1, PARCELS_V1, RETURNS_V1, STATION_RECORDS_V1};
use super::writer::Tx;
use lockergrid_model::{CodeRecord, CompartmentRecord, Parcel, ReturnRecord, ReturnStatus};
use lockergrid_protocol::{ParcelStatus, StationId};
use redb::{ReadableTable, TableHandle};

/// What an entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A compartment, by id.
    Compartment,
    /// An active pickup code, by its keyed hash.
    Code,
    /// A stored parcel, by id.
    Parcel,
    /// An expired parcel waiting for a carrier, by when it expired and its id.
    Uncollected,
    /// A return that may still be dropped off, by id.
    Return,
    /// A return waiting for a carrier, by when it was dropped off and its id.
    Waiting,
}

impl Kind {
    fn tag(self) -> &'static str {
        match self {
            Kind::Compartment => "compartment",
            Kind::Code => "code",
            Kind::Parcel => "parcel",
            Kind::Uncollected => "uncollected",
            Kind::Return => "return",
            Kind::Waiting => "waiting",
        }
    }
}

fn key(station: &StationId, kind: Kind, name: &str) -> String {
    format!("{station}\n{}\n{name}", kind.tag())
}

/// The name of a waiting return: its drop-off time first, so they list oldest first.
fn waiting_name(r: &ReturnRecord) -> String {
    let at = r.dropped_off_at.unwrap_or_default().millis();
    format!("{at:020}\n{}", r.id)
}

/// The name of an uncollected parcel: its expiry first, so the longest waiting lists first.
fn uncollected_name(p: &Parcel) -> String {
    let at = p.expired_at.unwrap_or_default().millis();
    format!("{at:020}\n{}", p.id)
}

/// The record id or code hash of each of `station`'s entries of `kind`, in key order.
fn names(
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    station: &StationId,
    kind: Kind,
) -> Result<Vec<String>, StoreError> {
    let prefix = key(station, kind, "");
    Ok(STATION_RECORDS_V1
        .with_prefix(table, &prefix)?
        .into_iter()
        .map(|(k, ())| k.rsplit('\n').next().unwrap_or_default().to_owned())
        .collect())
}

/// `station`'s records of `kind` that `keep` accepts, with their names, in key order: each
/// name is looked up in `table` under `key_of(name)` (`None` skips it), and a record that no
/// longer exists or that `keep` refuses (it moved on, or to another station) is skipped.
pub(crate) fn records<V, C: Codec<V>>(
    index: &impl ReadableTable<&'static str, &'static [u8]>,
    table: &impl ReadableTable<&'static str, &'static [u8]>,
    typed: &Typed<&'static str, V, C>,
    (station, kind): (&StationId, Kind),
    key_of: impl Fn(&str) -> Option<String>,
    keep: impl Fn(&V) -> bool,
) -> Result<Vec<(String, V)>, StoreError> {
    let mut found = Vec::new();
    for name in names(index, station, kind)? {
        let Some(key) = key_of(&name) else {
            continue;
        };
        if let Some(record) = typed.get(table, key.as_str())?
            && keep(&record)
        {
            found.push((name, record));
        }
    }
    Ok(found)
}

/// The record's key is its name.
pub(crate) fn named(name: &str) -> Option<String> {
    Some(name.to_owned())
}

/// The returns waiting at `station` for a carrier, oldest first.
pub(crate) fn waiting_returns(
    index: &impl ReadableTable<&'static str, &'static [u8]>,
    returns: &impl ReadableTable<&'static str, &'static [u8]>,
    station: &StationId,
) -> Result<Vec<ReturnRecord>, StoreError> {
    let keep = |r: &ReturnRecord| &r.station_id == station && r.status == ReturnStatus::DroppedOff;
    let found = records(
        index,
        returns,
        &RETURNS_V1,
        (station, Kind::Waiting),
        named,
        keep,
    )?;
    Ok(found.into_iter().map(|(_, r)| r).collect())
}

/// The expired parcels at `station` waiting for a carrier, the longest waiting first.
pub(crate) fn uncollected_parcels(
    index: &impl ReadableTable<&'static str, &'static [u8]>,
    parcels: &impl ReadableTable<&'static str, &'static [u8]>,
    station: &StationId,
) -> Result<Vec<Parcel>, StoreError> {
    let keep = |p: &Parcel| &p.station_id == station && p.status == ParcelStatus::Expired;
    let found = records(
        index,
        parcels,
        &PARCELS_V1,
        (station, Kind::Uncollected),
        named,
        keep,
    )?;
    Ok(found.into_iter().map(|(_, p)| p).collect())
}

/// Whether a return may still be dropped off: an edge node mirrors it and its deadline runs.
pub(crate) fn may_drop_off(r: &ReturnRecord) -> bool {
    matches!(
        r.status,
        ReturnStatus::Authorized | ReturnStatus::DroppingOff
    )
}

impl Tx<'_> {
    fn enter(&mut self, station: &StationId, kind: Kind, name: &str) -> Result<(), StoreError> {
        STATION_RECORDS_V1.put(
            &mut self.station_records,
            key(station, kind, name).as_str(),
            &(),
        )
    }

    fn leave(&mut self, station: &StationId, kind: Kind, name: &str) -> Result<(), StoreError> {
        self.station_records
            .remove(key(station, kind, name).as_str())?;
        Ok(())
    }

    /// Enters a compartment written for the first time (seeded or mirrored).
    pub(crate) fn index_compartment(&mut self, c: &CompartmentRecord) -> Result<(), StoreError> {
        self.enter(&c.station, Kind::Compartment, c.id.as_str())
    }

    /// Takes out a compartment removed from the store.
    pub(crate) fn unindex_compartment(&mut self, c: &CompartmentRecord) -> Result<(), StoreError> {
        self.leave(&c.station, Kind::Compartment, c.id.as_str())
    }

    /// Writes an active code.
    pub(crate) fn put_code(&mut self, hash: &str, code: &CodeRecord) -> Result<(), StoreError> {
        CODES_V1.put(&mut self.codes, hash, code)?;
        self.enter(&code.station_id, Kind::Code, hash)
    }

    /// Removes a code, if it is there.
    pub(crate) fn remove_code(&mut self, hash: &str) -> Result<(), StoreError> {
        if let Some(old) = CODES_V1.remove(&mut self.codes, hash)? {
            self.leave(&old.station_id, Kind::Code, hash)?;
        }
        Ok(())
    }

    /// Writes a parcel; it is listed at its station while it is stored there, and while it
    /// waits there, expired, for a carrier. A hold's parcel, never stored, costs no entry.
    pub(crate) fn put_parcel(&mut self, parcel: &Parcel) -> Result<(), StoreError> {
        PARCELS_V1.put(&mut self.parcels, parcel.id.as_str(), parcel)?;
        let (station, id) = (&parcel.station_id, parcel.id.as_str());
        if parcel.status == ParcelStatus::Stored {
            self.enter(station, Kind::Parcel, id)?;
        } else if parcel.stored_at.is_some() {
            self.leave(station, Kind::Parcel, id)?;
        }
        if parcel.status == ParcelStatus::Expired {
            self.enter(station, Kind::Uncollected, &uncollected_name(parcel))?;
        } else if parcel.expired_at.is_some() {
            self.leave(station, Kind::Uncollected, &uncollected_name(parcel))?;
        }
        Ok(())
    }

    /// Removes a parcel, if it is there.
    pub(crate) fn remove_parcel(&mut self, id: &str) -> Result<(), StoreError> {
        if let Some(old) = PARCELS_V1.get(&self.parcels, id)? {
            self.leave(&old.station_id, Kind::Parcel, id)?;
            if old.expired_at.is_some() {
                self.leave(&old.station_id, Kind::Uncollected, &uncollected_name(&old))?;
            }
        }
        self.parcels.remove(id)?;
        Ok(())
    }

    /// Writes a return; it is listed at its station while it may be dropped off there, and
    /// while it waits there for a carrier.
    pub(crate) fn put_return(&mut self, r: &ReturnRecord) -> Result<(), StoreError> {
        RETURNS_V1.put(&mut self.returns, r.id.as_str(), r)?;
        let id = r.id.as_str();
        if may_drop_off(r) {
            self.enter(&r.station_id, Kind::Return, id)?;
        } else {
            self.leave(&r.station_id, Kind::Return, id)?;
        }
        if r.status == ReturnStatus::DroppedOff {
            self.enter(&r.station_id, Kind::Waiting, &waiting_name(r))?;
        } else if r.dropped_off_at.is_some() {
            self.leave(&r.station_id, Kind::Waiting, &waiting_name(r))?;
        }
        Ok(())
    }

    /// Removes a return, if it is there.
    pub(crate) fn remove_return(&mut self, id: &str) -> Result<(), StoreError> {
        if let Some(old) = RETURNS_V1.get(&self.returns, id)? {
            self.leave(&old.station_id, Kind::Return, id)?;
            if old.dropped_off_at.is_some() {
                self.leave(&old.station_id, Kind::Waiting, &waiting_name(&old))?;
            }
        }
        self.returns.remove(id)?;
        Ok(())
    }

    /// Empties the index, with the records it names (an edge node's full resync).
    pub(crate) fn clear_station_records(&mut self) -> Result<(), StoreError> {
        self.station_records.retain(|_, _| false)?;
        Ok(())
    }
}

/// Whether `txn` has no index yet: a store from before it, built once when it opens.
pub(crate) fn missing(txn: &redb::WriteTransaction) -> Result<bool, StoreError> {
    let name = STATION_RECORDS_V1.def().name().to_owned();
    Ok(!txn.list_tables()?.any(|t| t.name() == name))
}

/// Fills the index from the records themselves.
pub(crate) fn build(tx: &mut Tx<'_>) -> Result<(), StoreError> {
    tx.clear_station_records()?;
    for c in COMPARTMENTS_V1.all(&tx.compartments)? {
        tx.index_compartment(&c)?;
    }
    for (hash, code) in CODES_V1.entries(&tx.codes)? {
        tx.enter(&code.station_id, Kind::Code, &hash)?;
    }
    for parcel in PARCELS_V1.all(&tx.parcels)? {
        if parcel.status == ParcelStatus::Stored {
            tx.enter(&parcel.station_id, Kind::Parcel, parcel.id.as_str())?;
        }
        if parcel.status == ParcelStatus::Expired {
            tx.enter(
                &parcel.station_id,
                Kind::Uncollected,
                &uncollected_name(&parcel),
            )?;
        }
    }
    for r in RETURNS_V1.all(&tx.returns)? {
        if may_drop_off(&r) {
            tx.enter(&r.station_id, Kind::Return, r.id.as_str())?;
        }
        if r.status == ReturnStatus::DroppedOff {
            tx.enter(&r.station_id, Kind::Waiting, &waiting_name(&r))?;
        }
    }
    Ok(())
}
