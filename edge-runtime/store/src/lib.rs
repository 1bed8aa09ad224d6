//! The durable store: one redb file, written only by one writer thread that applies requests in
//! batches and commits each batch once (group commit), then publishes a fresh availability
//! snapshot and only then answers the callers. An answered write survives `kill -9`.
//!
//! Callers use [`Store`]; no redb type appears in its API.
//!
//! It owns every redb table and the only write transactions; the records it keeps are
//! `lockergrid-model`'s. It must never depend on wasmtime, the device plane or any HTTP
//! machinery: nodes decide, the store records.
//!
//! Modules: `writer` (the only `begin_write`; operations arrive as closures through
//! `Store::write`), `tables` with `codec` and `compact` (every table, typed), `index` (the
//! writer's in-memory mirror), `access_log`; `ops/`, one file per writer operation with its
//! `Store` method beside the `Writer` method that applies it; the steps those operations share,
//! by the records they touch — `reservations`, `returns`, `leases`, `mirror` and `decisions` (an
//! edge node's sync and the decisions it makes); and the queues — `commands` (the command
//! outbox), `inbox`, `outbox` (notifications), `edge_outbox`.

mod access_log;
mod alerts;
mod codec;
mod commands;
mod compact;
#[cfg(feature = "testing")]
pub mod crash;
mod decisions;
mod device_days;
mod devices;
mod edge_outbox;
mod inbox;
mod index;
mod leases;
mod lockouts;
mod mirror;
mod ops;
mod outbox;
mod reservations;
mod returns;
mod station_index;
mod station_keys;
mod tables;
mod writer;

pub use alerts::AlertDraft;
pub use decisions::{Applied, OfflinePickup};
pub use device_days::DOOR_OPENED_UNRELEASED;
pub use devices::{DeviceOrder, Provision, SelfTest, SelfTested};
pub use leases::LeaseWant;
use lockergrid_model::Clock;
use lockergrid_model::Snapshot;
use lockergrid_model::{
    Actor, CommandRecord, CompartmentRecord, DecidedBy, NotifyRecipient, Parcel, Reservation,
    ReturnRecord, StationRecord, StationStatus,
};
use lockergrid_model::{DeliveryPlan, NotificationEvent, SealedSecret};
use lockergrid_protocol::{
    CodeKey, CompartmentId, CompartmentState, Ineligible, Lockout, OrderId, ParcelId, ParcelSpec,
    PickupCode, ReservationId, Size, StationId, Tier, Timestamp,
};
pub use mirror::MirrorCounts;
pub use ops::lockdown::LockdownChange;
pub use ops::record_alerts::AlertChanges;
pub use ops::record_delivery::{Attempt, AttemptOutcome, DeliveryReport};
pub use ops::record_telemetry::{Expired, Series, Step};
pub use ops::reissue_code::Reissued;
pub use ops::relocate_reservation::{Relocated, Relocation};
pub use ops::rollouts::{RolloutOrder, RolloutReport};
pub use ops::service_compartment::{LATCH_FAILURES, OutOfService, ServiceOrder};
pub use outbox::MERCHANT;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use redb::ReadableDatabase;
pub use returns::{AuthorizedReturn, ReturnRequest};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use writer::{Job, Writer, WriterGuard};

/// How long after a deposit unlock's expiry the reservation is held at least: the agent's time
/// to put the parcel in and close the door.
pub const DOOR_GRACE: Duration = Duration::from_secs(15 * 60);

/// A failure of the store itself, as opposed to a refusal of the request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// redb reported an error; the batch it happened in was not committed.
    #[error("storage error: {0}")]
    Storage(Arc<redb::Error>),
    /// A stored value could not be decoded.
    #[error("corrupt record in {table:?}: {detail}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// What the decoder said.
        detail: String,
    },
    /// The writer thread has stopped.
    #[error("the store's writer has stopped")]
    Closed,
}

/// Creates the store's file if it is missing, and makes it readable by the service alone (0600):
/// it holds personal data and the code hashes.
fn owner_only(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
}

pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

pub(crate) fn conflict(kind: &'static str, id: &str, status: impl serde::Serialize) -> ChangeError {
    let status = match serde_json::to_value(status) {
        Ok(serde_json::Value::String(s)) => s,
        other => format!("{other:?}"),
    };
    ChangeError::Conflict {
        kind,
        id: id.to_owned(),
        status,
    }
}

macro_rules! storage_error_from {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> StoreError {
                StoreError::Storage(Arc::new(redb::Error::from(e)))
            }
        }
    )*};
}
storage_error_from!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Why a reservation was not made.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ReserveError {
    /// The parcel breaks a carrier limit.
    #[error(transparent)]
    Ineligible(#[from] Ineligible),
    /// The named station does not exist.
    #[error("unknown station {0:?}")]
    UnknownStation(StationId),
    /// The named station is not in service.
    #[error("station {0:?} is not active")]
    StationInactive(StationId),
    /// No candidate station has a free compartment the parcel fits.
    #[error("no free compartment of size {0} or larger")]
    NoCapacity(Size),
    /// The idempotency key was used before with a different request.
    #[error("idempotency key was used with a different request")]
    IdempotencyMismatch,
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a change to an existing reservation or parcel was refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ChangeError {
    /// No such record.
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// `reservation` or `parcel`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The record is not in a state that allows the change.
    #[error("{kind} {id:?} is {status}")]
    Conflict {
        /// `reservation` or `parcel`.
        kind: &'static str,
        /// Its id.
        id: String,
        /// Its current status.
        status: String,
    },
    /// The code is unknown at this station, spent or expired.
    #[error("code rejected")]
    CodeRejected,
    /// The station refuses code entries after repeated wrong codes, for this long; the code was
    /// not checked.
    #[error("station locked after wrong codes for {0:?}")]
    LockedOut(Duration),
    /// The idempotency key was used before with a different request.
    #[error("the idempotency key was used with a different request")]
    IdempotencyMismatch,
    /// The request cannot be carried out as asked (a destination that cannot take the parcel).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a reservation should go.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// Exactly this station.
    Station(StationId),
    /// The first of these stations, in order, that has room.
    Ranked(Vec<StationId>),
}

/// A remembered `Idempotency-Key` with the fingerprint of the request that used it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// Who used it (keys are per token subject) and the key, joined.
    pub key: String,
    /// SHA-256 of the request's canonical form, hex.
    pub fingerprint: String,
}

/// A change of a station's status, applied only from the listed statuses (so a locker coming
/// back online never reactivates a station an operator or a tamper alarm took out).
#[derive(Debug, Clone)]
pub struct StatusChange {
    /// The station.
    pub station: StationId,
    /// The statuses it may be in for the change to apply.
    pub from: Vec<StationStatus>,
    /// The new status.
    pub to: StationStatus,
    /// Who changes it.
    pub actor: Actor,
    /// Why, for the access log.
    pub reason: String,
}

/// A request to hold a compartment.
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    /// The order.
    pub order_id: OrderId,
    /// The parcel.
    pub parcel: ParcelSpec,
    /// Its tier.
    pub tier: Tier,
    /// Where.
    pub target: Target,
    /// How long to hold before the deposit.
    pub hold: Duration,
    /// The idempotency key, if the caller sent one.
    pub idempotency: Option<IdempotencyKey>,
    /// Who asks.
    pub actor: Actor,
    /// The reservation policy that chose the station and the hold.
    pub decided_by: Option<DecidedBy>,
    /// Who hears about the parcel; without one, nobody is notified.
    pub recipient: Option<NotifyRecipient>,
}

/// The notification router's plan for one outbox entry, and the reminders it schedules.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedNotification {
    /// The outbox entry.
    pub seq: u64,
    /// Its delivery plan.
    pub plan: DeliveryPlan,
    /// Who made it.
    pub decided_by: DecidedBy,
    /// Later notifications about the same parcel (reminders), already planned.
    pub follow_ups: Vec<FollowUp>,
}

/// A later notification a plan schedules.
#[derive(Debug, Clone, PartialEq)]
pub struct FollowUp {
    /// What it says.
    pub event: NotificationEvent,
    /// When delivery starts.
    pub due_at: Timestamp,
    /// How.
    pub plan: DeliveryPlan,
    /// Who made the plan.
    pub decided_by: DecidedBy,
}

/// A reservation as answered, and whether the answer is a replay of an earlier one.
#[derive(Debug, Clone, PartialEq)]
pub struct Reserved {
    /// The reservation as first answered.
    pub reservation: Reservation,
    /// True when the idempotency key had been used with the same request before.
    pub replayed: bool,
}

/// The result of a deposit: the parcel is stored and its pickup code exists for this moment only.
#[derive(Debug, Clone)]
pub struct Deposit {
    /// The parcel, now `stored`.
    pub parcel: Parcel,
    /// The plaintext code; only its keyed hash is kept.
    pub code: PickupCode,
}

/// What a code entry released.
#[derive(Debug, Clone)]
pub struct Pickup {
    /// The parcel, now `picked_up`.
    pub parcel: Parcel,
}

/// A code entered at a station, admitted before it is checked.
#[derive(Debug, Clone)]
pub struct CodeAttempt {
    /// Where.
    pub station: StationId,
    /// The locker event that carried it, applied once; `None` for the station's screen.
    pub event: Option<String>,
    /// Who entered it.
    pub actor: Actor,
}

/// A code a locker refused alone while no node answered, as its event reports it.
#[derive(Debug, Clone)]
pub struct OfflineRejection {
    /// Where.
    pub station: StationId,
    /// The locker's event.
    pub event: String,
    /// The locker.
    pub actor: Actor,
    /// The locker's wrong-code count after it.
    pub lockout: Lockout,
    /// Refused unchecked, because the station had to wait.
    pub locked_out: bool,
}

/// A code as it reaches a node: typed (the station's screen, a locker without a code key yet),
/// or already hashed by the locker with its station's code key, so the code itself never
/// leaves the keypad. Codes are looked up by their keyed hash either way.
#[derive(Debug, Clone)]
pub enum EnteredCode {
    /// The digits.
    Typed(PickupCode),
    /// The keyed hash, hex, as the locker computed it.
    Hashed(String),
}

impl From<PickupCode> for EnteredCode {
    fn from(code: PickupCode) -> EnteredCode {
        EnteredCode::Typed(code)
    }
}

/// A pickup code entered at a station: on a locker's keypad (with the event that carried it) or
/// on a station's screen.
#[derive(Debug, Clone)]
pub struct PickupUnlock {
    /// Where.
    pub station: StationId,
    /// The code.
    pub code: EnteredCode,
    /// The locker event that carried it, applied once.
    pub event: Option<String>,
    /// Who entered it.
    pub actor: Actor,
    /// The site rules that allowed it.
    pub decided_by: Option<DecidedBy>,
    /// How long the unlock command is valid.
    pub valid: Duration,
}

/// A locker reported that a door closed and its latch engaged.
#[derive(Debug, Clone)]
pub struct DoorClosedEvent {
    /// The station (its locker).
    pub station: StationId,
    /// The event's id.
    pub event: String,
    /// Which door.
    pub compartment: CompartmentId,
    /// The unlock command that had released it, as the locker says.
    pub unlocked_by: Option<String>,
    /// The locker, for the access log.
    pub actor: Actor,
}

/// What a door-closed event completed.
#[derive(Debug, Clone)]
pub enum DoorClosed {
    /// The event was applied before; nothing changed.
    Duplicate,
    /// The deposit its command was for: the parcel is stored and its code issued.
    Deposited(Deposit),
    /// The pickup its command was for: the code is spent.
    PickedUp(Pickup),
    /// A return's drop-off: it waits in its compartment for a carrier.
    ReturnDroppedOff(ReturnRecord),
    /// A carrier took a return away; the compartment is free.
    ReturnCollected(ReturnRecord),
    /// A carrier took an expired parcel back to its sender; the compartment is free.
    ParcelCollected(Parcel),
    /// Nothing to complete (no command, or one already completed); logged.
    Recorded,
    /// The command's deposit or pickup is no longer possible (e.g. the hold ran out); logged.
    Conflict(String),
}

/// A locker event that only goes to the access log, applied once.
#[derive(Debug, Clone)]
pub struct SettledEvent {
    /// The station (its locker).
    pub station: StationId,
    /// The event's id.
    pub event: String,
    /// The locker.
    pub actor: Actor,
    /// The access log's action.
    pub action: String,
    /// The access log's target.
    pub target: String,
    /// The access log's outcome.
    pub outcome: String,
    /// The plugin that decided, where one was asked.
    pub decided_by: Option<DecidedBy>,
}

/// A station from the deployment file, with its compartment counts per size.
#[derive(Debug, Clone, PartialEq)]
pub struct StationSeed {
    /// The station.
    pub record: StationRecord,
    /// Compartments per size, indexed by [`Size::index`].
    pub compartments: [u32; 4],
}

/// What a seeding changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeedReport {
    /// Stations added.
    pub stations_added: u32,
    /// Compartments added (to new or existing stations).
    pub compartments_added: u32,
}

/// What one expiry sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpiryReport {
    /// Holds that ran out and released their compartment.
    pub holds_expired: u32,
    /// Stored parcels whose pickup window closed.
    pub parcels_expired: u32,
    /// Idempotency keys forgotten after a day.
    pub keys_forgotten: u32,
    /// Drop-offs whose door never reported closing, their compartments given back.
    pub drop_offs_abandoned: u32,
    /// Returns not dropped off in their window, their codes removed.
    pub returns_expired: u32,
}

/// One compartment's change in a commit.
#[derive(Debug, Clone, PartialEq)]
pub struct CompartmentChange {
    /// The compartment.
    pub compartment: CompartmentId,
    /// Its state before.
    pub from: CompartmentState,
    /// Its state after.
    pub to: CompartmentState,
    /// The reservation holding it afterwards.
    pub reservation: Option<ReservationId>,
}

/// Everything one commit changed, for observers that check invariants or replicate.
#[derive(Debug, Clone, PartialEq)]
pub struct CommitReport {
    /// The commit's number, from 1.
    pub seq: u64,
    /// The compartment changes, in the order they were applied.
    pub changes: Vec<CompartmentChange>,
}

/// How to open a store.
pub struct StoreOptions {
    /// The clock expiry and timestamps use.
    pub clock: Arc<dyn Clock>,
    /// The key pickup codes are hashed with.
    pub code_key: CodeKey,
    /// Receives a report after every commit, if set.
    pub commit_observer: Option<mpsc::UnboundedSender<Arc<CommitReport>>>,
    /// An edge node's store: what it decides itself (pickups, refused codes) is also written
    /// to its decision outbox for the gateway.
    pub edge: bool,
    /// Seals the codes notifications carry to their recipient. A store without one (an edge
    /// node's) writes notifications without codes.
    pub sealer: Option<Arc<dyn Sealer>>,
    /// The merchants (checkout token subjects) with an integration endpoint: their parcels' and
    /// returns' changes are written to the outbox for them too.
    pub integrators: std::collections::BTreeSet<String>,
}

/// Encrypts a secret (a pickup or drop-off code) for the one message that carries it; only the
/// notification sender opens it. Implemented where the keys live (the gateway), so the store
/// needs no cipher of its own.
pub trait Sealer: Send + Sync {
    /// `secret` sealed for the message `message_id`.
    fn seal(&self, message_id: &str, secret: &str) -> SealedSecret;
}

/// Histograms of the writer's work, for `/metrics`.
#[derive(Debug, Clone)]
pub struct StoreMetrics {
    batch_size: Histogram,
    commit_seconds: Histogram,
}

impl StoreMetrics {
    fn new() -> StoreMetrics {
        StoreMetrics {
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
            commit_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 14)),
        }
    }

    /// Adds the histograms to `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "lockergrid_writer_batch_size",
            "Requests applied per write transaction",
            self.batch_size.clone(),
        );
        registry.register(
            "lockergrid_writer_commit_seconds",
            "Time to apply and durably commit one batch",
            self.commit_seconds.clone(),
        );
    }
}

/// A handle to the store; clones share one writer. The writer stops when the last handle drops.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    db: Arc<redb::Database>,
    snapshot: Arc<arc_swap::ArcSwap<Snapshot>>,
    clock: Arc<dyn Clock>,
    code_key: CodeKey,
    station_keys: Arc<station_keys::StationKeys>,
    metrics: StoreMetrics,
    edge: bool,
    outbox_grew: Arc<tokio::sync::Notify>,
    devices_changed: Arc<tokio::sync::watch::Sender<u64>>,
    // Declared before the guard so the channel closes before the guard joins the thread.
    jobs: mpsc::Sender<Box<dyn Job>>,
    _writer: WriterGuard,
}

impl Store {
    /// Opens (or creates) the store file at `path` and starts its writer.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        owner_only(path).map_err(|e| StoreError::Storage(Arc::new(redb::Error::from(e))))?;
        let keys = station_keys::StationKeys::load(Some(path))?;
        Store::start(redb::Database::create(path)?, keys, options)
    }

    /// Opens (or creates) a store on a crash-test image instead of a file.
    #[cfg(feature = "testing")]
    pub fn open_image(
        image: &crash::CrashImage,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        let db = redb::Builder::new().create_with_backend(image.backend())?;
        Store::start(db, station_keys::StationKeys::load(None)?, options)
    }

    fn start(
        db: redb::Database,
        station_keys: Arc<station_keys::StationKeys>,
        options: StoreOptions,
    ) -> Result<Store, StoreError> {
        let db = Arc::new(db);
        let metrics = StoreMetrics::new();
        let snapshot = Arc::new(arc_swap::ArcSwap::from_pointee(Snapshot::empty()));
        let outbox_grew = Arc::new(tokio::sync::Notify::new());
        let devices_changed = Arc::new(tokio::sync::watch::Sender::new(0));
        let (jobs, writer) = writer::start(
            db.clone(),
            snapshot.clone(),
            metrics.clone(),
            options.clock.clone(),
            writer::Parts {
                code: options.code_key.clone(),
                stations: station_keys.clone(),
                sealer: options.sealer,
                integrators: options.integrators,
                outbox_grew: outbox_grew.clone(),
                devices_changed: devices_changed.clone(),
            },
            options.edge,
            options.commit_observer,
        )?;
        Ok(Store {
            inner: Arc::new(Inner {
                db,
                snapshot,
                clock: options.clock,
                code_key: options.code_key,
                station_keys,
                metrics,
                edge: options.edge,
                outbox_grew,
                devices_changed,
                jobs,
                _writer: writer,
            }),
        })
    }

    /// Resolves once a commit has appended to the notification outbox since the last call
    /// returned (at once if one has).
    pub async fn outbox_grew(&self) {
        self.inner.outbox_grew.notified().await;
    }

    /// A receiver that sees a new value after every commit that changed the device registry.
    pub fn devices_changed(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.devices_changed.subscribe()
    }

    /// The latest availability snapshot; never waits for the writer.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.inner.snapshot.load_full()
    }

    /// The store's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    /// The writer's histograms.
    pub fn metrics(&self) -> &StoreMetrics {
        &self.inner.metrics
    }

    /// Runs `op` on the writer, in the next batch's transaction, and answers once that batch
    /// has committed (or with the error it failed on).
    pub(crate) async fn write<T, E>(
        &self,
        op: impl FnOnce(&mut Writer, &mut writer::Tx<'_>) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: writer::OpError,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(writer::Call { op, reply });
        let sent = self.inner.jobs.send(job).await;
        sent.map_err(|_| E::from(StoreError::Closed))?;
        answer.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Every command still waiting for its locker's acknowledgement, in the order issued.
    pub fn pending_commands(&self) -> Result<Vec<CommandRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let pending = rx.open_table(tables::PENDING_COMMANDS_V1.def())?;
        let commands = rx.open_table(tables::COMMANDS_V1.def())?;
        let mut found = Vec::new();
        for (id, _) in tables::PENDING_COMMANDS_V1.entries(&pending)? {
            if let Some(command) = tables::COMMANDS_V1.get(&commands, id.as_str())? {
                found.push(command);
            }
        }
        found.sort_by_key(|c| (c.station_id.clone(), c.counter));
        Ok(found)
    }

    /// One command by id.
    pub fn command(&self, id: &str) -> Result<Option<CommandRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(tables::COMMANDS_V1.def())?;
        tables::COMMANDS_V1.get(&table, id)
    }

    /// Appends an entry to the access log (e.g. a refused request, or a site's denial with the
    /// plugin that decided it).
    pub async fn record(
        &self,
        actor: Actor,
        action: &str,
        target: &str,
        outcome: &str,
        decided_by: Option<DecidedBy>,
    ) -> Result<(), StoreError> {
        let entry = access_log::Draft::new(actor, action, target, outcome).decided_by(decided_by);
        self.write(move |w, tx| w.log(tx, entry)).await
    }

    /// One reservation by id.
    pub fn reservation(&self, id: &ReservationId) -> Result<Option<Reservation>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(tables::RESERVATIONS_V1.def())?;
        tables::RESERVATIONS_V1.get(&table, id.as_str())
    }

    /// One compartment by id.
    pub fn compartment(&self, id: &CompartmentId) -> Result<Option<CompartmentRecord>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(tables::COMPARTMENTS_V1.def())?;
        tables::COMPARTMENTS_V1.get(&table, tables::compartment_key(id).as_str())
    }

    /// One parcel by id.
    pub fn parcel(&self, id: &ParcelId) -> Result<Option<Parcel>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(tables::PARCELS_V1.def())?;
        tables::PARCELS_V1.get(&table, id.as_str())
    }

    /// The parcel an active `code` at `station` would open, without spending it; what site
    /// rules are asked about before the pickup.
    pub fn parcel_for_code(
        &self,
        station: &StationId,
        code: &EnteredCode,
    ) -> Result<Option<Parcel>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let hash = self.code_hash(station, code);
        let codes = rx.open_table(tables::CODES_V1.def())?;
        let Some(record) = tables::CODES_V1
            .get(&codes, hash.as_str())?
            .filter(|c| &c.station_id == station && c.expires_at > self.now())
        else {
            return Ok(None);
        };
        let parcels = rx.open_table(tables::PARCELS_V1.def())?;
        tables::PARCELS_V1.get(&parcels, record.parcel_id.as_str())
    }

    /// The keyed hash of `code` at `station`, hex: with the station's key the gateway sent on
    /// an edge node, as its writer hashes; a hashed code as it came.
    fn code_hash(&self, station: &StationId, code: &EnteredCode) -> String {
        let code = match code {
            EnteredCode::Typed(code) => code,
            EnteredCode::Hashed(hash) => return hash.to_ascii_lowercase(),
        };
        let hash = match self.inner.station_keys.key(station) {
            Some(key) => key.hash(code),
            None => self.inner.code_key.hash(station, code),
        };
        hash.to_hex()
    }

    /// The access log from entry `from` on, at most `limit` entries.
    pub fn access_log(
        &self,
        from: u64,
        limit: usize,
    ) -> Result<Vec<lockergrid_model::AccessEntry>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(tables::ACCESS_LOG_V1.def())?;
        tables::ACCESS_LOG_V1.page(&table, from, limit)
    }

    /// Checks the access log's hash chain end to end; returns the number of entries.
    pub fn verify_access_log(&self) -> Result<u64, access_log::ChainError> {
        let rx = self.inner.db.begin_read().map_err(StoreError::from)?;
        let table = rx
            .open_table(tables::ACCESS_LOG_V1.def())
            .map_err(StoreError::from)?;
        access_log::verify(&table)
    }

    /// A SHA-256 over every compartment, reservation, parcel and code, hex: two equal digests
    /// mean the business state is the same (the access log is not included).
    pub fn state_digest(&self) -> Result<String, StoreError> {
        let rx = self.inner.db.begin_read()?;
        tables::digest(&rx)
    }
}
