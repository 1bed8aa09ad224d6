//! On an edge node: the gateway's command for one of its lockers, with the edge node's counter.

use crate::commands::next_counter;
use crate::tables::COMMANDS_V1;
use crate::writer::{Tx, Writer};
use crate::{Store, StoreError};
use lockergrid_model::{CommandRecord, CommandStatus};

impl Store {
    /// On an edge node: records the gateway's command for one of its lockers with the locker's
    /// next counter, or returns it as recorded before (with the locker's answer, if any).
    pub async fn relay_command(&self, command: CommandRecord) -> Result<CommandRecord, StoreError> {
        self.write(move |w, tx| w.relay_command(tx, command)).await
    }
}

impl Writer {
    /// An edge node takes on the gateway's command for one of its lockers: the first time with
    /// the locker's next counter of its own, pending; again, as it was recorded (settled, if the
    /// locker has answered since).
    pub(crate) fn relay_command(
        &mut self,
        tx: &mut Tx<'_>,
        command: CommandRecord,
    ) -> Result<CommandRecord, StoreError> {
        if let Some(known) = COMMANDS_V1.get(&tx.commands, command.id.as_str())? {
            return Ok(known);
        }
        let record = CommandRecord {
            counter: next_counter(tx, &command.station_id)?,
            status: CommandStatus::Pending,
            detail: None,
            closed_by: None,
            relayed: true,
            ..command
        };
        self.keep_pending(tx, &record)?;
        Ok(record)
    }
}
