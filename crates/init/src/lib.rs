//! `berth-init`: the init that `docker run --init` puts at a container's pid 1.
//!
//! A program written as a normal process misbehaves as pid 1 of a PID namespace: the kernel
//! drops every signal whose disposition is the default (so `docker stop`'s SIGTERM does nothing
//! to a program that never installed a handler, see pid_namespaces(7), "The namespace init
//! process"), and orphans are re-parented to it, so a program that never calls wait(2) collects
//! zombies. This init does what docker-init (tini) does:
//!
//! 1. blocks every asynchronous signal, then forks the command (child: own process group, the
//!    terminal's foreground group when stdin is a tty, original signal mask, exec);
//! 2. waits for signals with sigwaitinfo(2): each one except SIGCHLD is forwarded to the child
//!    (or to its process group with `-g`); on SIGCHLD every exited descendant is reaped;
//! 3. exits with the child's exit status, or 128 + the signal number that killed it (the shell's
//!    convention, which docker reports as the container's exit code).
//!
//! Blocking is what makes signals reach pid 1: a blocked signal is never "ignored" by the kernel
//! (kernel/signal.c, sig_ignored() checks the blocked mask before the pid-1 rule), so it stays
//! pending until sigwaitinfo takes it. The signal path only calls sigwaitinfo, kill and waitpid:
//! no allocation, no locks.
//!
//! Usage: `berth-init [-g] [-s] [--] PROGRAM [ARG...]` (`-s` is accepted for docker-init
//! compatibility: the init becomes a child subreaper whenever it is not pid 1 anyway).

use std::ffi::{CString, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

/// Signals that are delivered synchronously to the thread that caused them (or are the tty
/// job-control stops the init must never obey): never blocked, never forwarded.
const NOT_FORWARDED: [libc::c_int; 9] = [
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGSYS,
    libc::SIGTTIN,
    libc::SIGTTOU,
];

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// Run `argv` (program first) as the child.
    Run {
        /// Forward signals to the child's whole process group (`-g`), not just the child.
        group: bool,
        argv: Vec<CString>,
    },
    /// `--version`.
    Version,
    /// `-h` / `--help`.
    Help,
}

/// A command line the init cannot run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The usage text.
pub const USAGE: &str = "usage: berth-init [-g] [-s] [--] PROGRAM [ARG...]\n  \
     -g  forward signals to the child's process group\n  \
     -s  become a child subreaper (always done when not pid 1)\n";

/// Parses the arguments after argv[0]. Options end at `--` or at the first non-option.
pub fn parse_args(args: &[OsString]) -> Result<Invocation, UsageError> {
    let mut group = false;
    let mut rest = args;
    while let Some((first, tail)) = rest.split_first() {
        match first.as_bytes() {
            b"--" => {
                rest = tail;
                break;
            }
            b"-g" => group = true,
            b"-s" => {}
            b"--version" => return Ok(Invocation::Version),
            b"-h" | b"--help" => return Ok(Invocation::Help),
            option if option.starts_with(b"-") && option.len() > 1 => {
                return Err(UsageError(format!(
                    "unknown option {}",
                    String::from_utf8_lossy(option)
                )));
            }
            _ => break,
        }
        rest = tail;
    }
    if rest.is_empty() {
        return Err(UsageError("no program to run".into()));
    }
    let argv = rest
        .iter()
        .map(|arg| {
            CString::new(arg.as_bytes())
                .map_err(|_| UsageError("an argument contains a NUL byte".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Invocation::Run { group, argv })
}

/// The init's exit code for a wait(2) status of its child: the exit status, or 128 + signal.
pub fn exit_code(status: libc::c_int) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        // Stopped/continued statuses are never asked for (no WUNTRACED); keep a failure code.
        1
    }
}

/// Every signal the init blocks, waits for and (except SIGCHLD) forwards.
pub fn forwarded_signals() -> libc::sigset_t {
    // SAFETY: sigset_t is plain data; sigfillset initialises all of it before any read.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: `set` is a valid, writable sigset_t.
    unsafe { libc::sigfillset(&mut set) };
    for signal in NOT_FORWARDED {
        // SAFETY: `set` is a valid sigset_t and `signal` a valid signal number.
        unsafe { libc::sigdelset(&mut set, signal) };
    }
    set
}

fn report(message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr(), "berth-init: {message}");
}

fn set_disposition(signal: libc::c_int, handler: libc::sighandler_t) {
    // SAFETY: SIG_DFL / SIG_IGN are valid dispositions for these catchable signals; no handler
    // function is installed.
    unsafe { libc::signal(signal, handler) };
}

/// Runs `argv` as the child and supervises it; returns the exit code for the init.
///
/// Errors before the child exists (fork failure) are reported on stderr and give 1; a program
/// that cannot be executed makes the child exit 127 (not found) or 126 (any other exec error),
/// the shell's codes.
pub fn run(argv: &[CString], group: bool) -> i32 {
    assert!(!argv.is_empty(), "run needs a program");
    // SAFETY: getpid has no preconditions.
    if unsafe { libc::getpid() } != 1 {
        // Orphans of the child's tree must come back to us to be reaped when we are not the
        // namespace's init (e.g. --pid host, or tests): prctl(2) PR_SET_CHILD_SUBREAPER.
        // SAFETY: plain prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    // An inherited SIG_IGN for SIGCHLD would make the kernel reap children itself, and the
    // child's status would be lost; Rust's runtime sets SIGPIPE to SIG_IGN, which exec would
    // pass on to the command. The tty stops are ignored so that the init survives a
    // background tcsetpgrp (the child resets them).
    set_disposition(libc::SIGCHLD, libc::SIG_DFL);
    set_disposition(libc::SIGPIPE, libc::SIG_DFL);
    set_disposition(libc::SIGTTIN, libc::SIG_IGN);
    set_disposition(libc::SIGTTOU, libc::SIG_IGN);

    let blocked = forwarded_signals();
    // SAFETY: sigset_t is plain data, filled by sigprocmask before use.
    let mut original: libc::sigset_t = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are valid sigset_t values; single-threaded process.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, &blocked, &mut original) };

    let mut pointers: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    pointers.push(std::ptr::null());

    // SAFETY: the process is single-threaded, so the child may run any code; it only calls
    // async-signal-safe functions before exec anyway.
    let child = unsafe { libc::fork() };
    if child < 0 {
        report(format_args!("fork: {}", std::io::Error::last_os_error()));
        return 1;
    }
    if child == 0 {
        exec_child(&pointers, &original);
    }
    supervise(child, group, &blocked)
}

/// The child's side of the fork: process group, terminal, signal state, exec. Never returns.
fn exec_child(argv: &[*const libc::c_char], original: &libc::sigset_t) -> ! {
    // SAFETY: setpgid(0, 0) moves the calling process into a new group of its own id.
    unsafe { libc::setpgid(0, 0) };
    // SAFETY: isatty/tcsetpgrp on fd 0 with our own pid; SIGTTOU is ignored, so a call from
    // the background cannot stop us.
    unsafe {
        if libc::isatty(libc::STDIN_FILENO) == 1 {
            libc::tcsetpgrp(libc::STDIN_FILENO, libc::getpid());
        }
    }
    set_disposition(libc::SIGTTIN, libc::SIG_DFL);
    set_disposition(libc::SIGTTOU, libc::SIG_DFL);
    // SAFETY: `original` is the mask saved before blocking; restoring it is always valid.
    unsafe { libc::sigprocmask(libc::SIG_SETMASK, original, std::ptr::null_mut()) };
    // SAFETY: argv is a null-terminated array of pointers to NUL-terminated strings that live
    // in the parent's memory image, which the child shares copy-on-write.
    unsafe { libc::execvp(argv[0], argv.as_ptr()) };
    let error = std::io::Error::last_os_error();
    // SAFETY: argv[0] is a valid NUL-terminated string (see above).
    let program = unsafe { std::ffi::CStr::from_ptr(argv[0]) };
    report(format_args!("exec {}: {error}", program.to_string_lossy()));
    let code = if error.raw_os_error() == Some(libc::ENOENT) {
        127
    } else {
        126
    };
    // SAFETY: _exit skips atexit handlers and stdio flushing that belong to the parent.
    unsafe { libc::_exit(code) }
}

/// The parent's loop: forward signals, reap, exit with the child's status.
fn supervise(child: libc::pid_t, group: bool, blocked: &libc::sigset_t) -> i32 {
    let target = if group { -child } else { child };
    loop {
        // SAFETY: siginfo_t is plain data written by the kernel.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `blocked` and `info` are valid; every signal in the set is blocked.
        let signal = unsafe { libc::sigwaitinfo(blocked, &mut info) };
        if signal < 0 {
            // EINTR (a stop/continue) — wait again.
            continue;
        }
        if signal != libc::SIGCHLD {
            // ESRCH (the child just exited, its SIGCHLD is pending) needs no handling.
            // SAFETY: kill with a valid pid (or negated group id) and signal number.
            unsafe { libc::kill(target, signal) };
            continue;
        }
        if let Some(code) = reap(child) {
            return code;
        }
    }
}

/// Reaps every exited descendant; the child's exit code once it is among them.
fn reap(child: libc::pid_t) -> Option<i32> {
    let mut result = None;
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: waitpid with a valid status pointer; WNOHANG never blocks.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            // 0: children remain but none exited; -1 ECHILD: none remain.
            return result;
        }
        if pid == child {
            result = Some(exit_code(status));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    fn argv(list: &[&str]) -> Vec<CString> {
        list.iter().map(|a| CString::new(*a).unwrap()).collect()
    }

    #[test]
    fn parses_docker_invocation_and_options() {
        assert_eq!(
            parse_args(&args(&["--", "sh", "-c", "echo hi"])).unwrap(),
            Invocation::Run {
                group: false,
                argv: argv(&["sh", "-c", "echo hi"])
            }
        );
        assert_eq!(
            parse_args(&args(&["-g", "-s", "--", "ps", "--", "-x"])).unwrap(),
            Invocation::Run {
                group: true,
                argv: argv(&["ps", "--", "-x"])
            }
        );
        // Options stop at the first program name.
        assert_eq!(
            parse_args(&args(&["ls", "-g"])).unwrap(),
            Invocation::Run {
                group: false,
                argv: argv(&["ls", "-g"])
            }
        );
        assert_eq!(
            parse_args(&args(&["--version"])).unwrap(),
            Invocation::Version
        );
        assert_eq!(parse_args(&args(&["-h"])).unwrap(), Invocation::Help);
    }

    #[test]
    fn refuses_bad_command_lines() {
        assert!(parse_args(&args(&[])).is_err());
        assert!(parse_args(&args(&["--"])).is_err());
        assert!(parse_args(&args(&["-x", "sh"])).is_err());
        let nul = vec![OsString::from("--"), OsString::from("a\0b")];
        assert!(parse_args(&nul).is_err());
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        // wait(2) status encodings: exit code in bits 8..15, terminating signal in bits 0..6.
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(255 << 8), 255);
        assert_eq!(exit_code(libc::SIGTERM), 143);
        assert_eq!(exit_code(libc::SIGKILL), 137);
        // A core dump flag does not change the signal.
        assert_eq!(exit_code(libc::SIGSEGV | 0x80), 139);
    }

    #[test]
    fn forwards_async_signals_only() {
        let set = forwarded_signals();
        // SAFETY: `set` is an initialised sigset_t.
        let member = |s| unsafe { libc::sigismember(&set, s) } == 1;
        for s in [
            libc::SIGTERM,
            libc::SIGINT,
            libc::SIGHUP,
            libc::SIGQUIT,
            libc::SIGUSR1,
            libc::SIGUSR2,
            libc::SIGWINCH,
            libc::SIGCHLD,
            libc::SIGPIPE,
            libc::SIGRTMIN() + 3,
        ] {
            assert!(member(s), "signal {s} must be forwarded");
        }
        for s in NOT_FORWARDED {
            assert!(!member(s), "signal {s} must not be forwarded");
        }
    }
}
