//! Releasing a held reservation: its compartment is available again.

use crate::writer::{Tx, Writer};
use crate::{ChangeError, Store};
use lockergrid_model::{Actor, Reservation};
use lockergrid_protocol::{CompartmentEvent, ReservationId};

impl Store {
    /// Releases a held reservation; its compartment becomes available.
    pub async fn release(
        &self,
        id: ReservationId,
        actor: Actor,
    ) -> Result<Reservation, ChangeError> {
        self.write(move |w, tx| w.release(tx, &id, actor)).await
    }
}

impl Writer {
    pub(crate) fn release(
        &mut self,
        tx: &mut Tx<'_>,
        id: &ReservationId,
        actor: Actor,
    ) -> Result<Reservation, ChangeError> {
        let reservation = self.held_reservation(tx, id)?;
        self.end_hold(tx, reservation, CompartmentEvent::Cancel, actor)
    }
}
