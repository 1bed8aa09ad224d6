//! A code entry that matched nothing (or was no code at all): recorded once per keypad event,
//! its admitted attempt kept as a failure.

use crate::access_log::Draft;
use crate::tables::inbox_key;
use crate::writer::{Tx, Writer};
use crate::{CodeAttempt, Store, StoreError};
use lockergrid_model::Decision;

impl Store {
    /// Records an admitted code entry that is no code at all as rejected, its attempt kept as
    /// a failure.
    pub async fn reject_code(&self, attempt: CodeAttempt) -> Result<(), StoreError> {
        self.write(move |w, tx| w.reject_code(tx, attempt)).await
    }
}

impl Writer {
    /// Marks the entry's event applied, tells the gateway (from an edge node) with the station's
    /// count, and logs it.
    pub(crate) fn reject_code(
        &mut self,
        tx: &mut Tx<'_>,
        attempt: CodeAttempt,
    ) -> Result<(), StoreError> {
        if let Some(event) = &attempt.event {
            self.mark_applied(tx, &inbox_key(&attempt.station, event))?;
            let lockout = self.lockout(tx, &attempt.station)?;
            self.decided(
                tx,
                Decision::CodeRejected {
                    station: attempt.station.clone(),
                    event: event.clone(),
                    lockout,
                },
            )?;
        }
        let entry = Draft::new(
            attempt.actor,
            "pickup",
            attempt.station.as_str(),
            "code_rejected",
        );
        self.log(tx, entry)
    }
}
