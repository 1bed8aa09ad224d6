//! What the edge node decides itself while its uplink is down, and its outbox: each decision is
//! written with the edge node's next sequence number in the transaction that makes it, and sent
//! to the gateway, oldest first, once the uplink is back (docs/offline.md).

use super::node::{EdgeNode, device_actor};
use crate::store::records::UnlockFor;
use crate::store::{ChangeError, DoorClosedEvent, OfflinePickup, PickupUnlock, SettledEvent};
use crate::sync::{EdgeUplink, SYNC_VERSION, UplinkBody};
use lockergrid_protocol::message::{DeviceEvent, EventMessage, MESSAGE_VERSION};
use lockergrid_protocol::topic::Channel;
use lockergrid_protocol::{LockerId, PickupCode, StationId};
use rumqttc::QoS;
use std::time::{Duration, Instant};

/// The outbox's schedule: at once on connecting and after every confirmation, otherwise again
/// after a wait that doubles from [`DRAIN_RETRY`] to [`DRAIN_RETRY_MAX`].
pub(super) struct Drain {
    pub next: Instant,
    pub wait: Duration,
}

/// First wait for the gateway's confirmation before the outbox is sent again.
const DRAIN_RETRY: Duration = Duration::from_secs(1);
/// Longest wait.
const DRAIN_RETRY_MAX: Duration = Duration::from_secs(30);
/// Most decisions in one message.
const DRAIN_BATCH: usize = 256;
/// How long an unlock the edge node issues itself is valid.
pub(super) const UNLOCK_VALID: Duration = Duration::from_secs(60);

impl Default for Drain {
    fn default() -> Drain {
        Drain {
            next: Instant::now(),
            wait: DRAIN_RETRY,
        }
    }
}

impl EdgeNode {
    /// Decides a locker's event here, if this edge node may: an event it applied before (its
    /// acknowledgement was lost) is acknowledged again; while the uplink is down, a code entry
    /// and the door closing after a pickup unlock are decided here and acknowledged. `false`
    /// leaves the event to the gateway (the locker keeps it until the gateway has it).
    pub(super) async fn decide(&mut self, locker: &LockerId, message: &serde_json::Value) -> bool {
        let Ok(event) = serde_json::from_value::<EventMessage>(message.clone()) else {
            return false;
        };
        let Ok(station) = StationId::new(locker.as_str()) else {
            return false;
        };
        if event.v != MESSAGE_VERSION || event.locker != *locker {
            return false;
        }
        if self
            .store
            .event_applied(&station, &event.id)
            .unwrap_or(false)
        {
            self.tell_locker(locker, None, vec![event.id]);
            return true;
        }
        if *self.connected.borrow() {
            return false;
        }
        let actor = device_actor("locker", locker.as_str());
        let decided = match event.event {
            DeviceEvent::CodeEntered { code } => {
                let Ok(code) = PickupCode::parse(&code) else {
                    return false;
                };
                let unlock = PickupUnlock {
                    station,
                    code,
                    event: Some(event.id.clone()),
                    actor,
                    decided_by: None,
                    valid: UNLOCK_VALID,
                };
                match self.store.unlock_for_pickup(unlock).await {
                    Ok(command) => Ok(command),
                    Err(ChangeError::Store(e)) => Err(e),
                    Err(refused) => {
                        tracing::info!(%locker, %refused, "code refused at the edge");
                        Ok(None)
                    }
                }
            }
            DeviceEvent::DoorClosed {
                compartment,
                unlocked_by: Some(command),
            } => {
                let ours = self
                    .store
                    .command(&command)
                    .ok()
                    .flatten()
                    .is_some_and(|c| matches!(c.unlock_for, UnlockFor::Pickup { .. }));
                if !ours {
                    return false;
                }
                let closed = DoorClosedEvent {
                    station,
                    event: event.id.clone(),
                    compartment,
                    unlocked_by: Some(command),
                    actor,
                };
                self.store.door_closed(closed).await.map(|_| None)
            }
            DeviceEvent::DoorOpened { compartment } => {
                let settled = SettledEvent {
                    station,
                    event: event.id.clone(),
                    actor,
                    action: "door_opened".into(),
                    target: compartment.to_string(),
                    outcome: "opened".into(),
                    decided_by: None,
                };
                self.store.settle_event(settled).await.map(|_| None)
            }
            DeviceEvent::OfflinePickup {
                compartment,
                code_hash,
            } => {
                let pickup = OfflinePickup {
                    station,
                    event: event.id.clone(),
                    compartment,
                    code_hash,
                    actor,
                };
                self.store.offline_pickup(pickup).await.map(|_| None)
            }
            DeviceEvent::DoorClosed { .. } | DeviceEvent::Tamper { .. } => return false,
        };
        match decided {
            Ok(command) => {
                let signed = command.map(|c| self.sign(locker, &c));
                self.tell_locker(locker, signed, vec![event.id]);
                true
            }
            Err(e) => {
                tracing::error!(%locker, error = %e, "event not decided; the locker sends it again");
                false
            }
        }
    }

    /// Sends the oldest decisions of the outbox, and schedules the next attempt.
    pub(super) fn send_outbox(&mut self) {
        let decisions = match self.store.edge_outbox(DRAIN_BATCH) {
            Ok(decisions) if decisions.is_empty() => return,
            Ok(decisions) => decisions,
            Err(e) => {
                tracing::error!(error = %e, "outbox unreadable");
                return;
            }
        };
        let uplink = EdgeUplink {
            v: SYNC_VERSION,
            body: UplinkBody::Decisions { decisions },
        };
        if let Ok(json) = serde_json::to_vec(&uplink)
            && let Err(e) =
                self.client
                    .try_publish(self.topic(Channel::Events), QoS::AtLeastOnce, false, json)
        {
            tracing::warn!(error = %e, "outbox not sent; retrying");
        }
        self.drain.next = Instant::now() + self.drain.wait;
        self.drain.wait = (self.drain.wait * 2).min(DRAIN_RETRY_MAX);
    }
}
