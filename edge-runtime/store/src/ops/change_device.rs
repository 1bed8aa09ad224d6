//! An operator moves a device through its lifecycle: suspend, resume, decommission.

use crate::access_log::Draft;
use crate::devices::DeviceOrder;
use crate::tables::DEVICES_V1;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, Store, conflict};
use lockergrid_model::{DeviceChange, DeviceRecord};

impl Store {
    /// Applies `order` to its device's lifecycle, with an access-log entry.
    pub async fn change_device(&self, order: DeviceOrder) -> Result<DeviceRecord, ChangeError> {
        self.write(move |w, tx| w.change_device(tx, order)).await
    }
}

impl Writer {
    pub(crate) fn change_device(
        &mut self,
        tx: &mut Tx<'_>,
        order: DeviceOrder,
    ) -> Result<DeviceRecord, ChangeError> {
        let mut device = DEVICES_V1
            .get(&tx.devices, order.id.as_str())?
            .ok_or_else(|| ChangeError::NotFound {
                kind: "device",
                id: order.id.to_string(),
            })?;
        device.status = device
            .status
            .apply(order.change)
            .map_err(|e| conflict("device", order.id.as_str(), e.from))?;
        if order.change == DeviceChange::Decommissioned {
            device.decommissioned_at = Some(tx.now);
        }
        DEVICES_V1.put(&mut tx.devices, order.id.as_str(), &device)?;
        tx.devices_changed = true;
        let action = match order.change {
            DeviceChange::Accepted => "device_accepted",
            DeviceChange::Suspended => "device_suspend",
            DeviceChange::Resumed => "device_resume",
            DeviceChange::Reprovisioned => "device_provision",
            DeviceChange::Decommissioned => "device_decommission",
        };
        self.log(
            tx,
            Draft::new(order.actor, action, order.id.as_str(), &order.reason),
        )?;
        Ok(device)
    }
}
