//! The locker's durable retry queue for events. An event is on disk (synced) before it is sent,
//! and stays there until the node acknowledges its id; a restart resends everything unacknowledged.
//! Resends back off exponentially per event, from one second up to a minute.

use crate::state::write_atomic;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use lockergrid_protocol::message::{DeviceEvent, EventMessage, MESSAGE_VERSION};
use lockergrid_protocol::{LockerId, Timestamp};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

const SEQ_FILE: &str = "event-seq";
const QUEUE_DIR: &str = "events";
const FIRST_RETRY: Duration = Duration::from_secs(1);
const LAST_RETRY: Duration = Duration::from_secs(60);

/// Why the queue could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("event queue: {what}: {cause}")]
pub struct QueueError {
    what: String,
    cause: String,
}

fn error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> QueueError {
    let what = what.into();
    move |e| QueueError {
        what,
        cause: e.to_string(),
    }
}

struct Pending {
    message: EventMessage,
    json: Vec<u8>,
    due: Instant,
    retry: Duration,
}

/// Unacknowledged events, in order.
pub struct EventQueue {
    locker: LockerId,
    state: Dir,
    dir: Dir,
    next_seq: u64,
    pending: BTreeMap<u64, Pending>,
}

impl EventQueue {
    /// Opens the queue in `state_dir`, loading every unacknowledged event (all due at once).
    pub fn open(locker: LockerId, state_dir: &Path) -> Result<EventQueue, QueueError> {
        lockergrid_files::private_dir(&state_dir.join(QUEUE_DIR))
            .map_err(error(format!("create {}", state_dir.display())))?;
        let state = Dir::open_ambient_dir(state_dir, ambient_authority())
            .map_err(error("open the state directory"))?;
        let dir = state.open_dir(QUEUE_DIR).map_err(error("open events/"))?;
        let mut next_seq = match state.read_to_string(SEQ_FILE) {
            Ok(text) => text.trim().parse().map_err(|_| QueueError {
                what: SEQ_FILE.into(),
                cause: format!("not a number: {:?}", text.trim()),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 1,
            Err(e) => return Err(error(SEQ_FILE)(e)),
        };
        let mut pending = BTreeMap::new();
        let now = Instant::now();
        for entry in dir.entries().map_err(error("list events/"))? {
            let name = entry
                .map_err(error("list events/"))?
                .file_name()
                .to_string_lossy()
                .into_owned();
            // Leftover temporary files are writes that never completed: never sent, never owed.
            if name.starts_with('.') {
                dir.remove_file(&name)
                    .map_err(error(format!("remove {name}")))?;
                continue;
            }
            let json = dir.read(&name).map_err(error(format!("read {name}")))?;
            let message: EventMessage = serde_json::from_slice(&json).map_err(|e| QueueError {
                what: name.clone(),
                cause: e.to_string(),
            })?;
            next_seq = next_seq.max(message.seq + 1);
            pending.insert(
                message.seq,
                Pending {
                    message,
                    json,
                    due: now,
                    retry: FIRST_RETRY,
                },
            );
        }
        Ok(EventQueue {
            locker,
            state,
            dir,
            next_seq,
            pending,
        })
    }

    /// Records `event` durably and returns it; it is due for sending at once.
    pub fn push(&mut self, at: Timestamp, event: DeviceEvent) -> Result<&EventMessage, QueueError> {
        let seq = self.next_seq;
        let message = EventMessage {
            v: MESSAGE_VERSION,
            id: format!("{}-{seq}", self.locker),
            seq,
            locker: self.locker.clone(),
            at,
            event,
        };
        let json = serde_json::to_vec(&message).map_err(|e| QueueError {
            what: "encode".into(),
            cause: e.to_string(),
        })?;
        // The sequence number first: a crash after it loses a number, never reuses one.
        write_atomic(&self.state, SEQ_FILE, (seq + 1).to_string().as_bytes())
            .map_err(error(SEQ_FILE))?;
        self.next_seq = seq + 1;
        write_atomic(&self.dir, &file_name(seq), &json).map_err(error(file_name(seq)))?;
        let pending = self.pending.entry(seq).or_insert(Pending {
            message,
            json,
            due: Instant::now(),
            retry: FIRST_RETRY,
        });
        Ok(&pending.message)
    }

    /// Drops the acknowledged events; unknown ids (already dropped) are ignored.
    pub fn ack(&mut self, ids: &[String]) -> Result<(), QueueError> {
        for id in ids {
            let Some(seq) = id
                .strip_prefix(self.locker.as_str())
                .and_then(|rest| rest.strip_prefix('-'))
                .and_then(|seq| seq.parse().ok())
            else {
                continue;
            };
            if self.pending.remove(&seq).is_some() {
                match self.dir.remove_file(file_name(seq)) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(error(file_name(seq))(e)),
                }
            }
        }
        Ok(())
    }

    /// The events due for (re)sending at `now`, oldest first, as JSON; each is scheduled for its
    /// next attempt with a doubled delay.
    pub fn due(&mut self, now: Instant) -> Vec<(String, Vec<u8>)> {
        let mut due = Vec::new();
        for pending in self.pending.values_mut() {
            if pending.due <= now {
                due.push((pending.message.id.clone(), pending.json.clone()));
                pending.due = now + pending.retry;
                pending.retry = (pending.retry * 2).min(LAST_RETRY);
            }
        }
        due
    }

    /// Makes every event due at once (after a reconnect).
    pub fn reset(&mut self) {
        let now = Instant::now();
        for pending in self.pending.values_mut() {
            pending.due = now;
            pending.retry = FIRST_RETRY;
        }
    }

    /// How many events wait for an acknowledgement.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether none do.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

fn file_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn locker() -> LockerId {
        LockerId::new("ams-zuid").unwrap()
    }

    fn tamper() -> DeviceEvent {
        DeviceEvent::Tamper { tripped: true }
    }

    #[test]
    fn events_survive_a_restart_until_acknowledged_and_ids_are_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue = EventQueue::open(locker(), dir.path()).unwrap();
        let first = queue.push(Timestamp(1), tamper()).unwrap().id.clone();
        let second = queue.push(Timestamp(2), tamper()).unwrap().id.clone();
        assert_eq!(
            (first.as_str(), second.as_str()),
            ("ams-zuid-1", "ams-zuid-2")
        );
        drop(queue);

        let mut queue = EventQueue::open(locker(), dir.path()).unwrap();
        let due: Vec<String> = queue
            .due(Instant::now())
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        assert_eq!(due, vec![first.clone(), second.clone()]);
        queue
            .ack(&[first, "other-9".into(), "ams-zuid-x".into()])
            .unwrap();
        assert_eq!(queue.len(), 1);
        queue.ack(std::slice::from_ref(&second)).unwrap();
        assert!(queue.is_empty());
        drop(queue);

        let mut queue = EventQueue::open(locker(), dir.path()).unwrap();
        assert!(queue.is_empty());
        assert_eq!(queue.push(Timestamp(3), tamper()).unwrap().id, "ams-zuid-3");
    }

    #[test]
    fn resends_back_off_exponentially_and_restart_after_a_reconnect() {
        let dir = tempfile::tempdir().unwrap();
        let mut queue = EventQueue::open(locker(), dir.path()).unwrap();
        queue.push(Timestamp(1), tamper()).unwrap();
        let start = Instant::now();
        assert_eq!(queue.due(start).len(), 1);
        assert_eq!(queue.due(start).len(), 0, "not due again at once");
        let mut at = start;
        let mut gaps = Vec::new();
        for _ in 0..8 {
            let mut step = Duration::ZERO;
            while queue.due(at + step).is_empty() {
                step += Duration::from_millis(250);
            }
            gaps.push(step.as_secs());
            at += step;
        }
        assert_eq!(gaps, vec![1, 2, 4, 8, 16, 32, 60, 60]);
        queue.reset();
        assert_eq!(queue.due(Instant::now()).len(), 1);
    }
}
