//! Telemetry kept as a time series: a batch of heartbeats written as raw samples and folded into
//! their minute's and hour's rollups in one transaction; retention removes raw samples after a
//! day, minute rollups after 30 days and hourly ones after a year, on the store's clock.

use crate::tables::{TELEMETRY_HOUR_V1, TELEMETRY_MINUTE_V1, TELEMETRY_RAW_V1, series_key};
use crate::writer::{Tx, Writer};
use crate::{Store, StoreError};
use lockergrid_model::{HOURS_KEPT, MINUTES_KEPT, RAW_KEPT, Rollup, Sample, bucket};
use lockergrid_protocol::{StationId, Timestamp};
use redb::{ReadableDatabase, ReadableTable};
use std::time::Duration;

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3_600);

/// The resolution a series is read at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Every sample (the last day).
    Raw,
    /// One-minute rollups (the last 30 days).
    Minute,
    /// Hourly rollups (the last year).
    Hour,
}

/// A station's telemetry between two times.
#[derive(Debug, Clone, PartialEq)]
pub enum Series {
    /// Raw samples.
    Raw(Vec<Sample>),
    /// Rollups of the step asked for.
    Rollups(Vec<Rollup>),
}

/// How many entries retention removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Expired {
    /// Raw samples.
    pub raw: u64,
    /// Minute rollups.
    pub minutes: u64,
    /// Hourly rollups.
    pub hours: u64,
}

impl Store {
    /// Keeps `samples`, each of its station.
    pub async fn record_telemetry(
        &self,
        samples: Vec<(StationId, Sample)>,
    ) -> Result<(), StoreError> {
        self.write(move |w, tx| w.record_telemetry(tx, samples))
            .await
    }

    /// Removes what is older than each resolution keeps.
    pub async fn expire_telemetry(&self) -> Result<Expired, StoreError> {
        self.write(move |w, tx| w.expire_telemetry(tx)).await
    }

    /// `station`'s telemetry from `from` up to `to` at `step`, oldest first, at most `limit`
    /// entries.
    pub fn telemetry(
        &self,
        station: &StationId,
        (from, to): (Timestamp, Timestamp),
        step: Step,
        limit: usize,
    ) -> Result<Series, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let (low, high) = (series_key(station, from), series_key(station, to));
        match step {
            Step::Raw => {
                let table = rx.open_table(TELEMETRY_RAW_V1.def())?;
                let found = TELEMETRY_RAW_V1.between(&table, &low, &high, limit)?;
                Ok(Series::Raw(found))
            }
            Step::Minute => {
                let table = rx.open_table(TELEMETRY_MINUTE_V1.def())?;
                let found = TELEMETRY_MINUTE_V1.between(&table, &low, &high, limit)?;
                Ok(Series::Rollups(found))
            }
            Step::Hour => {
                let table = rx.open_table(TELEMETRY_HOUR_V1.def())?;
                let found = TELEMETRY_HOUR_V1.between(&table, &low, &high, limit)?;
                Ok(Series::Rollups(found))
            }
        }
    }
}

impl Writer {
    pub(crate) fn record_telemetry(
        &mut self,
        tx: &mut Tx<'_>,
        samples: Vec<(StationId, Sample)>,
    ) -> Result<(), StoreError> {
        for (station, sample) in samples {
            TELEMETRY_RAW_V1.put(
                &mut tx.telemetry_raw,
                series_key(&station, sample.at).as_str(),
                &sample,
            )?;
            for (every, table, typed) in [
                (MINUTE, &mut tx.telemetry_minute, &TELEMETRY_MINUTE_V1),
                (HOUR, &mut tx.telemetry_hour, &TELEMETRY_HOUR_V1),
            ] {
                let start = bucket(sample.at, every);
                let key = series_key(&station, start);
                let rollup = match typed.get(&*table, key.as_str())? {
                    Some(mut rollup) => {
                        rollup.add(&sample);
                        rollup
                    }
                    None => Rollup::first(start, &sample),
                };
                typed.put(table, key.as_str(), &rollup)?;
            }
        }
        Ok(())
    }

    pub(crate) fn expire_telemetry(&mut self, tx: &mut Tx<'_>) -> Result<Expired, StoreError> {
        let before =
            |kept: Duration| Timestamp(tx.now.millis().saturating_sub(kept.as_millis() as u64));
        let (raw, minutes, hours) = (before(RAW_KEPT), before(MINUTES_KEPT), before(HOURS_KEPT));
        let mut expired = Expired::default();
        for station in self.index.stations.keys() {
            let from = series_key(station, Timestamp(0));
            for (cutoff, table, count) in [
                (raw, &mut tx.telemetry_raw, &mut expired.raw),
                (minutes, &mut tx.telemetry_minute, &mut expired.minutes),
                (hours, &mut tx.telemetry_hour, &mut expired.hours),
            ] {
                let to = series_key(station, cutoff);
                let keys: Vec<String> = table
                    .range(from.as_str()..to.as_str())?
                    .map(|item| item.map(|(k, _)| k.value().to_owned()))
                    .collect::<Result<_, _>>()?;
                for key in keys {
                    table.remove(key.as_str())?;
                    *count += 1;
                }
            }
        }
        Ok(expired)
    }
}
