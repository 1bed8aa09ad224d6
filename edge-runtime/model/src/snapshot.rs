//! The availability snapshot: an immutable picture of every station's free and total
//! compartments per size, replaced wholesale after each commit and read without locks.

use crate::StationRecord;
use lockergrid_protocol::{
    CompartmentId, CompartmentState, Size, StationId, Timestamp, UnitVector,
};
use std::sync::Arc;
use std::time::Instant;

/// Free and total compartments of one size at one station.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SizeCount {
    /// Compartments in state `available`.
    pub free: u32,
    /// All compartments of the size, whatever their state.
    pub total: u32,
}

/// One station as of a commit.
#[derive(Debug, Clone, PartialEq)]
pub struct StationView {
    /// The station's record.
    pub record: StationRecord,
    /// Counts per size, indexed by [`Size::index`].
    pub sizes: [SizeCount; 4],
    /// Compartments per size and state, indexed by [`Size::index`] and the order of
    /// [`CompartmentState::ALL`].
    pub states: [[u32; 5]; 4],
    /// The station's location on the unit sphere, for the ranking's radius test and distance.
    pub unit: UnitVector,
    /// The free compartment of each size a hold would take first, indexed by [`Size::index`].
    pub first_free: [Option<CompartmentId>; 4],
}

impl StationView {
    /// A view of `record` with these counts, naming no free compartment.
    pub fn new(record: StationRecord, sizes: [SizeCount; 4], states: [[u32; 5]; 4]) -> StationView {
        StationView {
            unit: record.location.unit(),
            record,
            sizes,
            states,
            first_free: Default::default(),
        }
    }

    /// The free compartment of `size` or larger a hold would take first: the smallest size,
    /// then the lowest id.
    pub fn first_free_fitting(&self, size: Size) -> Option<&CompartmentId> {
        size.and_larger()
            .find_map(|s| self.first_free[s.index()].as_ref())
    }

    /// Free and total of one size.
    pub fn count(&self, size: Size) -> SizeCount {
        self.sizes[size.index()]
    }

    /// Free compartments of `size` or larger: what a parcel of that size could get here.
    pub fn free_fitting(&self, size: Size) -> u32 {
        size.and_larger().map(|s| self.count(s).free).sum()
    }

    /// Share of compartments of `size` or larger that are not free, 0.0 to 1.0.
    pub fn utilisation(&self, size: Size) -> f64 {
        let total: u32 = size.and_larger().map(|s| self.count(s).total).sum();
        if total == 0 {
            return 1.0;
        }
        1.0 - f64::from(self.free_fitting(size)) / f64::from(total)
    }

    /// Compartments of `size` in `state`.
    pub fn in_state(&self, size: Size, state: CompartmentState) -> u32 {
        let col = CompartmentState::ALL
            .iter()
            .position(|s| *s == state)
            .unwrap_or_default();
        self.states[size.index()][col]
    }
}

/// Every station as of one commit.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Number of commits before this snapshot was taken.
    pub commit_seq: u64,
    /// Wall-clock time of the commit.
    pub committed_at: Timestamp,
    /// Monotonic time the snapshot was published, for its age.
    pub published: Instant,
    /// Stations ordered by id.
    pub stations: Arc<[Arc<StationView>]>,
}

impl Snapshot {
    /// An empty snapshot for a store that has not committed yet.
    pub fn empty() -> Snapshot {
        Snapshot {
            commit_seq: 0,
            committed_at: Timestamp::default(),
            published: Instant::now(),
            stations: Arc::from(Vec::new()),
        }
    }

    /// One station by id.
    pub fn station(&self, id: &StationId) -> Option<&Arc<StationView>> {
        self.stations
            .binary_search_by(|v| v.record.id.cmp(id))
            .ok()
            .map(|i| &self.stations[i])
    }
}
