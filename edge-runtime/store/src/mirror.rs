//! The store as an edge node's mirror of its stations (the sync of `lockergrid-model`): the
//! gateway reads the records an edge node needs, and the edge node's writer applies numbered
//! batches of them to its own tables, in the same transaction as its new sync position.

use super::index::StationIndex;
use super::station_index::{Kind, may_drop_off, named, records};
use super::tables::compartment_key;
use super::tables::{
    CODES_V1, COMPARTMENTS_V1, DEVICES_V1, EDGE_PLUGINS_V1, LEASES_V1, LOCKOUTS_V1, PARCELS_V1,
    RESERVATIONS_V1, RETURN_CODES_V1, RETURNS_V1, STATION_RECORDS_V1, STATIONS_V1, SYNC_POSITION,
    SYNC_V1,
};
use super::writer::{Tx, Writer};
use super::{Store, StoreError, tables};
use lockergrid_model::{CodeRecord, CompartmentRecord, Parcel, ReturnRecord, StationRecord};
use lockergrid_model::{PluginRecord, SyncItem, SyncPosition};
use lockergrid_protocol::{CompartmentId, ParcelStatus, StationId};
use redb::{ReadableDatabase, ReadableTableMetadata};
use std::collections::BTreeSet;

/// How many records of each kind a store mirrors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MirrorCounts {
    /// Compartments.
    pub compartments: u64,
    /// Active pickup codes.
    pub codes: u64,
}

impl Store {
    /// Every record an edge node serving `stations` should hold, for [`lockergrid_model::SyncLog`].
    pub fn mirror_items(
        &self,
        stations: &BTreeSet<StationId>,
    ) -> Result<Vec<SyncItem>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let mut items = Vec::new();
        let table = rx.open_table(STATIONS_V1.def())?;
        for id in stations {
            if let Some(station) = STATIONS_V1.get(&table, id.as_str())? {
                items.push(SyncItem::Station(station));
            }
        }
        // Each station's compartments, codes, stored parcels (with their reservations: what a
        // pickup at the edge node changes), the edge node's leases there, and the returns that
        // may still be dropped off there: read through the station index, so the cost is what
        // these stations hold, not what the region does.
        let index = rx.open_table(STATION_RECORDS_V1.def())?;
        let compartments = rx.open_table(COMPARTMENTS_V1.def())?;
        let codes = rx.open_table(CODES_V1.def())?;
        let parcels = rx.open_table(PARCELS_V1.def())?;
        let reservations = rx.open_table(RESERVATIONS_V1.def())?;
        let leases = rx.open_table(LEASES_V1.def())?;
        let returns = rx.open_table(RETURNS_V1.def())?;
        for station in stations {
            let here = (station, Kind::Compartment);
            let key_of = |id: &str| CompartmentId::new(id).ok().map(|id| compartment_key(&id));
            let keep = |c: &CompartmentRecord| &c.station == station;
            for (_, c) in records(&index, &compartments, &COMPARTMENTS_V1, here, key_of, keep)? {
                items.push(SyncItem::Compartment(c));
            }
            let keep = |code: &CodeRecord| &code.station_id == station;
            for (hash, code) in records(
                &index,
                &codes,
                &CODES_V1,
                (station, Kind::Code),
                named,
                keep,
            )? {
                items.push(SyncItem::Code { hash, code });
            }
            let keep = |p: &Parcel| &p.station_id == station && p.status == ParcelStatus::Stored;
            for (_, parcel) in records(
                &index,
                &parcels,
                &PARCELS_V1,
                (station, Kind::Parcel),
                named,
                keep,
            )? {
                if let Some(r) =
                    RESERVATIONS_V1.get(&reservations, parcel.reservation_id.as_str())?
                {
                    items.push(SyncItem::Reservation(r));
                }
                items.push(SyncItem::Parcel(parcel));
            }
            if let Some(mut lease) = LEASES_V1.get(&leases, station.as_str())? {
                lease.used.clear();
                items.push(SyncItem::Lease(lease));
            }
            let keep = |r: &ReturnRecord| &r.station_id == station && may_drop_off(r);
            for (_, r) in records(
                &index,
                &returns,
                &RETURNS_V1,
                (station, Kind::Return),
                named,
                keep,
            )? {
                items.push(SyncItem::Return(r));
            }
        }
        let lockouts = rx.open_table(LOCKOUTS_V1.def())?;
        for station in stations {
            if let Some(lockout) = LOCKOUTS_V1.get(&lockouts, station.as_str())? {
                items.push(SyncItem::Lockout {
                    station: station.clone(),
                    lockout,
                });
            }
        }
        // The registry entries its device front admits by; when the gateway last heard from a
        // device is not the edge node's business and would only churn the sync.
        let devices = rx.open_table(DEVICES_V1.def())?;
        for station in stations {
            if let Some(mut device) = DEVICES_V1.get(&devices, station.as_str())? {
                device.last_seen = None;
                items.push(SyncItem::Device(device));
            }
        }
        // A store that holds station keys (an edge node's) lists those; a gateway's derives them.
        for station in stations {
            let key = self.inner.station_keys.hex(station).unwrap_or_else(|| {
                lockergrid_protocol::to_hex(&self.inner.code_key.station(station).to_bytes())
            });
            items.push(SyncItem::StationKey {
                station: station.clone(),
                key,
            });
        }
        Ok(items)
    }

    /// The version of the records this store mirrors, `None` before its first sync.
    pub fn sync_position(&self) -> Result<Option<SyncPosition>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(SYNC_V1.def())?;
        SYNC_V1.get(&table, SYNC_POSITION)
    }

    /// The plugins an edge node's store holds, as the gateway sent them.
    pub fn mirrored_plugins(&self) -> Result<Vec<PluginRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(EDGE_PLUGINS_V1.def())?;
        Ok(EDGE_PLUGINS_V1
            .entries(&table)?
            .into_iter()
            .map(|(_, plugin)| plugin)
            .collect())
    }

    /// How many compartments and codes this store holds.
    pub fn mirror_counts(&self) -> Result<MirrorCounts, StoreError> {
        let rx = self.inner.db.begin_read()?;
        Ok(MirrorCounts {
            compartments: rx.open_table(tables::COMPARTMENTS_V1.def())?.len()?,
            codes: rx.open_table(tables::CODES_V1.def())?.len()?,
        })
    }
}

impl Writer {
    /// Drops every mirrored record (plugins included), for a full resync.
    pub(crate) fn clear_mirror(&mut self, tx: &mut Tx<'_>) -> Result<(), StoreError> {
        tx.stations.retain(|_, _| false)?;
        tx.compartments.retain(|_, _| false)?;
        tx.codes.retain(|_, _| false)?;
        tx.parcels.retain(|_, _| false)?;
        tx.reservations.retain(|_, _| false)?;
        tx.edge_plugins.retain(|_, _| false)?;
        tx.leases.retain(|_, _| false)?;
        tx.returns.retain(|_, _| false)?;
        tx.return_codes.retain(|_, _| false)?;
        tx.lockouts.retain(|_, _| false)?;
        tx.devices.retain(|_, _| false)?;
        tx.clear_station_records()?;
        tx.devices_changed = true;
        tx.dirty.extend(self.index.stations.keys().cloned());
        self.index.stations.clear();
        Ok(())
    }

    pub(crate) fn mirror_station(
        &mut self,
        tx: &mut Tx<'_>,
        station: &StationRecord,
    ) -> Result<(), StoreError> {
        STATIONS_V1.put(&mut tx.stations, station.id.as_str(), station)?;
        self.index
            .stations
            .entry(station.id.clone())
            .or_insert_with(|| StationIndex::new(station.clone()))
            .record = station.clone();
        tx.dirty.insert(station.id.clone());
        Ok(())
    }

    pub(crate) fn mirror_compartment(
        &mut self,
        tx: &mut Tx<'_>,
        c: &CompartmentRecord,
    ) -> Result<(), StoreError> {
        let key = tables::compartment_key(&c.id);
        let before = COMPARTMENTS_V1.get(&tx.compartments, key.as_str())?;
        let station =
            self.index
                .stations
                .get_mut(&c.station)
                .ok_or_else(|| StoreError::Corrupt {
                    table: "sync_v1",
                    detail: format!(
                        "compartment {:?} of unmirrored station {:?}",
                        c.id, c.station
                    ),
                })?;
        match &before {
            Some(before) => station.untrack(before),
            None => tx.index_compartment(c)?,
        }
        station.track(c, None);
        COMPARTMENTS_V1.put(&mut tx.compartments, key.as_str(), c)?;
        tx.dirty.insert(c.station.clone());
        Ok(())
    }

    /// A return the edge node may see dropped off, with its code while unspent.
    pub(crate) fn mirror_return(
        &mut self,
        tx: &mut Tx<'_>,
        r: &ReturnRecord,
    ) -> Result<(), StoreError> {
        if let Some(old) = RETURNS_V1
            .get(&tx.returns, r.id.as_str())?
            .and_then(|o| o.code_hash)
            && r.code_hash.as_ref() != Some(&old)
        {
            tx.return_codes.remove(old.as_str())?;
        }
        if let Some(hash) = &r.code_hash {
            RETURN_CODES_V1.put(&mut tx.return_codes, hash.as_str(), &r.id.to_string())?;
        }
        tx.put_return(r)
    }

    pub(crate) fn mirror_code(
        &mut self,
        tx: &mut Tx<'_>,
        hash: &str,
        code: &CodeRecord,
    ) -> Result<(), StoreError> {
        tx.put_code(hash, code)
    }

    /// Removes the record named by a [`SyncItem::key`].
    pub(crate) fn unmirror(&mut self, tx: &mut Tx<'_>, key: &str) -> Result<(), StoreError> {
        match key.split_once('/') {
            Some(("code", hash)) => {
                tx.remove_code(hash)?;
            }
            Some(("parcel", id)) => tx.remove_parcel(id)?,
            Some(("reservation", id)) => {
                tx.reservations.remove(id)?;
            }
            Some(("plugin", slot)) => {
                tx.edge_plugins.remove(slot)?;
            }
            Some(("lease", station)) => {
                tx.leases.remove(station)?;
            }
            Some(("lockout", station)) => {
                tx.lockouts.remove(station)?;
            }
            Some(("device", id)) => {
                tx.devices.remove(id)?;
                tx.devices_changed = true;
            }
            Some(("return", id)) => {
                if let Some(hash) = RETURNS_V1.get(&tx.returns, id)?.and_then(|r| r.code_hash) {
                    tx.return_codes.remove(hash.as_str())?;
                }
                tx.remove_return(id)?;
            }
            // Keys live outside the store; the sync applies their removal in one change.
            Some(("station-key", _)) => {}
            Some(("compartment", id)) => {
                let Ok(id) = CompartmentId::new(id) else {
                    return Ok(());
                };
                let key = tables::compartment_key(&id);
                if let Some(before) = COMPARTMENTS_V1.get(&tx.compartments, key.as_str())? {
                    if let Some(station) = self.index.stations.get_mut(&before.station) {
                        station.untrack(&before);
                    }
                    tx.compartments.remove(key.as_str())?;
                    tx.unindex_compartment(&before)?;
                    tx.dirty.insert(before.station);
                }
            }
            Some(("station", id)) => {
                tx.stations.remove(id)?;
                if let Ok(id) = StationId::new(id) {
                    self.index.stations.remove(&id);
                    tx.dirty.insert(id);
                }
            }
            _ => tracing::warn!(key, "sync removed a record of an unknown kind; ignored"),
        }
        Ok(())
    }
}
