//! An edge node (DESIGN.md §7): its own store, mirroring the stations it serves, kept in step
//! with the gateway through its uplink (see [`crate::sync`]).

use crate::clock::Clock;
use crate::store::{Store, StoreError, StoreOptions};
use crate::sync::uplink::{self, UplinkOptions};
use lockergrid_protocol::CodeKey;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Name of the edge node's store file in its data directory.
pub const EDGE_STORE_FILE: &str = "edge.redb";

/// How to run an edge node.
pub struct EdgeOptions {
    /// Its data directory (the store lives here).
    pub data_dir: PathBuf,
    /// The uplink to the gateway.
    pub uplink: UplinkOptions,
    /// Its clock.
    pub clock: Arc<dyn Clock>,
}

/// An edge node that is running; dropping it stops the uplink.
pub struct RunningEdge {
    store: Store,
    connected: watch::Receiver<bool>,
    shutdown: CancellationToken,
    uplink: Option<JoinHandle<()>>,
}

/// Opens the edge node's store and starts its uplink.
pub fn start(options: EdgeOptions) -> Result<RunningEdge, StoreError> {
    let store = Store::open(
        &options.data_dir.join(EDGE_STORE_FILE),
        StoreOptions {
            clock: options.clock,
            // The edge node issues no codes: the codes it mirrors keep the gateway's keyed
            // hashes, so the key its own store would hash with is never used and not kept.
            code_key: CodeKey::from_bytes(rand::random()),
            commit_observer: None,
        },
    )?;
    let (connected_tx, connected) = watch::channel(false);
    let shutdown = CancellationToken::new();
    let uplink = tokio::spawn(uplink::run(
        options.uplink,
        store.clone(),
        connected_tx,
        shutdown.clone(),
    ));
    Ok(RunningEdge {
        store,
        connected,
        shutdown,
        uplink: Some(uplink),
    })
}

impl RunningEdge {
    /// The edge node's store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Whether the uplink is connected now; changes as it comes and goes.
    pub fn connected(&self) -> watch::Receiver<bool> {
        self.connected.clone()
    }

    /// Stops the uplink and waits for it.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        if let Some(uplink) = self.uplink.take() {
            let _ = uplink.await;
        }
    }
}

impl Drop for RunningEdge {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
