//! The gateway's side of its edge nodes' sync (see `lockergrid_model`'s sync messages): for each
//! edge node in the deployment, a log of the records its stations need, numbered deltas sent on
//! `edges/{id}/commands` when they change, and catch-up (kept deltas or a full resync) when its
//! report on `edges/{id}/telemetry` shows it behind. What operators see of each edge node lives
//! in [`Devices`](super::Devices).

use crate::config::EdgeNode;
use crate::plugins::PluginStore;
use base64::Engine as _;
use lockergrid_device_plane::LinkTx;
use lockergrid_model::{
    EdgeDownlink, EdgePlugin, EdgeStatus, PluginRecord, SYNC_VERSION, SyncBatch, SyncItem,
    SyncPosition,
};
use lockergrid_model::{KEPT_DELTAS, SyncLog};
use lockergrid_model::{PolicyFile, Scope, World};
use lockergrid_protocol::topic::{Channel, Root, Topic};
use lockergrid_protocol::{Size, StationId, Timestamp};
use lockergrid_store::LeaseWant;
use lockergrid_store::Store;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// How long the gateway waits for an edge node to report a batch applied before sending what it
/// is missing again.
const RESEND_AFTER: Duration = Duration::from_secs(2);

/// What operators see of an edge node.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EdgeState {
    /// Its id.
    pub id: String,
    /// The stations it serves.
    pub stations: Vec<StationId>,
    /// Whether its uplink is connected now.
    pub connected: bool,
    /// When it last reported.
    pub last_seen: Option<Timestamp>,
    /// The newest version of its records at the gateway.
    pub version: u64,
    /// The version it reported holding, if of the gateway's current epoch.
    pub synced_version: Option<u64>,
    /// When it last reported holding the newest version.
    pub last_sync: Option<Timestamp>,
    /// Compartments it reported mirroring.
    pub compartments: u64,
    /// Active pickup codes it reported mirroring.
    pub codes: u64,
    /// Decisions it reported waiting in its outbox.
    pub outbox: u64,
    /// Its clock minus the gateway's when its last report arrived, in milliseconds (transit
    /// time included): the clock it checks code expiry and command windows with offline.
    pub clock_offset_ms: Option<i64>,
    /// Its decisions applied here: the last sequence number.
    pub decisions_applied: u64,
    /// Deltas sent to it since the gateway started.
    pub deltas_sent: u64,
    /// Full resyncs sent to it since the gateway started.
    pub full_resyncs: u64,
    /// The plugins it was sent, as it reported them: what serves at each slot, what it refused.
    pub plugins: Vec<EdgePlugin>,
    /// Its lease at each of its stations.
    pub leases: Vec<LeaseView>,
}

/// One station's lease, as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct LeaseView {
    /// The station.
    pub station: StationId,
    /// The lease's epoch at the gateway.
    pub epoch: u64,
    /// The newest epoch the edge node confirmed.
    pub acked_epoch: u64,
    /// Compartments it holds per size.
    pub sizes: BTreeMap<Size, u32>,
    /// Compartments taken back, held until the edge node confirms.
    pub revoking: usize,
}

impl EdgeState {
    /// How many versions it is behind (all of them before its first report).
    pub fn lag(&self) -> u64 {
        self.version - self.synced_version.unwrap_or(0).min(self.version)
    }
}

/// One edge node's sync at the gateway.
struct Edge {
    stations: BTreeSet<StationId>,
    log: SyncLog,
    acked: Option<SyncPosition>,
    /// Where the node stands once it has applied everything sent to it in this session.
    sent: Option<SyncPosition>,
    /// Its live sessions: a reconnect may open the new one before the old one is closed.
    sessions: u32,
    connected: bool,
    last_sent: Option<Instant>,
    /// Whether it reported since the last batch was sent: a node still applying what it got
    /// (a full resync with its plugins takes a while on a busy machine) is not sent it again.
    heard_since_sent: bool,
    /// The lease epochs it reported holding, by station.
    acked_leases: BTreeMap<StationId, u64>,
}

/// Every edge node's sync, driven by the device task.
pub(super) struct EdgeSync {
    edges: BTreeMap<String, Edge>,
    /// The store commit the logs were last brought up to.
    seen_commit: Option<u64>,
    /// The deployment's revocation list, and its text when last read.
    crl: (PathBuf, String),
    /// The plugin policy in force when last read, and its site rules as sync records.
    plugins: (PolicyFile, Vec<PluginRecord>),
    /// The plugin directory's [`PluginStore::generation`] when the policy was last read.
    seen_policy: Option<u64>,
}

impl EdgeSync {
    /// The deployment's edge nodes, in a new epoch; `crl` is the revocation list they enforce.
    pub(super) fn new(nodes: &[EdgeNode], crl: PathBuf) -> EdgeSync {
        let epoch = lockergrid_protocol::to_hex(&rand::random::<[u8; 8]>());
        let edges = nodes
            .iter()
            .map(|node| {
                let edge = Edge {
                    stations: node.stations.iter().cloned().collect(),
                    log: SyncLog::new(epoch.clone(), KEPT_DELTAS),
                    acked: None,
                    sent: None,
                    sessions: 0,
                    connected: false,
                    last_sent: None,
                    heard_since_sent: false,
                    acked_leases: BTreeMap::new(),
                };
                (node.id.clone(), edge)
            })
            .collect();
        EdgeSync {
            edges,
            seen_commit: None,
            crl: (crl, String::new()),
            plugins: Default::default(),
            seen_policy: None,
        }
    }

    /// The edge node that serves `station`, if one does.
    pub(super) fn edge_of(&self, station: &StationId) -> Option<&str> {
        self.edges
            .iter()
            .find(|(_, edge)| edge.stations.contains(station))
            .map(|(id, _)| id.as_str())
    }

    /// The operators' view of every edge node, before any report.
    pub(super) fn states(&self) -> Vec<EdgeState> {
        self.edges
            .iter()
            .map(|(id, edge)| EdgeState {
                id: id.clone(),
                stations: edge.stations.iter().cloned().collect(),
                version: edge.log.position().version,
                ..EdgeState::default()
            })
            .collect()
    }

    /// Brings every log up to the store's newest commit and sends the new deltas, then sends
    /// catch-up to nodes that have not confirmed the newest version in time.
    pub(super) fn tick(
        &mut self,
        store: &Store,
        plugins: &PluginStore,
        link: &mut LinkTx,
        view: &super::Devices,
    ) {
        let commit = store.snapshot().commit_seq;
        let crl = match std::fs::read_to_string(&self.crl.0) {
            Ok(crl) => crl,
            Err(e) => {
                tracing::error!(error = %e, "revocation list not readable; edge nodes keep theirs");
                self.crl.1.clone()
            }
        };
        // The policy changes only through the plugin directory's handle, which counts its
        // writes: the file is read again only after one.
        let generation = plugins.generation();
        let policy_changed = self.seen_policy != Some(generation);
        if policy_changed && self.read_plugins(plugins) {
            self.seen_policy = Some(generation);
        }
        if self.seen_commit != Some(commit) || crl != self.crl.1 || policy_changed {
            self.seen_commit = Some(commit);
            self.crl.1 = crl;
            for (id, edge) in &mut self.edges {
                match store.lease_sizes(&edge.stations) {
                    Ok(leases) => view.update_edge(id, |s| {
                        s.leases = leases
                            .into_iter()
                            .map(|(l, sizes)| LeaseView {
                                station: l.station,
                                epoch: l.epoch,
                                acked_epoch: l.acked_epoch,
                                sizes: Size::ALL
                                    .into_iter()
                                    .map(|z| (z, sizes[z.index()]))
                                    .collect(),
                                revoking: l.revoking.len(),
                            })
                            .collect();
                    }),
                    Err(e) => tracing::error!(edge = %id, error = %e, "leases not readable"),
                }
                let mut items = match store.mirror_items(&edge.stations) {
                    Ok(items) => items,
                    Err(e) => {
                        tracing::error!(edge = %id, error = %e, "edge records not readable");
                        continue;
                    }
                };
                if !self.crl.1.is_empty() {
                    items.push(SyncItem::Crl {
                        pem: self.crl.1.clone(),
                    });
                }
                items.extend(
                    self.plugins
                        .1
                        .iter()
                        .filter(|p| match &p.binding.scope {
                            Scope::Default | Scope::Region(_) => true,
                            Scope::Station(s) => edge.stations.contains(s),
                        })
                        .cloned()
                        .map(SyncItem::Plugin),
                );
                if let Some(delta) = edge.log.advance(items).cloned() {
                    let version = delta.version;
                    view.update_edge(id, |s| s.version = version);
                    let base = SyncPosition {
                        epoch: delta.epoch.clone(),
                        version: delta.base,
                    };
                    if edge.connected && edge.sent.as_ref() == Some(&base) {
                        send(link, id, edge, vec![delta], view);
                    }
                }
            }
        }
        let now = Instant::now();
        for (id, edge) in &mut self.edges {
            let due = edge.last_sent.is_none_or(|at| now - at >= RESEND_AFTER);
            if edge.connected && edge.heard_since_sent && due {
                let batches = edge.log.catch_up(edge.acked.as_ref());
                if !batches.is_empty() {
                    send(link, id, edge, batches, view);
                }
            }
        }
    }

    /// What each edge node's lease at each of its stations should be: the policy's pool, and the
    /// epoch it last reported holding.
    pub(super) fn lease_wants(&self) -> Vec<LeaseWant> {
        let pool = self.plugins.0.lease.per_size();
        self.edges
            .iter()
            .flat_map(|(id, edge)| {
                edge.stations.iter().map(|station| LeaseWant {
                    station: station.clone(),
                    edge: id.clone(),
                    pool,
                    acked: edge.acked_leases.get(station).copied(),
                })
            })
            .collect()
    }

    /// Reads the plugin policy in force; when it changed, the site rules it binds (the plugins
    /// edge nodes run) with their components and signatures. Whether the policy could be read.
    fn read_plugins(&mut self, store: &PluginStore) -> bool {
        let policy = match store.policy() {
            Ok(policy) => policy.unwrap_or_default(),
            Err(e) => {
                tracing::error!(error = %e, "plugin policy not readable; edge nodes keep their plugins");
                return false;
            }
        };
        if policy == self.plugins.0 {
            return true;
        }
        let records = policy
            .plugins
            .iter()
            .filter(|b| b.world == World::SiteRules)
            .filter_map(|binding| match store.read_component(binding) {
                Ok(bytes) => Some(PluginRecord {
                    binding: binding.clone(),
                    component: base64::engine::general_purpose::STANDARD.encode(bytes),
                }),
                Err(e) => {
                    tracing::error!(world = %binding.world, scope = %binding.scope, error = %e, "plugin not readable; not sent to edge nodes");
                    None
                }
            })
            .collect();
        self.plugins = (policy, records);
        true
    }

    /// An edge node's report: where it stands, which is also its acknowledgement.
    pub(super) fn report(
        &mut self,
        id: &str,
        status: EdgeStatus,
        now: Timestamp,
        link: &mut LinkTx,
        view: &super::Devices,
    ) {
        let Some(edge) = self.edges.get_mut(id) else {
            tracing::warn!(
                edge = id,
                "report from an edge node the deployment does not name"
            );
            return;
        };
        edge.connected = true;
        let newest = edge.log.position();
        let synced = status
            .position
            .as_ref()
            .filter(|p| p.epoch == newest.epoch)
            .map(|p| p.version);
        view.update_edge(id, |s| {
            s.connected = true;
            s.last_seen = Some(now);
            s.synced_version = synced;
            s.compartments = status.compartments;
            s.codes = status.codes;
            s.outbox = status.outbox;
            s.plugins = status.plugins.clone();
            s.clock_offset_ms = Some(
                i64::try_from(status.at.millis()).unwrap_or(i64::MAX)
                    - i64::try_from(now.millis()).unwrap_or(i64::MAX),
            );
            if synced == Some(newest.version) {
                s.last_sync = Some(now);
            }
        });
        edge.acked = status.position;
        edge.heard_since_sent = true;
        edge.acked_leases = status
            .leases
            .iter()
            .map(|l| (l.station.clone(), l.epoch))
            .collect();
        // A node that answers quickly to what was just sent reports each batch it applies; the
        // rest of what was sent is on its way, so only a node that is quiet for a while or has
        // just connected gets catch-up here.
        let quiet = edge.last_sent.is_none_or(|at| at.elapsed() >= RESEND_AFTER);
        if quiet {
            let batches = edge.log.catch_up(edge.acked.as_ref());
            if !batches.is_empty() {
                send(link, id, edge, batches, view);
            }
        }
    }

    /// The front saw an edge node's session begin or end.
    pub(super) fn session(&mut self, id: &str, began: bool, view: &super::Devices) {
        if let Some(edge) = self.edges.get_mut(id) {
            if began {
                edge.sessions += 1;
                // A new session starts with the node's report; nothing sent before it counts.
                edge.last_sent = None;
                edge.sent = None;
                edge.heard_since_sent = false;
            } else {
                edge.sessions = edge.sessions.saturating_sub(1);
            }
            edge.connected = edge.sessions > 0;
            let connected = edge.connected;
            view.update_edge(id, |s| s.connected = connected);
        }
    }
}

fn send(link: &mut LinkTx, id: &str, edge: &mut Edge, sync: Vec<SyncBatch>, view: &super::Devices) {
    let full = sync.iter().filter(|b| b.full).count() as u64;
    let deltas = sync.len() as u64 - full;
    let downlink = EdgeDownlink {
        v: SYNC_VERSION,
        decisions_applied: None,
        sync,
        lockers: Vec::new(),
        firmware: None,
    };
    let json = match serde_json::to_vec(&downlink) {
        Ok(json) => json,
        Err(e) => {
            tracing::error!(edge = id, error = %e, "sync message not encoded");
            return;
        }
    };
    let topic = Topic {
        root: Root::Edge,
        id,
        channel: Channel::Commands,
    }
    .to_string();
    match link.publish(topic, json) {
        Ok(_) => {
            edge.last_sent = Some(Instant::now());
            edge.heard_since_sent = false;
            edge.sent = downlink.sync.last().map(SyncBatch::position);
            view.update_edge(id, |s| {
                s.deltas_sent += deltas;
                s.full_resyncs += full;
            });
        }
        Err(e) => tracing::warn!(edge = id, error = %e, "sync not sent; retrying"),
    }
}
