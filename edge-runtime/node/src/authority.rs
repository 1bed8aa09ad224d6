//! Who decides a locker's event: DESIGN.md §1's "the nearest node that is up verifies it", as one
//! rule.

use lockergrid_model::CommandRecord;
use lockergrid_protocol::message::DeviceEvent;
use tokio::sync::watch;

/// When a node may decide its lockers' events itself.
#[derive(Debug, Clone)]
pub enum Authority {
    /// The gateway decides every event of the lockers wired to it.
    Gateway,
    /// An edge node decides while its uplink is down (the receiver says whether it is up), and
    /// always for the door of an unlock it issued itself, which the gateway never heard of.
    /// Everything else goes to the gateway, which decides it.
    Edge(watch::Receiver<bool>),
}

impl Authority {
    /// Whether this node decides `event` now. `unlocked` is the node's record of the command a
    /// door-closed event names, if it has one.
    pub fn decides(&self, event: &DeviceEvent, unlocked: Option<&CommandRecord>) -> bool {
        let Authority::Edge(uplink) = self else {
            return true;
        };
        if unlocked.is_some_and(|command| !command.relayed) {
            return true;
        }
        if *uplink.borrow() {
            return false;
        }
        match event {
            DeviceEvent::CodeEntered { .. }
            | DeviceEvent::CodeHashed { .. }
            | DeviceEvent::DoorOpened { .. }
            | DeviceEvent::OfflinePickup { .. }
            | DeviceEvent::CodeRejectedOffline { .. } => true,
            // Whether a device goes active is the registry's, which only the gateway writes.
            DeviceEvent::SelfTest { .. } => false,
            // Rollouts are the gateway's: it counts each locker's outcome.
            DeviceEvent::Firmware { .. } => false,
            // A door no command released (after a pickup the locker decided alone) changes
            // nothing but the record. One naming a command the edge node does not know, and a
            // tamper alarm (which takes the station out of service), wait for the gateway: the
            // locker keeps them until then.
            DeviceEvent::DoorClosed {
                unlocked_by: None, ..
            } => true,
            DeviceEvent::DoorClosed { .. } => unlocked.is_some(),
            DeviceEvent::Tamper { .. } => false,
        }
    }
}
