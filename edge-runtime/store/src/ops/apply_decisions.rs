//! On the gateway: an edge node's decisions, each applied once and in sequence order.

use crate::Applied;
use crate::writer::{Tx, Writer};
use crate::{Store, StoreError};
use lockergrid_model::EdgeDecision;

impl Store {
    /// On the gateway: applies edge node `edge`'s decisions once each, in sequence order, in
    /// one transaction; what became of each, in the same order.
    pub async fn apply_decisions(
        &self,
        edge: String,
        decisions: Vec<EdgeDecision>,
    ) -> Result<Vec<Applied>, StoreError> {
        self.write(move |w, tx| w.apply_decisions(tx, &edge, decisions))
            .await
    }
}

impl Writer {
    pub(crate) fn apply_decisions(
        &mut self,
        tx: &mut Tx<'_>,
        edge: &str,
        decisions: Vec<EdgeDecision>,
    ) -> Result<Vec<Applied>, StoreError> {
        decisions
            .into_iter()
            .map(|decision| self.apply_decision(tx, edge, decision))
            .collect()
    }
}
