//! The command outbox: every unlock or cache command a node issues gets the locker's next
//! counter and stays in `pending_commands_v1` until the locker acknowledges it or it expires
//! (settling is `ops/settle_command.rs`). Nothing here depends on what a command is for.

use super::tables::{COMMANDS_V1, LOCKERS_V1, PENDING_COMMANDS_V1};
use super::writer::{Tx, Writer};
use super::{StoreError, new_id};
use lockergrid_model::{Actor, CommandRecord, CommandStatus, DecidedBy, UnlockFor};
use lockergrid_protocol::{CompartmentId, StationId};
use std::time::Duration;

/// What a new command is for and who asked.
pub(super) struct Issue<'a> {
    pub station: &'a StationId,
    pub compartment: &'a CompartmentId,
    pub unlock_for: UnlockFor,
    pub actor: &'a Actor,
    pub decided_by: &'a Option<DecidedBy>,
    pub valid: Duration,
}

/// The next command counter of `station`'s locker, recorded.
pub(super) fn next_counter(tx: &mut Tx<'_>, station: &StationId) -> Result<u64, StoreError> {
    let mut locker = LOCKERS_V1
        .get(&tx.lockers, station.as_str())?
        .unwrap_or_default();
    locker.counter += 1;
    LOCKERS_V1.put(&mut tx.lockers, station.as_str(), &locker)?;
    Ok(locker.counter)
}

/// Whether a command to `station`'s locker still waits for its acknowledgement.
pub(super) fn has_pending(tx: &Tx<'_>, station: &StationId) -> Result<bool, StoreError> {
    for (id, _) in PENDING_COMMANDS_V1.entries(&tx.pending_commands)? {
        if COMMANDS_V1
            .get(&tx.commands, id.as_str())?
            .is_some_and(|c| &c.station_id == station)
        {
            return Ok(true);
        }
    }
    Ok(false)
}

impl Writer {
    /// A new pending command with the locker's next counter.
    pub(super) fn issue(
        &mut self,
        tx: &mut Tx<'_>,
        issue: Issue<'_>,
    ) -> Result<CommandRecord, StoreError> {
        let record = CommandRecord {
            id: new_id("cmd"),
            station_id: issue.station.clone(),
            compartment_id: issue.compartment.clone(),
            counter: next_counter(tx, issue.station)?,
            issued_at: tx.now,
            expires_at: tx.now.plus(issue.valid),
            unlock_for: issue.unlock_for,
            actor: issue.actor.clone(),
            decided_by: issue.decided_by.clone(),
            status: CommandStatus::Pending,
            detail: None,
            closed_by: None,
            relayed: false,
        };
        self.keep_pending(tx, &record)?;
        Ok(record)
    }

    pub(super) fn keep_pending(
        &mut self,
        tx: &mut Tx<'_>,
        record: &CommandRecord,
    ) -> Result<(), StoreError> {
        COMMANDS_V1.put(&mut tx.commands, record.id.as_str(), record)?;
        PENDING_COMMANDS_V1.put(
            &mut tx.pending_commands,
            record.id.as_str(),
            &record.expires_at,
        )
    }
}
