//! A message's delivery as the store decides it: reports only move it forward, whatever order
//! and however often they come; a failed step falls back to the next; the last one failing makes
//! a dead letter, which only an operator sends again.

use crate::support::{agent, open, request, seed};
use lockergrid_model::{
    Actor, DecidedBy, DeliveryPlan, DeliveryStatus, NotifyChannel, NotifyRecipient, OutboxEntry,
    Step,
};
use lockergrid_store::{
    Attempt, AttemptOutcome, ChangeError, DeliveryReport, PlannedNotification, Store,
};
use std::time::Duration;

fn plan() -> DeliveryPlan {
    DeliveryPlan {
        steps: vec![
            Step {
                channel: NotifyChannel::Sms,
                delay_minutes: 0,
            },
            Step {
                channel: NotifyChannel::Email,
                delay_minutes: 5,
            },
        ],
    }
}

/// A stored parcel's message, planned SMS then e-mail five minutes later.
async fn planned(store: &Store, order: &str) -> OutboxEntry {
    let mut req = request("st-a", order);
    req.recipient = Some(NotifyRecipient {
        id: format!("cust-{order}"),
        channels: vec![NotifyChannel::Sms, NotifyChannel::Email],
        quiet_hours: None,
        contact: None,
    });
    let held = store.reserve(req).await.expect("held").reservation;
    store.deposit(held.id, agent(), None).await.expect("stored");
    let entry = store
        .outbox(1, 1_000)
        .expect("outbox")
        .into_iter()
        .find(|e| e.plan.is_none())
        .expect("a message to plan");
    store
        .plan_notification(PlannedNotification {
            seq: entry.seq,
            plan: plan(),
            decided_by: DecidedBy {
                world: "notification-router".into(),
                plugin: "built-in".into(),
                version: String::new(),
                digest: String::new(),
                fallback: None,
            },
            follow_ups: Vec::new(),
        })
        .await
        .expect("planned");
    store.notification(&entry.id).expect("read").expect("there")
}

fn attempt(entry: &OutboxEntry, step: u32, outcome: AttemptOutcome) -> Attempt {
    Attempt {
        message: entry.id.clone(),
        step,
        channel: plan().steps[step as usize].channel,
        outcome,
    }
}

#[tokio::test]
async fn reports_move_a_message_forward_only_however_often_and_in_whatever_order() {
    let t = open(vec![seed("st-a", [4, 0, 0, 0])]).await;
    let entry = planned(&t.store, "o-1").await;
    let due = t.store.due_notifications(t.store.now(), 10).expect("due");
    assert_eq!(due.iter().map(|e| &e.id).collect::<Vec<_>>(), [&entry.id]);

    let accepted = AttemptOutcome::Accepted {
        provider_id: "SM1".into(),
    };
    let sent = t
        .store
        .record_delivery(attempt(&entry, 0, accepted))
        .await
        .expect("recorded");
    assert_eq!(sent.delivery.status, DeliveryStatus::Sent);
    assert_eq!(sent.delivery.step, 1, "the fallback waits");
    assert!(
        t.store
            .due_notifications(t.store.now(), 10)
            .expect("due")
            .is_empty()
    );

    let report = |r| t.store.delivery_report("SM1".into(), r);
    let delivered = report(DeliveryReport::Delivered)
        .await
        .expect("applied")
        .expect("known");
    assert_eq!(delivered.delivery.status, DeliveryStatus::Delivered);
    t.clock.advance(Duration::from_secs(60));
    for late in [
        DeliveryReport::Sent,
        DeliveryReport::Delivered,
        DeliveryReport::Failed,
    ] {
        let after = report(late).await.expect("applied").expect("known");
        assert_eq!(
            after.delivery, delivered.delivery,
            "{late:?} changed nothing"
        );
    }
    t.clock.advance(Duration::from_secs(600));
    assert!(
        t.store
            .due_notifications(t.store.now(), 10)
            .expect("due")
            .is_empty(),
        "no fallback after delivery"
    );
    let unknown = t
        .store
        .delivery_report("SM-nobody".into(), DeliveryReport::Delivered);
    assert!(unknown.await.expect("applied").is_none());
}

#[tokio::test]
async fn a_failed_report_falls_back_and_the_last_step_failing_is_a_dead_letter() {
    let t = open(vec![seed("st-a", [4, 0, 0, 0])]).await;
    let entry = planned(&t.store, "o-2").await;
    let accepted = AttemptOutcome::Accepted {
        provider_id: "SM2".into(),
    };
    t.store
        .record_delivery(attempt(&entry, 0, accepted))
        .await
        .expect("recorded");
    let failed = t
        .store
        .delivery_report("SM2".into(), DeliveryReport::Failed)
        .await
        .expect("applied")
        .expect("known");
    assert_eq!(failed.delivery.status, DeliveryStatus::Pending);
    assert_eq!(failed.delivery.step, 1);
    assert_eq!(
        failed.delivery.next_at,
        Some(t.store.now().plus(Duration::from_secs(300)))
    );

    t.clock.advance(Duration::from_secs(300));
    let retry_at = t.store.now().plus(Duration::from_secs(2));
    let retry = AttemptOutcome::Retry {
        error: "smtp 451".into(),
        at: retry_at,
    };
    let retried = t
        .store
        .record_delivery(attempt(&entry, 1, retry))
        .await
        .expect("recorded");
    assert_eq!(
        (retried.delivery.step, retried.delivery.next_at),
        (1, Some(retry_at))
    );
    let stale = t
        .store
        .record_delivery(attempt(&entry, 0, AttemptOutcome::Delivered))
        .await
        .expect("recorded");
    assert_eq!(
        stale.delivery, retried.delivery,
        "an attempt at a step it left is ignored"
    );

    let given_up = AttemptOutcome::Failed {
        error: "smtp 550".into(),
    };
    let dead = t
        .store
        .record_delivery(attempt(&entry, 1, given_up))
        .await
        .expect("recorded");
    assert_eq!(dead.delivery.status, DeliveryStatus::Dead);
    assert_eq!(dead.delivery.attempts, 3);
    assert_eq!(dead.delivery.last_error.as_deref(), Some("email: smtp 550"));
    assert!(
        t.store
            .due_notifications(t.store.now(), 10)
            .expect("due")
            .is_empty()
    );

    let operator = Actor {
        subject: "ops".into(),
        role: "operator".into(),
    };
    let requeued = t
        .store
        .requeue_notification(entry.id.clone(), operator.clone())
        .await
        .expect("requeued");
    assert_eq!(
        (requeued.delivery.status, requeued.delivery.step),
        (DeliveryStatus::Pending, 0)
    );
    assert_eq!(
        t.store
            .due_notifications(t.store.now(), 10)
            .expect("due")
            .len(),
        1
    );
    let twice = t.store.requeue_notification(entry.id, operator).await;
    assert!(
        matches!(twice, Err(ChangeError::Conflict { .. })),
        "{twice:?}"
    );
}
