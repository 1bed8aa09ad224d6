//! A command settled: the locker's acknowledgement or its expiry takes it out of the outbox.

use crate::access_log::Draft;
use crate::tables::COMMANDS_V1;
use crate::writer::{Tx, Writer};
use crate::{Store, StoreError};
use lockergrid_model::{Actor, CommandEvent, CommandRecord};

impl Store {
    /// Takes a command out of the outbox with what became of it (the locker's acknowledgement,
    /// or its expiry); `None` if it was not pending.
    pub async fn settle_command(
        &self,
        id: String,
        event: CommandEvent,
        detail: Option<String>,
        actor: Actor,
    ) -> Result<Option<CommandRecord>, StoreError> {
        self.write(move |w, tx| w.settle_command(tx, &id, event, detail, actor))
            .await
    }
}

impl Writer {
    /// Takes a command out of the outbox with what became of it; `None` if it was not pending.
    pub(crate) fn settle_command(
        &mut self,
        tx: &mut Tx<'_>,
        id: &str,
        event: CommandEvent,
        detail: Option<String>,
        actor: Actor,
    ) -> Result<Option<CommandRecord>, StoreError> {
        if tx.pending_commands.remove(id)?.is_none() {
            return Ok(None);
        }
        let Some(mut command) = COMMANDS_V1.get(&tx.commands, id)? else {
            return Ok(None);
        };
        // A command in the outbox is pending; anything else means the tables disagree.
        command.status = command
            .status
            .apply(event)
            .map_err(|e| StoreError::Corrupt {
                table: "commands_v1",
                detail: format!("{id}: {e}"),
            })?;
        let status = command.status;
        command.detail = detail;
        COMMANDS_V1.put(&mut tx.commands, id, &command)?;
        let round_trip = tx.now.millis().saturating_sub(command.issued_at.millis());
        match event {
            CommandEvent::Executed => {
                self.count_latch(tx, &command, false)?;
                self.count_day(tx, &command.station_id, |d| {
                    d.unlocks += 1;
                    d.rtt_ms_sum += round_trip;
                    d.rtt_n += 1;
                })?;
            }
            CommandEvent::Failed => {
                self.count_latch(tx, &command, true)?;
                self.count_day(tx, &command.station_id, |d| d.latch_failures += 1)?;
            }
            CommandEvent::Refused | CommandEvent::Expired => {}
        }
        self.drop_off_abandoned(tx, &command)?;
        let outcome = match &command.detail {
            Some(detail) => format!("{}: {detail}", status.as_str()),
            None => status.as_str().to_owned(),
        };
        self.log(tx, Draft::new(actor, "command", id, &outcome))?;
        Ok(Some(command))
    }
}
