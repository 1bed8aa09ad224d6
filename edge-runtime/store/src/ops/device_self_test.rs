//! A locker's self-test, applied once: a provisioned device that passed goes active (its
//! acceptance test); every result is kept on its record and in the access log.

use crate::access_log::Draft;
use crate::devices::{SelfTest, SelfTested};
use crate::tables::{DEVICES_V1, inbox_key};
use crate::writer::{Tx, Writer};
use crate::{Store, StoreError};
use lockergrid_model::DeviceChange;

impl Store {
    /// Records `test` on its device, once.
    pub async fn device_self_test(&self, test: SelfTest) -> Result<SelfTested, StoreError> {
        self.write(move |w, tx| w.device_self_test(tx, test)).await
    }
}

impl Writer {
    pub(crate) fn device_self_test(
        &mut self,
        tx: &mut Tx<'_>,
        test: SelfTest,
    ) -> Result<SelfTested, StoreError> {
        let key = inbox_key(&test.station, &test.event);
        if self.is_applied(tx, &key)? {
            return Ok(SelfTested::Duplicate);
        }
        self.mark_applied(tx, &key)?;
        let passed = test.failures.is_empty();
        let outcome = if passed {
            "passed".to_string()
        } else {
            format!("failed: {}", test.failures.join("; "))
        };
        self.log(
            tx,
            Draft::new(test.actor, "self_test", test.station.as_str(), &outcome),
        )?;
        let Some(mut device) = DEVICES_V1.get(&tx.devices, test.station.as_str())? else {
            return Ok(SelfTested::Unregistered);
        };
        // Only a provisioned device is accepted; an active one just passed its boot's test.
        let activated = match device.status.apply(DeviceChange::Accepted) {
            Ok(active) if passed => {
                device.status = active;
                device.activated_at = Some(tx.now);
                true
            }
            _ => false,
        };
        device.self_test_failures = test.failures;
        device.last_seen = Some(tx.now);
        DEVICES_V1.put(&mut tx.devices, test.station.as_str(), &device)?;
        tx.devices_changed = true;
        if activated {
            let entry = Draft::new(
                crate::devices::registry_actor(),
                "device_accepted",
                test.station.as_str(),
                "acceptance test passed; active",
            );
            self.log(tx, entry)?;
        }
        Ok(SelfTested::Recorded {
            device: Box::new(device),
            activated,
        })
    }
}
