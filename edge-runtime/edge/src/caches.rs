//! The lockers' own code caches: the edge node sends each connected locker its station's key
//! and active codes whenever they differ from what it sent last, so the locker can check codes
//! itself when no node answers.

use super::node::EdgeNode;
use super::offline::UNLOCK_VALID;
use lockergrid_protocol::command::{Action, COMMAND_VERSION, Command};
use lockergrid_protocol::{CompartmentId, LockerId, Size, StationId};
use std::time::Duration;

/// How often the edge node checks whether a connected locker's code cache is out of date.
pub(super) const CACHE_CHECK: Duration = Duration::from_millis(500);
/// The prefix of the ids of the edge node's own cache commands.
const CACHE_COMMAND: &str = "codes-";

impl EdgeNode {
    /// Sends each connected locker its station's active codes and code key whenever they differ
    /// from what it was sent last, so it can check codes itself when no node answers.
    pub(super) async fn refresh_caches(&mut self) {
        let lockers: Vec<LockerId> = self.caches.keys().cloned().collect();
        for locker in lockers {
            let Ok(station) = StationId::new(locker.as_str()) else {
                continue;
            };
            if !self.serves(&locker) {
                continue;
            }
            let (key, codes) = match self.store.locker_codes(&station) {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!(%locker, error = %e, "codes unreadable");
                    continue;
                }
            };
            if self.caches.get(&locker) == Some(&Some(codes.clone())) {
                continue;
            }
            let counter = match self.store.next_counter(station).await {
                Ok(counter) => counter,
                Err(e) => {
                    tracing::error!(%locker, error = %e, "no counter for the code cache");
                    continue;
                }
            };
            let Some(compartment) = self.any_compartment(&locker) else {
                continue;
            };
            let now = self.store.now();
            let command = Command {
                version: COMMAND_VERSION,
                locker: locker.clone(),
                // Ignored for a cache: it concerns the whole locker.
                compartment,
                action: Action::SyncCodes {
                    key,
                    codes: codes.clone(),
                },
                id: format!("{CACHE_COMMAND}{counter}"),
                counter,
                issued_at: now,
                expires_at: now.plus(UNLOCK_VALID),
            }
            .sign(&self.key);
            self.tell_locker(&locker, Some(command), Vec::new());
            self.caches.insert(locker, Some(codes));
        }
    }

    /// The first compartment of `locker`'s station (compartments are numbered from 1 per size),
    /// to name in a command about the whole locker; from the availability snapshot, no read.
    fn any_compartment(&self, locker: &LockerId) -> Option<CompartmentId> {
        let snapshot = self.store.snapshot();
        let view = snapshot
            .stations
            .iter()
            .find(|s| s.record.id.as_str() == locker.as_str())?;
        let size = Size::ALL
            .into_iter()
            .find(|size| view.sizes[size.index()].total > 0)?;
        CompartmentId::numbered(locker.as_str(), size, 1).ok()
    }
}
