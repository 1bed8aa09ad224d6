//! The edge node's plugins (DESIGN.md §5, §7): the site rules of its stations as the gateway
//! binds them, sent with its sync and kept in its store. Each is verified against the keys the
//! edge node was enrolled with — never against keys the gateway could send — then compiled and
//! exercised before it serves, the same way the gateway loads its own. A version the edge node
//! refuses leaves what served before in place, and the edge node reports it slot by slot.

use base64::Engine as _;
use lockergrid_model::{EdgePlugin, PluginRecord, PluginVersion, RefusedPlugin};
use lockergrid_plugin_host::PluginHost;
use lockergrid_store::Store;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// What became of the last binding sent for one slot.
#[derive(Default)]
struct SlotState {
    /// The binding serving there, as installed.
    installed: Option<PluginRecord>,
    /// The last binding refused there, and why.
    refused: Option<(PluginRecord, String)>,
}

/// The edge node's plugin host and what it made of the plugins it was sent.
#[derive(Clone)]
pub(super) struct EdgePlugins {
    pub host: Arc<PluginHost>,
    slots: Arc<Mutex<BTreeMap<String, SlotState>>>,
    changed: Arc<Notify>,
}

impl EdgePlugins {
    pub(super) fn new(host: Arc<PluginHost>) -> EdgePlugins {
        EdgePlugins {
            host,
            slots: Arc::default(),
            changed: Arc::new(Notify::new()),
        }
    }

    /// Asks the loader to look at the store again (a sync batch was applied).
    pub(super) fn changed(&self) {
        self.changed.notify_one();
    }

    /// Loads what the store holds, then again each time it may have changed, until shutdown.
    pub(super) async fn run(self, store: Store, shutdown: CancellationToken) {
        loop {
            self.load(&store).await;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.changed.notified() => {}
            }
        }
    }

    async fn load(&self, store: &Store) {
        let records = match store.mirrored_plugins() {
            Ok(records) => records,
            Err(e) => {
                tracing::error!(error = %e, "plugins not readable; those serving stay");
                return;
            }
        };
        let sent: BTreeMap<String, &PluginRecord> = records.iter().map(|r| (r.slot(), r)).collect();
        let gone: Vec<String> = self
            .lock()
            .keys()
            .filter(|slot| !sent.contains_key(*slot))
            .cloned()
            .collect();
        for slot in gone {
            if let Some(SlotState {
                installed: Some(record),
                ..
            }) = self.lock().remove(&slot)
            {
                self.host
                    .unbind(record.binding.world, &record.binding.scope);
            }
        }
        for (slot, record) in sent {
            {
                let mut slots = self.lock();
                let entry = slots.entry(slot.clone()).or_default();
                if entry.installed.as_ref() == Some(record) {
                    entry.refused = None;
                    continue;
                }
                if entry.refused.as_ref().is_some_and(|(r, _)| r == record) {
                    continue;
                }
            }
            let outcome = self.install(record).await;
            let mut slots = self.lock();
            let entry = slots.entry(slot).or_default();
            match outcome {
                Ok(()) => {
                    entry.installed = Some(record.clone());
                    entry.refused = None;
                }
                Err(reason) => {
                    tracing::error!(world = %record.binding.world, scope = %record.binding.scope, plugin = %record.binding.name, version = %record.binding.version, %reason, "alert: plugin refused at the edge; what served before keeps serving");
                    entry.refused = Some((record.clone(), reason));
                }
            }
        }
    }

    async fn install(&self, record: &PluginRecord) -> Result<(), String> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(record.component.as_bytes())
            .map_err(|e| format!("the component is not base64: {e}"))?;
        self.host
            .install(record.binding.clone(), bytes.into())
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }

    /// Every slot the gateway sent a plugin for: what serves there, what was refused.
    pub(super) fn report(&self) -> Vec<EdgePlugin> {
        self.lock()
            .values()
            .filter_map(|slot| {
                let binding = &slot
                    .installed
                    .as_ref()
                    .or(slot.refused.as_ref().map(|(r, _)| r))?
                    .binding;
                let serving = self
                    .host
                    .serving(binding.world, &binding.scope)
                    .map(|info| PluginVersion {
                        name: info.name.clone(),
                        version: info.version.clone(),
                        digest: info.digest.clone(),
                    });
                let refused = slot.refused.as_ref().map(|(r, reason)| RefusedPlugin {
                    plugin: PluginVersion {
                        name: r.binding.name.clone(),
                        version: r.binding.version.clone(),
                        digest: r.binding.sha256.clone().unwrap_or_default(),
                    },
                    reason: reason.clone(),
                });
                Some(EdgePlugin {
                    world: binding.world,
                    scope: binding.scope.clone(),
                    serving,
                    refused,
                })
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SlotState>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }
}
