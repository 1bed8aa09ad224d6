use super::*;

const T0: Timestamp = Timestamp(1_800_000_000_000);

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Admits attempts at `now` until one is refused; how many were admitted.
fn burst(lockout: &mut Lockout, now: Timestamp) -> u32 {
    let mut admitted = 0;
    while lockout.admit(now).is_ok() {
        admitted += 1;
        assert!(admitted <= FREE_FAILURES, "the budget does not hold");
    }
    admitted
}

#[test]
fn a_burst_gets_exactly_the_free_attempts_checked() {
    let mut lockout = Lockout::default();
    assert_eq!(burst(&mut lockout, T0), FREE_FAILURES);
    assert_eq!(lockout.wait(T0), Some(FIRST_DELAY));
    assert_eq!(lockout.attempts_left(T0), 0);
}

#[test]
fn a_right_code_is_given_back_and_costs_nothing() {
    let mut lockout = Lockout::default();
    for _ in 0..100 {
        lockout.admit(T0).expect("free");
        lockout.give_back();
    }
    assert_eq!(lockout.attempts_left(T0), FREE_FAILURES);
}

#[test]
fn each_wait_beyond_the_free_attempts_doubles_up_to_an_hour() {
    let mut lockout = Lockout::default();
    let mut now = T0;
    burst(&mut lockout, now);
    let mut waits = Vec::new();
    for _ in 0..10 {
        let wait = lockout.wait(now).expect("waiting");
        assert_eq!(lockout.admit(now), Err(wait), "refused while waiting");
        now = now.plus(wait);
        lockout.admit(now).expect("admitted once the wait passed");
        waits.push(wait.as_secs());
    }
    assert_eq!(waits, [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]);
}

#[test]
fn a_day_without_a_failure_forgets_the_count() {
    let mut lockout = Lockout::default();
    burst(&mut lockout, T0);
    let later = T0.plus(FORGET_AFTER);
    assert_eq!(lockout.wait(later), None);
    assert_eq!(lockout.attempts_left(later), FREE_FAILURES);
    assert_eq!(burst(&mut lockout, later), FREE_FAILURES);
}

#[test]
fn a_huge_count_still_waits_the_longest_delay() {
    let lockout = Lockout {
        failures: u32::MAX,
        last_failure_at: Some(T0),
    };
    assert_eq!(lockout.wait(T0), Some(MAX_DELAY));
}

#[test]
fn merging_keeps_the_larger_count_and_the_later_failure() {
    let mut here = Lockout {
        failures: 3,
        last_failure_at: Some(T0),
    };
    let there = Lockout {
        failures: 6,
        last_failure_at: Some(T0.plus(secs(10))),
    };
    here.merge(&there);
    assert_eq!(here, there);
    here.merge(&Lockout::default());
    assert_eq!(here, there);
}
