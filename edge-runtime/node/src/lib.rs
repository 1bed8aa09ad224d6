//! What any Lockergrid node does with its lockers, whichever node it is: the gateway for the
//! lockers wired to it, an edge node for its own (DESIGN.md §1, §7).
//!
//! One implementation of each rule: a code typed on a keypad or a station's screen
//! ([`Node::enter_code`]: the lock-out, the code, the parcel or return it opens, the site rules,
//! the unlock), a locker's events applied once through the inbox ([`Node::on_event`]), and the
//! signed commands and acknowledgements that travel to and from a locker ([`sign_unlock`],
//! [`command_event`], [`ack_for`]), and the code caches it keeps on its lockers for when no node
//! answers them ([`CodeCaches`]), and who its device front admits ([`follow_registry`]). A node decides by its [`Authority`]: the gateway always, an edge
//! node while its uplink is down and for the doors of the unlocks it issued itself.
//!
//! It depends on the store, the plugin host and the device plane's identities, and must never
//! depend on the HTTP layer, the gateway or the edge node's task: both of those use it.

mod actors;
mod admission;
mod audit;
mod authority;
mod caches;
mod code_entry;
mod commands;
mod events;
mod site_rules;
mod telemetry;

pub use actors::*;
pub use admission::*;
pub use audit::*;
pub use authority::*;
pub use caches::*;
pub use code_entry::*;
pub use commands::*;
pub use events::*;
pub use site_rules::*;

use lockergrid_plugin_host::PluginHost;
use lockergrid_protocol::Timestamp;
use lockergrid_store::Store;
use std::sync::Arc;

/// What a node is made of.
pub struct NodeOptions {
    /// Its store.
    pub store: Store,
    /// The plugin host whose site rules it asks.
    pub plugins: Arc<PluginHost>,
    /// Local time at its stations, minutes east of UTC.
    pub utc_offset_minutes: i32,
    /// When it may decide.
    pub authority: Authority,
}

/// A node's side of its lockers. Shared (`Arc`) by everything at the node that hands it code
/// entries and events; wrong codes are counted in its store.
pub struct Node {
    store: Store,
    plugins: Arc<PluginHost>,
    utc_offset_minutes: i32,
    authority: Authority,
}

impl Node {
    /// A node over `options`.
    pub fn new(options: NodeOptions) -> Node {
        Node {
            store: options.store,
            plugins: options.plugins,
            utc_offset_minutes: options.utc_offset_minutes,
            authority: options.authority,
        }
    }

    /// Its store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Minutes since local midnight at the node's stations at `at`.
    pub fn local_minute_at(&self, at: Timestamp) -> u16 {
        let minutes = (at.millis() / 60_000) as i64 + i64::from(self.utc_offset_minutes);
        minutes.rem_euclid(24 * 60) as u16
    }
}

#[cfg(test)]
mod tests;
