//! The gateway's side of one edge node's sync: the records the node should hold, numbered
//! deltas between their versions, and what a node at a given version needs to catch up.

use super::{SyncBatch, SyncItem, SyncPosition};
use std::collections::{BTreeMap, VecDeque};

/// How many deltas are kept for nodes that fell behind; further behind, a node gets a full
/// resync.
pub const KEPT_DELTAS: usize = 64;

/// One edge node's records and their history.
#[derive(Debug)]
pub struct SyncLog {
    epoch: String,
    version: u64,
    records: BTreeMap<String, SyncItem>,
    deltas: VecDeque<SyncBatch>,
    kept: usize,
}

impl SyncLog {
    /// An empty log in `epoch`, keeping up to `kept` deltas.
    pub fn new(epoch: String, kept: usize) -> SyncLog {
        SyncLog {
            epoch,
            version: 0,
            records: BTreeMap::new(),
            deltas: VecDeque::new(),
            kept,
        }
    }

    /// The newest version.
    pub fn position(&self) -> SyncPosition {
        SyncPosition {
            epoch: self.epoch.clone(),
            version: self.version,
        }
    }

    /// Moves the log to `current` (every record the node should now hold) and returns the delta,
    /// or `None` when nothing changed.
    pub fn advance(&mut self, current: Vec<SyncItem>) -> Option<&SyncBatch> {
        let current: BTreeMap<String, SyncItem> =
            current.into_iter().map(|item| (item.key(), item)).collect();
        let mut items: Vec<SyncItem> = current
            .iter()
            .filter(|(key, item)| self.records.get(*key) != Some(item))
            .map(|(_, item)| item.clone())
            .collect();
        items.extend(
            self.records
                .keys()
                .filter(|key| !current.contains_key(*key))
                .map(|key| SyncItem::Removed { key: key.clone() }),
        );
        if items.is_empty() {
            return None;
        }
        self.records = current;
        self.version += 1;
        self.deltas.push_back(SyncBatch {
            epoch: self.epoch.clone(),
            base: self.version - 1,
            version: self.version,
            full: false,
            items,
        });
        while self.deltas.len() > self.kept {
            self.deltas.pop_front();
        }
        self.deltas.back()
    }

    /// What a node at `at` needs: nothing when it is current, the kept deltas after its version,
    /// or the whole set when it is further behind or in another epoch.
    pub fn catch_up(&self, at: Option<&SyncPosition>) -> Vec<SyncBatch> {
        let at_version = at.filter(|p| p.epoch == self.epoch).map(|p| p.version);
        if at_version == Some(self.version) {
            return Vec::new();
        }
        let oldest_base = self.deltas.front().map_or(self.version, |d| d.base);
        match at_version {
            Some(v) if v >= oldest_base && v < self.version => self
                .deltas
                .iter()
                .filter(|d| d.base >= v)
                .cloned()
                .collect(),
            _ => vec![self.full()],
        }
    }

    /// The whole set at the newest version.
    pub fn full(&self) -> SyncBatch {
        SyncBatch {
            epoch: self.epoch.clone(),
            base: 0,
            version: self.version,
            full: true,
            items: self.records.values().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CodeRecord;
    use lockergrid_protocol::{ParcelId, StationId, Timestamp};

    fn code(hash: &str, expires: u64) -> SyncItem {
        SyncItem::Code {
            hash: hash.into(),
            code: CodeRecord {
                parcel_id: ParcelId::new("p-1").unwrap(),
                station_id: StationId::new("st-a").unwrap(),
                expires_at: Timestamp(expires),
            },
        }
    }

    fn at(epoch: &str, version: u64) -> SyncPosition {
        SyncPosition {
            epoch: epoch.into(),
            version,
        }
    }

    #[test]
    fn deltas_carry_changes_and_removals_and_nothing_else() {
        let mut log = SyncLog::new("e1".into(), 8);
        let a = code("aa", 1);
        let b = code("bb", 1);
        let delta = log.advance(vec![a.clone(), b.clone()]).unwrap();
        assert_eq!((delta.base, delta.version), (0, 1));
        assert_eq!(delta.items.len(), 2);
        assert!(log.advance(vec![a.clone(), b.clone()]).is_none());
        let delta = log.advance(vec![b.clone()]).unwrap();
        assert_eq!(
            delta.items,
            vec![SyncItem::Removed {
                key: "code/aa".into()
            }]
        );
        assert_eq!(log.position(), at("e1", 2));
        assert_eq!(log.full().items, vec![b]);
    }

    #[test]
    fn a_node_behind_gets_the_kept_deltas_then_a_full_resync() {
        let mut log = SyncLog::new("e1".into(), 3);
        for n in 0..5 {
            log.advance(vec![code(&format!("{n}"), 1)]);
        }
        assert!(log.catch_up(Some(&at("e1", 5))).is_empty());
        let deltas = log.catch_up(Some(&at("e1", 3)));
        assert_eq!(
            deltas.iter().map(|d| d.version).collect::<Vec<_>>(),
            vec![4, 5]
        );
        assert!(!deltas.iter().any(|d| d.full));
        let kept_from = log.catch_up(Some(&at("e1", 2)));
        assert_eq!(kept_from.len(), 3);
        for behind in [
            Some(at("e1", 1)),
            Some(at("e0", 5)),
            Some(at("e1", 9)),
            None,
        ] {
            let batches = log.catch_up(behind.as_ref());
            assert_eq!(batches.len(), 1, "{behind:?}");
            assert!(batches[0].full);
            assert_eq!(batches[0].version, 5);
            assert_eq!(batches[0].items, vec![code("4", 1)]);
        }
    }
}
