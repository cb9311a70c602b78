//! Helpers of the root integration tests: guards that clean up cgroups and processes even when
//! an assertion fails, and a forked probe that opens a device from inside a cgroup.

#![allow(dead_code)]

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cgroups::Cgroup;

/// True when running as root; the tests print a note and pass otherwise.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// A fresh relative cgroup path for this test process.
pub fn unique_path(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "/berth-test-{}-{}-{tag}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Kills everything in the cgroup and removes it on drop, whatever happened; also removes
/// the raw directories in case destroy() itself is what failed.
pub struct CgroupGuard(pub Cgroup);

impl Drop for CgroupGuard {
    fn drop(&mut self) {
        let _ = self.0.thaw();
        let _ = self.0.kill_all(libc::SIGKILL);
        for pid in self.0.pids().unwrap_or_default() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        let _ = self.0.destroy();
        for dir in dirs_of(&self.0) {
            let _ = std::fs::remove_dir(&dir);
        }
    }
}

/// The directory of `cgroup` in each hierarchy.
pub fn dirs_of(cgroup: &Cgroup) -> Vec<PathBuf> {
    let rel = cgroup.path().trim_start_matches('/');
    let h = cgroup.hierarchies();
    let mut dirs: Vec<PathBuf> = h.v1().iter().map(|v| v.mount_point.join(rel)).collect();
    dirs.extend(h.unified_mount().map(|m| m.join(rel)));
    dirs
}

/// A child process killed and reaped on drop.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    pub fn sleep() -> Self {
        Self(
            Command::new("sleep")
                .arg("100")
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn sleep"),
        )
    }

    /// A shell that waits for a line on stdin ([`ChildGuard::go`]), then uses some memory and
    /// CPU (charged to the cgroup it joined meanwhile) and becomes `sleep 100`.
    pub fn worker() -> Self {
        Self(
            Command::new("sh")
                .arg("-c")
                .arg("read line; head -c 50000000 /dev/zero | sort | tail -c 0; exec sleep 100")
                .stdin(Stdio::piped())
                .spawn()
                .expect("spawn sh"),
        )
    }

    /// Lets a [`ChildGuard::worker`] go on, and waits until it has become `sleep`.
    pub fn go(&mut self) {
        use std::io::Write;
        self.0.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let start = Instant::now();
        while read(format!("/proc/{}/comm", self.pid())) != "sleep" {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "worker never reached sleep"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> i32 {
        self.0.id() as i32
    }

    /// Waits up to `timeout` for the child to exit; its status if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        None
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        if self.wait_exit(Duration::from_millis(500)).is_some() {
            return;
        }
        // Still there: a frozen task acts on SIGKILL only once thawed (a test failed while
        // its cgroup was frozen). Thaw whatever freezer holds it, then reap without hanging.
        thaw_process(self.pid());
        let _ = self.wait_exit(Duration::from_secs(5));
    }
}

/// Thaws the v1 freezer cgroup and the cgroup2 cgroup of `pid`, as /proc/<pid>/cgroup names
/// them (under the usual /sys/fs/cgroup mounts).
pub fn thaw_process(pid: i32) {
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return;
    };
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = match (parts.next(), parts.next(), parts.next()) {
            (Some(id), Some(c), Some(p)) => (id, c, p.trim_start_matches('/')),
            _ => continue,
        };
        if controllers.split(',').any(|c| c == "freezer") {
            let _ = std::fs::write(
                Path::new("/sys/fs/cgroup/freezer")
                    .join(path)
                    .join("freezer.state"),
                "THAWED",
            );
        } else if controllers.is_empty() {
            for mount in ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"] {
                let _ = std::fs::write(Path::new(mount).join(path).join("cgroup.freeze"), "0");
            }
        }
    }
}

/// A forked child that waits until `join` has placed it in a cgroup, then opens `path` with
/// `flags`. Returns 0 when the open succeeded, else its errno.
///
/// The child runs only async-signal-safe calls (read, open, _exit), as a fork of a
/// multi-threaded test process must.
pub fn probe_open(join: impl FnOnce(i32), path: &str, flags: i32) -> i32 {
    let c_path = CString::new(path).unwrap();
    let mut fds = [0i32; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: the child only calls async-signal-safe functions before _exit.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork failed");
    if pid == 0 {
        // SAFETY: raw syscalls on fds and a CString built before fork; _exit never returns.
        unsafe {
            libc::close(fds[1]);
            let mut byte = 0u8;
            libc::read(fds[0], &mut byte as *mut u8 as *mut libc::c_void, 1);
            if byte != b'x' {
                libc::_exit(200);
            }
            let fd = libc::open(c_path.as_ptr(), flags);
            if fd < 0 {
                libc::_exit(*libc::__errno_location());
            }
            libc::_exit(0);
        }
    }
    struct Reap(i32, i32);
    impl Drop for Reap {
        fn drop(&mut self) {
            // SAFETY: closing our write end (EOF lets the child go on) and reaping our child.
            unsafe {
                libc::close(self.1);
                let mut status = 0;
                if libc::waitpid(self.0, &mut status, libc::WNOHANG) == 0 {
                    libc::kill(self.0, libc::SIGKILL);
                    libc::waitpid(self.0, &mut status, 0);
                }
            }
        }
    }
    // SAFETY: closing the read end we do not use.
    unsafe { libc::close(fds[0]) };
    let reap = Reap(pid, fds[1]);
    join(pid);
    // SAFETY: writing one byte from a live buffer to our pipe's write end.
    let written = unsafe { libc::write(fds[1], b"x".as_ptr() as *const libc::c_void, 1) };
    assert_eq!(written, 1);
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    std::mem::forget(reap);
    // SAFETY: closing our write end once.
    unsafe { libc::close(fds[1]) };
    assert!(
        libc::WIFEXITED(status),
        "probe did not exit normally: {status:#x}"
    );
    libc::WEXITSTATUS(status)
}

/// `major:minor` of the first real disk (not loop/ram/zram), for blkio throttle tests.
pub fn a_disk() -> Option<(u64, u64)> {
    let mut names: Vec<String> = std::fs::read_dir("/sys/block")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            !["loop", "ram", "zram", "dm-", "md"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .collect();
    names.sort();
    let dev = std::fs::read_to_string(format!("/sys/block/{}/dev", names.first()?)).ok()?;
    let (major, minor) = dev.trim().split_once(':')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

pub fn read(path: impl AsRef<std::path::Path>) -> String {
    std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("read {}: {e}", path.as_ref().display()))
        .trim()
        .to_string()
}
