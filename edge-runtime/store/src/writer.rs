//! The writer: the only place that opens a write transaction. It takes a batch of operations
//! from its channel, applies them all in one transaction, commits once (one fsync for the batch),
//! publishes the new snapshot, and only then answers each caller. When a batch fails to commit,
//! every caller in it gets the error and the in-memory index is reloaded from the committed state.

use super::access_log::Draft;
use super::index::Index;
use super::tables::{
    ACCESS_LOG_V1, ALERTS_V1, CODES_V1, COMMANDS_V1, COMPARTMENTS_V1, DEVICE_DAYS_V1, DEVICES_V1,
    EDGE_INBOX_V1, EDGE_OUTBOX_V1, EDGE_PLUGINS_V1, IDEMPOTENCY_V1, INBOX_V1, LATCH_FAULTS_V1,
    LEASES_V1, LOCKERS_V1, LOCKOUTS_V1, OPEN_ALERTS_V1, OUTBOX_DUE_V1, OUTBOX_IDS_V1,
    OUTBOX_PROVIDER_V1, OUTBOX_V1, PARCELS_V1, PENDING_COMMANDS_V1, RESERVATIONS_V1,
    RETURN_CODES_V1, RETURNS_V1, REVOCATIONS_V1, ROLLOUT_TARGETS_V1, ROLLOUTS_V1, STATION_KEYS_V1,
    STATION_RECORDS_V1, STATIONS_V1, SYNC_V1, TELEMETRY_HOUR_V1, TELEMETRY_MINUTE_V1,
    TELEMETRY_RAW_V1,
};
use super::{ChangeError, CommitReport, CompartmentChange, ReserveError, StoreError, StoreMetrics};
use lockergrid_model::Clock;
use lockergrid_model::{Snapshot, StationView};
use lockergrid_protocol::{CodeHash, CodeKey, PickupCode, StationId, Timestamp};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Most operations applied in one transaction; bounds the latency of the batch's last caller.
const MAX_BATCH: usize = 2_048;
/// Group commit under load: callers answered by one commit come back together, and while they
/// do the writer has only the others' operations. Up to this many, a batch stays open for the
/// callers expected back, applying each as it arrives and sleeping (at most [`LINGER`]) only
/// while none is waiting, rather than committing half of them, since each commit's pages and
/// fsync cost the writer about as much as fifty holds (docs/store.md). A larger load already
/// fills its batches.
const LINGER_UP_TO: usize = 256;
/// The longest a batch sleeps, in all, waiting for expected callers.
const LINGER: Duration = Duration::from_micros(200);
/// How often a waiting batch looks for them; sleeping rather than spinning leaves the CPU to the
/// callers it waits for.
const LINGER_STEP: Duration = Duration::from_micros(20);
/// Operations that may wait for the writer before senders are slowed down.
const CHANNEL_DEPTH: usize = 16_384;

type Reply<T> = oneshot::Sender<T>;

/// An error an operation may end in; storage failures abort the whole batch.
pub(super) trait OpError: From<StoreError> + Send + 'static {
    fn storage(&self) -> Option<&StoreError>;
}

impl OpError for StoreError {
    fn storage(&self) -> Option<&StoreError> {
        Some(self)
    }
}

impl OpError for ReserveError {
    fn storage(&self) -> Option<&StoreError> {
        match self {
            ReserveError::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl OpError for ChangeError {
    fn storage(&self) -> Option<&StoreError> {
        match self {
            ChangeError::Store(e) => Some(e),
            _ => None,
        }
    }
}

/// An answer held back until the batch's commit succeeds or fails.
type Pending = Box<dyn FnOnce(Option<&StoreError>) + Send>;

fn hold_back<T: Send + 'static, E: OpError>(
    reply: Reply<Result<T, E>>,
    result: Result<T, E>,
) -> Pending {
    Box::new(move |failed| {
        let answer = match failed {
            None => result,
            Some(e) => Err(E::from(e.clone())),
        };
        // The caller may have gone away (timeout, disconnect); its answer is then moot.
        let _ = reply.send(answer);
    })
}

fn fail_now<T, E: OpError>(reply: Reply<Result<T, E>>, e: &StoreError) {
    let _ = reply.send(Err(E::from(e.clone())));
}

/// One writer operation with its caller's reply: applied in the batch's transaction, its answer
/// held back until the commit, or failed unapplied when the batch fails before it. An operation
/// is a closure over the writer and the transaction (`Store::write`), so adding one touches
/// nothing here.
pub(super) trait Job: Send {
    /// Applies the operation; a storage error aborts the batch.
    fn run(
        self: Box<Self>,
        writer: &mut Writer,
        tx: &mut Tx<'_>,
        pending: &mut Vec<Pending>,
    ) -> Result<(), StoreError>;

    /// Answers the caller with the batch's storage error, unapplied.
    fn fail(self: Box<Self>, e: &StoreError);
}

/// An operation and the channel its answer goes back on.
pub(super) struct Call<F, T, E> {
    pub op: F,
    pub reply: Reply<Result<T, E>>,
}

impl<F, T, E> Job for Call<F, T, E>
where
    F: FnOnce(&mut Writer, &mut Tx<'_>) -> Result<T, E> + Send,
    T: Send + 'static,
    E: OpError,
{
    fn run(
        self: Box<Self>,
        writer: &mut Writer,
        tx: &mut Tx<'_>,
        pending: &mut Vec<Pending>,
    ) -> Result<(), StoreError> {
        let Call { op, reply } = *self;
        let result = op(writer, tx);
        if let Err(e) = &result
            && let Some(storage) = e.storage()
        {
            let storage = storage.clone();
            fail_now(reply, &storage);
            return Err(storage);
        }
        pending.push(hold_back(reply, result));
        Ok(())
    }

    fn fail(self: Box<Self>, e: &StoreError) {
        fail_now(self.reply, e);
    }
}

/// The tables of one write transaction, opened once per batch.
pub(super) struct Tx<'t> {
    pub stations: redb::Table<'t, &'static str, &'static [u8]>,
    pub compartments: redb::Table<'t, &'static str, &'static [u8]>,
    pub reservations: redb::Table<'t, &'static str, &'static [u8]>,
    pub parcels: redb::Table<'t, &'static str, &'static [u8]>,
    pub codes: redb::Table<'t, &'static str, &'static [u8]>,
    pub keys: redb::Table<'t, &'static str, &'static [u8]>,
    pub log: redb::Table<'t, u64, &'static [u8]>,
    pub outbox: redb::Table<'t, u64, &'static [u8]>,
    pub outbox_ids: redb::Table<'t, &'static str, &'static [u8]>,
    pub outbox_due: redb::Table<'t, &'static str, &'static [u8]>,
    pub outbox_provider: redb::Table<'t, &'static str, &'static [u8]>,
    pub commands: redb::Table<'t, &'static str, &'static [u8]>,
    pub pending_commands: redb::Table<'t, &'static str, &'static [u8]>,
    pub inbox: redb::Table<'t, &'static str, &'static [u8]>,
    pub lockers: redb::Table<'t, &'static str, &'static [u8]>,
    pub lockouts: redb::Table<'t, &'static str, &'static [u8]>,
    pub sync: redb::Table<'t, &'static str, &'static [u8]>,
    pub edge_outbox: redb::Table<'t, u64, &'static [u8]>,
    pub edge_inbox: redb::Table<'t, &'static str, &'static [u8]>,
    pub edge_plugins: redb::Table<'t, &'static str, &'static [u8]>,
    pub returns: redb::Table<'t, &'static str, &'static [u8]>,
    pub station_records: redb::Table<'t, &'static str, &'static [u8]>,
    pub leases: redb::Table<'t, &'static str, &'static [u8]>,
    pub return_codes: redb::Table<'t, &'static str, &'static [u8]>,
    pub revocations: redb::Table<'t, &'static str, &'static [u8]>,
    pub devices: redb::Table<'t, &'static str, &'static [u8]>,
    pub latch_faults: redb::Table<'t, &'static str, &'static [u8]>,
    pub alerts: redb::Table<'t, &'static str, &'static [u8]>,
    pub open_alerts: redb::Table<'t, &'static str, &'static [u8]>,
    pub telemetry_raw: redb::Table<'t, &'static str, &'static [u8]>,
    pub telemetry_minute: redb::Table<'t, &'static str, &'static [u8]>,
    pub telemetry_hour: redb::Table<'t, &'static str, &'static [u8]>,
    pub rollouts: redb::Table<'t, &'static str, &'static [u8]>,
    pub device_days: redb::Table<'t, &'static str, &'static [u8]>,
    pub rollout_targets: redb::Table<'t, &'static str, &'static [u8]>,
    /// Set by an operation that changed the device registry.
    pub devices_changed: bool,
    pub now: Timestamp,
    pub changes: Vec<CompartmentChange>,
    pub dirty: BTreeSet<StationId>,
}

impl<'t> Tx<'t> {
    fn open(txn: &'t redb::WriteTransaction, now: Timestamp) -> Result<Tx<'t>, StoreError> {
        Ok(Tx {
            stations: txn.open_table(STATIONS_V1.def())?,
            compartments: txn.open_table(COMPARTMENTS_V1.def())?,
            reservations: txn.open_table(RESERVATIONS_V1.def())?,
            parcels: txn.open_table(PARCELS_V1.def())?,
            codes: txn.open_table(CODES_V1.def())?,
            keys: txn.open_table(IDEMPOTENCY_V1.def())?,
            log: txn.open_table(ACCESS_LOG_V1.def())?,
            outbox: txn.open_table(OUTBOX_V1.def())?,
            outbox_ids: txn.open_table(OUTBOX_IDS_V1.def())?,
            outbox_due: txn.open_table(OUTBOX_DUE_V1.def())?,
            outbox_provider: txn.open_table(OUTBOX_PROVIDER_V1.def())?,
            commands: txn.open_table(COMMANDS_V1.def())?,
            pending_commands: txn.open_table(PENDING_COMMANDS_V1.def())?,
            inbox: txn.open_table(INBOX_V1.def())?,
            lockers: txn.open_table(LOCKERS_V1.def())?,
            lockouts: txn.open_table(LOCKOUTS_V1.def())?,
            sync: txn.open_table(SYNC_V1.def())?,
            edge_outbox: txn.open_table(EDGE_OUTBOX_V1.def())?,
            edge_inbox: txn.open_table(EDGE_INBOX_V1.def())?,
            edge_plugins: txn.open_table(EDGE_PLUGINS_V1.def())?,
            returns: txn.open_table(RETURNS_V1.def())?,
            station_records: txn.open_table(STATION_RECORDS_V1.def())?,
            leases: txn.open_table(LEASES_V1.def())?,
            return_codes: txn.open_table(RETURN_CODES_V1.def())?,
            revocations: txn.open_table(REVOCATIONS_V1.def())?,
            devices: txn.open_table(DEVICES_V1.def())?,
            latch_faults: txn.open_table(LATCH_FAULTS_V1.def())?,
            alerts: txn.open_table(ALERTS_V1.def())?,
            open_alerts: txn.open_table(OPEN_ALERTS_V1.def())?,
            telemetry_raw: txn.open_table(TELEMETRY_RAW_V1.def())?,
            telemetry_minute: txn.open_table(TELEMETRY_MINUTE_V1.def())?,
            telemetry_hour: txn.open_table(TELEMETRY_HOUR_V1.def())?,
            rollouts: txn.open_table(ROLLOUTS_V1.def())?,
            device_days: txn.open_table(DEVICE_DAYS_V1.def())?,
            rollout_targets: txn.open_table(ROLLOUT_TARGETS_V1.def())?,
            devices_changed: false,
            now,
            changes: Vec::new(),
            dirty: BTreeSet::new(),
        })
    }
}

/// The writer thread's state.
pub(super) struct Writer {
    db: Arc<redb::Database>,
    pub(super) index: Index,
    code_key: CodeKey,
    /// On an edge node: the code keys of the stations it serves, which its codes are hashed
    /// with; elsewhere empty and every station's key derives from `code_key`.
    pub(super) station_keys: Arc<super::station_keys::StationKeys>,
    /// Seals the codes that notifications carry; without one a notification carries none.
    pub(super) sealer: Option<Arc<dyn super::Sealer>>,
    /// The merchants with an integration endpoint: they hear about their parcels and returns.
    pub(super) integrators: BTreeSet<String>,
    /// Woken after a commit that appended to the outbox, so the sender need not wait for its tick.
    outbox_grew: Arc<tokio::sync::Notify>,
    /// Bumped after a commit that changed the device registry, so the device front re-reads it.
    devices_changed: Arc<tokio::sync::watch::Sender<u64>>,
    /// An edge node's store: the pickups it completes and the codes it refuses are also written
    /// to its decision outbox for the gateway.
    pub(super) edge: bool,
    clock: Arc<dyn Clock>,
    snapshot: Arc<arc_swap::ArcSwap<Snapshot>>,
    views: BTreeMap<StationId, Arc<StationView>>,
    metrics: StoreMetrics,
    observer: Option<mpsc::UnboundedSender<Arc<CommitReport>>>,
    commit_seq: u64,
}

/// Owns the writer thread; dropping it waits for the thread to finish its batch and exit. The
/// thread exits once every command sender is gone.
pub(super) struct WriterGuard(Option<JoinHandle<()>>);

impl Drop for WriterGuard {
    fn drop(&mut self) {
        if let Some(handle) = self.0.take()
            && handle.join().is_err()
        {
            tracing::error!("store writer thread panicked");
        }
    }
}

/// A store written before station keys had a file of their own kept them in a table beside the
/// code hashes: they move to the key file, and the table is emptied in the same transaction.
fn move_station_keys_out(
    txn: &redb::WriteTransaction,
    keys: &super::station_keys::StationKeys,
) -> Result<(), StoreError> {
    let mut table = txn.open_table(STATION_KEYS_V1.def())?;
    let legacy = STATION_KEYS_V1.entries(&table)?;
    if legacy.is_empty() {
        return Ok(());
    }
    keys.change(|held| {
        for (station, hex) in &legacy {
            let station = StationId::new(station).map_err(|e| StoreError::Corrupt {
                table: "station_keys_v1",
                detail: e.to_string(),
            })?;
            let key = super::station_keys::parse_key(hex)?;
            held.insert(station, (hex.clone(), key));
        }
        Ok(())
    })?;
    table.retain(|_, _| false)?;
    Ok(())
}

/// What the writer hashes and seals codes with, the merchants it tells about changes, and whom
/// it wakes when the outbox grows.
pub(super) struct Parts {
    pub code: CodeKey,
    pub stations: Arc<super::station_keys::StationKeys>,
    pub sealer: Option<Arc<dyn super::Sealer>>,
    pub integrators: BTreeSet<String>,
    pub outbox_grew: Arc<tokio::sync::Notify>,
    pub devices_changed: Arc<tokio::sync::watch::Sender<u64>>,
}

/// Moves what is waiting in `rx` into `batch`, up to [`MAX_BATCH`] with the `applied`; while
/// nothing waits and fewer than `expected` were applied, sleeps [`LINGER_STEP`] at a time, at
/// most [`LINGER`] in all for the batch. False when the batch should commit.
fn take_more(
    rx: &mut mpsc::Receiver<Box<dyn Job>>,
    batch: &mut Vec<Box<dyn Job>>,
    applied: usize,
    expected: usize,
    slept: &mut Duration,
) -> bool {
    loop {
        while applied + batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            return true;
        }
        if applied >= expected || *slept >= LINGER {
            return false;
        }
        let started = Instant::now();
        std::thread::sleep(LINGER_STEP);
        *slept += started.elapsed();
    }
}

/// Creates the tables, loads the index, publishes the first snapshot and starts the thread.
pub(super) fn start(
    db: Arc<redb::Database>,
    snapshot: Arc<arc_swap::ArcSwap<Snapshot>>,
    metrics: StoreMetrics,
    clock: Arc<dyn Clock>,
    keys: Parts,
    edge: bool,
    observer: Option<mpsc::UnboundedSender<Arc<CommitReport>>>,
) -> Result<(mpsc::Sender<Box<dyn Job>>, WriterGuard), StoreError> {
    let txn = db.begin_write()?;
    let unindexed = super::station_index::missing(&txn)?;
    let mut tx = Tx::open(&txn, clock.now())?;
    if unindexed {
        super::station_index::build(&mut tx)?;
    }
    drop(tx);
    move_station_keys_out(&txn, &keys.stations)?;
    txn.commit()?;
    let mut writer = Writer {
        index: Index::load(&db)?,
        db,
        code_key: keys.code,
        station_keys: keys.stations,
        sealer: keys.sealer,
        integrators: keys.integrators,
        outbox_grew: keys.outbox_grew,
        devices_changed: keys.devices_changed,
        edge,
        clock,
        snapshot,
        views: BTreeMap::new(),
        metrics,
        observer,
        commit_seq: 0,
    };
    writer.rebuild_views();
    writer.publish(writer.clock.now());
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let handle = std::thread::Builder::new()
        .name("lockergrid-writer".into())
        .spawn(move || writer.run(rx))
        .map_err(|e| StoreError::from(redb::Error::from(e)))?;
    Ok((tx, WriterGuard(Some(handle))))
}

impl Writer {
    fn run(mut self, mut rx: mpsc::Receiver<Box<dyn Job>>) {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        // The callers the last commit answered plus those it left waiting: how many are likely
        // to be back for the next one.
        let mut load = 0;
        while let Some(first) = rx.blocking_recv() {
            batch.push(first);
            let applied = self.apply_batch(&mut batch, &mut rx, load.min(LINGER_UP_TO));
            load = applied + rx.len();
        }
    }

    /// Applies `batch` and the operations that arrive while it runs (see [`take_more`]) in one
    /// transaction, commits, and answers their callers; how many it applied.
    fn apply_batch(
        &mut self,
        batch: &mut Vec<Box<dyn Job>>,
        rx: &mut mpsc::Receiver<Box<dyn Job>>,
        expected: usize,
    ) -> usize {
        let started = Instant::now();
        let now = self.clock.now();
        let mut pending: Vec<Pending> = Vec::with_capacity(expected.max(batch.len()));
        let outbox_before = self.index.outbox_seq;
        let outcome = self.try_batch(batch, rx, expected, now, &mut pending);
        let applied = pending.len();
        self.metrics.batch_size.observe(applied as f64);
        match outcome {
            Ok((changes, dirty, devices_changed)) => {
                self.commit_seq += 1;
                if self.index.outbox_seq != outbox_before {
                    self.outbox_grew.notify_one();
                }
                if devices_changed {
                    self.devices_changed.send_modify(|v| *v += 1);
                }
                for station in dirty {
                    self.refresh_view(&station);
                }
                self.publish(now);
                if let Some(observer) = &self.observer {
                    let report = CommitReport {
                        seq: self.commit_seq,
                        changes,
                    };
                    let _ = observer.send(Arc::new(report));
                }
                pending.into_iter().for_each(|p| p(None));
            }
            Err(e) => {
                tracing::error!(error = %e, "batch not committed");
                match Index::load(&self.db) {
                    Ok(index) => self.index = index,
                    Err(reload) => tracing::error!(error = %reload, "index reload failed"),
                }
                self.rebuild_views();
                pending.into_iter().for_each(|p| p(Some(&e)));
                batch.drain(..).for_each(|job| job.fail(&e));
            }
        }
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        applied
    }

    /// Applies commands from the front of `batch`, and those [`take_more`] adds while the
    /// batch expects more, in one transaction and commits. On a storage error the commands not
    /// yet applied stay in `batch`.
    fn try_batch(
        &mut self,
        batch: &mut Vec<Box<dyn Job>>,
        rx: &mut mpsc::Receiver<Box<dyn Job>>,
        expected: usize,
        now: Timestamp,
        pending: &mut Vec<Pending>,
    ) -> Result<(Vec<CompartmentChange>, BTreeSet<StationId>, bool), StoreError> {
        let txn = self.db.begin_write()?;
        let (changes, dirty, devices_changed) = {
            let mut tx = Tx::open(&txn, now)?;
            let mut slept = Duration::ZERO;
            loop {
                let mut jobs = std::mem::take(batch).into_iter();
                while let Some(job) = jobs.next() {
                    if let Err(e) = job.run(self, &mut tx, pending) {
                        batch.extend(jobs);
                        return Err(e);
                    }
                }
                if !take_more(rx, batch, pending.len(), expected, &mut slept) {
                    break;
                }
            }
            (tx.changes, tx.dirty, tx.devices_changed)
        };
        txn.commit()?;
        Ok((changes, dirty, devices_changed))
    }

    /// The keyed hash of an entered code at `station`, hex.
    pub(super) fn entered_hash(&self, station: &StationId, code: &super::EnteredCode) -> String {
        match code {
            super::EnteredCode::Typed(code) => self.hash_code(station, code).to_hex(),
            super::EnteredCode::Hashed(hash) => hash.to_ascii_lowercase(),
        }
    }

    /// The keyed hash of `code` entered at `station`.
    pub(super) fn hash_code(&self, station: &StationId, code: &PickupCode) -> CodeHash {
        match self.station_keys.key(station) {
            Some(key) => key.hash(code),
            None => self.code_key.hash(station, code),
        }
    }

    /// Appends an access-log entry in the current transaction.
    pub(super) fn log(&mut self, tx: &mut Tx<'_>, entry: Draft) -> Result<(), StoreError> {
        super::access_log::append(&mut tx.log, &mut self.index.chain, tx.now, entry)
    }

    fn refresh_view(&mut self, station: &StationId) {
        match self.index.stations.get(station) {
            Some(idx) => {
                self.views.insert(station.clone(), Arc::new(idx.view()));
            }
            None => {
                self.views.remove(station);
            }
        }
    }

    fn rebuild_views(&mut self) {
        self.views = self
            .index
            .stations
            .iter()
            .map(|(id, idx)| (id.clone(), Arc::new(idx.view())))
            .collect();
    }

    fn publish(&self, now: Timestamp) {
        self.snapshot.store(Arc::new(Snapshot {
            commit_seq: self.commit_seq,
            committed_at: now,
            published: Instant::now(),
            stations: self.views.values().cloned().collect(),
        }));
    }
}
