//! The fleet's device registry as the gateway runs it (DESIGN.md §9): provisioning a locker
//! controller (a certificate over the key it generated and keeps, a registry entry, then the
//! acceptance test it reports after it connects), suspending, resuming and decommissioning it.
//! The registry lives in the store, so the device fronts of the gateway and of the edge nodes
//! (which mirror their stations' entries) admit exactly what it holds; certificates come from the
//! deployment's CA, whose revocation list cuts a decommissioned device everywhere.

use lockergrid_device_plane::{CertificateAuthority, Identity, Kind, PkiError};
use lockergrid_model::{Actor, DeviceChange, DeviceRecord, DeviceStatus, Parcel, RankQuery};
use lockergrid_model::{Reservation, StationStatus, World, rank_stations};
use lockergrid_plugin_host::{PluginHost, RankRequest};
use lockergrid_protocol::{LockerId, StationId};
use lockergrid_store::{ChangeError, DeviceOrder, Provision, Relocated, Relocation, StationSeed};
use lockergrid_store::{StatusChange, Store, StoreError};
use std::path::PathBuf;
use std::sync::Arc;

/// How long a device certificate is valid.
pub const DEVICE_CERT_DAYS: u32 = 825;
/// How far from a decommissioned station its held reservations may move, metres.
pub const RELOCATE_RADIUS_M: f64 = 10_000.0;

/// Why a fleet operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    /// The request was wrong: no such station, an unreadable public key.
    #[error("{0}")]
    Invalid(String),
    /// The registry refused (no such device, a move its status does not allow) or failed.
    #[error(transparent)]
    Registry(#[from] ChangeError),
    /// The CA failed.
    #[error("device CA: {0}")]
    Pki(#[from] PkiError),
}

impl From<StoreError> for FleetError {
    fn from(e: StoreError) -> FleetError {
        FleetError::Registry(e.into())
    }
}

/// A device just provisioned, with what it needs to connect.
#[derive(Debug, Clone)]
pub struct Provisioned {
    /// Its registry entry.
    pub device: DeviceRecord,
    /// Its certificate, PEM.
    pub cert_pem: String,
    /// The deployment CA's certificate, PEM: the only issuer its node's listener may have.
    pub ca_pem: String,
}

/// What a decommission did: where each held reservation went, and what is left to collect.
#[derive(Debug, Clone)]
pub struct Decommissioned {
    /// The device as it is now.
    pub device: DeviceRecord,
    /// The reservations that moved, as they are now (at their new stations).
    pub moved: Vec<Reservation>,
    /// The reservations released because no station near had room.
    pub released: Vec<Reservation>,
    /// The parcels still in the station's compartments, for a carrier or technician to take.
    pub parcels: Vec<Parcel>,
}

/// The registry, the CA that certifies its devices, and the reservation policy that places a
/// decommissioned station's reservations elsewhere.
pub struct Fleet {
    store: Store,
    pki: PathBuf,
    plugins: Arc<PluginHost>,
    /// One CA change at a time within this process (`lockergrid pki` from a shell takes its
    /// own turn through the files).
    ca: tokio::sync::Mutex<()>,
}

impl Fleet {
    /// The registry in `store`, with the CA in `pki`; `plugins` ranks where reservations go.
    pub fn new(store: Store, pki: PathBuf, plugins: Arc<PluginHost>) -> Fleet {
        Fleet {
            store,
            pki,
            plugins,
            ca: tokio::sync::Mutex::new(()),
        }
    }

    /// Provisions `station`'s controller: a certificate over `public_key_pem`, and a registry
    /// entry as provisioned. A device the station had before loses its certificate.
    pub async fn provision(
        &self,
        station: StationId,
        model: String,
        public_key_pem: &str,
        actor: Actor,
    ) -> Result<Provisioned, FleetError> {
        if self.store.snapshot().station(&station).is_none() {
            return Err(FleetError::Invalid(format!("no station {station:?}")));
        }
        let model = checked_model(model)?;
        let identity = locker_identity(&station)?;
        let _turn = self.ca.lock().await;
        let mut ca = CertificateAuthority::open(&self.pki)?;
        let issued = ca
            .issue_for_key(&identity, public_key_pem, DEVICE_CERT_DAYS)
            .map_err(|e| match e {
                PkiError::Invalid(why) => FleetError::Invalid(why),
                other => FleetError::Pki(other),
            })?;
        let before = self.store.device(&locker_id(&station)?)?;
        let provision = Provision {
            station,
            model,
            serial: issued.issued.serial.clone(),
            fingerprint: Some(issued.fingerprint.clone()),
            already_active: false,
            actor,
        };
        let device = match self.store.provision_device(provision).await {
            Ok(device) => device,
            Err(e) => {
                // Not in the registry, so no front admits it; revoked all the same.
                if let Err(revoke) = ca.revoke_serial(&issued.issued.serial) {
                    tracing::error!(error = %revoke, serial = %issued.issued.serial, "unused certificate not revoked");
                }
                return Err(e.into());
            }
        };
        if let Some(old) = before.filter(|old| old.serial != device.serial) {
            revoke(&mut ca, &old.serial);
        }
        Ok(Provisioned {
            device,
            cert_pem: issued.cert_pem,
            ca_pem: ca.ca_pem().to_owned(),
        })
    }

    /// Suspends or resumes a device: a suspended one may not connect (its session is cut at
    /// once) but keeps its certificate.
    pub async fn order(
        &self,
        id: LockerId,
        change: DeviceChange,
        actor: Actor,
        reason: String,
    ) -> Result<DeviceRecord, FleetError> {
        let order = DeviceOrder {
            id,
            change,
            actor,
            reason,
        };
        Ok(self.store.change_device(order).await?)
    }

    /// Decommissions a device for good: out of the registry's admission at once (its live
    /// session is cut), its certificate revoked, its station out of discovery, each reservation
    /// held there moved to the best station near it that has room (the reservation policy
    /// ranks them) or released where none has, each customer told; the parcels still inside
    /// are listed for collection. Every step is in the access log.
    pub async fn decommission(
        &self,
        id: LockerId,
        actor: Actor,
        reason: String,
    ) -> Result<Decommissioned, FleetError> {
        let order = DeviceOrder {
            id,
            change: DeviceChange::Decommissioned,
            actor: actor.clone(),
            reason: reason.clone(),
        };
        let device = self.store.change_device(order).await?;
        self.wind_down(device, &actor, &reason).await
    }

    /// Finishes what a decommission interrupted by a stop left undone: every decommissioned
    /// device's certificate revoked, station inactive, reservations moved. How many it saw to.
    pub async fn finish_decommissions(&self) -> Result<usize, FleetError> {
        let mut finished = 0;
        for device in self.store.devices()? {
            if device.status != DeviceStatus::Decommissioned {
                continue;
            }
            let active = self
                .store
                .snapshot()
                .station(&device.station)
                .is_some_and(|s| s.record.status != StationStatus::Inactive);
            if active || !self.store.held_at(&device.station)?.is_empty() {
                let reason = "finishing an interrupted decommission".to_owned();
                self.wind_down(device, &registry_actor(), &reason).await?;
                finished += 1;
            }
        }
        Ok(finished)
    }

    /// The steps of a decommission after the registry's, each safe to repeat.
    async fn wind_down(
        &self,
        device: DeviceRecord,
        actor: &Actor,
        reason: &str,
    ) -> Result<Decommissioned, FleetError> {
        {
            let _turn = self.ca.lock().await;
            revoke(&mut CertificateAuthority::open(&self.pki)?, &device.serial);
        }
        let out = StatusChange {
            station: device.station.clone(),
            from: vec![
                StationStatus::Active,
                StationStatus::Offline,
                StationStatus::OutOfService,
            ],
            to: StationStatus::Inactive,
            actor: actor.clone(),
            reason: format!("device decommissioned: {reason}"),
        };
        self.store.set_station_status(out).await?;
        let (mut moved, mut released) = (Vec::new(), Vec::new());
        for reservation in self.store.held_at(&device.station)? {
            match self.relocate(reservation, actor, reason).await? {
                Relocated::Moved { reservation, .. } => moved.push(reservation),
                Relocated::Released(reservation) => released.push(reservation),
            }
        }
        let parcels = self.store.parcels_in(&device.station)?;
        Ok(Decommissioned {
            device,
            moved,
            released,
            parcels,
        })
    }

    /// Asks the reservation policy where a held reservation of a station leaving service goes:
    /// the stations near it with room, ranked, then the store moves it to the first that still
    /// has room, or releases it.
    async fn relocate(
        &self,
        reservation: Reservation,
        actor: &Actor,
        reason: &str,
    ) -> Result<Relocated, FleetError> {
        let snapshot = self.store.snapshot();
        let parcel = self.store.parcel(&reservation.parcel_id)?;
        let spec = parcel.map(|p| p.spec);
        let size = spec
            .and_then(|s| s.smallest_size().ok())
            .unwrap_or(reservation.size);
        let origin = snapshot
            .station(&reservation.station_id)
            .map(|s| s.record.location);
        let (candidates, decided_by) = match (origin, spec) {
            (Some(at), Some(parcel)) => {
                let query = RankQuery {
                    at,
                    radius_m: RELOCATE_RADIUS_M,
                    size,
                };
                let request = RankRequest {
                    parcel,
                    size,
                    tier: reservation.tier,
                };
                let ranked = rank_stations(&snapshot, &query);
                let placement = self
                    .plugins
                    .place(request, Some(ranked), None, self.store.now())
                    .await;
                let ids = placement
                    .candidates
                    .iter()
                    .map(|c| c.station.record.id.clone())
                    .collect();
                (
                    ids,
                    Some(placement.decider.decided_by(World::ReservationPolicy)),
                )
            }
            _ => (Vec::new(), None),
        };
        let relocation = Relocation {
            reservation: reservation.id,
            candidates,
            reason: format!("station decommissioned: {reason}"),
            actor: actor.clone(),
            decided_by,
        };
        Ok(self.store.relocate_reservation(relocation).await?)
    }

    /// Takes into the registry, as active, every station's controller that served before the
    /// registry existed: the newest unrevoked locker certificate the CA issued for the station.
    /// Stations already in the registry are left alone. How many it took in.
    pub async fn adopt_legacy(&self, stations: &[StationSeed]) -> Result<usize, FleetError> {
        let _turn = self.ca.lock().await;
        let ca = CertificateAuthority::open(&self.pki)?;
        let mut adopted = 0;
        for seed in stations {
            let station = &seed.record.id;
            if self.store.device(&locker_id(station)?)?.is_some() {
                continue;
            }
            let newest = ca
                .issued()
                .iter()
                .filter(|i| i.kind == Kind::Locker && i.id == station.as_str())
                .filter(|i| i.revoked_at.is_none())
                .max_by_key(|i| i.issued_at);
            let Some(issued) = newest else {
                continue;
            };
            let provision = Provision {
                station: station.clone(),
                model: "unknown".into(),
                serial: issued.serial.clone(),
                fingerprint: None,
                already_active: true,
                actor: registry_actor(),
            };
            self.store.provision_device(provision).await?;
            adopted += 1;
        }
        Ok(adopted)
    }

    /// Every device in the registry.
    pub fn devices(&self) -> Result<Vec<DeviceRecord>, FleetError> {
        Ok(self.store.devices()?)
    }

    /// One device.
    pub fn device(&self, id: &LockerId) -> Result<Option<DeviceRecord>, FleetError> {
        Ok(self.store.device(id)?)
    }
}

fn revoke(ca: &mut CertificateAuthority, serial: &str) {
    match ca.revoke_serial(serial) {
        Ok(_) => tracing::info!(%serial, "the previous device certificate revoked"),
        // Revoked before (by hand, with `lockergrid pki revoke`).
        Err(PkiError::Invalid(why)) => tracing::debug!(%serial, %why, "nothing to revoke"),
        Err(e) => {
            tracing::error!(%serial, error = %e, "the previous device certificate not revoked")
        }
    }
}

/// A hardware model name: 1 to 64 printable ASCII characters.
fn checked_model(model: String) -> Result<String, FleetError> {
    let ok = !model.is_empty() && model.len() <= 64 && model.bytes().all(|b| b.is_ascii_graphic());
    if ok {
        Ok(model)
    } else {
        Err(FleetError::Invalid(format!(
            "model {model:?} must be 1-64 printable ASCII characters without spaces"
        )))
    }
}

fn locker_identity(station: &StationId) -> Result<Identity, FleetError> {
    Identity::new(Kind::Locker, station.as_str()).map_err(|e| FleetError::Invalid(e.to_string()))
}

fn locker_id(station: &StationId) -> Result<LockerId, FleetError> {
    LockerId::new(station.as_str()).map_err(|e| FleetError::Invalid(e.to_string()))
}

/// The registry's own actor, for what it takes in by itself.
fn registry_actor() -> Actor {
    Actor {
        subject: "registry".into(),
        role: "system".into(),
    }
}
