//! A node heard from a device: when, and the firmware it reported after its latest boot. The
//! node records this when the firmware changed and now and then otherwise, not per heartbeat.

use crate::access_log::Draft;
use crate::tables::DEVICES_V1;
use crate::writer::{Tx, Writer};
use crate::{Store, StoreError};
use lockergrid_model::{Actor, DeviceRecord};
use lockergrid_protocol::StationId;

impl Store {
    /// Records that `station`'s device reported `firmware` now; `None` when it is not in the
    /// registry.
    pub async fn device_seen(
        &self,
        station: StationId,
        firmware: String,
        actor: Actor,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        self.write(move |w, tx| w.device_seen(tx, &station, firmware, actor))
            .await
    }
}

impl Writer {
    pub(crate) fn device_seen(
        &mut self,
        tx: &mut Tx<'_>,
        station: &StationId,
        firmware: String,
        actor: Actor,
    ) -> Result<Option<DeviceRecord>, StoreError> {
        let Some(mut device) = DEVICES_V1.get(&tx.devices, station.as_str())? else {
            return Ok(None);
        };
        device.last_seen = Some(tx.now);
        if device.firmware.as_deref() != Some(firmware.as_str()) {
            let outcome = format!(
                "{} -> {firmware}",
                device.firmware.as_deref().unwrap_or("unknown")
            );
            self.log(
                tx,
                Draft::new(actor, "firmware_reported", station.as_str(), &outcome),
            )?;
            device.firmware = Some(firmware);
        }
        DEVICES_V1.put(&mut tx.devices, station.as_str(), &device)?;
        Ok(Some(device))
    }
}
