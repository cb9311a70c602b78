//! `berth-shim exec`: a shim for one process exec'd in a running container.
//!
//! Like `start`, the foreground half forks the shim proper and reports one line; unlike it, the
//! shim reports `ok 0` as soon as it listens, having run nothing: the engine first connects its
//! attach sessions, then sends `start`, which runs the process through the runtime (built-in
//! `Runtime::exec`, or `<runtime> exec --detach`) and answers `{"ok":true,"pid":N}` or the
//! runtime's error (an executable that is not found, say). The process becomes the shim's child
//! (the shim is a child subreaper and the runtime's intermediate processes exit), so the shim
//! reaps it and records its exit in `exit.json`, as for a container. An exec shim has no log and
//! never deletes the container. A failed `start`, or `shutdown` before `start`, removes its
//! state directory and ends it: nothing of the exec remains.

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;

use nix::fcntl::{OFlag, open};
use nix::sys::stat::Mode;
use nix::unistd::pipe2;

use crate::backend::Backend;
use crate::error::{Error, Result, sys};
use crate::log::Stream;
use crate::monitor::{Monitor, Output, Parts, Pending, Role, Stdio};
use crate::options::ExecOptions;
use crate::protocol::{INIT_PID_FILE, SHIM_PID_FILE, SOCKET_FILE, ShimStatus};
use crate::start::{
    CONSOLE_SOCKET, become_shim, make_state_dir, point_stdio, receive_console, set_nonblocking,
};

/// The copy of the process JSON in the state directory (an external runtime reads it).
const PROCESS_FILE: &str = "process.json";

/// Runs `exec`: forks the exec shim; returns `Ok(0)` once it listens, or the error message.
/// Only the foreground process returns.
pub fn exec(options: &ExecOptions) -> std::result::Result<i32, String> {
    crate::start::daemonize(|| {
        let mut made = false;
        setup(options, &mut made).inspect_err(|_| {
            if made {
                let _ = std::fs::remove_dir_all(&options.state_dir);
            }
        })
    })
}

/// The process, and the descriptors it gets, until `start`.
pub struct PendingExec {
    process: oci_spec::runtime::Process,
    process_file: PathBuf,
    pid_file: PathBuf,
    /// The console socket (path, listener) when the process has a terminal.
    console: Option<(PathBuf, UnixListener)>,
    /// The process's ends of its stdio pipes (stdin only with `--stdin`); none with a terminal.
    stdin: Option<OwnedFd>,
    stdout: Option<OwnedFd>,
    stderr: Option<OwnedFd>,
}

impl PendingExec {
    /// Runs the process in container `id`; returns its pid and, with a terminal, the pty
    /// master (non-blocking). Our copies of the process's pipe ends are closed, so its output
    /// ends when it does.
    ///
    /// `size` (height, width), asked for before `start`, becomes the process's
    /// `consoleSize`: the runtime sizes the pty before the program runs, so even its first
    /// `stty size` sees it.
    pub fn run(
        mut self,
        backend: &Backend,
        id: &str,
        size: Option<(u16, u16)>,
    ) -> Result<(i32, Option<OwnedFd>)> {
        if let (Some((height, width)), true) = (size, self.console.is_some()) {
            let console_size = oci_spec::runtime::BoxBuilder::default()
                .height(u64::from(height))
                .width(u64::from(width))
                .build()
                .map_err(|e| Error::InvalidArgument(format!("console size: {e}")))?;
            self.process.set_console_size(Some(console_size));
            let json = serde_json::to_vec(&self.process)
                .map_err(|e| Error::InvalidArgument(format!("process json: {e}")))?;
            std::fs::write(&self.process_file, json).map_err(sys("write process.json"))?;
        }
        let null = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(sys("open /dev/null"))?;
        point_stdio(
            self.stdin.as_ref().unwrap_or(&null),
            self.stdout.as_ref().unwrap_or(&null),
            self.stderr.as_ref().unwrap_or(&null),
        )?;
        let result = backend.exec(
            id,
            &self.process,
            &self.process_file,
            self.console.as_ref().map(|(path, _)| path.as_path()),
            &self.pid_file,
        );
        point_stdio(&null, &null, &null)?;
        drop((self.stdin, self.stdout, self.stderr));
        let pid = result?;
        let Some((path, listener)) = self.console else {
            return Ok((pid, None));
        };
        let master = receive_console(&listener).and_then(|master| {
            set_nonblocking(&master)?;
            Ok(master)
        });
        drop(listener);
        let _ = std::fs::remove_file(path);
        match master {
            Ok(master) => Ok((pid, Some(master))),
            Err(error) => {
                // A process whose terminal we do not hold must not run on.
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                Err(error)
            }
        }
    }
}

fn setup(options: &ExecOptions, made: &mut bool) -> Result<Monitor> {
    become_shim()?;
    // The caller's stdio (the engine's pipe for the report among them) must not stay open in
    // the long-lived shim: the engine reads the report to its end.
    let null = open("/dev/null", OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(sys("open /dev/null"))?;
    point_stdio(&null, &null, &null)?;
    drop(null);
    // The container must run: its shim answers (a stopped container's shim is gone).
    let container_socket = options.container_state_dir.join(SOCKET_FILE);
    match crate::protocol::state(&container_socket) {
        Ok(state) if matches!(state.status, ShimStatus::Running | ShimStatus::Paused) => {}
        _ => {
            return Err(Error::Refused(format!(
                "container {} is not running",
                options.id
            )));
        }
    }
    let bytes = std::fs::read(&options.process).map_err(sys(format!(
        "read the process {}",
        options.process.display()
    )))?;
    let process: oci_spec::runtime::Process = serde_json::from_slice(&bytes)
        .map_err(|e| Error::InvalidArgument(format!("invalid process json: {e}")))?;
    let terminal = process.terminal().unwrap_or(false);
    if terminal != options.tty {
        return Err(Error::InvalidArgument(format!(
            "--tty is {} but process.terminal is {terminal}",
            options.tty
        )));
    }

    let state_dir = &options.state_dir;
    make_state_dir(state_dir)?;
    *made = true;
    std::fs::write(
        state_dir.join(SHIM_PID_FILE),
        std::process::id().to_string(),
    )
    .map_err(sys("write shim.pid"))?;
    let process_file = state_dir.join(PROCESS_FILE);
    std::fs::write(&process_file, &bytes).map_err(sys("write process.json"))?;
    let backend = Backend::new(
        options.runtime.as_deref(),
        &options.runtime_root(),
        state_dir.join("runtime.log"),
        options.seccomp_cache.as_deref(),
    )?;
    let listener =
        UnixListener::bind(state_dir.join(SOCKET_FILE)).map_err(sys("bind shim.sock"))?;
    listener
        .set_nonblocking(true)
        .map_err(sys("shim.sock non-blocking"))?;

    let mut pending = PendingExec {
        process,
        process_file,
        pid_file: state_dir.join(INIT_PID_FILE),
        console: None,
        stdin: None,
        stdout: None,
        stderr: None,
    };
    let stdio = if options.tty {
        let path = state_dir.join(CONSOLE_SOCKET);
        let console = UnixListener::bind(&path).map_err(sys("bind the console socket"))?;
        pending.console = Some((path, console));
        Stdio::Terminal(Output::later(Stream::Stdout))
    } else {
        let (out_read, out_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("stdout pipe"))?;
        let (err_read, err_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("stderr pipe"))?;
        set_nonblocking(&out_read)?;
        set_nonblocking(&err_read)?;
        pending.stdout = Some(out_write);
        pending.stderr = Some(err_write);
        let stdin = if options.stdin {
            let (read, write) = pipe2(OFlag::O_CLOEXEC).map_err(sys("stdin pipe"))?;
            set_nonblocking(&write)?;
            pending.stdin = Some(read);
            Some(write)
        } else {
            None
        };
        Stdio::Pipes {
            stdout: Output::new(out_read, Stream::Stdout),
            stderr: Output::new(err_read, Stream::Stderr),
            stdin,
        }
    };
    Ok(Monitor::new(Parts {
        id: options.id.clone(),
        backend,
        pid: 0,
        stdio,
        stdin: options.stdin,
        stdin_once: options.stdin_once,
        listener,
        log: None,
        state_dir: state_dir.clone(),
        role: Role::Exec,
        pending: Pending::Exec(Box::new(pending)),
    }))
}
