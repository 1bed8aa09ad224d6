//! What the device task tells the device registry and the operators about devices as it hears
//! them: the firmware each reported after its latest boot and when it was last heard (recorded
//! when the firmware changes and at most once a [`SEEN_EVERY`] otherwise, never per heartbeat),
//! and two devices that keep taking one identity's session from each other.

use super::Devices;
use lockergrid_device_plane::Identity;
use lockergrid_node::locker_actor;
use lockergrid_protocol::StationId;
use lockergrid_store::Store;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// How often a device's "last seen" is recorded in the registry while it stays in touch.
pub const SEEN_EVERY: Duration = Duration::from_secs(60);
/// Takeovers of one identity within [`CLASH_WINDOW`] that mean two devices share it: one is a
/// reconnect, three in a minute is a copied certificate (or a controller in a reboot loop).
const CLASH_TAKEOVERS: usize = 3;
const CLASH_WINDOW: Duration = Duration::from_secs(60);

/// The device task's registry bookkeeping.
#[derive(Default)]
pub(super) struct RegistryWatch {
    recorded: HashMap<StationId, (String, Instant)>,
    takeovers: HashMap<Identity, VecDeque<Instant>>,
}

impl RegistryWatch {
    /// `station`'s locker reported `firmware` in a heartbeat: recorded when it changed or when
    /// the last record is older than [`SEEN_EVERY`].
    pub(super) async fn heartbeat(&mut self, store: &Store, station: &StationId, firmware: &str) {
        let fresh = self
            .recorded
            .get(station)
            .is_some_and(|(f, at)| f == firmware && at.elapsed() < SEEN_EVERY);
        if fresh {
            return;
        }
        let actor = locker_actor(station.as_str());
        match store
            .device_seen(station.clone(), firmware.to_owned(), actor)
            .await
        {
            Ok(_) => {
                self.recorded
                    .insert(station.clone(), (firmware.to_owned(), Instant::now()));
            }
            Err(e) => tracing::error!(%station, error = %e, "device not recorded as seen"),
        }
    }

    /// A session of `identity` was taken over: an alert once they come too often.
    pub(super) fn takeover(&mut self, identity: &Identity, devices: &Devices, store: &Store) {
        let now = Instant::now();
        let seen = self.takeovers.entry(identity.clone()).or_default();
        seen.push_back(now);
        while seen.front().is_some_and(|t| now - *t > CLASH_WINDOW) {
            seen.pop_front();
        }
        if seen.len() < CLASH_TAKEOVERS {
            return;
        }
        seen.clear();
        let Ok(station) = StationId::new(identity.id.as_str()) else {
            return;
        };
        let detail = format!(
            "{CLASH_TAKEOVERS} connections took {identity}'s session from each other within {CLASH_WINDOW:?}: two devices may hold one certificate; suspend it and provision the real one again"
        );
        devices.alert(&station, store.now(), "identity-clash", detail);
    }
}
