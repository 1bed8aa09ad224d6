//! An operator gives a station leave to open while its site rules cannot answer, or takes it
//! back, with the access-log entry in the same transaction. The station record carries it, so
//! edge nodes receive it with their stations' sync.

use crate::access_log::Draft;
use crate::tables::STATIONS_V1;
use crate::writer::{Tx, Writer};
use crate::{Store, StoreError};
use lockergrid_model::{Actor, SiteRulesOverride};
use lockergrid_protocol::StationId;

impl Store {
    /// Sets (or with `None` clears) the site-rules override of `station`; `false` when the
    /// station is unknown.
    pub async fn override_site_rules(
        &self,
        station: StationId,
        leave: Option<SiteRulesOverride>,
        actor: Actor,
    ) -> Result<bool, StoreError> {
        self.write(move |w, tx| w.override_site_rules(tx, station, leave, actor))
            .await
    }
}

impl Writer {
    fn override_site_rules(
        &mut self,
        tx: &mut Tx<'_>,
        station: StationId,
        leave: Option<SiteRulesOverride>,
        actor: Actor,
    ) -> Result<bool, StoreError> {
        let Some(index) = self.index.stations.get_mut(&station) else {
            return Ok(false);
        };
        let outcome = match &leave {
            Some(o) => format!(
                "opens while its site rules cannot answer, until {}: {}",
                o.until, o.reason
            ),
            None => "site rules keep it shut again when they cannot answer".to_owned(),
        };
        index.record.site_rules_override = leave;
        STATIONS_V1.put(&mut tx.stations, station.as_str(), &index.record)?;
        tx.dirty.insert(station.clone());
        self.log(
            tx,
            Draft::new(actor, "site_rules_override", station.as_str(), &outcome),
        )?;
        Ok(true)
    }
}
