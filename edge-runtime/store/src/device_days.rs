//! Each station's locker activity by day ([`DeviceDay`]), counted as commands settle and door
//! events are applied: unlocks the latch carried out or failed, their round trips, and doors
//! that opened with no latch released. The maintenance detectors read the last weeks of it.

use crate::tables::{DEVICE_DAYS_V1, device_day_key};
use crate::writer::{Tx, Writer};
use crate::{Store, StoreError};
use lockergrid_model::DeviceDay;
use lockergrid_protocol::StationId;
use redb::ReadableDatabase;

/// The access log's outcome of a door that opened with no latch released before it.
pub const DOOR_OPENED_UNRELEASED: &str = "opened with no latch released";

impl Store {
    /// `station`'s device days from day `from` (days since the Unix epoch) on, oldest first.
    pub fn device_days(
        &self,
        station: &StationId,
        from: i64,
    ) -> Result<Vec<DeviceDay>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(DEVICE_DAYS_V1.def())?;
        let low = device_day_key(station, from.max(0));
        let high = device_day_key(station, i64::from(u32::MAX));
        DEVICE_DAYS_V1.between(&table, &low, &high, 10_000)
    }
}

impl Writer {
    /// Changes `station`'s count for today.
    pub(crate) fn count_day(
        &mut self,
        tx: &mut Tx<'_>,
        station: &StationId,
        change: impl FnOnce(&mut DeviceDay),
    ) -> Result<(), StoreError> {
        let day = DeviceDay::index(tx.now);
        let key = device_day_key(station, day);
        let mut record = DEVICE_DAYS_V1
            .get(&tx.device_days, key.as_str())?
            .unwrap_or(DeviceDay {
                day,
                ..DeviceDay::default()
            });
        change(&mut record);
        DEVICE_DAYS_V1.put(&mut tx.device_days, key.as_str(), &record)
    }
}
