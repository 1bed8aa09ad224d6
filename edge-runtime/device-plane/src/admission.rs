//! Who may connect beyond holding a valid, unrevoked certificate of the deployment's CA: the
//! node's device registry says which identities it serves and, for lockers, the one certificate
//! each was provisioned with. The node replaces the list whenever its registry changes; live
//! sessions the new list no longer admits are cut at once.

use crate::{Identity, Kind};
use arc_swap::ArcSwap;
use lockergrid_protocol::to_hex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

/// What an admitted identity must present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admit {
    /// Any unrevoked certificate of the CA that names it (edge nodes, whose certificates the
    /// gateway issues itself at enrolment).
    AnyCertificate,
    /// Exactly the certificate with this serial, lowercase hex (a locker, as the registry
    /// provisioned it).
    Serial(String),
}

/// The identities a node's device front lets in; a new list admits nobody.
#[derive(Debug)]
pub struct Admission {
    allowed: ArcSwap<HashMap<Identity, Admit>>,
    changed: watch::Sender<u64>,
}

impl Admission {
    /// A list admitting exactly `entries`.
    pub fn new(entries: impl IntoIterator<Item = (Identity, Admit)>) -> Arc<Admission> {
        Arc::new(Admission {
            allowed: ArcSwap::from_pointee(entries.into_iter().collect()),
            changed: watch::Sender::new(0),
        })
    }

    /// Replaces the list; the front cuts live sessions it no longer admits.
    pub fn replace(&self, entries: impl IntoIterator<Item = (Identity, Admit)>) {
        self.allowed.store(Arc::new(entries.into_iter().collect()));
        self.changed.send_modify(|v| *v += 1);
    }

    /// Whether `identity` presenting the certificate `serial` may connect; the reason when not.
    pub fn check(&self, identity: &Identity, serial: &[u8]) -> Result<(), String> {
        match self.allowed.load().get(identity) {
            Some(Admit::AnyCertificate) => Ok(()),
            Some(Admit::Serial(want)) if *want == to_hex(serial) => Ok(()),
            Some(Admit::Serial(want)) => Err(format!(
                "certificate {} is not the one {identity} was provisioned with ({want})",
                to_hex(serial),
            )),
            None if identity.kind == Kind::Node => {
                Err("a node certificate serves; it does not connect as a device".into())
            }
            None => Err(format!(
                "{identity} is not a provisioned or active device of this node"
            )),
        }
    }

    /// A receiver that sees a new value after each [`Admission::replace`].
    pub(crate) fn watch(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}
