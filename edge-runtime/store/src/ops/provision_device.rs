//! A device enters the registry as provisioned, with the certificate it may connect with. A
//! station's device provisioned again (a replaced controller, a renewed certificate) keeps its
//! history and runs its acceptance test again; one that was decommissioned is replaced.

use crate::access_log::Draft;
use crate::devices::Provision;
use crate::tables::DEVICES_V1;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, Store, conflict};
use lockergrid_model::{DeviceChange, DeviceRecord, DeviceStatus};
use lockergrid_protocol::LockerId;

impl Store {
    /// Records `provision` as the station's device, provisioned.
    pub async fn provision_device(
        &self,
        provision: Provision,
    ) -> Result<DeviceRecord, ChangeError> {
        self.write(move |w, tx| w.provision_device(tx, provision))
            .await
    }
}

impl Writer {
    pub(crate) fn provision_device(
        &mut self,
        tx: &mut Tx<'_>,
        provision: Provision,
    ) -> Result<DeviceRecord, ChangeError> {
        if !self.index.stations.contains_key(&provision.station) {
            return Err(ChangeError::NotFound {
                kind: "station",
                id: provision.station.to_string(),
            });
        }
        let id = LockerId::new(provision.station.as_str()).map_err(|e| ChangeError::NotFound {
            kind: "station",
            id: e.to_string(),
        })?;
        let before = DEVICES_V1.get(&tx.devices, id.as_str())?;
        let status = match &before {
            Some(old) if old.status != DeviceStatus::Decommissioned => old
                .status
                .apply(DeviceChange::Reprovisioned)
                .map_err(|e| conflict("device", id.as_str(), e.from))?,
            _ if provision.already_active => DeviceStatus::Active,
            _ => DeviceStatus::Provisioned,
        };
        let device = DeviceRecord {
            id: id.clone(),
            station: provision.station,
            serial: provision.serial.to_ascii_lowercase(),
            fingerprint: provision.fingerprint.map(|f| f.to_ascii_lowercase()),
            model: provision.model,
            firmware: before.as_ref().and_then(|b| b.firmware.clone()),
            status,
            provisioned_at: tx.now,
            activated_at: provision.already_active.then_some(tx.now),
            decommissioned_at: None,
            last_seen: None,
            self_test_failures: Vec::new(),
        };
        DEVICES_V1.put(&mut tx.devices, id.as_str(), &device)?;
        tx.devices_changed = true;
        let outcome = format!(
            "serial {} model {:?}{}",
            device.serial,
            device.model,
            before.map_or("", |_| ", replacing the previous certificate")
        );
        self.log(
            tx,
            Draft::new(provision.actor, "device_provision", id.as_str(), &outcome),
        )?;
        Ok(device)
    }
}
