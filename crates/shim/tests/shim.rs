//! Integration tests of `berth-shim` with real containers (root needed: namespaces, cgroups,
//! mounts). Each test owns a [`TestContainer`]: a tempdir with a busybox bundle, the shim's
//! state directory and the log. Dropping it kills the container and the shim, reaps the shim,
//! deletes the container through the runtime (cgroup included) and removes the tempdir, also
//! when the test panics.
//!
//! The test process makes itself a child subreaper, so the shims (whose foreground half exits)
//! become its children and are reaped here instead of piling up under pid 1.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shim::protocol::{self, ExitRecord, Request, StateDir};

const TIMEOUT: Duration = Duration::from_secs(30);

fn shim_binary() -> &'static str {
    env!("CARGO_BIN_EXE_berth-shim")
}

fn require_root_and_subreaper() {
    // SAFETY: geteuid has no preconditions.
    assert_eq!(unsafe { libc::geteuid() }, 0, "the shim tests need root");
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: prctl with integer arguments only.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        assert_eq!(rc, 0, "become subreaper");
    });
}

fn unique(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `check` every 20 ms until it holds or `timeout` passes.
fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn process_exists(pid: i32) -> bool {
    // A zombie counts as gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            let state = stat.rsplit(')').next().unwrap_or("").trim_start();
            !state.starts_with('Z') && !state.starts_with('X')
        })
        .unwrap_or(false)
}

/// One container under a shim.
struct TestContainer {
    id: String,
    cgroup: String,
    config: Value,
    runtime: Option<PathBuf>,
    shim_pid: Option<i32>,
    dir: Option<tempfile::TempDir>,
}

impl TestContainer {
    fn new(tag: &str, script: &str) -> Self {
        require_root_and_subreaper();
        let id = unique(&format!("shimtest-{tag}"));
        let cgroup = format!("/berth-shimtest-{id}");
        let dir = tempfile::Builder::new()
            .prefix("berth-test-shim-")
            .tempdir()
            .expect("tempdir");
        let rootfs = dir.path().join("bundle/rootfs");
        let out = Command::new("bash")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-rootfs.sh"))
            .arg(&rootfs)
            .output()
            .expect("run busybox-rootfs.sh");
        assert!(out.status.success(), "busybox-rootfs.sh: {out:?}");
        let config = json!({
            "ociVersion": "1.0.2",
            "process": {
                "terminal": false,
                "user": { "uid": 0, "gid": 0 },
                "args": ["sh", "-c", script],
                "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
                "cwd": "/"
            },
            "root": { "path": "rootfs" },
            "hostname": "shimtest",
            "mounts": [
                { "destination": "/proc", "type": "proc", "source": "proc" },
                { "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
                  "options": ["nosuid", "strictatime", "mode=755", "size=65536k"] },
                { "destination": "/dev/pts", "type": "devpts", "source": "devpts",
                  "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"] },
                { "destination": "/sys", "type": "sysfs", "source": "sysfs",
                  "options": ["nosuid", "noexec", "nodev", "ro"] }
            ],
            "linux": {
                "namespaces": [
                    { "type": "pid" }, { "type": "mount" }, { "type": "ipc" },
                    { "type": "uts" }, { "type": "network" }
                ],
                "cgroupsPath": cgroup
            }
        });
        TestContainer {
            id,
            cgroup,
            config,
            runtime: None,
            shim_pid: None,
            dir: Some(dir),
        }
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().expect("tempdir").path()
    }

    fn bundle(&self) -> PathBuf {
        self.dir().join("bundle")
    }

    fn state_dir(&self) -> StateDir {
        StateDir(self.dir().join("shims").join(&self.id))
    }

    fn socket(&self) -> PathBuf {
        self.state_dir().socket()
    }

    fn log_path(&self) -> PathBuf {
        self.dir()
            .join("containers")
            .join(format!("{}-json.log", self.id))
    }

    fn runtime_root(&self) -> PathBuf {
        self.state_dir().0.join("runtime")
    }

    /// The `berth-shim start` command for this container, with `extra` flags.
    fn start_command(&self, extra: &[&str]) -> Command {
        std::fs::write(
            self.bundle().join("config.json"),
            serde_json::to_vec_pretty(&self.config).unwrap(),
        )
        .unwrap();
        let mut command = Command::new(shim_binary());
        command
            .arg("start")
            .arg("--id")
            .arg(&self.id)
            .arg("--bundle")
            .arg(self.bundle())
            .arg("--state-dir")
            .arg(&self.state_dir().0)
            .arg("--log")
            .arg(self.log_path())
            .args(extra);
        if let Some(runtime) = &self.runtime {
            command.arg("--runtime").arg(runtime);
        }
        command.stdin(Stdio::null());
        command
    }

    /// Runs `berth-shim start`; returns its output (the shim itself keeps running).
    fn start_raw(&mut self, extra: &[&str]) -> Output {
        let output = run_bounded(self.start_command(extra));
        if output.status.success() {
            self.shim_pid = self.state_dir().shim_pid().ok();
        }
        output
    }

    /// Starts the container, asserting `ok <pid>`; returns the init's pid.
    #[track_caller]
    fn start(&mut self, extra: &[&str]) -> i32 {
        let output = self.start_raw(extra);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "start failed: {stdout} {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let pid: i32 = stdout
            .trim()
            .strip_prefix("ok ")
            .unwrap_or_else(|| panic!("not an ok line: {stdout:?}"))
            .parse()
            .expect("pid");
        assert_eq!(self.state_dir().init_pid().unwrap(), pid);
        pid
    }

    /// `wait` through the protocol (socket, else exit.json), bounded.
    #[track_caller]
    fn wait(&self) -> ExitRecord {
        let state_dir = self.state_dir();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(protocol::wait(&state_dir));
        });
        let exit = rx
            .recv_timeout(TIMEOUT)
            .expect("wait timed out")
            .expect("wait");
        self.reap_shim();
        exit
    }

    /// Waits for the shim process to end and reaps it (it is our child: we are a subreaper).
    fn reap_shim(&self) {
        let Some(pid) = self.shim_pid else { return };
        let gone = wait_until(TIMEOUT, || {
            // SAFETY: waitpid on a specific pid with a valid status pointer.
            let rc = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            rc == pid || (rc < 0 && !process_exists(pid))
        });
        assert!(gone, "shim {pid} did not exit");
    }

    /// The log's entries.
    fn log_entries(&self) -> Vec<Value> {
        std::fs::read_to_string(self.log_path())
            .unwrap_or_default()
            .lines()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("bad line {line:?}: {e}"))
            })
            .collect()
    }

    fn cgroup_exists(&self) -> bool {
        Path::new("/sys/fs/cgroup/pids")
            .join(self.cgroup.trim_start_matches('/'))
            .exists()
            || Path::new("/sys/fs/cgroup/memory")
                .join(self.cgroup.trim_start_matches('/'))
                .exists()
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        if let Some(pid) = self.shim_pid {
            let _ = protocol::kill(&self.socket(), 9, true);
            if !wait_until(Duration::from_secs(10), || !process_exists(pid)) {
                // SAFETY: kill with a pid and a signal number.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            // SAFETY: reaps our (subreaper) child; WNOHANG never blocks.
            let _ = wait_until(Duration::from_secs(5), || unsafe {
                libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) != 0
            });
        }
        // Whatever the shim did not clean: the runtime's delete removes processes and cgroup.
        match &self.runtime {
            None => {
                if let Ok(runtime) =
                    runtime::Runtime::new(self.runtime_root(), runtime::CgroupPathStyle::Cgroupfs)
                {
                    let _ = runtime.delete(&self.id, true);
                }
            }
            Some(binary) => {
                let _ = Command::new(binary)
                    .arg("--root")
                    .arg(self.runtime_root())
                    .args(["delete", "--force", &self.id])
                    .output();
            }
        }
        for controller in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ =
                std::fs::remove_dir(controller.path().join(self.cgroup.trim_start_matches('/')));
        }
        drop(self.dir.take());
        reap_zombie_shims();
    }
}

/// Reaps shims that ended as our children (we are their subreaper), such as those of failed
/// starts, so none is left a zombie. Only zombies are waited for: children of other running
/// tests are not taken from them.
fn reap_zombie_shims() {
    let me = std::process::id().to_string();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // Only the forked shims (session leaders after their setsid): a foreground
        // `berth-shim start` of another test is that test's own child to wait for, and
        // reaping it here made its wait fail with ECHILD.
        let session_leader = fields.get(3) == Some(&pid.to_string().as_str());
        if head.ends_with("(berth-shim")
            && fields.first() == Some(&"Z")
            && fields.get(1) == Some(&me.as_str())
            && session_leader
        {
            // SAFETY: waitpid on a specific zombie child; WNOHANG never blocks.
            unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        }
    }
}

/// Runs a command with its output captured, bounded by [`TIMEOUT`].
fn run_bounded(mut command: Command) -> Output {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let child = command.spawn().expect("spawn");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    rx.recv_timeout(TIMEOUT)
        .expect("command timed out (does the shim hold the caller's stdout?)")
        .expect("wait for command")
}

fn logs_of(entries: &[Value], stream: &str) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e["stream"] == stream)
        .map(|e| e["log"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn output_goes_to_the_log_and_the_exit_code_to_exit_json() {
    let mut container = TestContainer::new("hello", "echo hello; echo err >&2; exit 3");
    container.start(&[]);
    let exit = container.wait();
    assert_eq!(exit.exit_code, 3);
    assert_eq!(exit.signal, None);
    assert!(!exit.oom_killed);

    let entries = container.log_entries();
    assert_eq!(logs_of(&entries, "stdout"), ["hello\n"]);
    assert_eq!(logs_of(&entries, "stderr"), ["err\n"]);
    for entry in &entries {
        let time = entry["time"].as_str().unwrap();
        chrono::DateTime::parse_from_rfc3339(time).expect("RFC 3339 time");
        assert!(time.ends_with('Z'));
        assert_eq!(entry.as_object().unwrap().len(), 3, "{entry}");
    }

    let state_dir = container.state_dir();
    let from_file = state_dir.read_exit().unwrap().expect("exit.json");
    assert_eq!(from_file, exit);
    let raw: Value =
        serde_json::from_slice(&std::fs::read(state_dir.exit_file()).unwrap()).unwrap();
    assert_eq!(raw["signal"], Value::Null);
    assert!(raw["finished_at"].as_str().unwrap().contains('.'));
    // The shim deleted the container (its cgroup too) before it answered, and is gone.
    assert!(!container.cgroup_exists());
    assert!(!state_dir.socket().exists());
    assert!(!container.runtime_root().join(&container.id).exists());
}

#[test]
fn no_line_is_lost_and_long_lines_split_at_16_kib() {
    let mut container = TestContainer::new(
        "many",
        "seq 1 10000; head -c 40000 /dev/zero | tr '\\0' x >&2; echo >&2; printf tail",
    );
    container.start(&[]);
    assert_eq!(container.wait().exit_code, 0);
    let entries = container.log_entries();
    let stdout = logs_of(&entries, "stdout");
    assert_eq!(stdout.len(), 10001, "last: {:?}", stdout.last());
    for (index, line) in stdout[..10000].iter().enumerate() {
        assert_eq!(line, &format!("{}\n", index + 1));
    }
    assert_eq!(stdout[10000], "tail");
    let stderr = logs_of(&entries, "stderr");
    let lengths: Vec<usize> = stderr.iter().map(String::len).collect();
    assert_eq!(lengths, [16384, 16384, 40000 - 32768 + 1]);
}

#[test]
fn wait_and_state_over_the_socket() {
    let mut container = TestContainer::new("wait", "sleep 1; exit 7");
    let pid = container.start(&[]);
    let state = protocol::state(&container.socket()).expect("state");
    assert_eq!(state.status, shim::ShimStatus::Running);
    assert_eq!(state.pid, pid);
    // Unknown and unsupported requests get an error reply, not a dead shim.
    let bad = protocol::call(&container.socket(), &Request::Start).unwrap_err();
    assert!(bad.to_string().contains("already started"), "{bad}");
    let refused = protocol::call(&container.socket(), &Request::Shutdown).unwrap_err();
    assert!(refused.to_string().contains("running"), "{refused}");
    {
        use std::io::{BufRead, Write};
        let mut stream = std::os::unix::net::UnixStream::connect(container.socket()).unwrap();
        stream.write_all(b"{\"op\":\"dance\"}\n").unwrap();
        let mut reply = String::new();
        std::io::BufReader::new(&stream)
            .read_line(&mut reply)
            .unwrap();
        assert!(reply.contains("\"error\""), "{reply}");
    }
    // A second shim for the same state directory is refused and harms nothing.
    let second = run_bounded(container.start_command(&[]));
    assert_eq!(second.status.code(), Some(1));
    let second = String::from_utf8_lossy(&second.stdout);
    assert!(second.contains("already runs"), "{second}");
    assert!(container.socket().exists());
    assert_eq!(
        protocol::state(&container.socket()).unwrap().status,
        shim::ShimStatus::Running
    );
    // A waiter connected while the container runs.
    let socket = container.socket();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(protocol::call(&socket, &Request::Wait));
    });
    let reply = rx.recv_timeout(TIMEOUT).expect("wait reply").expect("wait");
    assert_eq!(reply["exit_code"], 7);
    container.reap_shim();
}

#[test]
fn kill_over_the_socket_stops_the_container() {
    let mut container = TestContainer::new("kill", "sleep 1000");
    let pid = container.start(&[]);
    assert!(process_exists(pid));
    // A pid namespace's init ignores signals it has no handler for, except SIGKILL.
    protocol::kill(&container.socket(), 9, false).expect("kill");
    let exit = container.wait();
    assert_eq!(exit.signal, Some(9));
    assert_eq!(exit.exit_code, 137);
    assert!(!process_exists(pid));
    assert!(!container.cgroup_exists());
}

#[test]
fn kill_all_reaches_every_process() {
    let mut container = TestContainer::new("killall", "sleep 1000 & sleep 1000 & wait");
    container.start(&[]);
    protocol::kill(&container.socket(), 9, true).expect("kill --all");
    assert_eq!(container.wait().signal, Some(9));
    assert!(!container.cgroup_exists());
}

#[test]
fn the_shim_outlives_the_process_that_started_it() {
    let mut container = TestContainer::new(
        "orphan",
        "i=0; while [ $i -lt 200 ]; do echo tick $i; i=$((i+1)); sleep 0.03; done; exit 5",
    );
    // A starter that runs the shim, then lingers and gets SIGKILLed.
    let command = container.start_command(&[]);
    let mut line = format!("{:?}", command.get_program());
    for arg in command.get_args() {
        line.push(' ');
        line.push_str(&format!("'{}'", arg.to_string_lossy()));
    }
    let out_file = container.dir().join("starter.out");
    let mut starter = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{line} > '{}'; exec sleep 1000",
            out_file.display()
        ))
        .stdin(Stdio::null())
        .spawn()
        .expect("starter");
    assert!(
        wait_until(TIMEOUT, || std::fs::read_to_string(&out_file)
            .is_ok_and(|t| t.ends_with('\n'))),
        "the shim never reported"
    );
    let report = std::fs::read_to_string(&out_file).unwrap();
    assert!(report.starts_with("ok "), "{report}");
    container.shim_pid = Some(container.state_dir().shim_pid().unwrap());
    starter.kill().unwrap();
    starter.wait().unwrap();

    let shim_pid = container.shim_pid.unwrap();
    let before = container.log_entries().len();
    std::thread::sleep(Duration::from_millis(500));
    assert!(process_exists(shim_pid), "the shim died with its starter");
    assert!(
        wait_until(TIMEOUT, || container.log_entries().len() > before + 3),
        "the log stopped growing"
    );
    // Its own session: not in the starter's process group.
    // SAFETY: getsid with a pid.
    assert_eq!(unsafe { libc::getsid(shim_pid) }, shim_pid);
    let exit = container.wait();
    assert_eq!(exit.exit_code, 5);
    let stdout = logs_of(&container.log_entries(), "stdout");
    assert_eq!(stdout.len(), 200);
    assert_eq!(stdout[199], "tick 199\n");
}

#[test]
fn terminal_output_reaches_the_log() {
    let mut container = TestContainer::new("tty", "echo hi-from-tty; [ -t 1 ] && echo is-a-tty");
    container.config["process"]["terminal"] = json!(true);
    container.start(&["--tty"]);
    assert_eq!(container.wait().exit_code, 0);
    let entries = container.log_entries();
    let text: String = logs_of(&entries, "stdout").concat();
    assert!(text.contains("hi-from-tty\r\n"), "{text:?}");
    assert!(text.contains("is-a-tty"), "{text:?}");
    assert!(logs_of(&entries, "stderr").is_empty());
    assert!(!container.state_dir().0.join("console.sock").exists());
}

#[test]
fn tty_flag_must_match_the_bundle() {
    let mut container = TestContainer::new("ttymismatch", "true");
    let output = container.start_raw(&["--tty"]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("error ") && stdout.contains("terminal"),
        "{stdout}"
    );
    assert!(!container.state_dir().0.exists());
}

#[test]
fn stdin_stays_open_with_the_stdin_flag() {
    let mut container = TestContainer::new("stdin", "cat; echo cat-ended");
    container.start(&["--stdin"]);
    std::thread::sleep(Duration::from_millis(500));
    // `cat` still reads an open stdin.
    assert_eq!(
        protocol::state(&container.socket()).unwrap().status,
        shim::ShimStatus::Running
    );
    protocol::kill(&container.socket(), 9, false).unwrap();
    assert_eq!(container.wait().signal, Some(9));
    // Without --stdin, stdin is /dev/null and cat ends at once.
    let mut closed = TestContainer::new("nostdin", "cat; echo cat-ended");
    closed.start(&[]);
    assert_eq!(closed.wait().exit_code, 0);
    assert_eq!(logs_of(&closed.log_entries(), "stdout"), ["cat-ended\n"]);
}

#[test]
fn runc_as_the_runtime() {
    let runc = Path::new("/usr/sbin/runc");
    assert!(runc.exists(), "apt package runc is needed");
    let mut container = TestContainer::new("runc", "echo hello; echo err >&2; exit 3");
    container.runtime = Some(runc.to_path_buf());
    container.start(&[]);
    let exit = container.wait();
    assert_eq!(exit.exit_code, 3);
    let entries = container.log_entries();
    assert_eq!(logs_of(&entries, "stdout"), ["hello\n"]);
    assert_eq!(logs_of(&entries, "stderr"), ["err\n"]);
    assert!(!container.cgroup_exists());
    assert!(!container.runtime_root().join(&container.id).exists());

    let mut sleeper = TestContainer::new("runckill", "sleep 1000");
    sleeper.runtime = Some(runc.to_path_buf());
    let pid = sleeper.start(&[]);
    assert_eq!(protocol::state(&sleeper.socket()).unwrap().pid, pid);
    protocol::kill(&sleeper.socket(), 9, false).unwrap();
    assert_eq!(sleeper.wait().signal, Some(9));
    assert!(!sleeper.cgroup_exists());
}

#[test]
fn runc_with_a_terminal() {
    let mut container = TestContainer::new("runctty", "echo via-runc-tty");
    container.runtime = Some(PathBuf::from("/usr/sbin/runc"));
    container.config["process"]["terminal"] = json!(true);
    container.start(&["--tty"]);
    assert_eq!(container.wait().exit_code, 0);
    let text: String = logs_of(&container.log_entries(), "stdout").concat();
    assert!(text.contains("via-runc-tty"), "{text:?}");
}

/// No process has `needle` in its command line (the shim's carries its state dir).
fn no_process_mentions(needle: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().parse::<i32>().is_ok())
        .filter(|e| {
            let pid: i32 = e.file_name().to_string_lossy().parse().unwrap();
            process_exists(pid)
        })
        .all(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
            !String::from_utf8_lossy(&cmdline).contains(needle)
        })
}

fn assert_clean_failure(container: &mut TestContainer, want: &str) {
    let output = container.start_raw(&[]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout:?}");
    assert!(stdout.starts_with("error "), "{stdout:?}");
    assert!(stdout.contains(want), "{stdout:?} lacks {want:?}");
    assert!(!container.state_dir().0.exists(), "the state dir remains");
    assert!(!container.cgroup_exists(), "the cgroup remains");
    assert!(!container.log_path().exists(), "the log remains");
    let state_dir = container.state_dir().0.to_string_lossy().into_owned();
    assert!(
        wait_until(Duration::from_secs(5), || no_process_mentions(&state_dir)),
        "a shim process remains"
    );
}

#[test]
fn a_bad_bundle_fails_cleanly() {
    let mut missing_rootfs = TestContainer::new("badroot", "true");
    missing_rootfs.config["root"]["path"] = json!("nowhere");
    assert_clean_failure(&mut missing_rootfs, "nowhere");

    let mut bad_program = TestContainer::new("badcwd", "true");
    bad_program.config["process"]["cwd"] = json!("/does/not/exist");
    assert_clean_failure(&mut bad_program, "");

    let mut bad_json = TestContainer::new("badjson", "true");
    bad_json.config = json!({ "process": 5 });
    assert_clean_failure(&mut bad_json, "config");
}

#[test]
fn a_bad_bundle_fails_cleanly_with_runc() {
    let mut container = TestContainer::new("runcbad", "true");
    container.runtime = Some(PathBuf::from("/usr/sbin/runc"));
    container.config["root"]["path"] = json!("nowhere");
    assert_clean_failure(&mut container, "nowhere");
}

#[test]
fn bad_arguments_print_an_error_line() {
    let output = run_bounded({
        let mut command = Command::new(shim_binary());
        command.args(["start", "--id", "x"]);
        command
    });
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("error "));
    let output = run_bounded(Command::new(shim_binary()));
    assert_eq!(output.status.code(), Some(1));
}

fn oom_kill_is_recorded_with(runtime: Option<&str>) {
    let mut container = TestContainer::new(
        "oom",
        "dd if=/dev/zero of=/dev/null bs=64M count=1; echo dd-ended-$?",
    );
    container.runtime = runtime.map(PathBuf::from);
    container.config["linux"]["resources"] = json!({
        "memory": { "limit": 16 * 1024 * 1024, "swap": 16 * 1024 * 1024 }
    });
    container.start(&[]);
    let exit = container.wait();
    assert!(exit.oom_killed, "{exit:?}");
    let stdout = logs_of(&container.log_entries(), "stdout");
    assert_eq!(stdout, ["dd-ended-137\n"]);
}

#[test]
fn an_oom_kill_is_recorded() {
    oom_kill_is_recorded_with(None);
}

#[test]
fn an_oom_kill_is_recorded_with_runc() {
    oom_kill_is_recorded_with(Some("/usr/sbin/runc"));
}

// ---- Interactive: attach, hold, stdin, resize (issue 5) ----

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

/// Opens an attach session on `socket`; returns the stream after the `{"ok":true}` line.
#[track_caller]
fn attach(socket: &Path, stdin: bool, stdout: bool, stderr: bool) -> UnixStream {
    let mut stream = UnixStream::connect(socket).expect("connect for attach");
    let request = Request::Attach {
        stdin,
        stdout,
        stderr,
    };
    let mut line = serde_json::to_vec(&request).unwrap();
    line.push(b'\n');
    stream.write_all(&line).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8; 1];
    while stream.read(&mut byte).expect("attach answer") == 1 && byte[0] != b'\n' {
        answer.push(byte[0]);
    }
    assert_eq!(
        answer,
        br#"{"ok":true}"#,
        "{}",
        String::from_utf8_lossy(&answer)
    );
    stream
}

/// Reads multiplexed frames until the shim closes the stream; returns (stdout, stderr).
#[track_caller]
fn read_frames(stream: &mut UnixStream) -> (String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    loop {
        let mut header = [0u8; 8];
        match stream.read_exact(&mut header) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => panic!("read frame header: {e}"),
        }
        assert_eq!(&header[1..4], &[0, 0, 0], "{header:?}");
        let length = u32::from_be_bytes(header[4..8].try_into().unwrap()) as usize;
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).expect("frame payload");
        match header[0] {
            1 => out.extend(payload),
            2 => err.extend(payload),
            other => panic!("stream {other} in a frame"),
        }
    }
    (
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

/// Reads one frame: (stream, payload).
#[track_caller]
fn read_frame(stream: &mut UnixStream) -> (u8, String) {
    let mut header = [0u8; 8];
    stream.read_exact(&mut header).expect("frame header");
    let length = u32::from_be_bytes(header[4..8].try_into().unwrap()) as usize;
    let mut payload = vec![0u8; length];
    stream.read_exact(&mut payload).expect("frame payload");
    (header[0], String::from_utf8(payload).unwrap())
}

/// Reads raw bytes until `needle` appeared (a terminal's output); returns all read.
#[track_caller]
fn read_until(stream: &mut UnixStream, needle: &str) -> String {
    let mut seen = Vec::new();
    let deadline = Instant::now() + TIMEOUT;
    while !String::from_utf8_lossy(&seen).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?} in {:?}",
            String::from_utf8_lossy(&seen)
        );
        let mut buffer = [0u8; 4096];
        match stream.read(&mut buffer) {
            Ok(0) => panic!(
                "end of stream before {needle:?}: {:?}",
                String::from_utf8_lossy(&seen)
            ),
            Ok(n) => seen.extend_from_slice(&buffer[..n]),
            Err(e) => panic!("read: {e} after {:?}", String::from_utf8_lossy(&seen)),
        }
    }
    String::from_utf8_lossy(&seen).into_owned()
}

fn read_to_end(stream: &mut UnixStream) -> String {
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all);
    String::from_utf8_lossy(&all).into_owned()
}

#[test]
fn held_start_with_an_attach_before_loses_no_output() {
    let mut container = TestContainer::new("hold", "echo first-line; echo to-stderr >&2; exit 5");
    for round in 0..50 {
        container.start(&["--hold"]);
        let state = protocol::state(&container.socket()).unwrap();
        assert_eq!(state.status, shim::ShimStatus::Created, "round {round}");
        let mut session = attach(&container.socket(), false, true, true);
        assert_eq!(
            protocol::call(&container.socket(), &Request::Start).unwrap(),
            json!({ "ok": true })
        );
        let (out, err) = read_frames(&mut session);
        assert_eq!(out, "first-line\n", "round {round}");
        assert_eq!(err, "to-stderr\n", "round {round}");
        assert_eq!(container.wait().exit_code, 5, "round {round}");
        // A second start of the same shim is refused (checked once).
        if round == 0 {
            let log = logs_of(&container.log_entries(), "stdout");
            assert_eq!(log, ["first-line\n"]);
        }
    }
}

#[test]
fn a_held_container_can_be_killed_before_start() {
    let mut container = TestContainer::new("holdkill", "echo never");
    container.start(&["--hold"]);
    protocol::kill(&container.socket(), 9, false).unwrap();
    assert_eq!(container.wait().signal, Some(9));
    assert!(logs_of(&container.log_entries(), "stdout").is_empty());
    assert!(!container.cgroup_exists());
}

#[test]
fn streams_go_to_the_sessions_that_asked_for_them() {
    let mut container = TestContainer::new(
        "streams",
        "read go; echo out-1; echo err-1 >&2; echo out-2; echo err-2 >&2",
    );
    container.start(&["--stdin"]);
    let mut only_out = attach(&container.socket(), false, true, false);
    let mut only_err = attach(&container.socket(), false, false, true);
    let mut writer = attach(&container.socket(), true, false, false);
    writer.write_all(b"go\n").unwrap();
    let (out, err) = read_frames(&mut only_out);
    assert_eq!((out.as_str(), err.as_str()), ("out-1\nout-2\n", ""));
    let (out, err) = read_frames(&mut only_err);
    assert_eq!((out.as_str(), err.as_str()), ("", "err-1\nerr-2\n"));
    assert_eq!(read_frames(&mut writer), (String::new(), String::new()));
    assert_eq!(container.wait().exit_code, 0);
}

#[test]
fn stdin_through_attach_reaches_cat_and_comes_back_framed() {
    let mut container = TestContainer::new("cat", "cat; echo cat-ended");
    container.start(&["--stdin", "--stdin-once"]);
    let mut session = attach(&container.socket(), true, true, true);
    session.write_all(b"hello\n").unwrap();
    assert_eq!(read_frame(&mut session), (1, "hello\n".to_string()));
    // Bytes sent together with the request reach stdin too.
    let mut second = UnixStream::connect(container.socket()).unwrap();
    second
        .write_all(b"{\"op\":\"attach\",\"stdin\":true,\"stdout\":false}\nearly\n")
        .unwrap();
    assert_eq!(read_frame(&mut session), (1, "early\n".to_string()));
    // Half-closing one of two stdin sessions leaves stdin open...
    second.shutdown(std::net::Shutdown::Write).unwrap();
    session.write_all(b"more\n").unwrap();
    assert_eq!(read_frame(&mut session), (1, "more\n".to_string()));
    // ...and the last one closes it (--stdin-once): cat ends.
    session.shutdown(std::net::Shutdown::Write).unwrap();
    let (out, err) = read_frames(&mut session);
    assert_eq!((out.as_str(), err.as_str()), ("cat-ended\n", ""));
    assert_eq!(container.wait().exit_code, 0);
    let log = logs_of(&container.log_entries(), "stdout");
    assert_eq!(log, ["hello\n", "early\n", "more\n", "cat-ended\n"]);
}

#[test]
fn without_stdin_once_a_half_close_keeps_stdin_open() {
    let mut container = TestContainer::new("catopen", "cat; echo cat-ended");
    container.start(&["--stdin"]);
    let mut session = attach(&container.socket(), true, true, true);
    session.write_all(b"one\n").unwrap();
    assert_eq!(read_frame(&mut session), (1, "one\n".to_string()));
    session.shutdown(std::net::Shutdown::Write).unwrap();
    drop(session);
    std::thread::sleep(Duration::from_millis(300));
    // A new session still writes to the same cat.
    let mut again = attach(&container.socket(), true, true, false);
    again.write_all(b"two\n").unwrap();
    assert_eq!(read_frame(&mut again), (1, "two\n".to_string()));
    assert_eq!(
        protocol::state(&container.socket()).unwrap().status,
        shim::ShimStatus::Running
    );
    protocol::kill(&container.socket(), 9, false).unwrap();
    assert_eq!(container.wait().signal, Some(9));
}

#[test]
fn a_slow_session_is_dropped_and_the_container_goes_on() {
    // 4 MiB of output to a session that never reads: it is dropped, the log has everything.
    let mut container = TestContainer::new(
        "slow",
        "read go; dd if=/dev/zero bs=64k count=64 2>/dev/null | tr '\\0' x; echo; echo done",
    );
    container.start(&["--stdin"]);
    let mut reader = attach(&container.socket(), true, true, false);
    let mut sleeper = attach(&container.socket(), false, true, true);
    reader.write_all(b"go\n").unwrap();
    let (out, _) = read_frames(&mut reader);
    assert_eq!(out.len(), 4 * 1024 * 1024 + "\ndone\n".len());
    assert_eq!(container.wait().exit_code, 0);
    // The sleeper was cut off: it got at most its buffer and what the socket held.
    let (slept, _) = read_frames(&mut sleeper);
    assert!(slept.len() < 2 * 1024 * 1024, "{}", slept.len());
}

#[test]
fn terminal_attach_and_resize() {
    let mut container = TestContainer::new(
        "ttyattach",
        "stty size; read line; stty size; echo got-$line",
    );
    container.config["process"]["terminal"] = json!(true);
    container.start(&["--tty", "--stdin", "--hold"]);
    let mut session = attach(&container.socket(), true, true, true);
    protocol::call(
        &container.socket(),
        &Request::Resize {
            height: 30,
            width: 100,
        },
    )
    .unwrap();
    protocol::call(&container.socket(), &Request::Start).unwrap();
    read_until(&mut session, "30 100");
    protocol::call(
        &container.socket(),
        &Request::Resize {
            height: 40,
            width: 120,
        },
    )
    .unwrap();
    session.write_all(b"typed\r").unwrap();
    let rest = read_until(&mut session, "got-typed");
    assert!(rest.contains("40 120"), "{rest:?}");
    assert_eq!(container.wait().exit_code, 0);
}

#[test]
fn stdin_once_with_a_terminal_ends_input() {
    let mut container = TestContainer::new("ttyonce", "cat; echo cat-ended");
    container.config["process"]["terminal"] = json!(true);
    container.start(&["--tty", "--stdin", "--stdin-once"]);
    let mut session = attach(&container.socket(), true, true, false);
    session.write_all(b"abc\n").unwrap();
    read_until(&mut session, "abc");
    session.shutdown(std::net::Shutdown::Write).unwrap();
    let rest = read_to_end(&mut session);
    assert!(rest.contains("cat-ended"), "{rest:?}");
    assert_eq!(container.wait().exit_code, 0);
}

#[test]
fn resize_without_a_terminal_is_refused() {
    let mut container = TestContainer::new("noresize", "sleep 30");
    container.start(&[]);
    let error = protocol::call(
        &container.socket(),
        &Request::Resize {
            height: 10,
            width: 10,
        },
    )
    .unwrap_err();
    assert!(error.to_string().contains("not a tty"), "{error}");
}

// ---- exec ----

/// One `berth-shim exec` in a test container.
struct TestExec {
    state_dir: StateDir,
    shim_pid: Option<i32>,
}

impl TestExec {
    fn launch_raw(
        container: &TestContainer,
        name: &str,
        process: Value,
        extra: &[&str],
    ) -> (Output, Self) {
        let state_dir = container.dir().join("execs").join(name);
        let process_file = container.dir().join(format!("{name}.json"));
        std::fs::write(&process_file, serde_json::to_vec(&process).unwrap()).unwrap();
        let mut command = Command::new(shim_binary());
        command
            .arg("exec")
            .arg("--id")
            .arg(&container.id)
            .arg("--state-dir")
            .arg(&state_dir)
            .arg("--container-state-dir")
            .arg(&container.state_dir().0)
            .arg("--process")
            .arg(&process_file)
            .args(extra);
        if let Some(runtime) = &container.runtime {
            command.arg("--runtime").arg(runtime);
        }
        command.stdin(Stdio::null());
        let output = run_bounded(command);
        let state_dir = StateDir(state_dir);
        let shim_pid = if output.status.success() {
            state_dir.shim_pid().ok()
        } else {
            None
        };
        (
            output,
            TestExec {
                state_dir,
                shim_pid,
            },
        )
    }

    #[track_caller]
    fn launch(container: &TestContainer, name: &str, process: Value, extra: &[&str]) -> Self {
        let (output, exec) = Self::launch_raw(container, name, process, extra);
        assert_eq!(
            String::from_utf8_lossy(&output.stdout),
            "ok 0\n",
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        exec
    }

    fn socket(&self) -> PathBuf {
        self.state_dir.socket()
    }

    /// Waits for the exec shim to end and reaps it.
    fn reap_shim(&self) {
        let Some(pid) = self.shim_pid else { return };
        let gone = wait_until(TIMEOUT, || {
            // SAFETY: waitpid on a specific pid with a valid status pointer.
            let rc = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
            rc == pid || (rc < 0 && !process_exists(pid))
        });
        assert!(gone, "exec shim {pid} did not exit");
    }
}

impl Drop for TestExec {
    fn drop(&mut self) {
        if let Some(pid) = self.shim_pid {
            let _ = protocol::kill(&self.socket(), 9, false);
            let _ = protocol::call(&self.socket(), &Request::Shutdown);
            if !wait_until(Duration::from_secs(10), || !process_exists(pid)) {
                // SAFETY: kill with a pid and a signal number.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            // SAFETY: reaps our (subreaper) child; WNOHANG never blocks.
            let _ = wait_until(Duration::from_secs(5), || unsafe {
                libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) != 0
            });
        }
    }
}

fn exec_process(args: &[&str], terminal: bool) -> Value {
    json!({
        "terminal": terminal,
        "user": { "uid": 0, "gid": 0 },
        "args": args,
        "env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"],
        "cwd": "/"
    })
}

fn ns_of(pid: i32, kind: &str) -> PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{kind}")).unwrap()
}

fn exec_in_a_running_container_with(runtime: Option<&str>) {
    let mut container = TestContainer::new("exec", "sleep 60");
    container.runtime = runtime.map(PathBuf::from);
    let init = container.start(&[]);
    let exec = TestExec::launch(
        &container,
        "e1",
        exec_process(
            &[
                "sh",
                "-c",
                "read x; hostname; echo pid-$$; echo $x >&2; exit 3",
            ],
            false,
        ),
        &["--stdin"],
    );
    // Nothing runs before start.
    let state = protocol::state(&exec.socket()).unwrap();
    assert_eq!((state.status, state.pid), (shim::ShimStatus::Created, 0));
    let mut session = attach(&exec.socket(), true, true, true);
    let started = protocol::call(&exec.socket(), &Request::Start).unwrap();
    let pid = started["pid"].as_i64().expect("pid") as i32;
    assert!(pid > 0);
    assert_eq!(ns_of(pid, "pid"), ns_of(init, "pid"));
    assert_eq!(ns_of(pid, "uts"), ns_of(init, "uts"));
    assert_eq!(protocol::state(&exec.socket()).unwrap().pid, pid);
    session.write_all(b"from-stdin\n").unwrap();
    let (out, err) = read_frames(&mut session);
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("shimtest"));
    let inner: i32 = lines
        .next()
        .unwrap()
        .strip_prefix("pid-")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        inner > 1 && inner != pid,
        "pid {inner} in the container's namespace"
    );
    assert_eq!(err, "from-stdin\n");
    let exit = protocol::wait(&exec.state_dir).unwrap();
    assert_eq!(exit.exit_code, 3);
    exec.reap_shim();
    assert_eq!(exec.state_dir.read_exit().unwrap().unwrap().exit_code, 3);
    // The container runs on, its log untouched by the exec.
    assert_eq!(
        protocol::state(&container.socket()).unwrap().status,
        shim::ShimStatus::Running
    );
    assert!(container.log_entries().is_empty());
    assert!(!exec.state_dir.0.join("console.sock").exists());
}

#[test]
fn exec_in_a_running_container() {
    exec_in_a_running_container_with(None);
}

#[test]
fn exec_in_a_running_container_with_runc() {
    exec_in_a_running_container_with(Some("/usr/sbin/runc"));
}

#[test]
fn exec_with_a_terminal() {
    let mut container = TestContainer::new("exectty", "sleep 60");
    container.start(&[]);
    let exec = TestExec::launch(
        &container,
        "t1",
        exec_process(
            &[
                "sh",
                "-c",
                "[ -t 0 ] && echo is-a-tty; stty size; read l; echo got-$l",
            ],
            true,
        ),
        &["--tty", "--stdin"],
    );
    // A size asked for before the pty exists applies when it does.
    protocol::call(
        &exec.socket(),
        &Request::Resize {
            height: 25,
            width: 90,
        },
    )
    .unwrap();
    let mut session = attach(&exec.socket(), true, true, false);
    protocol::call(&exec.socket(), &Request::Start).unwrap();
    let seen = read_until(&mut session, "25 90");
    assert!(seen.contains("is-a-tty"), "{seen:?}");
    session.write_all(b"line\r").unwrap();
    read_until(&mut session, "got-line");
    assert_eq!(protocol::wait(&exec.state_dir).unwrap().exit_code, 0);
    exec.reap_shim();
}

#[test]
fn exec_of_a_missing_binary_fails_at_start_and_leaves_nothing() {
    exec_of_a_missing_binary_with(None);
}

#[test]
fn exec_of_a_missing_binary_with_runc() {
    exec_of_a_missing_binary_with(Some("/usr/sbin/runc"));
}

fn exec_of_a_missing_binary_with(runtime: Option<&str>) {
    let mut container = TestContainer::new("execmissing", "sleep 60");
    container.runtime = runtime.map(PathBuf::from);
    container.start(&[]);
    let exec = TestExec::launch(
        &container,
        "m1",
        exec_process(&["/no/such/binary"], false),
        &[],
    );
    let mut session = attach(&exec.socket(), false, true, true);
    let error = protocol::call(&exec.socket(), &Request::Start).unwrap_err();
    let message = error.to_string();
    eprintln!("start of a missing binary: {message}");
    assert!(message.contains("/no/such/binary"), "{message}");
    assert_eq!(read_frames(&mut session), (String::new(), String::new()));
    exec.reap_shim();
    assert!(!exec.state_dir.0.exists(), "the exec state dir remains");
    let tag = exec.state_dir.0.to_string_lossy().into_owned();
    assert!(no_process_mentions(&tag));
    // Only the container's own processes are in its cgroup.
    let pids = std::fs::read_to_string(
        Path::new("/sys/fs/cgroup/pids")
            .join(container.cgroup.trim_start_matches('/'))
            .join("cgroup.procs"),
    )
    .unwrap();
    assert_eq!(pids.lines().count(), 1, "{pids}");
    assert_eq!(
        protocol::state(&container.socket()).unwrap().status,
        shim::ShimStatus::Running
    );
}

#[test]
fn exec_in_a_stopped_container_is_refused() {
    let mut container = TestContainer::new("execstopped", "true");
    container.start(&[]);
    container.wait();
    let (output, exec) =
        TestExec::launch_raw(&container, "s1", exec_process(&["true"], false), &[]);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("error ") && stdout.contains("not running"),
        "{stdout}"
    );
    assert!(!exec.state_dir.0.exists());
    reap_zombie_shims();
}

#[test]
fn an_exec_never_started_can_be_shut_down() {
    let mut container = TestContainer::new("execabandon", "sleep 60");
    container.start(&[]);
    let exec = TestExec::launch(&container, "a1", exec_process(&["true"], false), &[]);
    protocol::call(&exec.socket(), &Request::Shutdown).unwrap();
    exec.reap_shim();
    assert!(!exec.state_dir.0.exists());
    // A kill before start ends it the same way.
    let exec = TestExec::launch(&container, "a2", exec_process(&["true"], false), &[]);
    let _session = attach(&exec.socket(), false, true, true);
    protocol::kill(&exec.socket(), 9, false).unwrap();
    exec.reap_shim();
    assert!(!exec.state_dir.0.exists());
}

#[test]
fn the_shim_stays_small_with_an_attach_session() {
    let mut container = TestContainer::new("rss", "cat");
    container.start(&["--stdin"]);
    let shim = container.shim_pid.unwrap();
    let mut session = attach(&container.socket(), true, true, true);
    for _ in 0..100 {
        session.write_all(&[b'y'; 1000]).unwrap();
        session.write_all(b"\n").unwrap();
        let (stream, _) = read_frame(&mut session);
        assert_eq!(stream, 1);
    }
    let status = std::fs::read_to_string(format!("/proc/{shim}/status")).unwrap();
    let rss: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    eprintln!("shim VmRSS with an attach session: {rss} kB");
    // Debug builds are larger than release ones; this guards against buffers that grow.
    assert!(rss < 8 * 1024, "{rss} kB");
}

#[test]
fn held_start_with_runc() {
    let mut container = TestContainer::new("holdrunc", "echo runc-first; echo runc-err >&2");
    container.runtime = Some(PathBuf::from("/usr/sbin/runc"));
    for _ in 0..5 {
        container.start(&["--hold"]);
        let mut session = attach(&container.socket(), false, true, true);
        protocol::call(&container.socket(), &Request::Start).unwrap();
        assert_eq!(
            read_frames(&mut session),
            ("runc-first\n".to_string(), "runc-err\n".to_string())
        );
        assert_eq!(container.wait().exit_code, 0);
    }
}
