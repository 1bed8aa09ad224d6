//! The command gate: a command runs only if it is for this locker, inside its validity window,
//! signed by the node's key, and carries a counter above every counter executed before. The
//! counter is written to disk (and synced) before the gate lets the command through, so a
//! restart, or a power cut between recording and acting, can never make an old command valid
//! again.

use crate::state::write_atomic;
use cap_std::ambient_authority;
use cap_std::fs::Dir;
use lockergrid_protocol::command::{CommandPublicKey, Refusal, SignedCommand};
use lockergrid_protocol::{LockerId, Timestamp};
use std::path::Path;

/// The file in the shim's state directory that holds the last executed counter.
const COUNTER_FILE: &str = "command-counter";

/// Why the gate could not run.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// The command is refused; nothing was executed or recorded.
    #[error("command refused: {0}")]
    Refused(#[from] Refusal),
    /// The state directory could not be read or written; nothing is executed.
    #[error("command counter in {what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The counter file holds something other than a number.
    #[error("command counter file is corrupt: {0:?}")]
    Corrupt(String),
}

fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> GateError {
    move |source| GateError::Io { what, source }
}

/// Verifies commands for one locker and remembers the last counter it let through.
pub struct CommandGate {
    locker: LockerId,
    key: CommandPublicKey,
    state: Dir,
    last: u64,
}

impl CommandGate {
    /// Opens the gate for `locker`, reading the last counter from `state_dir` (created if
    /// missing).
    pub fn open(
        locker: LockerId,
        key: CommandPublicKey,
        state_dir: &Path,
    ) -> Result<CommandGate, GateError> {
        lockergrid_files::private_dir(state_dir).map_err(io("create state directory"))?;
        let state =
            Dir::open_ambient_dir(state_dir, ambient_authority()).map_err(io("open state"))?;
        let last = match state.read_to_string(COUNTER_FILE) {
            Ok(text) => text
                .trim()
                .parse()
                .map_err(|_| GateError::Corrupt(text.trim().chars().take(32).collect()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(io("read")(e)),
        };
        Ok(CommandGate {
            locker,
            key,
            state,
            last,
        })
    }

    /// The last counter executed.
    pub fn last_counter(&self) -> u64 {
        self.last
    }

    /// Checks `command` at `now` and, if it may run, records its counter durably; only then
    /// may the caller act on it.
    pub fn admit(&mut self, command: &SignedCommand, now: Timestamp) -> Result<(), GateError> {
        command.check(&self.locker, &self.key, now)?;
        let counter = command.command.counter;
        if counter <= self.last {
            return Err(Refusal::Replayed {
                counter,
                last: self.last,
            }
            .into());
        }
        self.record(counter)?;
        self.last = counter;
        Ok(())
    }

    fn record(&self, counter: u64) -> Result<(), GateError> {
        write_atomic(&self.state, COUNTER_FILE, counter.to_string().as_bytes()).map_err(io("write"))
    }
}
