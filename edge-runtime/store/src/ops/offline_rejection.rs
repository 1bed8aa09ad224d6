//! A code a locker refused alone, while no node answered: recorded once, and its count taken in
//! so the locker's failures and the node's make one budget.

use crate::access_log::Draft;
use crate::tables::inbox_key;
use crate::writer::{Tx, Writer};
use crate::{OfflineRejection, Store, StoreError};
use lockergrid_model::Decision;

impl Store {
    /// Applies a locker's offline refusal of a code once; `false` for a duplicate.
    pub async fn offline_rejection(&self, rejection: OfflineRejection) -> Result<bool, StoreError> {
        self.write(move |w, tx| w.offline_rejection(tx, rejection))
            .await
    }
}

impl Writer {
    pub(crate) fn offline_rejection(
        &mut self,
        tx: &mut Tx<'_>,
        rejection: OfflineRejection,
    ) -> Result<bool, StoreError> {
        let key = inbox_key(&rejection.station, &rejection.event);
        if self.is_applied(tx, &key)? {
            return Ok(false);
        }
        self.mark_applied(tx, &key)?;
        self.merge_lockout(tx, &rejection.station, &rejection.lockout)?;
        let lockout = self.lockout(tx, &rejection.station)?;
        self.decided(
            tx,
            Decision::CodeRejected {
                station: rejection.station.clone(),
                event: rejection.event.clone(),
                lockout,
            },
        )?;
        let outcome = if rejection.locked_out {
            "locked_out at the locker"
        } else {
            "code_rejected at the locker"
        };
        let entry = Draft::new(
            rejection.actor,
            "pickup",
            rejection.station.as_str(),
            outcome,
        );
        self.log(tx, entry)?;
        Ok(true)
    }
}
