//! Stations: seeding them and their compartments from the deployment, and their status
//! (active, offline, out of service), each change in the access log.

use super::access_log::Draft;
use super::index::StationIndex;
use super::tables::{COMPARTMENTS_V1, STATIONS_V1, compartment_key};
use super::writer::{Tx, Writer};
use super::{SeedReport, StationSeed, StatusChange, StoreError};
use lockergrid_model::{Actor, CompartmentRecord};
use lockergrid_protocol::{CompartmentId, CompartmentState, Size};

impl Writer {
    pub(super) fn seed(
        &mut self,
        tx: &mut Tx<'_>,
        stations: Vec<StationSeed>,
    ) -> Result<SeedReport, StoreError> {
        let mut report = SeedReport::default();
        for seed in stations {
            let id = seed.record.id.clone();
            let known = self.index.stations.get(&id).map(|s| s.record.clone());
            let record = match known {
                Some(mut record) => {
                    record.name = seed.record.name;
                    record.kind = seed.record.kind;
                    record.location = seed.record.location;
                    record
                }
                None => {
                    report.stations_added += 1;
                    seed.record
                }
            };
            STATIONS_V1.put(&mut tx.stations, id.as_str(), &record)?;
            let station = self
                .index
                .stations
                .entry(id.clone())
                .or_insert_with(|| StationIndex::new(record.clone()));
            station.record = record;
            for size in Size::ALL {
                let have = station.total(size);
                for n in have + 1..=seed.compartments[size.index()] {
                    let compartment = CompartmentRecord {
                        id: CompartmentId::numbered(id.as_str(), size, n).map_err(|e| {
                            StoreError::Corrupt {
                                table: "compartments_v1",
                                detail: e.to_string(),
                            }
                        })?,
                        station: id.clone(),
                        size,
                        state: CompartmentState::Available,
                        version: 1,
                        reservation: None,
                    };
                    let key = compartment_key(&compartment.id);
                    COMPARTMENTS_V1.put(&mut tx.compartments, key.as_str(), &compartment)?;
                    station.track(&compartment, None);
                    report.compartments_added += 1;
                }
            }
            tx.dirty.insert(id);
        }
        if report != SeedReport::default() {
            let outcome = format!(
                "added {} stations, {} compartments",
                report.stations_added, report.compartments_added
            );
            self.log(
                tx,
                Draft::new(Actor::system(), "seed", "deployment", &outcome),
            )?;
        }
        Ok(report)
    }

    /// Moves a station to `change.to` if its status is one of `change.from`, with an access-log
    /// entry; `false` when the station is unknown or in another status.
    pub(super) fn station_status(
        &mut self,
        tx: &mut Tx<'_>,
        change: StatusChange,
    ) -> Result<bool, StoreError> {
        let Some(station) = self.index.stations.get_mut(&change.station) else {
            return Ok(false);
        };
        if !change.from.contains(&station.record.status) || station.record.status == change.to {
            return Ok(false);
        }
        let from = station.record.status;
        station.record.status = change.to;
        STATIONS_V1.put(&mut tx.stations, change.station.as_str(), &station.record)?;
        tx.dirty.insert(change.station.clone());
        let outcome = format!(
            "{} -> {}: {}",
            from.as_str(),
            change.to.as_str(),
            change.reason
        );
        self.log(
            tx,
            Draft::new(
                change.actor,
                "station_status",
                change.station.as_str(),
                &outcome,
            ),
        )?;
        Ok(true)
    }
}
