//! What a node's device front saw — refused handshakes, sessions opened and closed, topic
//! violations, revoked or dismissed sessions cut, sessions taken over — written to the node's hash-chained access log, the same
//! way at the gateway and at an edge node.

use crate::device_actor;
use lockergrid_device_plane::{Audit, Identity};
use lockergrid_store::Store;

/// Records `audit` in `store`'s access log: the device as actor (`unknown-device` when the front
/// could not tell), its id as target (the peer's address for a refused handshake).
pub async fn record_audit(store: &Store, audit: &Audit) {
    let (identity, action, target, outcome) = match audit {
        Audit::Refused {
            peer,
            identity,
            reason,
        } => (
            identity.as_ref(),
            "device_refused",
            peer.to_string(),
            reason.clone(),
        ),
        Audit::Connected { identity, serial } => (
            Some(identity),
            "device_connected",
            identity.id.clone(),
            format!("serial {serial}"),
        ),
        Audit::Violation { identity, attempt } => (
            Some(identity),
            "device_violation",
            identity.id.clone(),
            format!("disconnected: {attempt}"),
        ),
        Audit::Revoked { identity, serial } => (
            Some(identity),
            "device_revoked",
            identity.id.clone(),
            format!("session cut: serial {serial} revoked"),
        ),
        Audit::Dismissed { identity, reason } => (
            Some(identity),
            "device_dismissed",
            identity.id.clone(),
            format!("session cut: {reason}"),
        ),
        Audit::Takeover {
            identity,
            peer,
            previous,
        } => (
            Some(identity),
            "device_takeover",
            identity.id.clone(),
            format!("{peer} took over the session of {previous}"),
        ),
        Audit::Disconnected { identity } => (
            Some(identity),
            "device_disconnected",
            identity.id.clone(),
            "closed".into(),
        ),
    };
    let actor = device_actor(identity);
    tracing::info!(device = %actor.subject, action, %outcome, "device plane");
    if let Err(e) = store.record(actor, action, &target, &outcome, None).await {
        tracing::error!(error = %e, ?audit, "device audit not recorded");
    }
}

/// Whether `audit` began (`true`) or ended (`false`) a session of its identity: every session
/// that began with `Connected` ends with `Disconnected`, once, whatever cut it; a reconnect may
/// begin the new session before the old one ends.
pub fn session_change(audit: &Audit) -> Option<(&Identity, bool)> {
    match audit {
        Audit::Connected { identity, .. } => Some((identity, true)),
        Audit::Disconnected { identity } => Some((identity, false)),
        Audit::Refused { .. }
        | Audit::Violation { .. }
        | Audit::Revoked { .. }
        | Audit::Dismissed { .. }
        | Audit::Takeover { .. } => None,
    }
}
