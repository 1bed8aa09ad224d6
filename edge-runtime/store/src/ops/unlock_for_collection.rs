//! A carrier's unlock for a dropped-off return; it is collected when the door closes.

use crate::access_log::Draft;
use crate::returns::in_status;
use crate::returns::not_found;
use crate::tables::RETURNS_V1;
use crate::writer::{Tx, Writer};
use crate::{ChangeError, Store};
use lockergrid_model::{Actor, CommandRecord, DecidedBy, ReturnStatus, UnlockFor};
use lockergrid_protocol::ReturnId;
use std::time::Duration;

impl Store {
    /// Issues a carrier's unlock for a dropped-off return; it is collected when the door closes.
    pub async fn unlock_for_collection(
        &self,
        id: ReturnId,
        actor: Actor,
        decided_by: Option<DecidedBy>,
        valid: Duration,
    ) -> Result<CommandRecord, ChangeError> {
        self.write(move |w, tx| w.unlock_for_collection(tx, &id, &actor, &decided_by, valid))
            .await
    }
}

impl Writer {
    pub(crate) fn unlock_for_collection(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ReturnId,
        actor: &Actor,
        decided_by: &Option<DecidedBy>,
        valid: Duration,
    ) -> Result<CommandRecord, ChangeError> {
        let record = RETURNS_V1
            .get(&tx.returns, id.as_str())?
            .ok_or_else(|| not_found(id))?;
        let Some(compartment) = record
            .compartment_id
            .clone()
            .filter(|_| record.status == ReturnStatus::DroppedOff)
        else {
            return Err(in_status(&record));
        };
        let command = self.issue(
            tx,
            crate::commands::Issue {
                station: &record.station_id,
                compartment: &compartment,
                unlock_for: UnlockFor::ReturnCollection {
                    return_id: id.clone(),
                },
                actor,
                decided_by,
                valid,
            },
        )?;
        let outcome = format!("return collection: command {} to {compartment}", command.id);
        self.log(
            tx,
            Draft::new(actor.clone(), "unlock", id.as_str(), &outcome)
                .decided_by(decided_by.clone()),
        )?;
        Ok(command)
    }
}
