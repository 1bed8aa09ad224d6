//! `PluginHost`: loads WebAssembly component plugins, calls them under limits, and answers with
//! the built-in behaviour whenever a plugin fails.
//!
//! Each component is compiled once and pre-instantiated; each call gets a fresh store with a
//! memory cap and an epoch deadline, on a blocking thread under a wall-clock timeout. A trap, a
//! timeout, exhaustion or an invalid answer never fails the caller: the built-in ranking answers,
//! the failure is counted, and after repeated failures in a row the plugin is taken out of
//! service until an operator loads one again. A new version replaces an `Arc`, so calls in
//! flight finish on the version they started with.

mod bindings;
mod convert;
mod engine;
mod host;

use crate::ranking::Candidate;
use arc_swap::ArcSwapOption;
use bindings::reservation_policy::lockergrid::plugin::types as wit;
use bindings::reservation_policy::{ReservationPolicy, ReservationPolicyPre};
use host::CallState;
use lockergrid_protocol::{ParcelSpec, Size, Tier, Timestamp};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;
use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, Store, StoreLimitsBuilder};

/// Limits every plugin call runs under.
#[derive(Debug, Clone, Copy)]
pub struct PluginLimits {
    /// Linear memory one call may use.
    pub memory_bytes: usize,
    /// CPU time a call may take, in epoch ticks of [`engine::EPOCH_TICK`].
    pub deadline_ticks: u64,
    /// Wall-clock time around the whole call, instantiation included.
    pub timeout: Duration,
    /// Failures in a row that take a plugin out of service.
    pub failures_before_quarantine: u32,
}

impl Default for PluginLimits {
    fn default() -> Self {
        PluginLimits {
            memory_bytes: 16 << 20,
            deadline_ticks: 50,
            timeout: Duration::from_millis(250),
            failures_before_quarantine: 5,
        }
    }
}

/// Which plugin, which version, which bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginInfo {
    /// The plugin's name, e.g. `reservation-balanced`.
    pub name: String,
    /// Its version.
    pub version: String,
    /// SHA-256 of the component's bytes, hex.
    pub digest: String,
}

/// Why a plugin could not be loaded or did not answer.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The engine or ticker could not start.
    #[error("plugin engine: {0}")]
    Engine(String),
    /// The bytes are not a component for this world, or import what plugins may not.
    #[error("plugin {name:?} refused: {reason}")]
    Refused {
        /// The plugin.
        name: String,
        /// Why, from wasmtime.
        reason: String,
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
    /// The answer is not a valid ranking of the candidates.
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

/// Who ordered the candidates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decider {
    /// The plugin, in this version.
    Plugin(Arc<PluginInfo>),
    /// The built-in ranking, because no plugin is loaded or because it failed (the reason).
    BuiltIn(Option<String>),
}

/// A ranking and who made it.
#[derive(Debug, Clone)]
pub struct Ranked {
    /// The candidates, best first.
    pub candidates: Vec<Candidate>,
    /// Who decided.
    pub decider: Decider,
}

struct LoadedPolicy {
    info: Arc<PluginInfo>,
    settings: Arc<BTreeMap<String, String>>,
    pre: ReservationPolicyPre<CallState>,
}

/// Counters of one plugin slot, for `/metrics` and the admin API.
#[derive(Debug, Default)]
pub struct PluginStats {
    /// Calls made.
    pub calls: AtomicU64,
    /// Calls that failed and fell back to the built-in.
    pub failures: AtomicU64,
    consecutive: AtomicU32,
}

/// The plugin host of one node.
pub struct PluginHost {
    engine: Engine,
    linker: Linker<CallState>,
    policy: ArcSwapOption<LoadedPolicy>,
    limits: PluginLimits,
    /// Counters of the reservation-policy slot.
    pub stats: PluginStats,
    _ticker: engine::EpochTicker,
}

impl PluginHost {
    /// A host with no plugin loaded: every decision is the built-in one.
    pub fn new(limits: PluginLimits) -> Result<PluginHost, PluginError> {
        let engine = engine::engine().map_err(|e| PluginError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        host::link_wasi(&mut linker).map_err(|e| PluginError::Engine(e.to_string()))?;
        ReservationPolicy::add_to_linker::<_, wasmtime::component::HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| PluginError::Engine(e.to_string()))?;
        let ticker =
            engine::EpochTicker::start(&engine).map_err(|e| PluginError::Engine(e.to_string()))?;
        Ok(PluginHost {
            engine,
            linker,
            policy: ArcSwapOption::empty(),
            limits,
            stats: PluginStats::default(),
            _ticker: ticker,
        })
    }

    /// Compiles `bytes` as a reservation-policy component, links it and makes it the policy.
    /// A component for another world, or one that imports anything beyond the host interface and
    /// the WASI the host allows, is refused and the current policy keeps serving.
    pub fn load_policy(
        &self,
        name: &str,
        version: &str,
        bytes: &[u8],
        settings: BTreeMap<String, String>,
    ) -> Result<Arc<PluginInfo>, PluginError> {
        let refused = |e: wasmtime::Error| PluginError::Refused {
            name: name.to_owned(),
            reason: format!("{e:#}"),
        };
        let component = Component::new(&self.engine, bytes).map_err(refused)?;
        let instance_pre = self.linker.instantiate_pre(&component).map_err(refused)?;
        let pre = ReservationPolicyPre::new(instance_pre).map_err(refused)?;
        let info = Arc::new(PluginInfo {
            name: name.to_owned(),
            version: version.to_owned(),
            digest: lockergrid_protocol::to_hex(&Sha256::digest(bytes)),
        });
        self.policy.store(Some(Arc::new(LoadedPolicy {
            info: info.clone(),
            settings: Arc::new(settings),
            pre,
        })));
        self.stats.consecutive.store(0, Ordering::Relaxed);
        tracing::info!(plugin = %info.name, version = %info.version, digest = %info.digest, "reservation policy loaded");
        Ok(info)
    }

    /// The loaded reservation policy, if one is in service.
    pub fn policy(&self) -> Option<Arc<PluginInfo>> {
        self.policy.load().as_ref().map(|p| p.info.clone())
    }

    /// Orders `candidates` (already in built-in order) with the policy plugin, or keeps the
    /// built-in order if there is none or it fails.
    pub async fn rank_stations(
        self: &Arc<Self>,
        request: RankRequest,
        candidates: Vec<Candidate>,
        now: Timestamp,
    ) -> Ranked {
        let Some(policy) = self.policy.load_full() else {
            return Ranked {
                candidates,
                decider: Decider::BuiltIn(None),
            };
        };
        if candidates.is_empty() {
            return Ranked {
                candidates,
                decider: Decider::Plugin(policy.info.clone()),
            };
        }
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let host = self.clone();
        let stations: Vec<wit::Station> = candidates
            .iter()
            .map(|c| convert::station(c, request.size))
            .collect();
        let call_policy = policy.clone();
        let call = tokio::task::spawn_blocking(move || {
            host.call_rank(&call_policy, request, stations, now)
        });
        let answer = match tokio::time::timeout(self.limits.timeout, call).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(join)) => Err(PluginError::Call(join.to_string())),
            Err(_) => Err(PluginError::Timeout),
        };
        match answer.and_then(|ids| reorder(candidates.clone(), &ids)) {
            Ok(ranked) => {
                self.stats.consecutive.store(0, Ordering::Relaxed);
                Ranked {
                    candidates: ranked,
                    decider: Decider::Plugin(policy.info.clone()),
                }
            }
            Err(e) => {
                self.failed(&policy, &e);
                Ranked {
                    candidates,
                    decider: Decider::BuiltIn(Some(e.to_string())),
                }
            }
        }
    }

    fn call_rank(
        &self,
        policy: &LoadedPolicy,
        request: RankRequest,
        stations: Vec<wit::Station>,
        now: Timestamp,
    ) -> Result<Vec<String>, PluginError> {
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.limits.memory_bytes)
            .instances(4)
            .trap_on_grow_failure(true)
            .build();
        let name: Arc<str> = Arc::from(policy.info.name.as_str());
        let state = CallState::new(name, policy.settings.clone(), limits, now.millis());
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        store.set_epoch_deadline(self.limits.deadline_ticks);
        let instance = policy.pre.instantiate(&mut store).map_err(describe)?;
        let wit_request = wit::ReservationRequest {
            parcel: request.parcel.into(),
            size: request.size.into(),
            tier: request.tier.into(),
            expected_delivery_hours: None,
        };
        let ranking = instance
            .call_rank(&mut store, wit_request, &stations)
            .map_err(describe)?;
        Ok(ranking.stations)
    }

    fn failed(&self, policy: &Arc<LoadedPolicy>, e: &PluginError) {
        self.stats.failures.fetch_add(1, Ordering::Relaxed);
        let in_a_row = self.stats.consecutive.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(plugin = %policy.info.name, version = %policy.info.version, error = %e, "plugin failed; built-in ranking used");
        if in_a_row >= self.limits.failures_before_quarantine {
            // Only the failing version is taken out; a newer one loaded meanwhile stays.
            let current = self.policy.load_full();
            if current.as_ref().is_some_and(|c| Arc::ptr_eq(c, policy)) {
                self.policy.store(None);
                tracing::error!(plugin = %policy.info.name, version = %policy.info.version, failures = in_a_row, "alert: plugin taken out of service");
            }
        }
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

/// The candidates in the order the plugin named them; every name must be a candidate, once.
fn reorder(candidates: Vec<Candidate>, ids: &[String]) -> Result<Vec<Candidate>, PluginError> {
    if ids.is_empty() {
        return Err(PluginError::InvalidAnswer("empty ranking".into()));
    }
    if ids.len() > candidates.len() {
        return Err(PluginError::InvalidAnswer(format!(
            "{} stations ranked, {} offered",
            ids.len(),
            candidates.len()
        )));
    }
    let mut seen = HashSet::new();
    let mut by_id: BTreeMap<&str, &Candidate> = candidates
        .iter()
        .map(|c| (c.station.record.id.as_str(), c))
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if !seen.insert(id.as_str()) {
            return Err(PluginError::InvalidAnswer(format!(
                "station {id:?} ranked twice"
            )));
        }
        let c = by_id.remove(id.as_str()).ok_or_else(|| {
            PluginError::InvalidAnswer(format!("unknown station {:?}", truncate(id)))
        })?;
        out.push(c.clone());
    }
    Ok(out)
}

fn truncate(s: &str) -> &str {
    let mut end = s.len().min(64);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
