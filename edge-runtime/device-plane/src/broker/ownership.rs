//! Who listens on a loopback port, from the kernel's socket tables (`/proc/net/tcp`, `tcp6`) and
//! this process's descriptors (`/proc/self/fd`). The front sends the broker its per-boot secret
//! only once the listener on the broker's port is known to be this process's own: a port picked
//! free and then bound by rumqttd can be taken in between by any local process, which would
//! otherwise receive the secret and every device's traffic.

use std::collections::HashSet;
use std::io;

/// The listeners on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// Nobody listens there yet.
    Nobody,
    /// Every listener there is a socket of this process.
    Us,
    /// Another process listens there (alone or beside us).
    Other,
}

/// Who listens on TCP port `port`, on any address, IPv4 or IPv6.
pub(crate) fn owner(port: u16) -> io::Result<Owner> {
    let mut listeners = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(table) {
            Ok(text) => listeners.extend(listening_inodes(&text, port)),
            // A kernel without IPv6 has no tcp6 table.
            Err(e) if e.kind() == io::ErrorKind::NotFound && table.ends_with('6') => {}
            Err(e) => return Err(e),
        }
    }
    if listeners.is_empty() {
        return Ok(Owner::Nobody);
    }
    let ours = own_sockets()?;
    Ok(if listeners.iter().all(|inode| ours.contains(inode)) {
        Owner::Us
    } else {
        Owner::Other
    })
}

/// The socket inodes of the listeners on `port` in one socket table.
fn listening_inodes(table: &str, port: u16) -> Vec<u64> {
    const LISTEN: &str = "0A";
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            let local_port = u16::from_str_radix(local.rsplit_once(':')?.1, 16).ok()?;
            (local_port == port && *state == LISTEN)
                .then(|| inode.parse().ok())
                .flatten()
        })
        .collect()
}

/// The inodes of every socket this process holds.
fn own_sockets() -> io::Result<HashSet<u64>> {
    let mut inodes = HashSet::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Ok(target) = std::fs::read_link(entry?.path()) else {
            continue;
        };
        let inode = target
            .to_str()
            .and_then(|t| t.strip_prefix("socket:["))
            .and_then(|t| t.strip_suffix(']'))
            .and_then(|t| t.parse::<u64>().ok());
        inodes.extend(inode);
    }
    Ok(inodes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernels_table_is_read_by_port_and_state() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1000        0 4343 1 0 20 4 30 10 -1
   2: 00000000:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4444 1 0 100 0 0 10 0";
        assert_eq!(listening_inodes(table, 8080), [4242]);
        assert_eq!(listening_inodes(table, 8081), [4444]);
        assert!(listening_inodes(table, 8082).is_empty());
    }

    #[test]
    fn a_listener_of_this_process_is_ours_and_a_free_port_is_nobodys() {
        // Another process may take a freed port at once (tests run in parallel on this machine):
        // a port the kernel hands to someone else is retried, a reading that never says
        // "nobody" fails.
        let mut seen = Vec::new();
        for _ in 0..20 {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            let port = listener.local_addr().expect("addr").port();
            assert_eq!(owner(port).expect("read"), Owner::Us);
            drop(listener);
            match owner(port).expect("read") {
                Owner::Nobody => return,
                other => seen.push((port, other)),
            }
        }
        panic!("a freed port was never nobody's: {seen:?}");
    }
}
