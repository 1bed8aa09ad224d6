//! Revoked bearer tokens survive a reopen and are forgotten once every token they refuse expired.

use crate::support::{open, options};
use lockergrid_model::{Actor, Clock, RevokedTokens};
use lockergrid_store::Store;
use std::time::Duration;

const DAY: Duration = Duration::from_secs(86_400);

fn operator() -> Actor {
    Actor {
        subject: "ops".into(),
        role: "operator".into(),
    }
}

#[tokio::test]
async fn revocations_outlive_a_reopening_and_are_forgotten_once_due() {
    let t = open(vec![]).await;
    let now = t.clock.now();
    let (day, year) = (now.plus(DAY), now.plus(365 * DAY));
    let token = RevokedTokens::Token("t1".into());
    let subject = RevokedTokens::Subject("agent-7".into());
    t.store
        .revoke_tokens(operator(), token, day)
        .await
        .expect("revoked");
    t.store
        .revoke_tokens(operator(), subject.clone(), year)
        .await
        .expect("revoked");
    let path = t.dir.path().join("node.redb");
    drop(t.store);
    let store = Store::open(&path, options(&t.clock)).expect("reopens");
    assert_eq!(store.revocations().expect("read").len(), 2);
    t.clock.advance(2 * DAY);
    let left = store.revocations().expect("read");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].revoked, subject);
    let again = store
        .revoke_tokens(operator(), subject.clone(), year)
        .await
        .expect("revoked again");
    assert_eq!(again.revoked_at, t.clock.now(), "the cut-off moves to now");
    let log = store.access_log(1, 10).expect("log");
    let revoked: Vec<&str> = log
        .iter()
        .filter(|e| e.action == "tokens_revoked")
        .map(|e| e.target.as_str())
        .collect();
    assert_eq!(revoked, ["token/t1", "subject/agent-7", "subject/agent-7"]);
    assert_eq!(store.revocations().expect("read").len(), 1);
}
