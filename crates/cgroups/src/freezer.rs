//! Freezing and killing every process of a cgroup: the v1 freezer (cgroup-v1/freezer-subsystem.rst)
//! or cgroup v2's `cgroup.freeze`, `cgroup.events` and `cgroup.kill` (cgroup-v2.rst "Core
//! Interface Files", Linux 5.2 and 5.14).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cgroup::Cgroup;
use crate::error::{Error, Result};
use crate::fs;

/// How long a freeze may take before it is given up (the kernel may wait for tasks in
/// uninterruptible sleep, e.g. on NFS).
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);

enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

impl Cgroup {
    fn freezer(&self) -> Result<Freezer> {
        if let Some(dir) = self.v1_dir("freezer") {
            return Ok(Freezer::V1(dir));
        }
        match self.unified_dir() {
            Some(dir) if fs::exists(&dir.join("cgroup.freeze")) => Ok(Freezer::V2(dir)),
            _ => Err(Error::Unsupported("the freezer".into())),
        }
    }

    /// Freezes every process of the cgroup and its descendants, returning once the kernel
    /// reports the cgroup frozen. On timeout the cgroup is thawed again and an error returned.
    pub fn freeze(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(dir) => {
                let state = dir.join("freezer.state");
                let start = Instant::now();
                let mut last_write = start;
                fs::write(&state, "FROZEN")?;
                loop {
                    if fs::read(&state)?.trim() == "FROZEN" {
                        return Ok(());
                    }
                    if start.elapsed() > FREEZE_TIMEOUT {
                        let _ = fs::write(&state, "THAWED");
                        return Err(Error::FreezeTimeout {
                            path: dir,
                            state: "FROZEN",
                        });
                    }
                    // A freeze stays FREEZING while a task it missed (one forked mid-freeze,
                    // or asleep in the kernel) is unfrozen; asking again retries those tasks.
                    if last_write.elapsed() > Duration::from_millis(100) {
                        fs::write(&state, "FROZEN")?;
                        last_write = Instant::now();
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Freezer::V2(dir) => {
                fs::write(&dir.join("cgroup.freeze"), "1")?;
                if let Err(e) = wait_v2(&dir, true) {
                    let _ = fs::write(&dir.join("cgroup.freeze"), "0");
                    return Err(e);
                }
                Ok(())
            }
        }
    }

    /// Thaws the cgroup and waits until the kernel reports it thawed.
    pub fn thaw(&self) -> Result<()> {
        match self.freezer()? {
            Freezer::V1(dir) => {
                let state = dir.join("freezer.state");
                let start = Instant::now();
                loop {
                    fs::write(&state, "THAWED")?;
                    if fs::read(&state)?.trim() == "THAWED" {
                        return Ok(());
                    }
                    if start.elapsed() > FREEZE_TIMEOUT {
                        return Err(Error::FreezeTimeout {
                            path: dir,
                            state: "THAWED",
                        });
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            Freezer::V2(dir) => {
                fs::write(&dir.join("cgroup.freeze"), "0")?;
                wait_v2(&dir, false)
            }
        }
    }

    /// True when the cgroup is frozen (v1: freezer.state reads FROZEN, also when an ancestor
    /// froze it; v2: `frozen 1` in cgroup.events).
    pub fn is_frozen(&self) -> Result<bool> {
        match self.freezer()? {
            Freezer::V1(dir) => Ok(fs::read(&dir.join("freezer.state"))?.trim() == "FROZEN"),
            Freezer::V2(dir) => v2_frozen(&dir),
        }
    }

    /// Sends `signal` to every process of the cgroup subtree.
    ///
    /// SIGKILL with cgroup2's `cgroup.kill` available kills the whole subtree in the kernel,
    /// race-free against forks. Otherwise the cgroup is frozen so that nothing forks while the
    /// pids are listed, each one is signalled, and the cgroup is thawed again (unless it was
    /// frozen before and the signal is not SIGKILL: a paused cgroup stays paused and receives
    /// the signal when resumed). Processes that exit meanwhile are not an error.
    pub fn kill_all(&self, signal: i32) -> Result<()> {
        let signal = Signal::try_from(signal)
            .map_err(|_| Error::invalid("signal", format!("{signal} is not a signal")))?;
        if signal == Signal::SIGKILL
            && let Some(dir) = self.unified_dir()
            && fs::exists(&dir.join("cgroup.kill"))
        {
            fs::write(&dir.join("cgroup.kill"), "1")?;
            if self.layout() == crate::hierarchy::Layout::Unified {
                // A fatal signal ends tasks frozen by cgroup2's freezer too (cgroup-v2.rst).
                return Ok(());
            }
            // With v1 hierarchies beside cgroup2, a process that joined only those is not
            // covered by cgroup.kill; and a task frozen by the v1 freezer does not act on
            // SIGKILL until thawed.
            let result = self.signal_each(signal);
            if self.v1_dir("freezer").is_some() && self.is_frozen().unwrap_or(false) {
                self.thaw()?;
            }
            return result;
        }
        let was_frozen = self.is_frozen().unwrap_or(false);
        let froze = self.freeze().is_ok();
        let result = self.signal_each(signal);
        if froze && (!was_frozen || signal == Signal::SIGKILL) {
            self.thaw()?;
        }
        result
    }

    fn signal_each(&self, signal: Signal) -> Result<()> {
        for pid in self.pids()? {
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(errno) => {
                    return Err(Error::io(
                        format!("send {signal} to"),
                        format!("/proc/{pid}"),
                        std::io::Error::from_raw_os_error(errno as i32),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn v2_frozen(dir: &Path) -> Result<bool> {
    let events = fs::read(&dir.join("cgroup.events"))?;
    Ok(events.lines().any(|l| l.trim() == "frozen 1"))
}

/// Polls cgroup.events until `frozen` has the wanted value (the file also signals changes
/// through poll(2), but a short sleep loop is simpler and freezing takes milliseconds).
fn wait_v2(dir: &Path, frozen: bool) -> Result<()> {
    let start = Instant::now();
    while v2_frozen(dir)? != frozen {
        if start.elapsed() > FREEZE_TIMEOUT {
            return Err(Error::FreezeTimeout {
                path: dir.to_path_buf(),
                state: if frozen { "FROZEN" } else { "THAWED" },
            });
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::FakeHost;

    #[test]
    fn v1_freeze_and_thaw() {
        let host = FakeHost::hybrid();
        host.mkcg("/f");
        let cg = Cgroup::new(&host.hierarchies(), "/f").unwrap();
        assert!(!cg.is_frozen().unwrap());
        cg.freeze().unwrap();
        assert!(cg.is_frozen().unwrap());
        assert_eq!(host.read("freezer/f/freezer.state"), "FROZEN");
        cg.thaw().unwrap();
        assert_eq!(host.read("freezer/f/freezer.state"), "THAWED");
    }

    #[test]
    fn freezer_absent() {
        let host = FakeHost::hybrid();
        host.mkcg("/f");
        let cg = Cgroup::new(
            &host.hierarchies().without("freezer").without_unified(),
            "/f",
        )
        .unwrap();
        assert_eq!(
            cg.freeze().unwrap_err().kind(),
            types::ErrorKind::Unsupported
        );
    }

    #[test]
    fn v2_kill_writes_cgroup_kill() {
        let host = FakeHost::unified();
        host.mkcg("/k");
        let cg = Cgroup::new(&host.hierarchies(), "/k").unwrap();
        cg.kill_all(libc::SIGKILL).unwrap();
        assert_eq!(host.writes(), vec![("k/cgroup.kill".into(), "1".into())]);
        assert!(cg.kill_all(1000).is_err());
    }
}
