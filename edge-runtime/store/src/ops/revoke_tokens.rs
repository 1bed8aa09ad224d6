//! Bearer tokens revoked before they expire, with the access-log entry in the same transaction.
//! Records are forgotten once every token they refuse has expired; a revocation is rare, so each
//! one sweeps those due.

use crate::access_log::Draft;
use crate::tables::REVOCATIONS_V1;
use crate::writer::{Tx, Writer};
use crate::{Store, StoreError};
use lockergrid_model::{Actor, Revocation, RevokedTokens};
use lockergrid_protocol::Timestamp;
use redb::ReadableDatabase;

impl Store {
    /// Revokes `revoked` now, remembered until `forget_at`; revoking a subject again moves its
    /// cut-off to now. Answers the revocation as stored.
    pub async fn revoke_tokens(
        &self,
        actor: Actor,
        revoked: RevokedTokens,
        forget_at: Timestamp,
    ) -> Result<Revocation, StoreError> {
        self.write(move |w, tx| w.revoke_tokens(tx, actor, revoked, forget_at))
            .await
    }

    /// Every revocation not yet forgotten, as committed.
    pub fn revocations(&self) -> Result<Vec<Revocation>, StoreError> {
        let rx = self.inner.db.begin_read()?;
        let table = rx.open_table(REVOCATIONS_V1.def())?;
        let now = self.now();
        let mut all = REVOCATIONS_V1.all(&table)?;
        all.retain(|r| r.forget_at > now);
        Ok(all)
    }
}

impl Writer {
    fn revoke_tokens(
        &mut self,
        tx: &mut Tx<'_>,
        actor: Actor,
        revoked: RevokedTokens,
        forget_at: Timestamp,
    ) -> Result<Revocation, StoreError> {
        for (key, due) in REVOCATIONS_V1.entries(&tx.revocations)? {
            if due.forget_at <= tx.now {
                tx.revocations.remove(key.as_str())?;
            }
        }
        let key = revoked.key();
        let record = Revocation {
            revoked,
            revoked_at: tx.now,
            forget_at,
        };
        REVOCATIONS_V1.put(&mut tx.revocations, key.as_str(), &record)?;
        let outcome = format!("remembered until {forget_at}");
        self.log(tx, Draft::new(actor, "tokens_revoked", &key, &outcome))?;
        Ok(record)
    }
}
