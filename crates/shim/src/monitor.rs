//! The shim's monitor loop: one thread, one poll(2) over the container's output, the control
//! socket, its connections and a signalfd for SIGCHLD.
//!
//! - Output (two pipes, or the pty master) goes to the json-file log as it arrives.
//! - SIGCHLD: every child that ended is reaped (orphans of the container reach the shim, a
//!   child subreaper); when it is the init, the exit is recorded.
//! - After the init's exit the output is drained (until end of file, or until it stays quiet
//!   for [`DRAIN_IDLE`], at most [`DRAIN_LIMIT`]: a process outside the container's pid
//!   namespace may hold a pipe open), the runtime deletes the container (its cgroup, leftover
//!   processes and state), what is left of the output is read, `exit.json` is written
//!   atomically, the waiters are answered and the shim exits. The deletion comes before the
//!   answer, so a client whose `wait` returned finds the container's cgroup gone.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};

use crate::backend::Backend;
use crate::log::{LineSplitter, Stream};
use crate::protocol::{
    EXIT_FILE, ExitRecord, MAX_REQUEST, Request, SOCKET_FILE, ShimState, ShimStatus,
};

/// After the init's exit, output that stays quiet this long is taken as finished.
pub const DRAIN_IDLE: Duration = Duration::from_millis(100);
/// After the init's exit, output is read for at most this long before the container is deleted.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// Bytes read from an output per poll round (on the stack).
const READ_CHUNK: usize = 8192;
/// Descriptors polled per round: signalfd, listener, two outputs, and up to 60 clients.
const POLL_SLOTS: usize = 64;

/// One output of the container and its unfinished line.
#[derive(Debug)]
pub struct Output {
    fd: Option<OwnedFd>,
    splitter: LineSplitter,
}

impl Output {
    /// The read end `fd` (non-blocking) of `stream`.
    pub fn new(fd: OwnedFd, stream: Stream) -> Self {
        Self {
            fd: Some(fd),
            splitter: LineSplitter::new(stream),
        }
    }
}

/// The container's stdio as the shim holds it.
#[derive(Debug)]
pub enum Stdio {
    /// Read ends of stdout and stderr; the write end of stdin, kept open so the container's
    /// stdin does not end (attach writes to it).
    Pipes {
        stdout: Output,
        stderr: Output,
        stdin: Option<OwnedFd>,
    },
    /// The pty master: output is logged as stdout.
    Terminal(Output),
}

/// A connection on shim.sock that has not sent its whole request yet.
struct Client {
    stream: UnixStream,
    request: Vec<u8>,
}

/// The monitor of one running container.
pub struct Monitor {
    id: String,
    backend: Backend,
    init_pid: i32,
    stdio: Stdio,
    listener: UnixListener,
    log: std::fs::File,
    state_dir: PathBuf,
    /// The cgroup whose OOM kill count tells `oom_killed`, for an external runtime (the
    /// built-in one is asked directly).
    oom_cgroup: Option<String>,
    clients: Vec<Client>,
    waiters: Vec<UnixStream>,
    exit: Option<ExitRecord>,
    /// Encoded log entries waiting for one write.
    entries: Vec<u8>,
}

impl Monitor {
    /// A monitor for the started container whose init is `init_pid`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        id: String,
        backend: Backend,
        init_pid: i32,
        stdio: Stdio,
        listener: UnixListener,
        log: std::fs::File,
        state_dir: PathBuf,
        oom_cgroup: Option<String>,
    ) -> Self {
        Self {
            id,
            backend,
            init_pid,
            stdio,
            listener,
            log,
            state_dir,
            oom_cgroup,
            clients: Vec::new(),
            waiters: Vec::new(),
            exit: None,
            entries: Vec::new(),
        }
    }

    /// Pid of the container's init.
    pub fn init_pid(&self) -> i32 {
        self.init_pid
    }

    /// Runs until the container is gone; returns the shim's exit code.
    pub fn run(mut self) -> i32 {
        // Blocked only now: the container's processes were forked before, and must not inherit
        // a blocked SIGCHLD (runtimes reset the mask anyway).
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGCHLD);
        if sigprocmask(SigmaskHow::SIG_BLOCK, Some(&mask), None).is_err() {
            return 1;
        }
        let Ok(signals) =
            SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        else {
            return 1;
        };
        // The init may have ended before SIGCHLD was blocked.
        self.reap();
        let mut drain_started: Option<Instant> = None;
        loop {
            if self.exit.is_some() {
                let started = *drain_started.get_or_insert_with(Instant::now);
                if self.outputs_open() == 0 || started.elapsed() > DRAIN_LIMIT {
                    break;
                }
            }
            let timeout = if self.exit.is_some() {
                DRAIN_IDLE.as_millis() as i32
            } else {
                -1
            };
            let ready = match self.poll_round(&signals, timeout) {
                Ok(ready) => ready,
                Err(_) => break,
            };
            if ready == 0 && self.exit.is_some() {
                break;
            }
        }
        self.finish();
        0
    }

    fn outputs_open(&self) -> usize {
        self.outputs().iter().filter(|o| o.fd.is_some()).count()
    }

    fn outputs(&self) -> Vec<&Output> {
        match &self.stdio {
            Stdio::Pipes { stdout, stderr, .. } => vec![stdout, stderr],
            Stdio::Terminal(output) => vec![output],
        }
    }

    /// One poll(2) and the work it found; returns how many descriptors were ready.
    /// The descriptor set lives on the stack (no allocation per round); clients past
    /// [`POLL_SLOTS`] wait for a later round.
    fn poll_round(&mut self, signals: &SignalFd, timeout_ms: i32) -> Result<i32, Errno> {
        let empty = libc::pollfd {
            fd: -1,
            events: 0,
            revents: 0,
        };
        let mut fds = [empty; POLL_SLOTS];
        let entry = |fd: i32| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // Order: signalfd, listener, stdout (or the pty), stderr, clients. A closed output
        // keeps its slot with fd -1, which poll(2) ignores.
        fds[0] = entry(signals.as_fd().as_raw_fd());
        fds[1] = entry(self.listener.as_raw_fd());
        for slot in 0..2 {
            if let Some(fd) = self.output_mut(slot).and_then(|o| o.fd.as_ref()) {
                fds[2 + slot] = entry(fd.as_raw_fd());
            }
        }
        let clients = self.clients.len().min(POLL_SLOTS - 4);
        for (index, client) in self.clients[..clients].iter().enumerate() {
            fds[4 + index] = entry(client.stream.as_raw_fd());
        }
        let count = 4 + clients;
        // SAFETY: `fds` holds `count` initialised pollfd entries.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), count as libc::nfds_t, timeout_ms) };
        if ready < 0 {
            let errno = Errno::last();
            return if errno == Errno::EINTR {
                Ok(1)
            } else {
                Err(errno)
            };
        }
        if ready == 0 {
            return Ok(0);
        }
        let fired = |index: usize| fds[index].fd >= 0 && fds[index].revents != 0;
        for slot in 0..2 {
            if fired(2 + slot) {
                self.read_output(slot);
            }
        }
        crate::log::flush(&mut self.log, &mut self.entries);
        if fired(0) {
            while let Ok(Some(_)) = signals.read_signal() {}
            self.reap();
        }
        // Back to front, so removing a client keeps the other indices valid.
        for index in (0..clients).rev() {
            if fired(4 + index) {
                self.serve(index);
            }
        }
        if fired(1) {
            self.accept();
        }
        Ok(ready)
    }

    fn output_mut(&mut self, slot: usize) -> Option<&mut Output> {
        match (&mut self.stdio, slot) {
            (Stdio::Pipes { stdout, .. }, 0) => Some(stdout),
            (Stdio::Pipes { stderr, .. }, 1) => Some(stderr),
            (Stdio::Terminal(output), 0) => Some(output),
            _ => None,
        }
    }

    /// Reads one chunk of output into log entries; closes the output at its end. Returns
    /// whether bytes arrived.
    fn read_output(&mut self, slot: usize) -> bool {
        let mut buffer = [0u8; READ_CHUNK];
        let mut entries = std::mem::take(&mut self.entries);
        let mut got = false;
        if let Some(output) = self.output_mut(slot)
            && let Some(fd) = &output.fd
        {
            match nix::unistd::read(fd, &mut buffer) {
                Ok(0) => close_output(output, &mut entries),
                Ok(n) => {
                    got = true;
                    output
                        .splitter
                        .push(&buffer[..n], crate::log::now().as_str(), &mut entries);
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                // EIO: the pty's last slave descriptor closed (pty(7)).
                Err(_) => close_output(output, &mut entries),
            }
        }
        self.entries = entries;
        got
    }

    /// Reads what the outputs hold now, without waiting (bounded, in case a writer outside
    /// the container keeps writing).
    fn read_rest(&mut self) {
        for slot in 0..2 {
            for _ in 0..1024 {
                if !self.read_output(slot) {
                    break;
                }
                crate::log::flush(&mut self.log, &mut self.entries);
            }
        }
        crate::log::flush(&mut self.log, &mut self.entries);
    }

    /// Reaps every ended child; records the init's end.
    fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == self.init_pid => {
                    self.record_exit(code, None);
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid.as_raw() == self.init_pid => {
                    self.record_exit(128 + signal as i32, Some(signal as i32));
                }
                Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => break,
                Ok(_) | Err(Errno::EINTR) => continue,
                Err(_) => break,
            }
        }
    }

    fn record_exit(&mut self, exit_code: i32, signal: Option<i32>) {
        self.exit = Some(ExitRecord {
            exit_code,
            signal,
            finished_at: chrono::Utc::now(),
            oom_killed: false,
        });
    }

    fn accept(&mut self) {
        while let Ok((stream, _)) = self.listener.accept() {
            if stream.set_nonblocking(true).is_ok() {
                self.clients.push(Client {
                    stream,
                    request: Vec::new(),
                });
            }
        }
    }

    /// Reads from client `index`; once its request line is complete, answers it (or, for
    /// `wait`, keeps it until the exit).
    fn serve(&mut self, index: usize) {
        let mut buffer = [0u8; 512];
        let client = &mut self.clients[index];
        let (complete, closed) = match client.stream.read(&mut buffer) {
            Ok(0) => (!client.request.is_empty(), true),
            Ok(n) => {
                client.request.extend_from_slice(&buffer[..n]);
                (buffer[..n].contains(&b'\n'), false)
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => (false, false),
            Err(_) => (false, true),
        };
        let too_long = client.request.len() > MAX_REQUEST;
        if !complete && !closed && !too_long {
            return;
        }
        let client = self.clients.swap_remove(index);
        if !complete && !too_long {
            return;
        }
        let mut stream = client.stream;
        let _ = stream.set_nonblocking(false);
        let line = client.request.split(|&b| b == b'\n').next().unwrap_or(&[]);
        let reply = if too_long {
            error_reply("request too long")
        } else {
            match serde_json::from_slice::<Request>(line) {
                Err(e) => error_reply(&format!("invalid request: {e}")),
                Ok(Request::Wait) => {
                    self.waiters.push(stream);
                    return;
                }
                Ok(request) => self.answer(request),
            }
        };
        send(&mut stream, &reply);
        // Control requests are rare and run code the loop does not need again.
        crate::memory::trim();
    }

    /// The reply to a request other than `wait`.
    fn answer(&mut self, request: Request) -> serde_json::Value {
        let running = self.exit.is_none();
        match request {
            Request::Wait => unreachable!("wait is held, not answered"),
            Request::Kill { signal, all } => {
                if !running {
                    return error_reply("the container is not running");
                }
                match self.backend.kill(&self.id, signal, all) {
                    Ok(()) => serde_json::json!({ "ok": true }),
                    Err(e) => error_reply(&e.to_string()),
                }
            }
            Request::State => {
                let status = if !running {
                    ShimStatus::Stopped
                } else if self.backend.paused(&self.id) {
                    ShimStatus::Paused
                } else {
                    ShimStatus::Running
                };
                serde_json::to_value(ShimState {
                    status,
                    pid: self.init_pid,
                })
                .unwrap_or_default()
            }
            Request::Start => error_reply("the container was already started"),
            Request::Attach { .. } | Request::Resize { .. } => error_reply("not supported yet"),
            // The shim ends by itself right after the exit; while the container runs there is
            // nothing to shut down without killing it.
            Request::Shutdown => error_reply("the container is still running"),
        }
    }

    /// After the init's exit: delete the container, log the last output, write exit.json,
    /// answer the waiters.
    fn finish(mut self) {
        let mut exit = self.exit.take().unwrap_or_else(|| ExitRecord {
            // The loop ended without the init's exit (poll failed): report it as lost.
            exit_code: 255,
            signal: None,
            finished_at: chrono::Utc::now(),
            oom_killed: false,
        });
        exit.oom_killed = self.oom_killed();
        let _ = self.backend.delete(&self.id);
        self.read_rest();
        let mut entries = std::mem::take(&mut self.entries);
        match &mut self.stdio {
            Stdio::Pipes { stdout, stderr, .. } => {
                close_output(stdout, &mut entries);
                close_output(stderr, &mut entries);
            }
            Stdio::Terminal(output) => close_output(output, &mut entries),
        }
        crate::log::flush(&mut self.log, &mut entries);
        let _ = write_exit(&self.state_dir, &exit);
        let reply = serde_json::to_value(&exit).unwrap_or_default();
        for mut waiter in std::mem::take(&mut self.waiters) {
            send(&mut waiter, &reply);
        }
        let _ = std::fs::remove_file(self.state_dir.join(SOCKET_FILE));
    }

    fn oom_killed(&self) -> bool {
        let stats = match (&self.backend, &self.oom_cgroup) {
            (Backend::Builtin { runtime, .. }, _) => runtime.stats(&self.id).ok(),
            (Backend::External { .. }, Some(path)) => cgroups::Hierarchies::detect()
                .ok()
                .and_then(|h| cgroups::Cgroup::new(&h, path).ok())
                .and_then(|cgroup| cgroup.stats().ok()),
            (Backend::External { .. }, None) => None,
        };
        stats.is_some_and(|stats| stats.memory.oom_kills > 0)
    }
}

/// The end of an output: its unfinished line is logged and the descriptor closed.
fn close_output(output: &mut Output, entries: &mut Vec<u8>) {
    if output.fd.take().is_some() {
        output.splitter.finish(crate::log::now().as_str(), entries);
    }
}

fn error_reply(message: &str) -> serde_json::Value {
    serde_json::json!({ "error": message })
}

/// Writes one reply line; a client that went away is no concern of ours.
fn send(stream: &mut UnixStream, reply: &serde_json::Value) {
    let mut line = reply.to_string().into_bytes();
    line.push(b'\n');
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = stream.write_all(&line);
}

/// Writes exit.json atomically (temporary file, fsync, rename), so a reader never sees half.
fn write_exit(state_dir: &std::path::Path, exit: &ExitRecord) -> std::io::Result<()> {
    let temporary = state_dir.join(format!(".{EXIT_FILE}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(&serde_json::to_vec(exit).map_err(std::io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&temporary, state_dir.join(EXIT_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_records_are_written_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let exit = ExitRecord {
            exit_code: 3,
            signal: None,
            finished_at: chrono::Utc::now(),
            oom_killed: false,
        };
        write_exit(dir.path(), &exit).unwrap();
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from(EXIT_FILE)]);
        let state_dir = crate::protocol::StateDir(dir.path().to_path_buf());
        assert_eq!(state_dir.read_exit().unwrap(), Some(exit));
    }

    #[test]
    fn error_replies_have_the_protocol_shape() {
        assert_eq!(error_reply("x").to_string(), r#"{"error":"x"}"#);
    }
}
