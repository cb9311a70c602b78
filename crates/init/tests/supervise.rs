//! The real `berth-init` binary supervising /bin/sh children: exit codes, signal forwarding,
//! zombie reaping (as a child subreaper, since a test is not pid 1), exec failures. Needs no
//! root. Every child is waited for or killed by the guard.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const INIT: &str = env!("CARGO_BIN_EXE_berth-init");

/// On drop, kills a still-running init and its children's process groups (SIGKILL cannot be
/// forwarded, so the children are killed directly).
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let pid = self.0.id() as i32;
            // The command runs in its own process group (pgid = its pid); kill the init and
            // every child it still has.
            for child in children_of(pid) {
                // SAFETY: plain kill of a process group this test created.
                unsafe { libc::kill(-child, libc::SIGKILL) };
            }
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn children_of(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

fn spawn(script: &str) -> Guard {
    Guard(
        Command::new(INIT)
            .args(["--", "sh", "-c", script])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn berth-init"),
    )
}

fn wait_code(guard: &mut Guard) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = guard.0.try_wait().unwrap() {
            return status.code().expect("berth-init exits, it is never killed");
        }
        assert!(Instant::now() < deadline, "berth-init did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn read_line(guard: &mut Guard) -> String {
    let mut line = String::new();
    BufReader::new(guard.0.stdout.as_mut().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim().to_string()
}

#[test]
fn passes_the_exit_code_through() {
    assert_eq!(wait_code(&mut spawn("exit 0")), 0);
    assert_eq!(wait_code(&mut spawn("exit 3")), 3);
    assert_eq!(wait_code(&mut spawn("exit 255")), 255);
}

#[test]
fn a_killed_child_gives_128_plus_the_signal() {
    assert_eq!(wait_code(&mut spawn("kill -KILL $$")), 137);
    assert_eq!(wait_code(&mut spawn("kill -TERM $$")), 143);
}

#[test]
fn forwards_signals_to_the_child() {
    for (signal, name, code) in [
        (libc::SIGTERM, "TERM", 10),
        (libc::SIGINT, "INT", 11),
        (libc::SIGHUP, "HUP", 12),
        (libc::SIGUSR1, "USR1", 13),
        (libc::SIGUSR2, "USR2", 14),
        (libc::SIGWINCH, "WINCH", 15),
        (libc::SIGQUIT, "QUIT", 16),
    ] {
        // The trap runs once the foreground `wait` is interrupted; `ready` says the trap is set.
        let mut init = spawn(&format!(
            "trap 'exit {code}' {name}; echo ready; while :; do sleep 0.05; done"
        ));
        assert_eq!(read_line(&mut init), "ready");
        // SAFETY: signal to the init process this test spawned.
        unsafe { libc::kill(init.0.id() as i32, signal) };
        assert_eq!(wait_code(&mut init), code, "SIG{name}");
    }
}

#[test]
fn an_uncaught_forwarded_signal_ends_the_child() {
    let mut init = spawn("echo ready; sleep 30");
    assert_eq!(read_line(&mut init), "ready");
    // SAFETY: signal to the init process this test spawned.
    unsafe { libc::kill(init.0.id() as i32, libc::SIGTERM) };
    assert_eq!(wait_code(&mut init), 143);
}

#[test]
fn reaps_orphaned_zombies() {
    // The inner shell exits at once, orphaning `sleep 0.2`, which is re-parented to the init
    // (a child subreaper here) and must be reaped when it exits. The main child then prints
    // the state of every remaining process in the tree.
    let mut init = spawn("sh -c 'sleep 0.2 &'; echo ready; sleep 1; echo done");
    assert_eq!(read_line(&mut init), "ready");
    let pid = init.0.id() as i32;
    std::thread::sleep(Duration::from_millis(600));
    for child in children_of(pid) {
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap_or_default();
        let state = stat.rsplit(") ").next().unwrap_or("").chars().next();
        assert_ne!(state, Some('Z'), "zombie left under the init: {stat}");
    }
    assert_eq!(children_of(pid).len(), 1, "only the main child remains");
    assert_eq!(wait_code(&mut init), 0);
}

#[test]
fn a_missing_program_gives_127() {
    let output = Command::new(INIT)
        .args(["--", "/nonexistent/program"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(127));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/program"));
}

#[test]
fn usage_errors_exit_1() {
    let output = Command::new(INIT).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage"));
}

#[test]
fn the_binary_is_static() {
    // No PT_INTERP program header (no dynamic loader): it must run in images without a libc
    // (busybox-static). ELF64 little-endian layout, elf(5).
    let bytes = std::fs::read(INIT).unwrap();
    assert_eq!(&bytes[..4], b"\x7fELF");
    let u16_at = |o: usize| u16::from_le_bytes([bytes[o], bytes[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(bytes[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    const PT_INTERP: u32 = 3;
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_ne!(kind, PT_INTERP, "berth-init asks for a dynamic loader");
    }
}
