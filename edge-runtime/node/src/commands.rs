//! The commands a node sends its lockers and what their acknowledgements mean: one encoding for
//! the gateway's and an edge node's (DESIGN.md §6).

use lockergrid_model::{CommandEvent, CommandRecord, CommandStatus};
use lockergrid_protocol::command::SignedCommand;
use lockergrid_protocol::command::{Action, COMMAND_VERSION, CachedCode, Command, CommandKey};
use lockergrid_protocol::message::{AckMessage, MESSAGE_VERSION, Outcome};
use lockergrid_protocol::{CompartmentId, LockerId, Lockout, Timestamp};
use std::time::Duration;

/// How long an unlock command is valid; a node resends it until the locker acknowledges it.
pub const UNLOCK_VALID: Duration = Duration::from_secs(60);

/// The unlock `record` describes, for `locker`, signed with the node's `key`.
pub fn sign_unlock(key: &CommandKey, locker: &LockerId, record: &CommandRecord) -> SignedCommand {
    Command {
        version: COMMAND_VERSION,
        locker: locker.clone(),
        compartment: record.compartment_id.clone(),
        action: Action::Unlock,
        id: record.id.clone(),
        counter: record.counter,
        issued_at: record.issued_at,
        expires_at: record.expires_at,
    }
    .sign(key)
}

/// A locker's code cache: its station's code key and active codes, so it can check codes itself
/// when no node answers. `compartment` is any of its compartments (the command concerns the
/// whole locker); `counter` the locker's next.
pub struct CodeCache {
    /// The locker.
    pub locker: LockerId,
    /// Any compartment of it.
    pub compartment: CompartmentId,
    /// The station's code key, hex.
    pub key: String,
    /// The station's active codes.
    pub codes: Vec<CachedCode>,
    /// The station's wrong-code count.
    pub lockout: Lockout,
    /// The station is locked down: the locker opens nothing from its cache.
    pub locked_down: bool,
    /// The locker's next counter.
    pub counter: u64,
}

/// The prefix of the ids of code-cache commands; their acknowledgements settle nothing.
pub const CACHE_COMMAND: &str = "codes-";

impl CodeCache {
    /// The `sync_codes` command, valid for [`UNLOCK_VALID`] from `now`, signed with `key`.
    pub fn sign(self, key: &CommandKey, now: Timestamp) -> SignedCommand {
        Command {
            version: COMMAND_VERSION,
            locker: self.locker,
            compartment: self.compartment,
            action: Action::SyncCodes {
                key: self.key,
                codes: self.codes,
                lockout: self.lockout,
                locked_down: self.locked_down,
            },
            id: format!("{CACHE_COMMAND}{}", self.counter),
            counter: self.counter,
            issued_at: now,
            expires_at: now.plus(UNLOCK_VALID),
        }
        .sign(key)
    }
}

/// What a locker's acknowledgement makes of its command: the event its lifecycle takes and the
/// locker's reason.
pub fn command_event(outcome: Outcome) -> (CommandEvent, Option<String>) {
    match outcome {
        Outcome::Executed => (CommandEvent::Executed, None),
        Outcome::Refused { reason } => (CommandEvent::Refused, Some(reason)),
        Outcome::Failed { reason } => (CommandEvent::Failed, Some(reason)),
    }
}

/// The acknowledgement a locker gave for a settled command, to tell again; `None` while it is
/// pending or after it expired unanswered.
pub fn ack_for(record: &CommandRecord) -> Option<AckMessage> {
    let reason = record.detail.clone().unwrap_or_default();
    let outcome = match record.status {
        CommandStatus::Executed => Outcome::Executed,
        CommandStatus::Failed => Outcome::Failed { reason },
        CommandStatus::Refused => Outcome::Refused { reason },
        CommandStatus::Pending | CommandStatus::Expired => return None,
    };
    Some(AckMessage {
        v: MESSAGE_VERSION,
        command: record.id.clone(),
        outcome,
    })
}

impl crate::Node {
    /// A locker of `station` reported `last`, the counter of the last command it executed. A
    /// node whose own count is behind (its store restored from an older backup) would sign
    /// only commands the locker refuses as replays; it takes the locker's count, on record.
    pub async fn counter_seen(&self, station: &lockergrid_protocol::StationId, last: u64) {
        match self.store.command_counter(station) {
            Ok(counter) if counter >= last => return,
            Ok(_) => {}
            Err(e) => {
                tracing::error!(%station, error = %e, "command counter not read");
                return;
            }
        }
        let actor = crate::locker_actor(station.as_str());
        match self.store.raise_counter(station.clone(), last, actor).await {
            Ok(Some(before)) => {
                tracing::warn!(%station, before, after = last, "alert: command counter behind the locker's; raised")
            }
            Ok(None) => {}
            Err(e) => tracing::error!(%station, error = %e, "command counter not raised"),
        }
    }
}
