//! A station's status changed (online, offline, out of service), with its reason on record.

use crate::access_log::Draft;
use crate::tables::STATIONS_V1;
use crate::writer::{Tx, Writer};
use crate::{StatusChange, Store, StoreError};

impl Store {
    /// Changes a station's status if it is in one of `change.from`; `true` if it changed.
    pub async fn set_station_status(&self, change: StatusChange) -> Result<bool, StoreError> {
        self.write(move |w, tx| w.station_status(tx, change)).await
    }
}

impl Writer {
    /// Moves a station to `change.to` if its status is one of `change.from`, with an access-log
    /// entry; `false` when the station is unknown or in another status.
    pub(crate) fn station_status(
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
