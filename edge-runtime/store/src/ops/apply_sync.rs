//! On an edge node: a sync batch from the gateway, applied only on the version it names.

use crate::station_keys::parse_key;
use crate::tables::{
    DEVICES_V1, EDGE_OUTBOX_V1, EDGE_PLUGINS_V1, LEASES_V1, RESERVATIONS_V1, SYNC_POSITION, SYNC_V1,
};
use crate::writer::{Tx, Writer};
use crate::{Store, StoreError};
use lockergrid_model::{SyncBatch, SyncItem};
use lockergrid_protocol::{CompartmentId, ReturnId, StationId};
use std::collections::BTreeMap;

impl Store {
    /// Applies a sync batch if it applies on the position this store holds (see
    /// [`SyncBatch::applies_on`]) and the store's decision outbox is empty (the gateway's records
    /// do not include those decisions yet, so they would undo them); `false` when it does not
    /// and nothing changed.
    pub async fn apply_sync(&self, batch: SyncBatch) -> Result<bool, StoreError> {
        self.write(move |w, tx| w.apply_sync(tx, batch)).await
    }
}

impl Writer {
    pub(crate) fn apply_sync(
        &mut self,
        tx: &mut Tx<'_>,
        batch: SyncBatch,
    ) -> Result<bool, StoreError> {
        let at = SYNC_V1.get(&tx.sync, SYNC_POSITION)?;
        if !batch.applies_on(at.as_ref()) || EDGE_OUTBOX_V1.last(&tx.edge_outbox)?.is_some() {
            return Ok(false);
        }
        // Which leased compartments the edge node has opened for a drop-off whose door has not
        // closed: its own knowledge, kept across any batch while the gateway still leases them.
        let used: BTreeMap<String, BTreeMap<CompartmentId, ReturnId>> = LEASES_V1
            .all(&tx.leases)?
            .into_iter()
            .filter(|l| !l.used.is_empty())
            .map(|l| (l.station.to_string(), l.used))
            .collect();
        if batch.full {
            self.clear_mirror(tx)?;
        }
        let mut keys = Vec::new();
        let mut items = batch.items.iter().collect::<Vec<_>>();
        // Stations before the compartments that name them.
        items.sort_by_key(|item| !matches!(item, SyncItem::Station(_)));
        for item in items {
            match item {
                SyncItem::Station(station) => self.mirror_station(tx, station)?,
                SyncItem::Compartment(c) => self.mirror_compartment(tx, c)?,
                SyncItem::Code { hash, code } => self.mirror_code(tx, hash, code)?,
                SyncItem::Removed { key } => {
                    if let Some(("station-key", id)) = key.split_once('/')
                        && let Ok(station) = StationId::new(id)
                    {
                        keys.push((station, None));
                    }
                    self.unmirror(tx, key)?;
                }
                SyncItem::Parcel(p) => tx.put_parcel(p)?,
                SyncItem::Reservation(r) => {
                    RESERVATIONS_V1.put(&mut tx.reservations, r.id.as_str(), r)?;
                }
                SyncItem::StationKey { station, key } => {
                    keys.push((station.clone(), Some((key.clone(), parse_key(key)?))));
                }
                SyncItem::Lease(lease) => {
                    let mut lease = lease.clone();
                    if let Some(used) = used.get(lease.station.as_str()) {
                        lease.used = used
                            .iter()
                            .filter(|(c, _)| lease.compartments.contains(*c))
                            .map(|(c, r)| (c.clone(), r.clone()))
                            .collect();
                    }
                    LEASES_V1.put(&mut tx.leases, lease.station.as_str(), &lease)?;
                }
                SyncItem::Return(r) => self.mirror_return(tx, r)?,
                SyncItem::Lockout { station, lockout } => {
                    self.put_lockout(tx, station, lockout)?;
                }
                SyncItem::Plugin(plugin) => {
                    EDGE_PLUGINS_V1.put(&mut tx.edge_plugins, plugin.slot().as_str(), plugin)?;
                }
                SyncItem::Device(device) => {
                    DEVICES_V1.put(&mut tx.devices, device.id.as_str(), device)?;
                    tx.devices_changed = true;
                }
                // A file, not a record: the edge node writes it before the batch is applied.
                SyncItem::Crl { .. } => {}
            }
        }
        // The station keys change once per batch, in their own file, before the batch commits:
        // keys ahead of a batch that then fails to commit are keys the next batch brings again.
        self.station_keys.change(|held| {
            if batch.full {
                held.clear();
            }
            for (station, key) in keys {
                match key {
                    Some(key) => held.insert(station, key),
                    None => held.remove(&station),
                };
            }
            Ok(())
        })?;
        SYNC_V1.put(&mut tx.sync, SYNC_POSITION, &batch.position())?;
        Ok(true)
    }
}
