//! Who the access log names for what a device did.

use lockergrid_device_plane::{Identity, Kind};
use lockergrid_model::Actor;

/// The actor for a device, by its certificate's identity; `unknown-device` when the front could
/// not tell who it was.
pub fn device_actor(identity: Option<&Identity>) -> Actor {
    Actor {
        subject: identity.map_or_else(
            || "unknown-device".into(),
            |i| format!("{}:{}", i.kind, i.id),
        ),
        role: "device".into(),
    }
}

/// The actor for a locker (a locker has its station's id).
pub fn locker_actor(locker: &str) -> Actor {
    device_actor(Some(&Identity {
        kind: Kind::Locker,
        id: locker.to_owned(),
    }))
}
