//! Who may connect to a node's device front (DESIGN.md §9): the lockers its device registry
//! holds as provisioned or active, each with the one certificate it was provisioned with, and
//! whatever else the node admits by configuration (a gateway's edge nodes). The same rule at the
//! gateway and at an edge node, which mirrors the entries of its own stations.

use lockergrid_device_plane::{Admission, Admit, Identity, Kind};
use lockergrid_model::DeviceRecord;
use lockergrid_store::Store;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// The admission entries of `devices`: each that may connect, with its certificate's serial.
pub fn admitted(devices: &[DeviceRecord]) -> Vec<(Identity, Admit)> {
    devices
        .iter()
        .filter(|d| d.may_connect())
        .filter_map(|d| {
            let identity = Identity::new(Kind::Locker, d.id.as_str()).ok()?;
            Some((identity, Admit::Serial(d.serial.clone())))
        })
        .collect()
}

/// Keeps `admission` equal to `store`'s registry plus `fixed` until `stop`: filled at once, then
/// after every commit that changed the registry.
pub async fn follow_registry(
    store: Store,
    admission: Arc<Admission>,
    fixed: Vec<(Identity, Admit)>,
    stop: CancellationToken,
) {
    let mut changed = store.devices_changed();
    loop {
        match store.devices() {
            Ok(devices) => admission.replace(fixed.iter().cloned().chain(admitted(&devices))),
            Err(e) => {
                tracing::error!(error = %e, "device registry unreadable; admission unchanged")
            }
        }
        tokio::select! {
            () = stop.cancelled() => return,
            seen = changed.changed() => if seen.is_err() { return },
        }
    }
}
