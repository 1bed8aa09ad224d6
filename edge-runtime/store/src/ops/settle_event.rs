//! A locker event that only goes to the access log, applied once.

use crate::DOOR_OPENED_UNRELEASED;
use crate::access_log::Draft;
use crate::tables::inbox_key;
use crate::writer::{Tx, Writer};
use crate::{SettledEvent, Store, StoreError};
use lockergrid_model::Decision;

impl Store {
    /// Records a locker event in the access log once; `false` for a duplicate.
    pub async fn settle_event(&self, settled: SettledEvent) -> Result<bool, StoreError> {
        self.write(move |w, tx| w.settle_event(tx, settled)).await
    }
}

impl Writer {
    /// Applies an event that changes nothing but the access log, once; `false` for a duplicate.
    pub(crate) fn settle_event(
        &mut self,
        tx: &mut Tx<'_>,
        settled: SettledEvent,
    ) -> Result<bool, StoreError> {
        let key = inbox_key(&settled.station, &settled.event);
        if self.is_applied(tx, &key)? {
            return Ok(false);
        }
        self.mark_applied(tx, &key)?;
        if settled.action == "door_opened" && settled.outcome == DOOR_OPENED_UNRELEASED {
            self.count_day(tx, &settled.station, |d| d.stray_doors += 1)?;
        }
        self.decided(
            tx,
            Decision::Recorded {
                station: settled.station.clone(),
                event: settled.event.clone(),
                action: settled.action.clone(),
                target: settled.target.clone(),
                outcome: settled.outcome.clone(),
                decided_by: settled.decided_by.clone(),
            },
        )?;
        let entry = Draft::new(
            settled.actor,
            &settled.action,
            &settled.target,
            &settled.outcome,
        )
        .decided_by(settled.decided_by);
        self.log(tx, entry)?;
        Ok(true)
    }
}
