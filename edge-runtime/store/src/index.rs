//! The writer's in-memory index of the store: free compartments per station and size, counts per
//! state, and the deadlines the expiry sweep walks. It mirrors the committed tables exactly; when a
//! batch fails to commit it is rebuilt from them.

use super::StoreError;
use super::tables::{
    ACCESS_LOG_V1, COMPARTMENTS_V1, IDEMPOTENCY_V1, OUTBOX_V1, PARCELS_V1, RESERVATIONS_V1,
    RETURNS_V1, STATIONS_V1,
};
use lockergrid_model::{CompartmentRecord, ReservationStatus, ReturnStatus, StationRecord};
use lockergrid_model::{SizeCount, StationView};
use lockergrid_protocol::{
    CompartmentId, CompartmentState, ParcelId, ReservationId, ReturnId, Size, StationCodeKey,
    StationId, Timestamp,
};
use redb::{ReadTransaction, ReadableDatabase};
use std::collections::{BTreeMap, BTreeSet};

/// One station's share of the index.
#[derive(Debug, Clone)]
pub(super) struct StationIndex {
    pub record: StationRecord,
    /// Free compartments per size, indexed by [`Size::index`].
    pub free: [BTreeSet<CompartmentId>; 4],
    /// Compartments per size and state.
    pub states: [[u32; 5]; 4],
}

impl StationIndex {
    pub fn new(record: StationRecord) -> StationIndex {
        StationIndex {
            record,
            free: Default::default(),
            states: [[0; 5]; 4],
        }
    }

    /// Counts a compartment in, or moves it from one state to another.
    pub fn track(&mut self, c: &CompartmentRecord, from: Option<CompartmentState>) {
        let row = &mut self.states[c.size.index()];
        if let Some(from) = from {
            row[state_col(from)] -= 1;
            if from == CompartmentState::Available {
                self.free[c.size.index()].remove(&c.id);
            }
        }
        row[state_col(c.state)] += 1;
        if c.state == CompartmentState::Available {
            self.free[c.size.index()].insert(c.id.clone());
        }
    }

    /// Counts a compartment out.
    pub fn untrack(&mut self, c: &CompartmentRecord) {
        self.states[c.size.index()][state_col(c.state)] -= 1;
        self.free[c.size.index()].remove(&c.id);
    }

    /// Number of compartments of `size`, whatever their state.
    pub fn total(&self, size: Size) -> u32 {
        self.states[size.index()].iter().sum()
    }

    pub fn view(&self) -> StationView {
        let mut sizes = [SizeCount::default(); 4];
        for size in Size::ALL {
            sizes[size.index()] = SizeCount {
                free: self.states[size.index()][state_col(CompartmentState::Available)],
                total: self.total(size),
            };
        }
        let mut view = StationView::new(self.record.clone(), sizes, self.states);
        view.first_free = std::array::from_fn(|i| self.free[i].first().cloned());
        view
    }
}

fn state_col(state: CompartmentState) -> usize {
    CompartmentState::ALL
        .iter()
        .position(|s| *s == state)
        .unwrap_or_default()
}

/// Head of the access-log hash chain.
#[derive(Debug, Clone, Default)]
pub(super) struct ChainHead {
    pub seq: u64,
    pub hash: String,
}

#[derive(Debug, Default)]
pub(super) struct Index {
    pub stations: BTreeMap<StationId, StationIndex>,
    pub hold_deadlines: BTreeSet<(Timestamp, ReservationId)>,
    pub pickup_deadlines: BTreeSet<(Timestamp, ParcelId)>,
    pub key_deadlines: BTreeSet<(Timestamp, String)>,
    /// Returns whose drop-off opened a compartment, by when its door must have closed.
    pub drop_off_deadlines: BTreeSet<(Timestamp, ReturnId)>,
    /// Returns not dropped off yet, by the end of their drop-off window.
    pub return_deadlines: BTreeSet<(Timestamp, ReturnId)>,
    pub chain: ChainHead,
    /// The last outbox sequence number written.
    pub outbox_seq: u64,
}

impl Index {
    /// Reads the whole index from committed state. The writer creates every table before the
    /// first load, so none is missing here.
    pub fn load(db: &redb::Database) -> Result<Index, StoreError> {
        let rx = db.begin_read()?;
        let mut index = Index::default();
        index.load_stations(&rx)?;
        index.load_deadlines(&rx)?;
        let log = rx.open_table(ACCESS_LOG_V1.def())?;
        if let Some(entry) = ACCESS_LOG_V1.last(&log)? {
            index.chain = ChainHead {
                seq: entry.seq,
                hash: entry.hash,
            };
        }
        let outbox = rx.open_table(OUTBOX_V1.def())?;
        if let Some(entry) = OUTBOX_V1.last(&outbox)? {
            index.outbox_seq = entry.seq;
        }
        Ok(index)
    }

    fn load_stations(&mut self, rx: &ReadTransaction) -> Result<(), StoreError> {
        let stations = rx.open_table(STATIONS_V1.def())?;
        for record in STATIONS_V1.all(&stations)? {
            self.stations
                .insert(record.id.clone(), StationIndex::new(record));
        }
        let compartments = rx.open_table(COMPARTMENTS_V1.def())?;
        for c in COMPARTMENTS_V1.all(&compartments)? {
            let station = self
                .stations
                .get_mut(&c.station)
                .ok_or_else(|| StoreError::Corrupt {
                    table: "compartments_v1",
                    detail: format!(
                        "compartment {:?} names unknown station {:?}",
                        c.id, c.station
                    ),
                })?;
            station.track(&c, None);
        }
        Ok(())
    }

    fn load_deadlines(&mut self, rx: &ReadTransaction) -> Result<(), StoreError> {
        let reservations = rx.open_table(RESERVATIONS_V1.def())?;
        for r in RESERVATIONS_V1.all(&reservations)? {
            if r.status == ReservationStatus::Held {
                self.hold_deadlines.insert((r.hold_until, r.id));
            }
        }
        let parcels = rx.open_table(PARCELS_V1.def())?;
        for p in PARCELS_V1.all(&parcels)? {
            if let Some(deadline) = p.pickup_deadline() {
                self.pickup_deadlines.insert((deadline, p.id));
            }
        }
        let returns = rx.open_table(RETURNS_V1.def())?;
        for r in RETURNS_V1.all(&returns)? {
            if super::station_index::may_drop_off(&r) {
                self.return_deadlines.insert((r.expires_at, r.id.clone()));
            }
            if r.status == ReturnStatus::DroppingOff {
                let opened = r.opened_at.unwrap_or(r.created_at);
                self.drop_off_deadlines
                    .insert((super::returns::door_deadline(opened), r.id));
            }
        }
        let keys = rx.open_table(IDEMPOTENCY_V1.def())?;
        for (key, rec) in IDEMPOTENCY_V1.entries(&keys)? {
            self.key_deadlines.insert((rec.created_at, key));
        }
        Ok(())
    }
}

pub(super) fn station_key(hex: &str) -> Result<StationCodeKey, String> {
    lockergrid_protocol::from_hex::<32>(hex)
        .map(StationCodeKey::from_bytes)
        .ok_or_else(|| "a station key is 32 bytes of hex".to_string())
}
