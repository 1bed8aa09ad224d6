//! Seeding the stations and compartments of a deployment the store does not have yet.

use crate::access_log::Draft;
use crate::index::StationIndex;
use crate::tables::{COMPARTMENTS_V1, STATIONS_V1, compartment_key};
use crate::writer::{Tx, Writer};
use crate::{SeedReport, StationSeed, Store, StoreError};
use lockergrid_model::{Actor, CompartmentRecord};
use lockergrid_protocol::{CompartmentId, CompartmentState, Size};

impl Store {
    /// Adds the stations and compartments of a deployment that the store does not have yet.
    pub async fn seed(&self, stations: Vec<StationSeed>) -> Result<SeedReport, StoreError> {
        self.write(move |w, tx| w.seed(tx, stations)).await
    }
}

impl Writer {
    pub(crate) fn seed(
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
                    record.climate_controlled = seed.record.climate_controlled;
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
                    tx.index_compartment(&compartment)?;
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
}
