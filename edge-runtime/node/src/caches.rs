//! The lockers' own code caches, the third offline level (DESIGN.md §7): a node sends each
//! locker connected to it its station's code key, active codes, wrong-code count and lock-down
//! whenever they differ from what it sent last, so the locker can check codes itself when no node answers. The gateway does it
//! for the lockers wired to it, an edge node for its own.

use crate::CodeCache;
use lockergrid_device_plane::{Audit, Kind};
use lockergrid_protocol::command::{CachedCode, CommandKey, SignedCommand};
use lockergrid_protocol::{CompartmentId, LockerId, Lockout, Size, StationId};
use lockergrid_store::Store;
use std::collections::BTreeMap;
use std::time::Duration;

/// How often a node checks whether a connected locker's code cache is out of date.
pub const CACHE_CHECK: Duration = Duration::from_millis(500);

/// What a connected locker holds: the codes it was last sent, and the commit of the store they
/// were current at.
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    codes: Vec<CachedCode>,
    lockout: Lockout,
    locked_down: bool,
    as_of: u64,
}

/// The lockers connected to a node, each with its live sessions (a reconnect may open the new
/// one before the old one is closed) and the cache it was last sent (`None`: nothing yet on its
/// newest session).
#[derive(Debug, Default)]
pub struct CodeCaches(BTreeMap<LockerId, (u32, Option<Sent>)>);

impl CodeCaches {
    /// Follows the device front: a locker that connects gets its whole cache again, one that
    /// leaves is forgotten.
    pub fn heard(&mut self, audit: &Audit) {
        let Some((identity, connected)) = crate::session_change(audit) else {
            return;
        };
        if identity.kind != Kind::Locker {
            return;
        }
        let Ok(locker) = LockerId::new(identity.id.as_str()) else {
            return;
        };
        if connected {
            let entry = self.0.entry(locker).or_default();
            *entry = (entry.0 + 1, None);
        } else if let Some(entry) = self.0.get_mut(&locker) {
            entry.0 = entry.0.saturating_sub(1);
            if entry.0 == 0 {
                self.0.remove(&locker);
            }
        }
    }

    /// The `sync_codes` command, signed with `key`, for each connected locker `may_send` lets
    /// through whose station's codes changed since it was last sent them; each is recorded as
    /// sent. A locker the store cannot serve now is tried again at the next check. Codes change
    /// only in a commit, so a locker brought up to date as of the latest commit costs no read.
    pub async fn due(
        &mut self,
        store: &Store,
        key: &CommandKey,
        mut may_send: impl FnMut(&LockerId) -> bool,
    ) -> Vec<(LockerId, SignedCommand)> {
        let mut due = Vec::new();
        let as_of = store.snapshot().commit_seq;
        for (locker, (_, sent)) in &mut self.0 {
            if sent.as_ref().is_some_and(|s| s.as_of == as_of) {
                continue;
            }
            let Ok(station) = StationId::new(locker.as_str()) else {
                continue;
            };
            if !may_send(locker) {
                continue;
            }
            let read = store
                .locker_codes(&station)
                .and_then(|(key, codes)| Ok((key, codes, store.lockout(&station)?)));
            let (code_key, codes, lockout) = match read {
                Ok(found) => found,
                Err(e) => {
                    tracing::error!(%locker, error = %e, "codes unreadable");
                    continue;
                }
            };
            let locked_down = locked_down(store, &station);
            if let Some(sent) = sent.as_mut().filter(|s| {
                s.codes == codes && s.lockout == lockout && s.locked_down == locked_down
            }) {
                sent.as_of = as_of;
                continue;
            }
            let Some(compartment) = any_compartment(store, &station) else {
                continue;
            };
            let counter = match store.cache_counter(station).await {
                Ok(Some(counter)) => counter,
                // A command is on its way to the locker: the update follows once it is answered.
                Ok(None) => continue,
                Err(e) => {
                    tracing::error!(%locker, error = %e, "no counter for the code cache");
                    continue;
                }
            };
            let cache = CodeCache {
                locker: locker.clone(),
                compartment,
                key: code_key,
                codes: codes.clone(),
                lockout,
                locked_down,
                counter,
            };
            due.push((locker.clone(), cache.sign(key, store.now())));
            *sent = Some(Sent {
                codes,
                lockout,
                locked_down,
                as_of,
            });
        }
        due
    }
}

/// Whether `station` is locked down with no technician's override in force: its locker opens
/// nothing from its cache either.
fn locked_down(store: &Store, station: &StationId) -> bool {
    store.snapshot().station(station).is_some_and(|view| {
        view.record.lockdown.is_some() && view.record.lockdown_override_at(store.now()).is_none()
    })
}

/// The first compartment of `station` (compartments are numbered from 1 per size), to name in a
/// command about the whole locker; from the availability snapshot, no read.
fn any_compartment(store: &Store, station: &StationId) -> Option<CompartmentId> {
    let snapshot = store.snapshot();
    let view = snapshot.station(station)?;
    let size = Size::ALL
        .into_iter()
        .find(|size| view.sizes[size.index()].total > 0)?;
    CompartmentId::numbered(station.as_str(), size, 1).ok()
}
