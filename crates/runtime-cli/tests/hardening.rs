//! Hardening against known runtime escapes.
//!
//! - CVE-2019-5736: a container process that reaches the runtime's executable through
//!   /proc/PID/exe could overwrite the host binary. Every runtime process that enters a
//!   container must run from a sealed in-memory copy.
//! - CVE-2024-21626: a host directory descriptor leaked into the container's init let
//!   `cwd: /proc/self/fd/N` reach the host filesystem. The runtime must refuse such a cwd and
//!   leak no descriptor into the container.

mod common;

use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;

use common::*;

#[test]
fn the_runtime_binary_is_never_exposed_inside_the_container() {
    if !testing_berth() {
        return; // a property of berth-runtime's own design
    }
    let c = Container::new("cve5736", &["sleep", "60"]);
    // Created: the init is a runtime process waiting inside the container's namespaces.
    c.create().ok();
    let init = c.pid();
    let exe = fs::read_link(format!("/proc/{init}/exe")).unwrap();
    let exe = exe.to_string_lossy();
    assert!(
        exe.starts_with("/memfd:berth-runtime"),
        "init runs from {exe}"
    );

    // A process in the container opens pid 1's executable for writing: the copy is sealed, the
    // host binary is out of reach.
    let binary = runtime_path();
    let before = fs::read(&binary).unwrap();
    let out = c.exec(&[
        "sh",
        "-c",
        "readlink /proc/1/exe; if echo pwned >> /proc/1/exe; then echo WROTE; else echo refused; fi",
    ]);
    let lines = out.ok().lines();
    assert!(lines.iter().any(|l| l == "refused"), "{lines:?}");
    assert!(!lines.iter().any(|l| l == "WROTE"), "{lines:?}");
    assert_eq!(
        fs::read(&binary).unwrap(),
        before,
        "the runtime binary changed"
    );
}

/// Runs the runtime with a directory of the host (/etc) open on descriptor 7 without
/// close-on-exec, as a careless caller might leave it.
fn run_with_leaked_host_dir(c: &Container) -> Out {
    c.write_config();
    let host_etc = fs::File::open("/etc").unwrap();
    let raw = host_etc.as_raw_fd();
    let mut command = c.command(&["run", "--bundle", path_str(&c.bundle()), &c.id]);
    // SAFETY: dup2 is async-signal-safe; it runs between fork and exec of the runtime.
    unsafe {
        command.pre_exec(move || {
            if libc::dup2(raw, 7) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run_piped(command, COMMAND_TIMEOUT);
    drop(host_etc);
    out
}

#[test]
fn a_cwd_through_a_leaked_descriptor_is_refused() {
    let mut c = Container::new("cve21626", &["sh", "-c", "pwd; ls"]);
    c.config["process"]["cwd"] = "/proc/self/fd/7".into();
    let out = run_with_leaked_host_dir(&c);
    // Accepted, the program would list the host's /etc.
    assert!(
        !out.status.success(),
        "cwd through a leaked host descriptor was accepted: {}",
        out.stdout
    );
    if testing_berth() {
        out.refused();
        assert!(
            out.stderr.contains("outside the container") || out.stderr.contains("cwd"),
            "{}",
            out.stderr
        );
    }
    assert_nothing_left(&c);
}

#[test]
fn no_descriptor_leaks_into_the_container() {
    let c = Container::new("fdleak", &["sh", "-c", "ls /proc/self/fd"]);
    let out = run_with_leaked_host_dir(&c);
    // Only 0, 1, 2 and the descriptor ls uses to read the directory.
    let fds: Vec<i32> = out
        .ok()
        .lines()
        .iter()
        .filter_map(|l| l.trim().parse().ok())
        .collect();
    assert!(
        fds.iter().all(|fd| *fd <= 3),
        "descriptors leaked into the container: {fds:?}"
    );
}
