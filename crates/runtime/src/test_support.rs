//! Helpers shared by the unit tests that change process-wide state (capabilities, rlimits,
//! seccomp): such a test runs its body in a forked child.

use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork};

/// Runs `body` in a forked child and returns how it ended. The child never returns into the
/// test harness: it `_exit`s with the body's code, or 101 on a panic.
pub fn in_child(body: impl FnOnce() -> i32) -> WaitStatus {
    // SAFETY: the child only runs `body` (which touches its own process state) and then
    // `_exit`s; it never returns into the multi-threaded test harness.
    match unsafe { fork() }.expect("fork") {
        ForkResult::Child => {
            let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)).unwrap_or(101);
            // SAFETY: _exit ends the child without running the harness' atexit handlers.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => waitpid(child, None).expect("waitpid"),
    }
}

/// Asserts the child exited with 0.
pub fn exited_ok(status: WaitStatus) {
    assert_eq!(
        status,
        WaitStatus::Exited(status.pid().unwrap(), 0),
        "{status:?}"
    );
}
