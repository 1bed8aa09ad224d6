//! The device registry (DESIGN.md §9): one record per locker controller, what the writer
//! operations `provision_device`, `change_device`, `device_self_test` and `device_seen` change,
//! the reads a node's device front admits connections by, and what a decommission leaves at a
//! station.

use crate::tables::{DEVICES_V1, PARCELS_V1, RESERVATIONS_V1};
use crate::{Store, StoreError};
use lockergrid_model::{Actor, DeviceChange, DeviceRecord, Parcel, Reservation, ReservationStatus};
use lockergrid_protocol::{LockerId, ParcelStatus, StationId};
use redb::ReadableDatabase;

/// A device to provision: the certificate the CA just issued for it, and its model.
#[derive(Debug, Clone)]
pub struct Provision {
    /// The station it runs; its id is the device's.
    pub station: StationId,
    /// Its hardware model.
    pub model: String,
    /// The certificate's serial, lowercase hex.
    pub serial: String,
    /// The certificate's SHA-256 (DER), lowercase hex, when the CA kept the certificate.
    pub fingerprint: Option<String>,
    /// Whether it goes in as active at once: a device that served before the registry existed.
    pub already_active: bool,
    /// Who provisions it.
    pub actor: Actor,
}

/// An operator's change to a device's lifecycle.
#[derive(Debug, Clone)]
pub struct DeviceOrder {
    /// The device.
    pub id: LockerId,
    /// What happens to it.
    pub change: DeviceChange,
    /// Who orders it.
    pub actor: Actor,
    /// Why, for the access log.
    pub reason: String,
}

/// A locker's self-test after it connected, carried by its event `event`.
#[derive(Debug, Clone)]
pub struct SelfTest {
    /// The station (its locker).
    pub station: StationId,
    /// The event's id: applied once.
    pub event: String,
    /// What did not answer; empty when it passed.
    pub failures: Vec<String>,
    /// The locker.
    pub actor: Actor,
}

/// What the locker's self-test changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelfTested {
    /// Applied before: nothing changed.
    Duplicate,
    /// No device of that id is in the registry.
    Unregistered,
    /// Recorded; `activated` when it took the device from provisioned to active.
    Recorded {
        /// The device as it is now.
        device: Box<DeviceRecord>,
        /// It passed its acceptance test now.
        activated: bool,
    },
}

impl Store {
    /// Every device in the registry, by id.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(DEVICES_V1.def())?;
        DEVICES_V1.all(&table)
    }

    /// One device.
    pub fn device(&self, id: &LockerId) -> Result<Option<DeviceRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(DEVICES_V1.def())?;
        DEVICES_V1.get(&table, id.as_str())
    }

    /// The reservations held at `station`, oldest first: what a decommission moves.
    pub fn held_at(&self, station: &StationId) -> Result<Vec<Reservation>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(RESERVATIONS_V1.def())?;
        let mut held: Vec<Reservation> = RESERVATIONS_V1
            .all(&table)?
            .into_iter()
            .filter(|r| &r.station_id == station && r.status == ReservationStatus::Held)
            .collect();
        held.sort_by_key(|r| r.created_at);
        Ok(held)
    }

    /// The parcels in `station`'s compartments (stored, or expired and waiting for a carrier),
    /// oldest first: what a decommission leaves to be collected.
    pub fn parcels_in(&self, station: &StationId) -> Result<Vec<Parcel>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(PARCELS_V1.def())?;
        let mut inside: Vec<Parcel> = PARCELS_V1
            .all(&table)?
            .into_iter()
            .filter(|p| {
                &p.station_id == station
                    && matches!(p.status, ParcelStatus::Stored | ParcelStatus::Expired)
            })
            .collect();
        inside.sort_by_key(|p| p.stored_at);
        Ok(inside)
    }
}

/// The registry itself, as the access log names what it decides (a device going active).
pub(crate) fn registry_actor() -> Actor {
    Actor {
        subject: "registry".into(),
        role: "system".into(),
    }
}
