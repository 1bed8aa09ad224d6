//! `PluginHost`: verifies, loads, swaps and calls the WebAssembly component plugins of the three
//! worlds, and answers with the built-in behaviour whenever a plugin fails.
//!
//! Each component is checked against its policy binding (SHA-256 and an Ed25519 signature by a
//! trusted key), compiled once, pre-instantiated, and exercised against a fixture set before it
//! replaces the one in its slot. Each call gets a fresh instance in a fresh store with a memory
//! cap and an epoch deadline, on the caller's task under a wall-clock timeout: it yields to the
//! runtime at every epoch tick, so a plugin that loops holds no runtime thread past one tick. A
//! trap, a timeout, exhaustion or an invalid answer never fails the caller: the built-in
//! behaviour answers, the failure is counted, and after repeated failures in a row the plugin is
//! taken out of service until an operator restores it. A swap replaces an `Arc`, so calls in
//! flight finish on the version they started with.
//!
//! It owns everything wasmtime: the only `bindgen!` (`bindings`), the engine and its limits
//! (`engine`), the host interface a plugin may import (`host`), the WIT conversions (`convert`),
//! the fixtures a new version is exercised with (`fixtures`) and the per-slot counters (`stats`).
//! Its inputs and answers are `lockergrid-model` types, so no caller names a wasmtime or generated
//! WIT type. It must never depend on redb, the store or the device plane.

mod bindings;
mod convert;
mod engine;
mod fixtures;
mod host;
mod stats;

use arc_swap::ArcSwapOption;
use bindings::notification_router::{NotificationRouter, NotificationRouterPre};
use bindings::reservation_policy::{ReservationPolicy, ReservationPolicyPre};
use bindings::site_rules::{SiteRules, SiteRulesPre};
use bindings::types as wit;
use host::CallState;
use lockergrid_model::Candidate;
use lockergrid_model::DecidedBy;
use lockergrid_model::{
    AccessAttempt, AccessDecision, Alert, DeliveryPlan, NotificationEvent, Reading, Recipient,
    Severity, Step, Telemetry,
};
use lockergrid_model::{Binding, PolicyError, Scope, Trust, World};
use lockergrid_protocol::{ParcelSpec, Size, StationId, Tier, Timestamp};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tracing::Instrument;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, StoreLimitsBuilder, UpdateDeadline};

pub use stats::{LatencyBuckets, SlotStats};

/// Longest hold a policy may choose: the longest pickup window.
pub const MAX_HOLD_MINUTES: u32 = 14 * 24 * 60;
/// Most steps a delivery plan may have.
pub const MAX_PLAN_STEPS: usize = 8;
/// Most alerts one reading may raise.
pub const MAX_ALERTS: usize = 16;
/// Longest text (a deny reason, an alert's code or message) kept from a plugin.
pub const MAX_TEXT: usize = 512;

/// How the host treats failures and where it runs.
#[derive(Debug, Clone)]
pub struct HostOptions {
    /// Failures in a row that take a plugin out of service.
    pub failures_before_quarantine: u32,
    /// The node's region, for `region:` scopes.
    pub region: Option<String>,
    /// Calls run without epoch deadlines and memory limits: only to measure what the limits
    /// cost; no node is built with this feature.
    #[cfg(feature = "unenforced-limits")]
    pub unenforced: bool,
}

impl Default for HostOptions {
    fn default() -> Self {
        HostOptions {
            failures_before_quarantine: 5,
            region: None,
            #[cfg(feature = "unenforced-limits")]
            unenforced: false,
        }
    }
}

impl HostOptions {
    fn enforced(&self) -> bool {
        #[cfg(feature = "unenforced-limits")]
        {
            !self.unenforced
        }
        #[cfg(not(feature = "unenforced-limits"))]
        {
            true
        }
    }
}

/// Which plugin, which version, which bytes, where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The world it implements.
    pub world: World,
    /// Where it serves.
    pub scope: Scope,
    /// The plugin's name, e.g. `reservation-balanced`.
    pub name: String,
    /// Its version.
    pub version: String,
    /// SHA-256 of the component's bytes, hex.
    pub digest: String,
    /// The trusted key that signed it.
    pub signed_by: String,
}

/// Why a plugin could not be loaded or did not answer.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The engine or ticker could not start.
    #[error("plugin engine: {0}")]
    Engine(String),
    /// The signature, the digest or the policy does not allow these bytes.
    #[error("plugin {name:?} refused: {source}")]
    Untrusted {
        /// The plugin.
        name: String,
        /// Why.
        source: PolicyError,
    },
    /// The bytes are not a component for this world, import what plugins may not, or fail the
    /// fixture set.
    #[error("plugin {name:?} refused: {reason}")]
    Refused {
        /// The plugin.
        name: String,
        /// Why.
        reason: String,
    },
    /// Nothing is bound there.
    #[error("no plugin for {world} at {scope}")]
    NotBound {
        /// The world.
        world: World,
        /// The scope.
        scope: Scope,
    },
    /// The call ran past its epoch deadline.
    #[error("plugin call ran past its deadline")]
    Deadline,
    /// The call trapped (a panic, an out-of-bounds access, memory it could not get, …).
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The call failed in another way.
    #[error("plugin call failed: {0}")]
    Call(String),
    /// The call did not finish within the wall-clock timeout.
    #[error("plugin call timed out")]
    Timeout,
    /// The call was cut off before it answered: whoever waited for it gave up first (a
    /// request's own timeout, a client gone).
    #[error("plugin call cut off before it answered")]
    CutOff,
    /// The answer is not valid for the question.
    #[error("invalid plugin answer: {0}")]
    InvalidAnswer(String),
}

/// What a reservation needs, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankRequest {
    /// The parcel.
    pub parcel: ParcelSpec,
    /// The smallest size it fits.
    pub size: Size,
    /// Its tier.
    pub tier: Tier,
}

/// Who made a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decider {
    /// The plugin, in this version.
    Plugin(Arc<PluginInfo>),
    /// The built-in behaviour, because no plugin is bound or because it failed (the reason).
    BuiltIn(Option<String>),
}

impl Decider {
    /// How the access log records this decision, made in `world`.
    pub fn decided_by(&self, world: World) -> DecidedBy {
        match self {
            Decider::Plugin(info) => DecidedBy {
                world: world.to_string(),
                plugin: info.name.clone(),
                version: info.version.clone(),
                digest: info.digest.clone(),
                fallback: None,
            },
            Decider::BuiltIn(reason) => DecidedBy {
                world: world.to_string(),
                plugin: "built-in".into(),
                version: String::new(),
                digest: String::new(),
                fallback: reason.clone(),
            },
        }
    }
}

/// A plugin call in flight: dropped before it settled (its caller's future was dropped), it
/// counts as a failure like any other timeout, so a plugin that outlasts its callers still goes
/// out of service.
struct Unsettled<'a> {
    host: &'a PluginHost,
    slot: &'a Slot,
    loaded: &'a Arc<Loaded>,
    started: Instant,
    settled: bool,
}

impl Drop for Unsettled<'_> {
    fn drop(&mut self) {
        if !self.settled {
            self.slot.stats.record(self.started.elapsed(), false);
            self.host
                .failed(self.slot, self.loaded, &PluginError::CutOff);
        }
    }
}

/// A ranking, the hold the policy chose, and who decided.
#[derive(Debug, Clone)]
pub struct Placement<'a> {
    /// The candidates, best first.
    pub candidates: Vec<Candidate<'a>>,
    /// The hold in minutes the policy chose; `None` means the node's default.
    pub hold_minutes: Option<u32>,
    /// Who decided.
    pub decider: Decider,
}

/// An answer of a plugin world and who gave it.
#[derive(Debug, Clone)]
pub struct Decided<T> {
    /// The answer.
    pub answer: T,
    /// Who decided.
    pub decider: Decider,
}

/// Limits one plugin's calls run under, from its binding, clamped to the engine's maxima.
#[derive(Debug, Clone, Copy)]
struct CallLimits {
    memory_bytes: usize,
    deadline_ticks: u64,
    timeout: Duration,
}

impl CallLimits {
    fn of(binding: &Binding) -> CallLimits {
        let l = binding.limits;
        CallLimits {
            memory_bytes: (l.memory_mib as usize)
                .saturating_mul(1 << 20)
                .min(engine::MAX_MEMORY_BYTES),
            deadline_ticks: (u128::from(l.deadline_ms) * 1_000_000
                / engine::EPOCH_TICK.as_nanos().max(1))
            .max(1) as u64,
            timeout: Duration::from_millis(u64::from(l.timeout_ms)),
        }
    }
}

enum Pre {
    Policy(ReservationPolicyPre<CallState>),
    Router(NotificationRouterPre<CallState>),
    Rules(SiteRulesPre<CallState>),
}

impl Pre {
    // A slot only ever holds a component of its own world, and each world's calls go to its
    // slots, so a mismatch is a bug in this module, not something a plugin can cause.
    fn policy(&self) -> &ReservationPolicyPre<CallState> {
        match self {
            Pre::Policy(pre) => pre,
            _ => unreachable!("a reservation-policy slot holds a reservation-policy component"),
        }
    }

    fn router(&self) -> &NotificationRouterPre<CallState> {
        match self {
            Pre::Router(pre) => pre,
            _ => unreachable!("a notification-router slot holds a notification-router component"),
        }
    }

    fn rules(&self) -> &SiteRulesPre<CallState> {
        match self {
            Pre::Rules(pre) => pre,
            _ => unreachable!("a site-rules slot holds a site-rules component"),
        }
    }
}

struct Loaded {
    info: Arc<PluginInfo>,
    /// The plugin's name, as its log lines are attributed.
    name: Arc<str>,
    settings: Arc<BTreeMap<String, String>>,
    limits: CallLimits,
    pre: Pre,
}

/// One world at one scope: the plugin serving there, the one taken out, and the counters.
struct Slot {
    current: ArcSwapOption<Loaded>,
    quarantined: Mutex<Option<(Arc<Loaded>, String)>>,
    stats: SlotStats,
}

/// What serves at one world and scope, for operators.
#[derive(Debug, Clone)]
pub struct SlotReport {
    /// The world.
    pub world: World,
    /// The scope.
    pub scope: Scope,
    /// The plugin in service, if any.
    pub serving: Option<Arc<PluginInfo>>,
    /// The plugin taken out of service and why, if any.
    pub quarantined: Option<(Arc<PluginInfo>, String)>,
    /// Calls, failures and latency.
    pub stats: stats::StatsReport,
}

/// The plugin host of one node.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<CallState>,
    slots: RwLock<BTreeMap<(World, Scope), Arc<Slot>>>,
    trust: RwLock<Trust>,
    options: HostOptions,
    _ticker: engine::EpochTicker,
}

impl PluginHost {
    /// A host with no plugin loaded, trusting `trust`: every decision is the built-in one.
    pub fn new(options: HostOptions, trust: Trust) -> Result<PluginHost, PluginError> {
        let engine_error = |e: wasmtime::Error| PluginError::Engine(format!("{e:#}"));
        let engine = engine::engine(options.enforced()).map_err(engine_error)?;
        let mut linker = Linker::new(&engine);
        host::link_wasi(&mut linker).map_err(engine_error)?;
        // All three worlds import the same `host` interface; linking it once serves them all.
        ReservationPolicy::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)
            .map_err(engine_error)?;
        let ticker =
            engine::EpochTicker::start(&engine).map_err(|e| PluginError::Engine(e.to_string()))?;
        Ok(PluginHost {
            engine,
            linker,
            slots: RwLock::new(BTreeMap::new()),
            trust: RwLock::new(trust),
            options,
            _ticker: ticker,
        })
    }

    /// Replaces the keys plugin signatures are checked against.
    pub fn set_trust(&self, trust: Trust) {
        *self.trust.write().unwrap_or_else(|e| e.into_inner()) = trust;
    }

    /// Verifies, compiles and exercises `bytes` for `binding`, then swaps it into its slot.
    ///
    /// The bytes must hash to the binding's SHA-256 and the binding must carry a signature over
    /// all of it (world, scope, settings and limits too) by a trusted key; they must be a component of the binding's world that imports
    /// nothing beyond the host interface and the WASI the host allows; and they must answer the
    /// fixture set validly within their limits. Otherwise they are refused and what served
    /// before keeps serving. Compiling and the fixtures run on a blocking thread.
    pub async fn install(
        self: &Arc<Self>,
        binding: Binding,
        bytes: Arc<[u8]>,
    ) -> Result<Arc<PluginInfo>, PluginError> {
        let host = self.clone();
        let (binding, loaded) = tokio::task::spawn_blocking(move || {
            host.compile(&binding, &bytes).map(|l| (binding, l))
        })
        .await
        .map_err(|e| PluginError::Call(e.to_string()))??;
        fixtures::exercise(self, &loaded)
            .await
            .map_err(|e| PluginError::Refused {
                name: binding.name.clone(),
                reason: format!("failed its fixtures: {e}"),
            })?;
        let slot = self.slot(binding.world, &binding.scope);
        slot.current.store(Some(loaded.clone()));
        *slot.quarantined.lock().unwrap_or_else(|e| e.into_inner()) = None;
        slot.stats.consecutive.store(0, Ordering::Relaxed);
        let info = loaded.info.clone();
        tracing::info!(world = %info.world, scope = %info.scope, plugin = %info.name, version = %info.version, digest = %info.digest, "plugin in service");
        Ok(info)
    }

    /// Checks `bytes` against `binding` and compiles them, ready to be exercised.
    fn compile(&self, binding: &Binding, bytes: &[u8]) -> Result<Arc<Loaded>, PluginError> {
        let name = binding.name.clone();
        binding.limits.check().map_err(|e| PluginError::Refused {
            name: name.clone(),
            reason: e.to_string(),
        })?;
        let signed_by = self
            .trust
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .verify(bytes, binding)
            .map_err(|source| PluginError::Untrusted {
                name: name.clone(),
                source,
            })?;
        let refused = |e: wasmtime::Error| PluginError::Refused {
            name: name.clone(),
            reason: format!("{e:#}"),
        };
        let component = Component::new(&self.engine, bytes).map_err(refused)?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(refused)?;
        let pre = match binding.world {
            World::ReservationPolicy => ReservationPolicyPre::new(instance_pre).map(Pre::Policy),
            World::NotificationRouter => NotificationRouterPre::new(instance_pre).map(Pre::Router),
            World::SiteRules => SiteRulesPre::new(instance_pre).map(Pre::Rules),
        }
        .map_err(|e| PluginError::Refused {
            name: name.clone(),
            reason: format!("not a {} component: {e:#}", binding.world),
        })?;
        let loaded = Arc::new(Loaded {
            name: Arc::from(name.as_str()),
            info: Arc::new(PluginInfo {
                world: binding.world,
                scope: binding.scope.clone(),
                name: name.clone(),
                version: binding.version.clone(),
                digest: lockergrid_model::sha256_hex(bytes),
                signed_by,
            }),
            settings: Arc::new(binding.settings_text()),
            limits: CallLimits::of(binding),
            pre,
        });
        Ok(loaded)
    }

    /// Puts a plugin taken out of service back, as it was.
    pub fn restore(&self, world: World, scope: &Scope) -> Result<Arc<PluginInfo>, PluginError> {
        let not_bound = || PluginError::NotBound {
            world,
            scope: scope.clone(),
        };
        let slot = self.find(world, scope).ok_or_else(not_bound)?;
        let (loaded, _) = slot
            .quarantined
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(not_bound)?;
        slot.stats.consecutive.store(0, Ordering::Relaxed);
        slot.current.store(Some(loaded.clone()));
        tracing::info!(world = %world, scope = %scope, plugin = %loaded.info.name, "plugin restored by an operator");
        Ok(loaded.info.clone())
    }

    /// The plugin serving `world` at exactly `scope`, if any.
    pub fn serving(&self, world: World, scope: &Scope) -> Option<Arc<PluginInfo>> {
        let slot = self.find(world, scope)?;
        slot.current.load().as_ref().map(|l| l.info.clone())
    }

    /// Takes whatever is bound to `world` at exactly `scope` away, so a wider scope or the
    /// built-in decides there again; calls in flight finish on what they started with.
    pub fn unbind(&self, world: World, scope: &Scope) {
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        if slots.remove(&(world, scope.clone())).is_some() {
            tracing::info!(world = %world, scope = %scope, "plugin unbound");
        }
    }

    /// Every slot with what serves there and its counters.
    pub fn report(&self) -> Vec<SlotReport> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        slots
            .iter()
            .map(|((world, scope), slot)| SlotReport {
                world: *world,
                scope: scope.clone(),
                serving: slot.current.load().as_ref().map(|l| l.info.clone()),
                quarantined: slot
                    .quarantined
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .as_ref()
                    .map(|(l, why)| (l.info.clone(), why.clone())),
                stats: slot.stats.report(),
            })
            .collect()
    }

    fn find(&self, world: World, scope: &Scope) -> Option<Arc<Slot>> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        slots.get(&(world, scope.clone())).cloned()
    }

    fn slot(&self, world: World, scope: &Scope) -> Arc<Slot> {
        if let Some(slot) = self.find(world, scope) {
            return slot;
        }
        let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
        slots
            .entry((world, scope.clone()))
            .or_insert_with(|| {
                Arc::new(Slot {
                    current: ArcSwapOption::empty(),
                    quarantined: Mutex::new(None),
                    stats: SlotStats::default(),
                })
            })
            .clone()
    }

    /// The plugin that decides for `world` at `station` (or region-wide when `None`): the
    /// station's own binding, else the region's, else the default.
    fn resolve(
        &self,
        world: World,
        station: Option<&StationId>,
    ) -> Option<(Arc<Slot>, Arc<Loaded>)> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        self.scopes(station).into_iter().find_map(|scope| {
            let slot = slots.get(&(world, scope))?;
            let loaded = slot.current.load_full()?;
            Some((slot.clone(), loaded))
        })
    }

    /// The narrowest slot of `world` bound for `station`, serving or not.
    fn bound(&self, world: World, station: &StationId) -> Option<Arc<Slot>> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        self.scopes(Some(station))
            .into_iter()
            .find_map(|scope| slots.get(&(world, scope)).cloned())
    }

    /// The scopes a decision for `station` looks at, narrowest first.
    fn scopes(&self, station: Option<&StationId>) -> Vec<Scope> {
        let mut scopes = Vec::with_capacity(3);
        if let Some(id) = station {
            scopes.push(Scope::Station(id.clone()));
        }
        if let Some(region) = &self.options.region {
            scopes.push(Scope::Region(region.clone()));
        }
        scopes.push(Scope::Default);
        scopes
    }

    /// A fresh store for one call of `loaded` at `now`, under its limits: the memory cap, and a
    /// deadline that yields to the runtime at each epoch tick and traps once the plugin's ticks
    /// are spent. `run` gets the store and the plugin and answers the call's future.
    fn start<F: Future>(
        &self,
        loaded: &Arc<Loaded>,
        now: Timestamp,
        run: impl FnOnce(Store<CallState>, Arc<Loaded>) -> F,
    ) -> F {
        let limits = StoreLimitsBuilder::new()
            .memory_size(loaded.limits.memory_bytes)
            .instances(4)
            .trap_on_grow_failure(true)
            .build();
        let state = CallState::new(
            loaded.name.clone(),
            loaded.settings.clone(),
            limits,
            now.millis(),
        );
        let mut store = Store::new(&self.engine, state);
        if self.options.enforced() {
            store.limiter(|s| &mut s.limits);
            let mut ticks_left = loaded.limits.deadline_ticks;
            store.set_epoch_deadline(1);
            store.epoch_deadline_callback(move |_| {
                ticks_left = ticks_left.saturating_sub(1);
                Ok(if ticks_left == 0 {
                    UpdateDeadline::Interrupt
                } else {
                    // Tokio's yield lets the runtime poll its I/O driver before this task runs
                    // again, so the thread's other tasks hear their sockets between slices.
                    UpdateDeadline::YieldCustom(1, Box::pin(tokio::task::yield_now()))
                })
            });
        }
        run(store, loaded.clone())
    }

    /// Awaits `run` under the plugin's wall-clock timeout, checks the answer with `check`, and
    /// counts the outcome in the slot.
    async fn call<T, U>(
        &self,
        slot: &Slot,
        loaded: &Arc<Loaded>,
        run: impl Future<Output = wasmtime::Result<T>>,
        check: impl FnOnce(T) -> Result<U, PluginError>,
    ) -> Result<U, PluginError> {
        let span = tracing::debug_span!("plugin call", world = %loaded.info.world, plugin = %loaded.info.name, version = %loaded.info.version);
        let started = Instant::now();
        let mut unsettled = Unsettled {
            host: self,
            slot,
            loaded,
            started,
            settled: false,
        };
        let answer = bounded(&loaded.limits, run)
            .instrument(span)
            .await
            .and_then(check);
        unsettled.settled = true;
        slot.stats.record(started.elapsed(), answer.is_ok());
        if let Err(e) = &answer {
            self.failed(slot, loaded, e);
        }
        answer
    }

    fn failed(&self, slot: &Slot, loaded: &Arc<Loaded>, e: &PluginError) {
        let in_a_row = slot.stats.consecutive.load(Ordering::Relaxed);
        let info = &loaded.info;
        tracing::warn!(world = %info.world, plugin = %info.name, version = %info.version, error = %e, "plugin failed; built-in behaviour used");
        if in_a_row >= self.options.failures_before_quarantine {
            // Only the failing version is taken out; a newer one loaded meanwhile stays.
            let current = slot.current.load_full();
            if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, loaded)) {
                slot.current.store(None);
                *slot.quarantined.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((loaded.clone(), e.to_string()));
                tracing::error!(world = %info.world, scope = %info.scope, plugin = %info.name, version = %info.version, failures = in_a_row, "alert: plugin taken out of service");
            }
        }
    }

    /// Orders `candidates` (already in built-in order) and chooses the hold with the
    /// reservation policy; with `candidates` of `None` (a station was named), only the hold.
    /// Keeps the built-in order and hold if no policy serves or it fails.
    pub async fn place<'a>(
        self: &Arc<Self>,
        request: RankRequest,
        candidates: Option<Vec<Candidate<'a>>>,
        station: Option<&StationId>,
        now: Timestamp,
    ) -> Placement<'a> {
        let built_in = |candidates: Option<Vec<Candidate<'a>>>, reason| Placement {
            candidates: candidates.unwrap_or_default(),
            hold_minutes: None,
            decider: Decider::BuiltIn(reason),
        };
        let Some((slot, loaded)) = self.resolve(World::ReservationPolicy, station) else {
            return built_in(candidates, None);
        };
        let stations: Option<wit::Stations> = candidates
            .as_ref()
            .map(|c| convert::stations(c, request.size));
        let offered = candidates.as_ref().map(Vec::len);
        let run = self.start(&loaded, now, |mut store, loaded| async move {
            let instance = loaded.pre.policy().instantiate_async(&mut store).await?;
            let wit_request = wit_request(request);
            let ranking = match &stations {
                Some(stations) => Some(
                    instance
                        .call_rank(&mut store, wit_request, stations)
                        .await?
                        .stations,
                ),
                None => None,
            };
            let hold = instance.call_hold_minutes(&mut store, wit_request).await?;
            Ok((ranking, hold))
        });
        let answer = self
            .call(&slot, &loaded, run, move |(ranking, hold)| {
                let hold = check_hold(hold)?;
                let places = match (offered, ranking) {
                    (Some(offered), Some(order)) => Some(check_ranking(&order, offered)?),
                    _ => None,
                };
                Ok((places, hold))
            })
            .await;
        match answer {
            Ok((places, hold)) => Placement {
                candidates: match (candidates, places) {
                    (Some(offered), Some(places)) => reorder(&offered, &places),
                    _ => Vec::new(),
                },
                hold_minutes: Some(hold),
                decider: Decider::Plugin(loaded.info.clone()),
            },
            Err(e) => built_in(candidates, Some(e.to_string())),
        }
    }

    /// Asks the site's rules whether `attempt` may open its compartment. With no rules bound
    /// for the station: allow (the code or credential was already checked). Rules bound there
    /// fail closed: out of service, or failing this call, they answer `Unavailable`, never
    /// allow, and no broader scope's rules stand in for them.
    pub async fn check_access(
        self: &Arc<Self>,
        attempt: &AccessAttempt,
    ) -> Decided<AccessDecision> {
        let Some(slot) = self.bound(World::SiteRules, &attempt.station) else {
            return built_in_answer(AccessDecision::Allow, None);
        };
        let Some(loaded) = slot.current.load_full() else {
            let why = match &*slot.quarantined.lock().unwrap_or_else(|e| e.into_inner()) {
                Some((q, reason)) => format!(
                    "site rules {} {} are out of service: {reason}",
                    q.info.name, q.info.version
                ),
                None => "no version of the site rules is serving".to_owned(),
            };
            return built_in_answer(AccessDecision::Unavailable(why.clone()), Some(why));
        };
        let wit_attempt = wit::AccessAttempt::from(attempt);
        let run = self.start(&loaded, attempt.at, |mut store, loaded| async move {
            let instance: SiteRules = loaded.pre.rules().instantiate_async(&mut store).await?;
            instance.call_check_access(&mut store, &wit_attempt).await
        });
        let answer = self
            .call(&slot, &loaded, run, |d| check_decision(d.into()))
            .await;
        match answer {
            Ok(answer) => Decided {
                answer,
                decider: Decider::Plugin(loaded.info.clone()),
            },
            Err(e) => {
                let why = format!(
                    "site rules {} {} failed: {e}",
                    loaded.info.name, loaded.info.version
                );
                built_in_answer(AccessDecision::Unavailable(why.clone()), Some(why))
            }
        }
    }

    /// Asks the site's rules which alerts a reading raises. Built in: a tripped tamper switch
    /// is a critical alert that locks the station down; nothing else alerts.
    pub async fn assess(self: &Arc<Self>, reading: &Reading) -> Decided<Vec<Alert>> {
        let Some((slot, loaded)) = self.resolve(World::SiteRules, Some(&reading.station)) else {
            return built_in_answer(built_in_alerts(reading), None);
        };
        let wit_reading = wit::Reading::from(reading);
        let run = self.start(&loaded, reading.at, |mut store, loaded| async move {
            let instance: SiteRules = loaded.pre.rules().instantiate_async(&mut store).await?;
            instance.call_assess(&mut store, &wit_reading).await
        });
        let answer = self
            .call(&slot, &loaded, run, |alerts| {
                check_alerts(alerts.into_iter().map(Alert::from).collect())
            })
            .await;
        decided(answer, &loaded, || built_in_alerts(reading))
    }

    /// Asks `station`'s site rules whether its locker may install a firmware update at `at`
    /// (`local_minute`: minutes since local midnight there). With no rules bound: now. Rules
    /// that fail defer it an hour: no update while a site's rules cannot say.
    pub async fn may_update(
        self: &Arc<Self>,
        station: &StationId,
        at: Timestamp,
        local_minute: u16,
    ) -> Decided<UpdateWhen> {
        let Some((slot, loaded)) = self.resolve(World::SiteRules, Some(station)) else {
            return built_in_answer(UpdateWhen::Now, None);
        };
        let check = wit::UpdateCheck {
            station_id: station.to_string(),
            at_ms: at.millis(),
            local_minute,
        };
        let run = self.start(&loaded, at, |mut store, loaded| async move {
            let instance: SiteRules = loaded.pre.rules().instantiate_async(&mut store).await?;
            instance.call_may_update(&mut store, &check).await
        });
        let answer = self
            .call(&slot, &loaded, run, |decision| {
                Ok(match decision {
                    bindings::site_rules::UpdateDecision::Now => UpdateWhen::Now,
                    bindings::site_rules::UpdateDecision::Defer(minutes) => {
                        UpdateWhen::Defer(minutes.clamp(1, 7 * 24 * 60))
                    }
                })
            })
            .await;
        decided(answer, &loaded, || UpdateWhen::Defer(60))
    }

    /// Asks the notification router how `recipient` hears about `event` at `station`. Built in:
    /// the recipient's channels in their order, each a fallback ten minutes after the one
    /// before.
    pub async fn route(
        self: &Arc<Self>,
        event: NotificationEvent,
        recipient: &Recipient,
        station: &StationId,
        now: Timestamp,
    ) -> Decided<DeliveryPlan> {
        let Some((slot, loaded)) = self.resolve(World::NotificationRouter, Some(station)) else {
            return built_in_answer(built_in_plan(recipient), None);
        };
        let wit_recipient = wit::Recipient::from(recipient);
        let allowed = recipient.channels.clone();
        let run = self.start(&loaded, now, |mut store, loaded| async move {
            let instance: NotificationRouter =
                loaded.pre.router().instantiate_async(&mut store).await?;
            instance
                .call_route(&mut store, event.into(), &wit_recipient)
                .await
        });
        let answer = self
            .call(&slot, &loaded, run, move |plan| {
                check_plan(plan.into(), &allowed)
            })
            .await;
        decided(answer, &loaded, || built_in_plan(recipient))
    }

    /// Hours before a pickup window closes at which `station`'s customers get a reminder,
    /// most hours first (the earliest reminder first). Built in: 24 hours before.
    pub async fn reminder_hours(
        self: &Arc<Self>,
        station: &StationId,
        now: Timestamp,
    ) -> Decided<Vec<u32>> {
        let Some((slot, loaded)) = self.resolve(World::NotificationRouter, Some(station)) else {
            return built_in_answer(vec![24], None);
        };
        let run = self.start(&loaded, now, |mut store, loaded| async move {
            let instance: NotificationRouter =
                loaded.pre.router().instantiate_async(&mut store).await?;
            instance.call_reminder_hours(&mut store).await
        });
        let answer = self.call(&slot, &loaded, run, check_reminders).await;
        decided(answer, &loaded, || vec![24])
    }
}

/// Most reminders one parcel gets.
pub const MAX_REMINDERS: usize = 4;

fn check_reminders(mut hours: Vec<u32>) -> Result<Vec<u32>, PluginError> {
    if hours.len() > MAX_REMINDERS {
        return Err(PluginError::InvalidAnswer(format!(
            "{} reminders, more than {MAX_REMINDERS}",
            hours.len()
        )));
    }
    let longest = MAX_HOLD_MINUTES / 60;
    if let Some(h) = hours.iter().find(|h| **h == 0 || **h > longest) {
        return Err(PluginError::InvalidAnswer(format!(
            "a reminder {h} hours before expiry is outside 1..={longest}"
        )));
    }
    hours.sort_unstable_by(|a, b| b.cmp(a));
    hours.dedup();
    Ok(hours)
}

fn wit_request(request: RankRequest) -> wit::ReservationRequest {
    wit::ReservationRequest {
        parcel: request.parcel.into(),
        size: request.size.into(),
        tier: request.tier.into(),
        expected_delivery_hours: None,
    }
}

/// When a station's locker may install a firmware update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateWhen {
    /// Now.
    Now,
    /// Not before this many minutes from now.
    Defer(u32),
}

fn built_in_answer<T>(answer: T, reason: Option<String>) -> Decided<T> {
    Decided {
        answer,
        decider: Decider::BuiltIn(reason),
    }
}

fn decided<T>(
    answer: Result<T, PluginError>,
    loaded: &Loaded,
    built_in: impl FnOnce() -> T,
) -> Decided<T> {
    match answer {
        Ok(answer) => Decided {
            answer,
            decider: Decider::Plugin(loaded.info.clone()),
        },
        Err(e) => built_in_answer(built_in(), Some(e.to_string())),
    }
}

fn built_in_alerts(reading: &Reading) -> Vec<Alert> {
    match reading.value {
        Telemetry::Tamper(true) => vec![Alert {
            severity: Severity::Critical,
            code: "tamper".into(),
            message: "the tamper switch tripped; station locked down".into(),
            lock_down: true,
        }],
        _ => Vec::new(),
    }
}

fn built_in_plan(recipient: &Recipient) -> DeliveryPlan {
    DeliveryPlan {
        steps: (0u32..)
            .zip(recipient.channels.iter().take(MAX_PLAN_STEPS))
            .map(|(i, &channel)| Step {
                channel,
                delay_minutes: i * 10,
            })
            .collect(),
    }
}

/// Awaits a plugin call, cut off at the plugin's wall-clock timeout (its store, and the
/// instance in it, are dropped with it).
async fn bounded<T>(
    limits: &CallLimits,
    run: impl Future<Output = wasmtime::Result<T>>,
) -> Result<T, PluginError> {
    match tokio::time::timeout(limits.timeout, run).await {
        Ok(answer) => answer.map_err(describe),
        Err(_) => Err(PluginError::Timeout),
    }
}

/// One line on why a call failed; wasmtime's message carries a multi-line backtrace.
fn describe(e: wasmtime::Error) -> PluginError {
    match e.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => PluginError::Deadline,
        Some(trap) => PluginError::Trap(trap.to_string()),
        None => PluginError::Call(e.root_cause().to_string()),
    }
}

fn check_hold(minutes: u32) -> Result<u32, PluginError> {
    if (1..=MAX_HOLD_MINUTES).contains(&minutes) {
        Ok(minutes)
    } else {
        Err(PluginError::InvalidAnswer(format!(
            "hold of {minutes} minutes is outside 1..={MAX_HOLD_MINUTES}"
        )))
    }
}

fn check_text(what: &str, text: &str) -> Result<(), PluginError> {
    if text.len() > MAX_TEXT {
        return Err(PluginError::InvalidAnswer(format!(
            "{what} is {} bytes, more than {MAX_TEXT}",
            text.len()
        )));
    }
    Ok(())
}

fn check_decision(d: AccessDecision) -> Result<AccessDecision, PluginError> {
    if let AccessDecision::Deny(reason) = &d {
        check_text("a deny reason", reason)?;
    }
    Ok(d)
}

fn check_alerts(alerts: Vec<Alert>) -> Result<Vec<Alert>, PluginError> {
    if alerts.len() > MAX_ALERTS {
        return Err(PluginError::InvalidAnswer(format!(
            "{} alerts for one reading, more than {MAX_ALERTS}",
            alerts.len()
        )));
    }
    for a in &alerts {
        let code_ok = !a.code.is_empty()
            && a.code.len() <= 64
            && a.code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !code_ok {
            return Err(PluginError::InvalidAnswer(format!(
                "alert code {:?} is not 1 to 64 of [a-z0-9-]",
                truncate(&a.code)
            )));
        }
        check_text("an alert message", &a.message)?;
    }
    Ok(alerts)
}

fn check_plan(
    plan: DeliveryPlan,
    allowed: &[lockergrid_model::NotifyChannel],
) -> Result<DeliveryPlan, PluginError> {
    if plan.steps.len() > MAX_PLAN_STEPS {
        return Err(PluginError::InvalidAnswer(format!(
            "{} steps, more than {MAX_PLAN_STEPS}",
            plan.steps.len()
        )));
    }
    if plan.steps.is_empty() && !allowed.is_empty() {
        return Err(PluginError::InvalidAnswer(
            "no step for a recipient who can be reached".into(),
        ));
    }
    for step in &plan.steps {
        if !allowed.contains(&step.channel) {
            return Err(PluginError::InvalidAnswer(format!(
                "channel {:?} is not one the recipient accepts",
                step.channel
            )));
        }
        if step.delay_minutes > MAX_HOLD_MINUTES {
            return Err(PluginError::InvalidAnswer(format!(
                "a delay of {} minutes is longer than {MAX_HOLD_MINUTES}",
                step.delay_minutes
            )));
        }
    }
    Ok(plan)
}

/// The places of a ranking (in the list of `offered` candidates), checked: each place must be
/// one offered, at most once, and the ranking may leave some out but not all.
fn check_ranking(order: &[u32], offered: usize) -> Result<Vec<usize>, PluginError> {
    if order.is_empty() && offered > 0 {
        return Err(PluginError::InvalidAnswer("empty ranking".into()));
    }
    if order.len() > offered {
        return Err(PluginError::InvalidAnswer(format!(
            "{} stations ranked, {offered} offered",
            order.len()
        )));
    }
    let mut ranked = vec![false; offered];
    order
        .iter()
        .map(|&place| {
            let i = usize::try_from(place).unwrap_or(usize::MAX);
            let seen = ranked.get_mut(i).ok_or_else(|| {
                PluginError::InvalidAnswer(format!("candidate {place} ranked, {offered} offered"))
            })?;
            if std::mem::replace(seen, true) {
                return Err(PluginError::InvalidAnswer(format!(
                    "candidate {place} ranked twice"
                )));
            }
            Ok(i)
        })
        .collect()
}

/// The candidates in the order of a checked ranking's places; candidates left out are dropped.
fn reorder<'a>(candidates: &[Candidate<'a>], places: &[usize]) -> Vec<Candidate<'a>> {
    places
        .iter()
        .filter_map(|&i| candidates.get(i).copied())
        .collect()
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests;
