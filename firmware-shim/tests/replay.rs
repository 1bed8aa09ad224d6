//! Replay, forgery and staleness at the locker: 10,000 hostile commands, none executed, and a
//! counter that survives a restart.

use lockergrid_firmware_shim::verify::{CommandGate, GateError};
use lockergrid_protocol::command::{
    Action, COMMAND_VERSION, Command, CommandKey, Refusal, SignedCommand,
};
use lockergrid_protocol::{CompartmentId, LockerId, Timestamp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const NOW: Timestamp = Timestamp(1_796_083_200_000);
const SECOND: u64 = 1_000;

fn locker(id: &str) -> LockerId {
    LockerId::new(id).expect("valid")
}

fn command(to: &str, counter: u64, issued_at: Timestamp, lifetime_s: u64) -> Command {
    Command {
        version: COMMAND_VERSION,
        locker: locker(to),
        compartment: CompartmentId::new(format!("{to}:S{:03}", counter % 40)).expect("valid"),
        action: Action::Unlock,
        id: format!("cmd-{counter}"),
        counter,
        issued_at,
        expires_at: Timestamp(issued_at.millis() + lifetime_s * SECOND),
    }
}

fn gate(dir: &std::path::Path, key: &CommandKey) -> CommandGate {
    CommandGate::open(locker("locker-1"), key.public(), dir).expect("gate opens")
}

fn refusal(result: Result<(), GateError>) -> Refusal {
    match result {
        Err(GateError::Refused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn ten_thousand_replayed_lower_foreign_stale_and_forged_commands_are_refused_and_none_runs() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = CommandKey::from_secret([11; 32]);
    let mut gate = gate(dir.path(), &key);
    let executed: Vec<SignedCommand> = (1..=100)
        .map(|n| command("locker-1", n, NOW, 60).sign(&key))
        .collect();
    for c in &executed {
        gate.admit(c, NOW).expect("a fresh valid command runs");
    }
    let mut rng = StdRng::seed_from_u64(0x10c6e9);
    let mut kinds = [0u32; 5];
    for case in 0..10_000u64 {
        let next = 101 + rng.random_range(0..1_000);
        let kind = rng.random_range(0..5usize);
        kinds[kind] += 1;
        let (hostile, expected): (SignedCommand, fn(&Refusal) -> bool) = match kind {
            0 => (executed[rng.random_range(0..executed.len())].clone(), |r| {
                matches!(r, Refusal::Replayed { .. })
            }),
            1 => (
                command("locker-1", rng.random_range(0..=100), NOW, 60).sign(&key),
                |r| matches!(r, Refusal::Replayed { .. }),
            ),
            2 => (command("locker-2", next, NOW, 60).sign(&key), |r| {
                matches!(r, Refusal::WrongLocker(_))
            }),
            3 => {
                let c = match case % 3 {
                    0 => command(
                        "locker-1",
                        next,
                        Timestamp(NOW.millis() - 200 * SECOND),
                        100,
                    ),
                    1 => command("locker-1", next, Timestamp(NOW.millis() + 90 * SECOND), 60),
                    _ => command("locker-1", next, NOW, 3_600),
                };
                (c.sign(&key), |r| {
                    matches!(
                        r,
                        Refusal::Expired | Refusal::NotYetValid | Refusal::WindowTooLong
                    )
                })
            }
            _ => {
                let mut forged = if case % 2 == 0 {
                    command("locker-1", next, NOW, 60).sign(&CommandKey::from_secret([12; 32]))
                } else {
                    command("locker-1", next, NOW, 60).sign(&key)
                };
                match case % 4 {
                    1 => forged.command.counter += 1,
                    3 => {
                        forged.command.action = Action::SetOutOfService {
                            out_of_service: true,
                        }
                    }
                    _ => {}
                }
                (forged, |r| matches!(r, Refusal::BadSignature))
            }
        };
        let r = refusal(gate.admit(&hostile, NOW));
        assert!(expected(&r), "case {case} (kind {kind}): unexpected {r:?}");
    }
    assert!(
        kinds.iter().all(|k| *k > 1_500),
        "every kind is exercised: {kinds:?}"
    );
    assert_eq!(gate.last_counter(), 100, "not one hostile command ran");
    let next = command("locker-1", 101, NOW, 60).sign(&key);
    gate.admit(&next, NOW)
        .expect("the next genuine command still runs");
}

#[test]
fn the_counter_survives_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let key = CommandKey::from_secret([11; 32]);
    let seven = command("locker-1", 7, NOW, 60).sign(&key);
    gate(dir.path(), &key).admit(&seven, NOW).expect("runs");
    let mut reopened = gate(dir.path(), &key);
    assert_eq!(reopened.last_counter(), 7);
    assert!(matches!(
        refusal(reopened.admit(&seven, NOW)),
        Refusal::Replayed {
            counter: 7,
            last: 7
        }
    ));
    let eight = command("locker-1", 8, NOW, 60).sign(&key);
    reopened.admit(&eight, NOW).expect("runs");
    assert_eq!(gate(dir.path(), &key).last_counter(), 8);
}

#[test]
fn a_corrupt_counter_file_stops_the_gate_instead_of_starting_from_zero() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("command-counter"), "seven").expect("written");
    let key = CommandKey::from_secret([11; 32]);
    let opened = CommandGate::open(locker("locker-1"), key.public(), dir.path());
    assert!(
        matches!(opened, Err(GateError::Corrupt(_))),
        "{:?}",
        opened.err()
    );
}

#[test]
fn a_command_survives_json_and_still_verifies() {
    let key = CommandKey::from_secret([11; 32]);
    let c = command("locker-1", 5, NOW, 60).sign(&key);
    let json = serde_json_round_trip(&c);
    assert_eq!(json, c);
    json.check(&locker("locker-1"), &key.public(), NOW)
        .expect("verifies after the trip");
}

fn serde_json_round_trip(c: &SignedCommand) -> SignedCommand {
    let text = serde_json::to_string(c).expect("serialises");
    serde_json::from_str(&text).expect("parses")
}
