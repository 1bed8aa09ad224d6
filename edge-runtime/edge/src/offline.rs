//! What the edge node decides itself, and its outbox: while its uplink is down its node decides
//! code entries and doors (and always the doors of its own unlocks); each decision is written
//! with the edge node's next sequence number in the transaction that makes it, and sent to the
//! gateway, oldest first, once the uplink is back (docs/offline.md).

use super::task::EdgeTask;
use lockergrid_model::{EdgeUplink, SYNC_VERSION, UplinkBody};
use lockergrid_node::{Effect, Handled, sign_unlock};
use lockergrid_protocol::message::{EventMessage, MESSAGE_VERSION};
use lockergrid_protocol::topic::Channel;
use lockergrid_protocol::{LockerId, StationId};
use rumqttc::QoS;

/// Most decisions in one message.
const DRAIN_BATCH: usize = 256;
/// Most bytes of decisions in one message: well under the packet the gateway's device front
/// accepts from an edge node (`MAX_UPLINK`; a larger one would cost the connection, every time
/// it is sent again), so one message stays quick to send and to apply.
const DRAIN_BYTES: usize = 48 * 1024;

impl EdgeTask {
    /// Hands a locker's event to the edge node's node, which decides it if it may: an event it
    /// applied before (its acknowledgement was lost) is acknowledged again, one it decides now is
    /// acknowledged with the unlock it issued, if any. `false` leaves the event to the gateway
    /// (the locker keeps it until the gateway has it).
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
        let id = event.id.clone();
        let unlock = match self.node.on_event(&station, event).await {
            Handled::NotOurs => return false,
            Handled::Failed(e) => {
                tracing::error!(%locker, error = %e, "event not decided; the locker sends it again");
                return false;
            }
            Handled::Duplicate => None,
            Handled::Applied(Effect::Unlock(command)) => {
                Some(sign_unlock(&self.key, locker, &command))
            }
            Handled::Applied(_) => None,
        };
        self.tell_locker(locker, unlock, vec![id], None);
        true
    }

    /// Sends the oldest decisions of the outbox, and schedules the next attempt.
    pub(super) fn send_outbox(&mut self) {
        let mut decisions = match self.store.edge_outbox(DRAIN_BATCH) {
            Ok(decisions) if decisions.is_empty() => return,
            Ok(decisions) => decisions,
            Err(e) => {
                tracing::error!(error = %e, "outbox unreadable");
                return;
            }
        };
        let mut bytes = 0;
        let fit = decisions
            .iter()
            .take_while(|d| {
                bytes += serde_json::to_vec(d).map_or(0, |json| json.len() + 1);
                bytes <= DRAIN_BYTES
            })
            .count();
        decisions.truncate(fit.max(1));
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
        self.drain.sent();
    }
}
