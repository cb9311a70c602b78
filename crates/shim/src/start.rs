//! `berth-shim start`: the foreground half forks the shim proper and reports its outcome; the
//! shim proper sets the container up and becomes its monitor.
//!
//! Foreground (the engine's child): forks, then waits on a pipe for one line from the shim,
//! `ok <init pid>` or `error <message>`, and returns it. The engine prints nothing else and
//! exits 0 or 1, so the engine gets a clear error and nothing half-made remains on failure.
//!
//! Shim proper (the forked child): `setsid` (own session and process group: a signal to the
//! engine's group or the end of its terminal does not reach it) and `PR_SET_CHILD_SUBREAPER`
//! (prctl(2): orphans of its subtree, the container's init among them, become its children, so
//! it can reap them with waitpid). Once the foreground half has exited it is no longer the
//! engine's child. It then:
//! 1. makes the state directory afresh and writes `shim.pid`;
//! 2. opens the log, binds `shim.sock`, and points its descriptors 0, 1 and 2 at the
//!    container's stdio (pipes, or /dev/null with a terminal), as the runtime's init inherits
//!    them;
//! 3. creates the container (`init.pid` written by the runtime), takes the pty master from the
//!    console socket when there is a terminal, drops its own copies of the write ends, starts
//!    the container;
//! 4. reports `ok <pid>` and enters the [`crate::monitor`] loop. With `--hold` the runtime's
//!    `start` waits for the `start` request instead (attach sessions connect before the
//!    program's first output).
//!
//! On any failure it deletes what the runtime made, removes the state directory (and the log if
//! it made it), and reports `error <message>`.

use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::{ForkResult, fork, pipe2, setsid};

use crate::backend::Backend;
use crate::error::{Error, Result, sys};
use crate::monitor::{Monitor, Output, Parts, Pending, Role, Stdio};
use crate::options::StartOptions;
use crate::protocol::{INIT_PID_FILE, SHIM_PID_FILE, SOCKET_FILE};

/// Name of the console socket in the state directory (removed once the pty master arrived).
pub(crate) const CONSOLE_SOCKET: &str = "console.sock";
/// How long create may take to hand over the pty master after it returned.
const CONSOLE_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `start`: forks the shim and returns the line it reported, `Ok(init pid)` or the error
/// message. Only the foreground process returns from here; the forked shim exits the process
/// when its container is gone.
///
/// Must be called from a single-threaded process (it forks, and the runtime forks again).
pub fn start(options: &StartOptions) -> std::result::Result<i32, String> {
    daemonize(|| {
        let mut made = Made::default();
        setup(options, &mut made).map_err(|error| made.undo(options, error))
    })
}

/// Forks the shim proper, which runs `setup` (it cleans up after itself on failure), reports
/// `ok <pid>` or `error <message>` on a pipe and becomes the monitor; returns what it reported.
/// Only the foreground process returns.
pub(crate) fn daemonize(
    setup: impl FnOnce() -> Result<Monitor>,
) -> std::result::Result<i32, String> {
    let (reader, writer) = pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("create pipe: {e}"))?;
    // SAFETY: the shim binary is single-threaded, so the child may go on using the allocator
    // and the rest of the Rust runtime.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(reader);
            shim_main(setup, writer)
        }
        ForkResult::Parent { .. } => {
            drop(writer);
            // One line, not to end of file: a held container's init (forked during create)
            // keeps a copy of the pipe's write end until its program is executed.
            let mut line = Vec::new();
            let mut reader = std::fs::File::from(reader);
            let mut byte = [0u8; 1];
            while matches!(reader.read(&mut byte), Ok(1)) {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    break;
                }
            }
            parse_report(&String::from_utf8_lossy(&line))
        }
    }
}

/// The foreground half's reading of the shim's report.
fn parse_report(line: &str) -> std::result::Result<i32, String> {
    let line = line.trim_end();
    if let Some(pid) = line.strip_prefix("ok ") {
        return pid
            .parse()
            .map_err(|_| format!("the shim reported a bad pid: {pid:?}"));
    }
    Err(match line.strip_prefix("error ") {
        Some(message) => message.to_string(),
        None => "the shim exited during setup".to_string(),
    })
}

/// The shim proper: sets up, reports on `report`, monitors, exits.
fn shim_main(setup: impl FnOnce() -> Result<Monitor>, report: OwnedFd) -> ! {
    let monitor = match setup() {
        Ok(monitor) => monitor,
        Err(error) => {
            let line = format!("error {}\n", one_line(&error.to_string()));
            let _ = nix::unistd::write(&report, line.as_bytes());
            // SAFETY: ends the forked shim without unwinding into the caller's frames.
            unsafe { libc::_exit(1) }
        }
    };
    let line = format!("ok {}\n", monitor.init_pid());
    let _ = nix::unistd::write(&report, line.as_bytes());
    drop(report);
    let code = monitor.run();
    // SAFETY: as above; everything worth flushing was written with plain write(2).
    unsafe { libc::_exit(code) }
}

/// The shim's own session and process group (a signal to the engine's group or the end of its
/// terminal does not reach it), and child subreaper (orphans of its subtree become its
/// children, prctl(2)).
pub(crate) fn become_shim() -> Result<()> {
    setsid().map_err(sys("setsid"))?;
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) } != 0 {
        return Err(Error::sys(
            "become child subreaper",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// What setup made so far, undone on failure.
#[derive(Default)]
struct Made {
    state_dir: bool,
    log: Option<PathBuf>,
    backend: Option<Backend>,
    created: bool,
}

impl Made {
    /// Deletes the container, the state directory and a log we created; keeps the first error
    /// and appends cleanup failures to it.
    fn undo(self, options: &StartOptions, error: Error) -> Error {
        let mut problems = Vec::new();
        if let (Some(backend), true) = (&self.backend, self.created)
            && let Err(e) = backend.delete(&options.id)
        {
            problems.push(format!("delete container: {e}"));
        }
        if let Some(log) = &self.log {
            let _ = std::fs::remove_file(log);
        }
        if self.state_dir
            && let Err(e) = std::fs::remove_dir_all(&options.state_dir)
        {
            problems.push(format!("remove {}: {e}", options.state_dir.display()));
        }
        if problems.is_empty() {
            error
        } else {
            Error::InvalidArgument(format!("{error} (cleanup: {})", problems.join("; ")))
        }
    }
}

/// What the shim needs to know from the bundle's config.json.
#[derive(Debug, Default, PartialEq, Eq)]
struct BundleFacts {
    terminal: bool,
    cgroups_path: Option<String>,
}

fn read_bundle(bundle: &Path) -> Result<BundleFacts> {
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Config {
        #[serde(default)]
        process: Option<ProcessPart>,
        #[serde(default)]
        linux: Option<LinuxPart>,
    }
    #[derive(serde::Deserialize)]
    struct ProcessPart {
        #[serde(default)]
        terminal: Option<bool>,
    }
    #[derive(serde::Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct LinuxPart {
        #[serde(default)]
        cgroups_path: Option<String>,
    }
    let path = bundle.join("config.json");
    let bytes = std::fs::read(&path).map_err(sys(format!("read {}", path.display())))?;
    let config: Config = serde_json::from_slice(&bytes)
        .map_err(|e| Error::InvalidArgument(format!("invalid config {}: {e}", path.display())))?;
    Ok(BundleFacts {
        terminal: config.process.and_then(|p| p.terminal).unwrap_or(false),
        cgroups_path: config.linux.and_then(|l| l.cgroups_path),
    })
}

fn setup(options: &StartOptions, made: &mut Made) -> Result<Monitor> {
    become_shim()?;
    let state_dir = &options.state_dir;
    make_state_dir(state_dir)?;
    made.state_dir = true;
    std::fs::write(
        state_dir.join(SHIM_PID_FILE),
        std::process::id().to_string(),
    )
    .map_err(sys("write shim.pid"))?;

    let facts = read_bundle(&options.bundle)?;
    if facts.terminal != options.tty {
        return Err(Error::InvalidArgument(format!(
            "--tty is {} but process.terminal of the bundle is {}",
            options.tty, facts.terminal
        )));
    }
    if !options.log.exists() {
        made.log = Some(options.log.clone());
    }
    let log = crate::log::open(&options.log)?;
    let listener =
        UnixListener::bind(state_dir.join(SOCKET_FILE)).map_err(sys("bind shim.sock"))?;
    listener
        .set_nonblocking(true)
        .map_err(sys("shim.sock non-blocking"))?;

    let root = options.runtime_root();
    let backend = Backend::new(
        options.runtime.as_deref(),
        &root,
        state_dir.join("runtime.log"),
        options.seccomp_cache.as_deref(),
    )?;
    made.backend = Some(backend);

    // The container's stdio: the init inherits our 0, 1 and 2.
    let null = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys("open /dev/null"))?;
    let console = if options.tty {
        let path = state_dir.join(CONSOLE_SOCKET);
        let listener = UnixListener::bind(&path).map_err(sys("bind the console socket"))?;
        point_stdio(&null, &null, &null)?;
        Some((path, listener))
    } else {
        None
    };
    let mut stdio = match &console {
        Some(_) => None,
        None => {
            let (out_read, out_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("stdout pipe"))?;
            let (err_read, err_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("stderr pipe"))?;
            let (stdin_read, stdin_write) = if options.stdin {
                let (read, write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("stdin pipe"))?;
                (Some(read), Some(write))
            } else {
                (None, None)
            };
            point_stdio(stdin_read.as_ref().unwrap_or(&null), &out_write, &err_write)?;
            Some((out_read, err_read, stdin_write))
        }
    };

    let pid_file = state_dir.join(INIT_PID_FILE);
    let created = made.backend.as_ref().expect("set above").create(
        &options.id,
        &options.bundle,
        console.as_ref().map(|(path, _)| path.as_path()),
        &pid_file,
    );
    // Our copies of the container's stdio go, so its output ends when its processes end.
    point_stdio(&null, &null, &null)?;
    let init_pid = created?;
    made.created = true;

    let stdio = match console {
        Some((path, listener)) => {
            let master = receive_console(&listener)?;
            drop(listener);
            let _ = std::fs::remove_file(path);
            set_nonblocking(&master)?;
            Stdio::Terminal(Output::new(master, crate::log::Stream::Stdout))
        }
        None => {
            let (out_read, err_read, stdin_write) = stdio.take().expect("pipes made");
            set_nonblocking(&out_read)?;
            set_nonblocking(&err_read)?;
            if let Some(stdin) = &stdin_write {
                // Only our end: the container's read end is another open file description.
                set_nonblocking(stdin)?;
            }
            if options.runtime.is_some() {
                // Whatever the external runtime wrote to its (the container's) stdio while
                // creating is not the container's output.
                discard_pending(&out_read);
                discard_pending(&err_read);
            }
            Stdio::Pipes {
                stdout: Output::new(out_read, crate::log::Stream::Stdout),
                stderr: Output::new(err_read, crate::log::Stream::Stderr),
                stdin: stdin_write,
            }
        }
    };

    let pending = if options.hold {
        Pending::Held
    } else {
        made.backend
            .as_ref()
            .expect("set above")
            .start(&options.id)?;
        Pending::Nothing
    };
    let oom_cgroup = match options.runtime {
        None => None,
        // runc's and crun's cgroupfs default is the id under the root.
        Some(_) => Some(
            facts
                .cgroups_path
                .clone()
                .unwrap_or_else(|| format!("/{}", options.id)),
        ),
    };
    let backend = made.backend.take().expect("set above");
    Ok(Monitor::new(Parts {
        id: options.id.clone(),
        backend,
        pid: init_pid,
        stdio,
        stdin: options.stdin,
        stdin_once: options.stdin_once,
        listener,
        log: Some(log),
        state_dir: state_dir.clone(),
        role: Role::Container { oom_cgroup },
        pending,
    }))
}

/// The state directory, made afresh: a stale one (a previous run of the container) is
/// replaced, a live one (its shim answers on `shim.sock`) refused.
pub(crate) fn make_state_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        if std::os::unix::net::UnixStream::connect(dir.join(SOCKET_FILE)).is_ok() {
            return Err(Error::Refused(format!(
                "a shim already runs in {}",
                dir.display()
            )));
        }
        std::fs::remove_dir_all(dir).map_err(sys(format!("remove stale {}", dir.display())))?;
    }
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(sys(format!("create {}", parent.display())))?;
    }
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(dir)
        .map_err(sys(format!("create {}", dir.display())))
}

/// Points descriptors 0, 1 and 2 of this process at the given files.
pub(crate) fn point_stdio(stdin: &OwnedFd, stdout: &OwnedFd, stderr: &OwnedFd) -> Result<()> {
    nix::unistd::dup2_stdin(stdin).map_err(sys("dup2 stdin"))?;
    nix::unistd::dup2_stdout(stdout).map_err(sys("dup2 stdout"))?;
    nix::unistd::dup2_stderr(stderr).map_err(sys("dup2 stderr"))?;
    Ok(())
}

pub(crate) fn set_nonblocking(fd: &OwnedFd) -> Result<()> {
    let flags = nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFL).map_err(sys("F_GETFL"))?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_SETFL(flags)).map_err(sys("F_SETFL"))?;
    Ok(())
}

/// Reads and drops what a non-blocking pipe holds now.
pub(crate) fn discard_pending(fd: &OwnedFd) {
    let mut buffer = [0u8; 1024];
    while matches!(nix::unistd::read(fd, &mut buffer), Ok(n) if n > 0) {}
}

/// The pty master the runtime sends over the console socket during create.
pub(crate) fn receive_console(listener: &UnixListener) -> Result<OwnedFd> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    let mut fds = [PollFd::new(listener.as_fd(), PollFlags::POLLIN)];
    let timeout = PollTimeout::try_from(CONSOLE_TIMEOUT.as_millis() as i32)
        .map_err(|_| Error::InvalidArgument("console timeout".into()))?;
    let ready = poll(&mut fds, timeout).map_err(sys("poll the console socket"))?;
    if ready == 0 {
        return Err(Error::Protocol(
            "the runtime sent no pty master to the console socket".into(),
        ));
    }
    Ok(runtime::console::receive_master(listener.as_fd())?)
}

/// Error messages travel as one line.
pub(crate) fn one_line(message: &str) -> String {
    message.replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_parse() {
        assert_eq!(parse_report("ok 42\n"), Ok(42));
        assert_eq!(
            parse_report("error invalid config: x\n"),
            Err("invalid config: x".to_string())
        );
        assert_eq!(
            parse_report(""),
            Err("the shim exited during setup".to_string())
        );
        assert!(parse_report("ok nope").is_err());
    }

    #[test]
    fn bundle_facts_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"ociVersion":"1.0.2","process":{"terminal":true,"args":["sh"]},
                "linux":{"cgroupsPath":"/x/y"}}"#,
        )
        .unwrap();
        assert_eq!(
            read_bundle(dir.path()).unwrap(),
            BundleFacts {
                terminal: true,
                cgroups_path: Some("/x/y".into())
            }
        );
        std::fs::write(dir.path().join("config.json"), "{}").unwrap();
        assert_eq!(read_bundle(dir.path()).unwrap(), BundleFacts::default());
        std::fs::write(dir.path().join("config.json"), "nope").unwrap();
        assert!(read_bundle(dir.path()).is_err());
    }

    #[test]
    fn stale_state_dirs_are_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("shims/c1");
        make_state_dir(&state).unwrap();
        std::fs::write(state.join("exit.json"), "{}").unwrap();
        make_state_dir(&state).unwrap();
        assert!(!state.join("exit.json").exists());
        // A live shim (something listening on shim.sock) is refused.
        let _listener = UnixListener::bind(state.join(SOCKET_FILE)).unwrap();
        assert!(make_state_dir(&state).is_err());
    }

    #[test]
    fn messages_become_one_line() {
        assert_eq!(one_line("a\nb\r\nc"), "a b  c");
    }
}
