//! What the edge node decides itself while its uplink is down, and its outbox: each decision is
//! written with the edge node's next sequence number in the transaction that makes it, and sent
//! to the gateway, oldest first, once the uplink is back (docs/offline.md).

use super::node::{EdgeNode, device_actor};
use lockergrid_model::DecidedBy;
use lockergrid_model::World;
use lockergrid_model::{AccessAttempt, AccessDecision, AccessMethod, AccessRole};
use lockergrid_model::{EdgeUplink, SYNC_VERSION, UplinkBody};
use lockergrid_protocol::message::{DeviceEvent, EventMessage, MESSAGE_VERSION};
use lockergrid_protocol::topic::Channel;
use lockergrid_protocol::{LockerId, PickupCode, StationId};
use lockergrid_store::{ChangeError, DoorClosedEvent, OfflinePickup, PickupUnlock, SettledEvent};
use rumqttc::QoS;
use std::time::{Duration, Instant};

/// A code the site rules would not let open its compartment.
struct Denied {
    /// The parcel or return the code is for.
    target: String,
    reason: String,
    decided_by: DecidedBy,
}

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
/// Most bytes of decisions in one message: under the 64 KiB the gateway's device front accepts
/// in one packet (a larger one would cost the connection, every time it is sent again).
const DRAIN_BYTES: usize = 48 * 1024;
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
        // The door of an unlock the edge node issued itself (offline) closes: the edge node
        // completes it, whether or not the uplink is back, for the gateway has never heard of
        // that command; everything else waits for the gateway while it is reachable.
        let unlocked = match &event.event {
            DeviceEvent::DoorClosed {
                unlocked_by: Some(command),
                ..
            } => self.store.command(command).ok().flatten(),
            _ => None,
        };
        let own_door = unlocked.as_ref().is_some_and(|c| !c.relayed);
        if *self.connected.borrow() && !own_door {
            return false;
        }
        let actor = device_actor("locker", locker.as_str());
        let decided = match event.event {
            DeviceEvent::CodeEntered { code } => {
                let now = self.store.now();
                let refused = |target: String, outcome: String, decided_by| SettledEvent {
                    station: station.clone(),
                    event: event.id.clone(),
                    actor: actor.clone(),
                    action: "pickup".into(),
                    target,
                    outcome,
                    decided_by,
                };
                // The station's lock-out after wrong codes holds at the edge node too.
                let code = match (
                    self.attempts.locked(&station, now),
                    PickupCode::parse(&code),
                ) {
                    (Some(_), _) => {
                        let settled = refused(station.to_string(), "locked_out".into(), None);
                        return self.refuse(locker, settled).await;
                    }
                    (None, Err(_)) => {
                        self.attempts.fail(&station, now);
                        let settled = refused(station.to_string(), "code_rejected".into(), None);
                        return self.refuse(locker, settled).await;
                    }
                    (None, Ok(code)) => code,
                };
                let decided_by = match self.site_rules(&station, &code).await {
                    Ok(decided_by) => decided_by,
                    Err(Denied {
                        target,
                        reason,
                        decided_by,
                    }) => {
                        tracing::info!(%locker, %reason, "code denied by site rules at the edge");
                        let outcome = format!("denied by site rules: {reason}");
                        let settled = refused(target, outcome, Some(decided_by));
                        return self.refuse(locker, settled).await;
                    }
                };
                let here = station.clone();
                let unlock = PickupUnlock {
                    station,
                    code,
                    event: Some(event.id.clone()),
                    actor,
                    decided_by,
                    valid: UNLOCK_VALID,
                };
                match self.store.unlock_for_pickup(unlock).await {
                    Ok(command) => Ok(command),
                    Err(ChangeError::Store(e)) => Err(e),
                    Err(ChangeError::CodeRejected) => {
                        self.attempts.fail(&here, now);
                        tracing::info!(%locker, "code refused at the edge");
                        Ok(None)
                    }
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
                if unlocked.is_none() {
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

    /// Records a code entry that opens nothing (once, through the inbox, as one of its
    /// decisions) and acknowledges it to the locker; `false` when it could not be recorded.
    async fn refuse(&mut self, locker: &LockerId, settled: SettledEvent) -> bool {
        let event = settled.event.clone();
        match self.store.settle_event(settled).await {
            Ok(_) => {
                self.tell_locker(locker, None, vec![event]);
                true
            }
            Err(e) => {
                tracing::error!(%locker, error = %e, "refusal not recorded; the locker sends the code again");
                false
            }
        }
    }

    /// Asks the site rules of `station` about a code that would open something (as the gateway
    /// does): who allowed it, or the denial to record. A code that opens nothing is not asked
    /// about.
    async fn site_rules(
        &self,
        station: &StationId,
        code: &PickupCode,
    ) -> Result<Option<DecidedBy>, Denied> {
        let opens = match self.store.parcel_for_code(station, code) {
            Ok(Some(parcel)) => Some((parcel.id.to_string(), parcel.compartment_id)),
            _ => match self.store.return_for_code(station, code) {
                Ok(Some((r, Some(compartment)))) => Some((r.id.to_string(), compartment)),
                _ => None,
            },
        };
        let Some((target, compartment)) = opens else {
            return Ok(None);
        };
        let at = self.store.now();
        let minutes = (at.millis() / 60_000) as i64 + i64::from(self.utc_offset_minutes);
        let attempt = AccessAttempt {
            station: station.clone(),
            compartment,
            role: AccessRole::Customer,
            method: AccessMethod::PickupCode,
            at,
            local_minute: minutes.rem_euclid(24 * 60) as u16,
            climate_controlled: false,
        };
        let checked = self.plugins.host.check_access(&attempt).await;
        let decided_by = checked.decider.decided_by(World::SiteRules);
        match checked.answer {
            AccessDecision::Allow => Ok(Some(decided_by)),
            AccessDecision::Deny(reason) => Err(Denied {
                target,
                reason,
                decided_by,
            }),
        }
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
        self.drain.next = Instant::now() + self.drain.wait;
        self.drain.wait = (self.drain.wait * 2).min(DRAIN_RETRY_MAX);
    }
}
