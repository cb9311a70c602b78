//! Waiting for a container process in the foreground (`run`, `exec` without `--detach`): the
//! runtime is a child subreaper, forwards the signals it receives to the process, and turns its
//! end into a shell-style exit code (128 + signal number when killed).

use nix::sys::signal::{SigSet, SigmaskHow, Signal, kill, sigprocmask};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::error::{Result, sys};

/// Signals passed on to the container process.
const FORWARDED: [Signal; 7] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGTERM,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// Blocks the forwarded signals and SIGCHLD so they can be taken with sigwait. Call it after the
/// container process is forked, so the process does not inherit the mask.
pub fn block_signals() -> Result<SigSet> {
    let mut set = SigSet::empty();
    for signal in FORWARDED {
        set.add(signal);
    }
    set.add(Signal::SIGCHLD);
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None).map_err(sys("block signals"))?;
    Ok(set)
}

/// Waits until `pid` ends, reaping any other orphan that reaches us meanwhile, forwarding
/// signals. Returns the exit code.
pub fn wait_forwarding(pid: i32, signals: &SigSet) -> Result<i32> {
    let target = Pid::from_raw(pid);
    loop {
        // Reap first: the process may have ended before the signals were blocked.
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Exited(p, code)) if p == target => return Ok(code),
                Ok(WaitStatus::Signaled(p, signal, _)) if p == target => {
                    return Ok(128 + signal as i32);
                }
                Ok(WaitStatus::StillAlive) | Err(nix::errno::Errno::ECHILD) => break,
                Ok(_) => continue,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(errno) => return Err(crate::Error::sys("waitpid", errno)),
            }
        }
        let signal = signals.wait().map_err(sys("sigwait"))?;
        if signal != Signal::SIGCHLD {
            let _ = kill(target, signal);
        }
    }
}
