//! `delete`: removes a stopped (or, forced, a live) container: its processes, cgroup and state.

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::container::Runtime;
use crate::error::{Error, Result};
use crate::hooks::{self, HookPoint};
use crate::state::Status;

impl Runtime {
    /// `delete`: a running or paused container needs `force`; a created one is killed, as its
    /// program never ran. Poststop hooks run at the end.
    /// Like runc, a forced delete of an unknown container succeeds (it is already gone).
    pub fn delete(&self, id: &str, force: bool) -> Result<()> {
        let record = match self.root.load(id) {
            Err(Error::NotFound(_)) if force => return Ok(()),
            other => other?,
        };
        let status = self.status(&record);
        if matches!(status, Status::Running | Status::Paused) && !force {
            return Err(Error::FailedPrecondition(format!(
                "cannot delete container {id} that is not stopped: {status}"
            )));
        }
        let cgroup = self.cgroup_of(&record);
        if status != Status::Stopped {
            if let Ok(cgroup) = &cgroup {
                cgroup.kill_all(libc::SIGKILL)?;
            }
            let _ = kill(Pid::from_raw(record.pid), Signal::SIGKILL);
            wait_until_gone(&record)?;
        }
        if let Ok(cgroup) = &cgroup {
            // Processes that left the init behind (daemons) go with the container.
            if !cgroup.pids().unwrap_or_default().is_empty() {
                cgroup.kill_all(libc::SIGKILL)?;
            }
            cgroup.destroy()?;
        }
        self.root.remove(id)?;
        let poststop = hooks::of(&record.spec, HookPoint::Poststop);
        if !poststop.is_empty() {
            let state = self.hook_state(&record, Status::Stopped);
            hooks::run_logging_failures(&poststop, HookPoint::Poststop, &state);
        }
        Ok(())
    }
}

/// Waits for a killed init to disappear (reaping it when it is our child).
fn wait_until_gone(record: &crate::state::ContainerRecord) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while crate::state::is_alive(record) {
        let _ = nix::sys::wait::waitpid(
            Pid::from_raw(record.pid),
            Some(nix::sys::wait::WaitPidFlag::WNOHANG),
        );
        if Instant::now() > deadline {
            return Err(Error::FailedPrecondition(format!(
                "container process {} did not exit after SIGKILL",
                record.pid
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}
