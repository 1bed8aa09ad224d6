//! The `lockergrid-shim` binary refuses bad arguments with one line and exit code 64.

use std::process::Command;

#[test]
fn bad_arguments_exit_64_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().to_str().unwrap();
    let key = "11".repeat(32);
    for (args, expect) in [
        (vec!["--command-key", "not-hex"], "command-key"),
        (
            vec!["--command-key", &key, "--node", "no-port"],
            "host:port",
        ),
        (
            vec!["--command-key", &key, "--control", "0.0.0.0:0"],
            "loopback",
        ),
        (vec!["--command-key", &key], "ca.pem"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_lockergrid-shim"))
            .args([
                "--locker",
                "ams-zuid",
                "--certs",
                certs,
                "--state-dir",
                certs,
            ])
            .args(&args)
            .output()
            .unwrap();
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(expect), "{args:?}: {stderr}");
    }
}
