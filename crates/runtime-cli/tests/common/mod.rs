//! Shared helpers for the `berth-runtime` integration tests.
//!
//! The tests drive the binary through runc's command line only, so the same
//! suite validates any OCI runtime with that CLI:
//!
//! ```text
//! cargo test -p runtime-cli                                   # berth-runtime
//! BERTH_TEST_RUNTIME=$(which runc) cargo test -p runtime-cli  # the reference
//! ```
//!
//! They need root (namespaces, cgroups, mounts). Every test owns a
//! [`Container`]: a tempdir (name starting with `berth-test-`, so a leaked
//! mount is visible to `scripts/test.sh`'s leak check) holding the bundle, a
//! private `--root` state directory and a scratch host directory. Dropping it
//! force-deletes the container, detaches any mount the runtime left under the
//! tempdir and removes the tempdir, also when the test panics.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long one runtime command may take before the test gives up on it.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// The runtime binary under test: `$BERTH_TEST_RUNTIME` if set, else the
/// `berth-runtime` built by cargo for this test run.
pub fn runtime_path() -> PathBuf {
    match std::env::var_os("BERTH_TEST_RUNTIME") {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => PathBuf::from(env!("CARGO_BIN_EXE_berth-runtime")),
    }
}

/// True when the binary under test is our own `berth-runtime` (not a
/// reference runtime named by `BERTH_TEST_RUNTIME`). A few expectations are
/// stricter for ours than for runc, e.g. the one-line error format.
pub fn testing_berth() -> bool {
    std::env::var_os("BERTH_TEST_RUNTIME").is_none_or(|p| p.is_empty())
}

/// Panics with a clear message unless the tests run as root.
pub fn require_root() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the runtime-cli integration tests need root (namespaces, cgroups, mounts)"
    );
}

/// A container id unique across the parallel tests of all test binaries.
pub fn unique_id(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "bt-{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Path of a file in the workspace's `scripts/` directory.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(name)
}

/// Output of one runtime command.
#[derive(Debug)]
pub struct Out {
    /// What ran, for assertion messages.
    pub what: String,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// The exit code, or 128 + signal when the runtime itself was killed.
    pub fn code(&self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        self.status
            .code()
            .unwrap_or_else(|| 128 + self.status.signal().unwrap_or(0))
    }

    /// Asserts a zero exit status; returns self for chaining.
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert!(
            self.status.success(),
            "{} failed ({}):\nstdout: {}\nstderr: {}",
            self.what,
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts the runtime refused: non-zero exit and an error on stderr.
    /// For berth-runtime the error must be exactly one line (runc prints a
    /// logrus-formatted line which may be preceded by warnings).
    #[track_caller]
    pub fn refused(&self) -> &Self {
        assert!(
            !self.status.success(),
            "{} unexpectedly succeeded:\nstdout: {}\nstderr: {}",
            self.what,
            self.stdout,
            self.stderr
        );
        let stderr = self.stderr.trim();
        assert!(
            !stderr.is_empty(),
            "{} failed ({}) without an error message on stderr",
            self.what,
            self.status
        );
        if testing_berth() {
            assert_eq!(
                stderr.lines().count(),
                1,
                "{}: the error must be one line, got:\n{}",
                self.what,
                stderr
            );
        }
        self
    }

    /// Trimmed lines of stdout.
    pub fn lines(&self) -> Vec<String> {
        self.stdout
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .collect()
    }
}

/// Runs `cmd` with stdout/stderr piped, killing it after `timeout`.
#[track_caller]
pub fn run_piped(mut cmd: Command, timeout: Duration) -> Out {
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"));
    let (tx, rx) = mpsc::channel();
    for (index, mut pipe) in [
        Box::new(child.stdout.take().expect("stdout")) as Box<dyn Read + Send>,
        Box::new(child.stderr.take().expect("stderr")) as Box<dyn Read + Send>,
    ]
    .into_iter()
    .enumerate()
    {
        let tx = tx.clone();
        thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            let _ = tx.send((index, bytes));
        });
    }
    let status = wait_timeout(&mut child, timeout, &what);
    // A container that keeps our pipes open would block EOF forever: bound it.
    let mut outputs = [Vec::new(), Vec::new()];
    for _ in 0..2 {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok((index, bytes)) => outputs[index] = bytes,
            Err(_) => panic!("{what} exited but its stdout/stderr stayed open"),
        }
    }
    let [stdout, stderr] = outputs;
    Out {
        what,
        status,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Runs `cmd` with stdout/stderr sent to files in `dir` (for commands whose
/// container inherits them and outlives the command: create, run --detach,
/// exec --detach), killing it after `timeout`.
#[track_caller]
pub fn run_to_files(mut cmd: Command, dir: &Path, timeout: Duration) -> Out {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let out_path = dir.join(format!("cmd-{n}.out"));
    let err_path = dir.join(format!("cmd-{n}.err"));
    let what = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("stdout file"))
        .stderr(File::create(&err_path).expect("stderr file"));
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"));
    let status = wait_timeout(&mut child, timeout, &what);
    Out {
        what,
        status,
        stdout: fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

#[track_caller]
fn wait_timeout(child: &mut std::process::Child, timeout: Duration, what: &str) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Polls `check` every 20 ms until it returns true or `timeout` passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Capabilities of Docker's default profile (a broad but unprivileged set).
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// The cgroups path of the test container `id` (cgroupsPath in config.json).
pub fn cgroups_path(id: &str) -> String {
    format!("/berth-test/{id}")
}

/// A config.json for a busybox bundle, written by the tests themselves (not
/// taken from `spec`) so that most tests do not depend on `spec`: pid, mount,
/// network, uts and ipc namespaces, the cgroup `/berth-test/<id>`, no
/// terminal, Docker's default capabilities and device rules.
pub fn base_config(id: &str, args: &[&str]) -> Value {
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": { "uid": 0, "gid": 0 },
            "args": args,
            "env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "TERM=xterm"
            ],
            "cwd": "/",
            "capabilities": {
                "bounding": DEFAULT_CAPS,
                "effective": DEFAULT_CAPS,
                "permitted": DEFAULT_CAPS
            },
            "noNewPrivileges": true
        },
        "root": { "path": "rootfs", "readonly": false },
        "hostname": id,
        "mounts": [
            { "destination": "/proc", "type": "proc", "source": "proc" },
            { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
              "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
            { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
              "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"] },
            { "destination": "/dev/shm", "type": "tmpfs", "source": "shm",
              "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"] },
            { "destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
              "options": ["nosuid", "noexec", "nodev"] },
            { "destination": "/sys", "type": "sysfs", "source": "sysfs",
              "options": ["nosuid", "noexec", "nodev", "ro"] }
        ],
        "linux": {
            "namespaces": [
                { "type": "pid" },
                { "type": "network" },
                { "type": "ipc" },
                { "type": "uts" },
                { "type": "mount" }
            ],
            "cgroupsPath": cgroups_path(id),
            "resources": {
                "devices": [
                    { "allow": false, "access": "rwm" },
                    { "allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm" },
                    { "allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm" },
                    { "allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm" },
                    { "allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm" },
                    { "allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm" },
                    { "allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm" },
                    { "allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm" },
                    { "allow": true, "type": "c", "major": 136, "access": "rwm" }
                ]
            },
            "maskedPaths": [
                "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                "/sys/firmware", "/proc/scsi"
            ],
            "readonlyPaths": [
                "/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq",
                "/proc/sys", "/proc/sysrq-trigger"
            ]
        }
    })
}

/// One test container: bundle, state root and scratch dir in a tempdir, and
/// a guard that cleans all of it up on drop.
pub struct Container {
    pub id: String,
    /// The config written by [`Container::write_config`]; edit it freely.
    pub config: Value,
    dir: Option<tempfile::TempDir>,
}

impl Container {
    /// A container `tag` running `args` in a fresh busybox rootfs.
    pub fn new(tag: &str, args: &[&str]) -> Container {
        require_root();
        let id = unique_id(tag);
        let dir = tempfile::Builder::new()
            .prefix("berth-test-")
            .tempdir()
            .expect("tempdir");
        // 0755: a container root mapped to an unprivileged uid (user
        // namespace test) must be able to walk to its rootfs.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod");
        let container = Container {
            config: base_config(&id, args),
            id,
            dir: Some(dir),
        };
        fs::create_dir_all(container.state_root()).expect("state root");
        fs::create_dir_all(container.host_dir()).expect("host dir");
        let out = run_piped(
            {
                let mut cmd = Command::new("bash");
                cmd.arg(script("busybox-rootfs.sh")).arg(container.rootfs());
                cmd
            },
            COMMAND_TIMEOUT,
        );
        out.ok();
        container
    }

    /// The tempdir holding everything of this test.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("tempdir").path()
    }

    /// The OCI bundle directory (config.json + rootfs).
    pub fn bundle(&self) -> PathBuf {
        self.dir().join("bundle")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.bundle().join("rootfs")
    }

    /// The `--root` directory given to the runtime.
    pub fn state_root(&self) -> PathBuf {
        self.dir().join("state")
    }

    /// A scratch directory on the host, outside the bundle.
    pub fn host_dir(&self) -> PathBuf {
        self.dir().join("host")
    }

    /// Mutable access to `linux.resources` (created if missing).
    pub fn resources(&mut self) -> &mut serde_json::Map<String, Value> {
        self.config["linux"]
            .as_object_mut()
            .expect("linux")
            .entry("resources")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("resources object")
    }

    /// Writes `self.config` to bundle/config.json.
    pub fn write_config(&self) {
        fs::write(
            self.bundle().join("config.json"),
            serde_json::to_vec_pretty(&self.config).expect("json"),
        )
        .expect("write config.json");
    }

    /// A runtime command with `--root` set, not yet run.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(runtime_path());
        cmd.arg("--root").arg(self.state_root()).args(args);
        cmd
    }

    /// Runs the runtime with `args` (after `--root`), capturing its output.
    #[track_caller]
    pub fn rt(&self, args: &[&str]) -> Out {
        run_piped(self.command(args), COMMAND_TIMEOUT)
    }

    /// Like [`Container::rt`] but with stdout/stderr in files, for commands
    /// whose container process inherits them (create, run -d, exec -d).
    #[track_caller]
    pub fn rt_files(&self, args: &[&str]) -> Out {
        run_to_files(self.command(args), self.dir(), COMMAND_TIMEOUT)
    }

    /// Writes config.json and runs the container in the foreground.
    #[track_caller]
    pub fn run(&self) -> Out {
        self.write_config();
        let bundle = self.bundle();
        self.rt(&["run", "--bundle", path_str(&bundle), &self.id])
    }

    /// Writes config.json and creates the container (stdio to files).
    #[track_caller]
    pub fn create(&self) -> Out {
        self.write_config();
        let bundle = self.bundle();
        self.rt_files(&["create", "--bundle", path_str(&bundle), &self.id])
    }

    /// `start ID`.
    #[track_caller]
    pub fn start(&self) -> Out {
        self.rt(&["start", &self.id])
    }

    /// create + start, asserting both succeed.
    #[track_caller]
    pub fn create_and_start(&self) {
        self.create().ok();
        self.start().ok();
    }

    /// `state ID`, parsed.
    #[track_caller]
    pub fn state(&self) -> Value {
        let out = self.rt(&["state", &self.id]);
        out.ok();
        serde_json::from_str(&out.stdout)
            .unwrap_or_else(|e| panic!("state is not JSON ({e}): {}", out.stdout))
    }

    /// The `status` field of `state ID`.
    #[track_caller]
    pub fn status(&self) -> String {
        self.state()["status"]
            .as_str()
            .expect("status string")
            .to_string()
    }

    /// Host pid of the container's init process (from `state`).
    #[track_caller]
    pub fn pid(&self) -> i32 {
        let pid = self.state()["pid"].as_i64().expect("pid in state");
        assert!(pid > 0, "state pid is {pid}");
        pid as i32
    }

    /// Waits until `state` reports `status`.
    #[track_caller]
    pub fn wait_status(&self, status: &str, timeout: Duration) {
        let mut last = String::new();
        let reached = wait_until(timeout, || {
            last = self.status();
            last == status
        });
        assert!(reached, "container never became {status}, last {last}");
    }

    /// `exec ID ARGS...` in the foreground.
    #[track_caller]
    pub fn exec(&self, args: &[&str]) -> Out {
        self.exec_with(&[], args)
    }

    /// `exec OPTIONS... ID ARGS...` in the foreground.
    #[track_caller]
    pub fn exec_with(&self, options: &[&str], args: &[&str]) -> Out {
        let mut full = vec!["exec"];
        full.extend_from_slice(options);
        full.push(self.id.as_str());
        full.extend_from_slice(args);
        self.rt(&full)
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let Some(dir) = self.dir.take() else { return };
        if dir.path().join("bundle").exists() {
            let mut cmd = Command::new(runtime_path());
            cmd.arg("--root")
                .arg(dir.path().join("state"))
                .args(["delete", "--force", &self.id])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if let Ok(mut child) = cmd.spawn() {
                let deadline = Instant::now() + Duration::from_secs(30);
                while Instant::now() < deadline {
                    if let Ok(Some(_)) = child.try_wait() {
                        break;
                    }
                    thread::sleep(Duration::from_millis(10));
                }
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        // Never recurse into a mount the runtime leaked under the tempdir
        // (it could be a bind of a host directory): detach them first.
        let leaked = mounts_under(dir.path());
        for mount_point in leaked.iter().rev() {
            eprintln!("cleanup: detaching leaked mount {}", mount_point.display());
            let _ = nix::mount::umount2(mount_point.as_path(), nix::mount::MntFlags::MNT_DETACH);
        }
        if let Err(e) = dir.close() {
            eprintln!("cleanup: cannot remove test tempdir: {e}");
        }
    }
}

/// Lossless &str of a test path (our tempdir paths are ASCII).
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Mount points in this process's mount namespace at or under `dir`, in
/// mountinfo order. See proc(5), /proc/[pid]/mountinfo field 5.
pub fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as \ooo octal.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        if bytes[i] == b'\\'
            && let Some(v) = octal
        {
            out.push(v);
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Cgroup v1 controllers mounted on this host (directories of
/// /sys/fs/cgroup that are cgroup mounts), plus "" for a cgroup2 mount.
pub fn cgroup_roots() -> Vec<PathBuf> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    mountinfo
        .lines()
        .filter(|line| {
            let fstype = line.split(" - ").nth(1).and_then(|r| r.split(' ').next());
            matches!(fstype, Some("cgroup") | Some("cgroup2"))
        })
        .filter_map(|line| line.split(' ').nth(4).map(PathBuf::from))
        .collect()
}

/// The host directory of `pid`'s cgroup for `controller` (v1), or of its
/// unified cgroup (v2) when the controller has no v1 hierarchy.
pub fn cgroup_dir_of(pid: i32, controller: &str) -> Option<PathBuf> {
    let text = fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let mut unified = None;
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        if ctrls.split(',').any(|c| c == controller) {
            let base = Path::new("/sys/fs/cgroup").join(controller);
            return Some(base.join(path.trim_start_matches('/')));
        }
        if ctrls.is_empty() {
            unified = Some(path.to_string());
        }
    }
    // Pure cgroup v2 host: /sys/fs/cgroup is the unified mount.
    let path = unified?;
    let base = Path::new("/sys/fs/cgroup");
    (fs::read_to_string(base.join("cgroup.controllers")).is_ok())
        .then(|| base.join(path.trim_start_matches('/')))
}

/// Total CPU time (ns) used by the cgroup holding `pid`.
pub fn cpu_usage_ns(pid: i32) -> u64 {
    if let Some(dir) = cgroup_dir_of(pid, "cpuacct") {
        if let Ok(text) = fs::read_to_string(dir.join("cpuacct.usage")) {
            return text.trim().parse().expect("cpuacct.usage");
        }
        // cgroup v2: cpu.stat usage_usec.
        if let Ok(text) = fs::read_to_string(dir.join("cpu.stat")) {
            for line in text.lines() {
                if let Some(v) = line.strip_prefix("usage_usec ") {
                    return v.trim().parse::<u64>().expect("usage_usec") * 1000;
                }
            }
        }
    }
    panic!("cannot find the cpu usage of pid {pid}'s cgroup");
}

/// Namespace links (`/proc/PID/ns/*` targets) of a host pid.
pub fn namespaces_of(pid: i32) -> BTreeSet<String> {
    ["cgroup", "ipc", "mnt", "net", "pid", "user", "uts"]
        .iter()
        .filter_map(|ns| fs::read_link(format!("/proc/{pid}/ns/{ns}")).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .collect()
}

/// Live (non-zombie) host pids whose cgroup path (any hierarchy) mentions
/// `needle`. Zombies are skipped: an orphaned container init is reaped by
/// the host's pid 1, whenever that gets round to it.
pub fn pids_in_cgroup_matching(needle: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if fs::read_to_string(format!("/proc/{pid}/cgroup")).is_ok_and(|c| c.contains(needle))
            && pid_alive(pid)
        {
            pids.push(pid);
        }
    }
    pids
}

/// Host pids whose root directory or cwd is inside `dir`.
pub fn pids_rooted_in(dir: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let inside = ["root", "cwd"].iter().any(|link| {
            fs::read_link(format!("/proc/{pid}/{link}")).is_ok_and(|t| t.starts_with(dir))
        });
        if inside && pid_alive(pid) {
            pids.push(pid);
        }
    }
    pids
}

/// Asserts the container `c` left nothing on the host: no state under
/// `--root`, no cgroup directory, no mount into the tempdir, no process.
#[track_caller]
pub fn assert_nothing_left(c: &Container) {
    let state_entries: Vec<_> = fs::read_dir(c.state_root())
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|name| name.contains(&c.id))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        state_entries.is_empty(),
        "state left under --root: {state_entries:?}"
    );
    let cgroup = cgroups_path(&c.id);
    for root in cgroup_roots() {
        let dir = root.join(cgroup.trim_start_matches('/'));
        assert!(!dir.exists(), "cgroup left behind: {}", dir.display());
    }
    let mounts = mounts_under(c.dir());
    assert!(mounts.is_empty(), "mounts left behind: {mounts:?}");
    let in_cgroup = pids_in_cgroup_matching(&cgroup);
    assert!(
        in_cgroup.is_empty(),
        "processes left in {cgroup}: {in_cgroup:?}"
    );
    let rooted = pids_rooted_in(c.dir());
    assert!(
        rooted.is_empty(),
        "processes left in the bundle: {rooted:?}"
    );
}

/// True while `pid` exists and is not a zombie.
pub fn pid_alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // Field 3, after the parenthesised comm (which may hold spaces).
            let state = stat
                .rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next());
            !matches!(state, Some("Z") | Some("X") | None)
        }
        Err(_) => false,
    }
}
