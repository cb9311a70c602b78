//! The shim's monitor loop: one thread, one poll(2) over the process's output, its stdin, the
//! control socket, its connections, the attach sessions and a signalfd for SIGCHLD.
//!
//! - Output (two pipes, or the pty master) goes to the json-file log as it arrives (an exec
//!   shim has no log), and to every attach session that asked for it: Docker's multiplexed
//!   frames without a terminal, raw bytes with one. Writes to attach sessions never block: each
//!   session has its own buffer, and a session more than [`ATTACH_BUFFER_CAP`] behind is
//!   dropped, so a slow client never stalls the container or the other sessions.
//! - Bytes from attach sessions that asked for stdin go to the process's stdin (the pipe's write
//!   end, or the pty master) without blocking; while stdin is backed up, the sessions are not
//!   read. With `--stdin-once`, the end of the last stdin-carrying session closes the stdin.
//! - SIGCHLD: every child that ended is reaped (orphans of the container reach the shim, a
//!   child subreaper); when it is the watched process (the container's init, or the exec'd
//!   process), the exit is recorded.
//! - A held container (`--hold`) and an exec shim run their program on the `start` request.
//! - After the exit the output is drained (until end of file, or until it stays quiet for
//!   [`DRAIN_IDLE`], at most [`DRAIN_LIMIT`]: a process outside the container's pid namespace
//!   may hold a pipe open), the runtime deletes the container (not for an exec), what is left of
//!   the output is read, the attach sessions get the rest of their output and are closed,
//!   `exit.json` is written atomically, the waiters are answered and the shim exits. The
//!   deletion comes before the answer, so a client whose `wait` returned finds the container's
//!   cgroup gone; the attach sessions end before it, so an attached client has all the output
//!   when the exit is known.

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
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
    EXIT_FILE, ExitRecord, MAX_REQUEST, Request, SOCKET_FILE, ShimState, ShimStatus, frame_header,
};

/// After the exit, output that stays quiet this long is taken as finished.
pub const DRAIN_IDLE: Duration = Duration::from_millis(100);
/// After the exit, output is read for at most this long before the container is deleted.
pub const DRAIN_LIMIT: Duration = Duration::from_secs(2);
/// Output an attach session may have waiting before it is dropped as too slow.
pub const ATTACH_BUFFER_CAP: usize = 256 * 1024;
/// Stdin bytes held for a backed-up stdin before the sessions stop being read.
const STDIN_BUFFER_CAP: usize = 64 * 1024;
/// How long the last output may take to reach one attach session at the end.
const ATTACH_FLUSH_TIMEOUT: Duration = Duration::from_secs(1);
/// Bytes read from an output or a session per poll round (on the stack).
const READ_CHUNK: usize = 8192;
/// Descriptors polled per round: signalfd, listener, two outputs, stdin, and up to 91
/// connections (requests and attach sessions).
const POLL_SLOTS: usize = 96;
/// Slots before the connections.
const FIXED_SLOTS: usize = 5;
/// What a terminal's line discipline takes as end of file (VEOF, ^D, termios(3)) in canonical
/// mode: a pty master cannot be half-closed, so `--stdin-once` ends a terminal's input with it.
const VEOF: u8 = 0x04;

/// One output of the process and its unfinished line.
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

    /// A terminal output whose pty master comes later (an exec shim before `start`).
    pub fn later(stream: Stream) -> Self {
        Self {
            fd: None,
            splitter: LineSplitter::new(stream),
        }
    }
}

/// The process's stdio as the shim holds it.
#[derive(Debug)]
pub enum Stdio {
    /// Read ends of stdout and stderr; the write end of stdin (non-blocking), kept open so the
    /// process's stdin does not end.
    Pipes {
        stdout: Output,
        stderr: Output,
        stdin: Option<OwnedFd>,
    },
    /// The pty master (non-blocking): output is logged as stdout, stdin is written to it.
    Terminal(Output),
}

/// Who the monitored process is.
#[derive(Debug)]
pub enum Role {
    /// A container's init: deleted through the runtime after its exit. `oom_cgroup` is the
    /// cgroup whose OOM kill count tells `oom_killed` for an external runtime (the built-in one
    /// is asked directly).
    Container { oom_cgroup: Option<String> },
    /// A process exec'd in a container: signalled by pid, the container left alone.
    Exec,
}

/// What the `start` request still has to do.
pub enum Pending {
    /// Nothing: the program runs (or ran).
    Nothing,
    /// The container is created, its program waits for the runtime's `start` (`--hold`).
    Held,
    /// The exec'd process has not been run.
    Exec(Box<crate::exec::PendingExec>),
}

/// Everything a [`Monitor`] is made of.
pub struct Parts {
    /// The container's id.
    pub id: String,
    pub backend: Backend,
    /// Host pid of the watched process; 0 while an exec was not started.
    pub pid: i32,
    pub stdio: Stdio,
    /// Whether the process has a stdin to write to (`--stdin`).
    pub stdin: bool,
    /// `--stdin-once`.
    pub stdin_once: bool,
    pub listener: UnixListener,
    /// The json-file log; `None` for an exec.
    pub log: Option<std::fs::File>,
    pub state_dir: PathBuf,
    pub role: Role,
    pub pending: Pending,
}

/// A connection on shim.sock that has not sent its whole request yet.
struct Client {
    stream: UnixStream,
    request: Vec<u8>,
}

/// A connection that became an attach session.
struct Attach {
    stream: UnixStream,
    stdin: bool,
    stdout: bool,
    stderr: bool,
    /// The client's half is open: its bytes are read.
    reading: bool,
    /// Output not yet accepted by the socket.
    out: Vec<u8>,
    /// Gone (hung up, failed, or too slow): removed at the end of the round.
    dead: bool,
}

impl Attach {
    /// Sends what it can of `out` without blocking.
    fn flush(&mut self) {
        while !self.out.is_empty() {
            match self.stream.write(&self.out) {
                Ok(0) => {
                    self.dead = true;
                    break;
                }
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.dead = true;
                    break;
                }
            }
        }
        if self.out.is_empty() && self.out.capacity() > READ_CHUNK * 4 {
            self.out = Vec::new();
        }
        if self.out.len() > ATTACH_BUFFER_CAP {
            self.dead = true;
        }
    }
}

/// The monitor of one container's init or one exec'd process.
pub struct Monitor {
    id: String,
    backend: Backend,
    pid: i32,
    stdio: Stdio,
    /// The process's stdin still takes bytes.
    stdin_open: bool,
    /// Close the stdin once `stdin_pending` is written (`--stdin-once`).
    stdin_closing: bool,
    stdin_once: bool,
    stdin_pending: Vec<u8>,
    listener: UnixListener,
    log: Option<std::fs::File>,
    state_dir: PathBuf,
    role: Role,
    pending: Pending,
    /// A window size asked for before an exec's pty existed (it becomes `consoleSize`).
    pending_size: Option<(u16, u16)>,
    clients: Vec<Client>,
    attaches: Vec<Attach>,
    waiters: Vec<UnixStream>,
    exit: Option<ExitRecord>,
    /// End without an exit record and remove the state directory (an exec that never ran).
    abandon: bool,
    /// Encoded log entries waiting for one write.
    entries: Vec<u8>,
    /// Setup or a control request ran code the loop does not need again: give its pages back
    /// ([`crate::memory::trim`]) once the loop has been idle for [`TRIM_AFTER_IDLE_MS`], so
    /// the trim never delays the process's output or exit.
    trim_due: bool,
}

/// Quiet time after which the monitor trims its memory (see `Monitor::trim_due`).
const TRIM_AFTER_IDLE_MS: i32 = 1000;

impl Monitor {
    /// A monitor over `parts`.
    pub fn new(parts: Parts) -> Self {
        Self {
            id: parts.id,
            backend: parts.backend,
            pid: parts.pid,
            stdio: parts.stdio,
            stdin_open: parts.stdin,
            stdin_closing: false,
            stdin_once: parts.stdin_once,
            stdin_pending: Vec::new(),
            listener: parts.listener,
            log: parts.log,
            state_dir: parts.state_dir,
            role: parts.role,
            pending: parts.pending,
            pending_size: None,
            clients: Vec::new(),
            attaches: Vec::new(),
            waiters: Vec::new(),
            exit: None,
            abandon: false,
            entries: Vec::new(),
            trim_due: true,
        }
    }

    /// Pid of the watched process (0 for an exec not started yet).
    pub fn init_pid(&self) -> i32 {
        self.pid
    }

    /// Runs until the process is gone; returns the shim's exit code.
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
            if self.abandon {
                self.leave();
                return 0;
            }
            if self.exit.is_some() {
                let started = *drain_started.get_or_insert_with(Instant::now);
                if self.outputs_open() == 0 || started.elapsed() > DRAIN_LIMIT {
                    break;
                }
            }
            let timeout = if self.exit.is_some() {
                DRAIN_IDLE.as_millis() as i32
            } else if self.trim_due {
                TRIM_AFTER_IDLE_MS
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
            if ready == 0 && self.trim_due {
                crate::memory::trim();
                self.trim_due = false;
            }
        }
        self.finish();
        0
    }

    fn outputs_open(&self) -> usize {
        let open = |o: &Output| usize::from(o.fd.is_some());
        match &self.stdio {
            Stdio::Pipes { stdout, stderr, .. } => open(stdout) + open(stderr),
            Stdio::Terminal(output) => open(output),
        }
    }

    fn tty(&self) -> bool {
        matches!(self.stdio, Stdio::Terminal(_))
    }

    /// Where stdin bytes are written, while the process has an open stdin.
    fn stdin_fd(&self) -> Option<BorrowedFd<'_>> {
        if !self.stdin_open {
            return None;
        }
        match &self.stdio {
            Stdio::Pipes { stdin, .. } => stdin.as_ref().map(|fd| fd.as_fd()),
            Stdio::Terminal(output) => output.fd.as_ref().map(|fd| fd.as_fd()),
        }
    }

    /// One poll(2) and the work it found; returns how many descriptors were ready.
    /// The descriptor set lives on the stack (no allocation per round); connections past
    /// [`POLL_SLOTS`] wait for a later round.
    fn poll_round(&mut self, signals: &SignalFd, timeout_ms: i32) -> Result<i32, Errno> {
        let empty = libc::pollfd {
            fd: -1,
            events: 0,
            revents: 0,
        };
        let mut fds = [empty; POLL_SLOTS];
        let entry = |fd: i32, events: libc::c_short| libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // Order: signalfd, listener, stdout (or the pty), stderr, stdin pipe, requests, attach
        // sessions. A closed descriptor keeps its slot with fd -1, which poll(2) ignores.
        fds[0] = entry(signals.as_fd().as_raw_fd(), libc::POLLIN);
        fds[1] = entry(self.listener.as_raw_fd(), libc::POLLIN);
        let stdin_waiting = !self.stdin_pending.is_empty();
        for slot in 0..2 {
            if let Some(fd) = self.output_mut(slot).and_then(|o| o.fd.as_ref()) {
                fds[2 + slot] = entry(fd.as_raw_fd(), libc::POLLIN);
            }
        }
        if stdin_waiting {
            match &self.stdio {
                Stdio::Terminal(_) => fds[2].events |= libc::POLLOUT,
                Stdio::Pipes {
                    stdin: Some(fd), ..
                } => fds[4] = entry(fd.as_raw_fd(), libc::POLLOUT),
                Stdio::Pipes { .. } => {}
            }
        }
        let clients = self.clients.len().min(POLL_SLOTS - FIXED_SLOTS);
        for (index, client) in self.clients[..clients].iter().enumerate() {
            fds[FIXED_SLOTS + index] = entry(client.stream.as_raw_fd(), libc::POLLIN);
        }
        let first_attach = FIXED_SLOTS + clients;
        let attaches = self.attaches.len().min(POLL_SLOTS - first_attach);
        let read_sessions = self.stdin_pending.len() < STDIN_BUFFER_CAP;
        for (index, attach) in self.attaches[..attaches].iter().enumerate() {
            let mut events = 0;
            if attach.reading && read_sessions {
                events |= libc::POLLIN;
            }
            if !attach.out.is_empty() {
                events |= libc::POLLOUT;
            }
            fds[first_attach + index] = entry(attach.stream.as_raw_fd(), events);
        }
        let count = first_attach + attaches;
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
            if fired(2 + slot) && fds[2 + slot].revents & !libc::POLLOUT != 0 {
                self.read_output(slot);
            }
        }
        if let Some(log) = &mut self.log {
            crate::log::flush(log, &mut self.entries);
        }
        if stdin_waiting && (fired(4) || (self.tty() && fds[2].revents & libc::POLLOUT != 0)) {
            self.write_stdin();
        }
        if fired(0) {
            while let Ok(Some(_)) = signals.read_signal() {}
            self.reap();
        }
        // Sessions before requests: serving a request may add sessions (at the end).
        for index in 0..attaches {
            let revents = fds[first_attach + index].revents;
            if revents != 0 {
                self.serve_attach(index, revents);
            }
        }
        // Back to front, so removing a client keeps the other indices valid.
        for index in (0..clients).rev() {
            if fired(FIXED_SLOTS + index) {
                self.serve(index);
            }
        }
        if fired(1) {
            self.accept();
        }
        self.sweep_attaches();
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

    /// Reads one chunk of output into log entries and attach sessions; closes the output at its
    /// end. Returns whether bytes arrived.
    fn read_output(&mut self, slot: usize) -> bool {
        let mut buffer = [0u8; READ_CHUNK];
        let mut entries = std::mem::take(&mut self.entries);
        let logging = self.log.is_some();
        let mut got = 0;
        if let Some(output) = self.output_mut(slot)
            && let Some(fd) = &output.fd
        {
            match nix::unistd::read(fd, &mut buffer) {
                Ok(0) => close_output(output, &mut entries),
                Ok(n) => {
                    got = n;
                    if logging {
                        output.splitter.push(
                            &buffer[..n],
                            crate::log::now().as_str(),
                            &mut entries,
                        );
                    }
                }
                Err(Errno::EAGAIN | Errno::EINTR) => {}
                // EIO: the pty's last slave descriptor closed (pty(7)).
                Err(_) => close_output(output, &mut entries),
            }
        }
        self.entries = entries;
        if got > 0 {
            self.forward(slot, &buffer[..got]);
        }
        got > 0
    }

    /// Queues output of `slot` (0 stdout or the pty, 1 stderr) to the sessions that asked for it.
    fn forward(&mut self, slot: usize, data: &[u8]) {
        let tty = self.tty();
        for attach in &mut self.attaches {
            let wanted = match (tty, slot) {
                // A terminal has one stream, which Docker sends to a session asking for either.
                (true, _) => attach.stdout || attach.stderr,
                (false, 0) => attach.stdout,
                (false, _) => attach.stderr,
            };
            if !wanted || attach.dead {
                continue;
            }
            if !tty {
                attach
                    .out
                    .extend_from_slice(&frame_header(slot as u8 + 1, data.len()));
            }
            attach.out.extend_from_slice(data);
            attach.flush();
        }
    }

    /// Reads what the outputs hold now, without waiting (bounded, in case a writer outside
    /// the container keeps writing).
    fn read_rest(&mut self) {
        for slot in 0..2 {
            for _ in 0..1024 {
                if !self.read_output(slot) {
                    break;
                }
                if let Some(log) = &mut self.log {
                    crate::log::flush(log, &mut self.entries);
                }
            }
        }
        if let Some(log) = &mut self.log {
            crate::log::flush(log, &mut self.entries);
        }
    }

    /// Writes what it can of the pending stdin bytes without blocking; closes the stdin after
    /// them when asked to.
    fn write_stdin(&mut self) {
        while !self.stdin_pending.is_empty() {
            let Some(fd) = self.stdin_fd() else {
                self.stdin_pending = Vec::new();
                break;
            };
            match nix::unistd::write(fd, &self.stdin_pending) {
                Ok(n) => {
                    self.stdin_pending.drain(..n);
                }
                Err(Errno::EINTR) => {}
                Err(Errno::EAGAIN) => return,
                // EPIPE: the process closed its stdin; nothing more can go there.
                Err(_) => {
                    self.stdin_pending = Vec::new();
                    self.close_stdin();
                    return;
                }
            }
        }
        if self.stdin_pending.capacity() > READ_CHUNK * 4 {
            self.stdin_pending = Vec::new();
        }
        if self.stdin_closing {
            self.close_stdin();
        }
    }

    /// No more stdin: the pipe's write end is closed (the process reads end of file).
    fn close_stdin(&mut self) {
        self.stdin_open = false;
        self.stdin_closing = false;
        if let Stdio::Pipes { stdin, .. } = &mut self.stdio {
            *stdin = None;
        }
    }

    /// A session that carried stdin ended it. With `--stdin-once`, when it was the last such
    /// session, the process's stdin closes once the bytes before are written (with a terminal,
    /// a VEOF is written instead: the pty stays the process's output).
    fn stdin_ended(&mut self) {
        if !self.stdin_once || !self.stdin_open || self.stdin_closing {
            return;
        }
        if self
            .attaches
            .iter()
            .any(|a| !a.dead && a.stdin && a.reading)
        {
            return;
        }
        if self.tty() {
            self.stdin_pending.push(VEOF);
        }
        self.stdin_closing = true;
        self.write_stdin();
    }

    /// Handles the events of attach session `index`: its stdin bytes, its pending output, its
    /// end.
    fn serve_attach(&mut self, index: usize, revents: libc::c_short) {
        if revents & libc::POLLOUT != 0 {
            self.attaches[index].flush();
        }
        let mut buffer = [0u8; READ_CHUNK];
        let mut stdin_bytes = 0;
        let mut ended = false;
        let attach = &mut self.attaches[index];
        if attach.reading && revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
            match attach.stream.read(&mut buffer) {
                Ok(0) => {
                    attach.reading = false;
                    ended = attach.stdin;
                }
                Ok(n) if attach.stdin => stdin_bytes = n,
                // Bytes of a session without stdin are dropped.
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                    ) => {}
                // Ended in sweep_attaches, which also counts it as the end of its stdin.
                Err(_) => attach.dead = true,
            }
        } else if !attach.reading && revents & (libc::POLLHUP | libc::POLLERR) != 0 {
            // The client closed its whole connection.
            attach.dead = true;
        }
        if stdin_bytes > 0 && self.stdin_open && !self.stdin_closing {
            self.stdin_pending.extend_from_slice(&buffer[..stdin_bytes]);
            self.write_stdin();
        }
        if ended {
            self.stdin_ended();
        }
    }

    /// Removes the sessions that ended; an end counts as the end of their stdin.
    fn sweep_attaches(&mut self) {
        let mut index = 0;
        while index < self.attaches.len() {
            if !self.attaches[index].dead {
                index += 1;
                continue;
            }
            let attach = self.attaches.swap_remove(index);
            if attach.reading && attach.stdin {
                self.stdin_ended();
            }
        }
    }

    /// Reaps every ended child; records the watched process's end.
    fn reap(&mut self) {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG | WaitPidFlag::__WALL)) {
                Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() == self.pid => {
                    self.record_exit(code, None);
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid.as_raw() == self.pid => {
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
    /// `wait`, keeps it until the exit; for `attach`, makes it a session).
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
        let mut parts = client.request.splitn(2, |&b| b == b'\n');
        let line = parts.next().unwrap_or(&[]);
        let rest = parts.next().unwrap_or(&[]);
        let reply = if too_long {
            error_reply("request too long")
        } else {
            match serde_json::from_slice::<Request>(line) {
                Err(e) => error_reply(&format!("invalid request: {e}")),
                Ok(Request::Wait) => {
                    self.waiters.push(stream);
                    self.trim_due = true;
                    return;
                }
                Ok(Request::Attach {
                    stdin,
                    stdout,
                    stderr,
                }) => {
                    if self.exit.is_some() {
                        error_reply("the container is not running")
                    } else {
                        send(&mut stream, &serde_json::json!({ "ok": true }));
                        self.add_attach(stream, stdin, stdout, stderr, rest, closed);
                        self.trim_due = true;
                        return;
                    }
                }
                Ok(request) => self.answer(request),
            }
        };
        send(&mut stream, &reply);
        // Control requests are rare and run code the loop does not need again.
        self.trim_due = true;
    }

    /// Makes `stream` an attach session; `early` are stdin bytes that came with the request,
    /// `closed` says the client's half already ended.
    fn add_attach(
        &mut self,
        stream: UnixStream,
        stdin: bool,
        stdout: bool,
        stderr: bool,
        early: &[u8],
        closed: bool,
    ) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        self.attaches.push(Attach {
            stream,
            stdin,
            stdout,
            stderr,
            reading: !closed,
            out: Vec::new(),
            dead: false,
        });
        if stdin && !early.is_empty() && self.stdin_open && !self.stdin_closing {
            self.stdin_pending.extend_from_slice(early);
            self.write_stdin();
        }
        if stdin && closed {
            self.stdin_ended();
        }
    }

    /// The reply to a request other than `wait` and `attach`.
    fn answer(&mut self, request: Request) -> serde_json::Value {
        let running = self.exit.is_none();
        let exec = matches!(self.role, Role::Exec);
        match request {
            Request::Wait | Request::Attach { .. } => unreachable!("served by the caller"),
            Request::Kill { signal, all } => {
                if exec && matches!(self.pending, Pending::Exec(_)) {
                    // A process that never started never will: the exec shim goes, as for
                    // `shutdown` (an engine giving up on an exec need not know how far it got).
                    self.abandon = true;
                    return ok_reply();
                }
                if !running {
                    return error_reply("the container is not running");
                }
                let result = match self.role {
                    Role::Container { .. } => self.backend.kill(&self.id, signal, all),
                    Role::Exec => kill_pid(self.pid, signal),
                };
                match result {
                    Ok(()) => ok_reply(),
                    Err(e) => error_reply(&e.to_string()),
                }
            }
            Request::State => {
                let status = if !running {
                    ShimStatus::Stopped
                } else if !matches!(self.pending, Pending::Nothing) {
                    ShimStatus::Created
                } else if self.backend.paused(&self.id) {
                    ShimStatus::Paused
                } else {
                    ShimStatus::Running
                };
                serde_json::to_value(ShimState {
                    status,
                    pid: self.pid,
                })
                .unwrap_or_default()
            }
            Request::Resize { height, width } => self.resize(height, width),
            Request::Start => self.start(),
            Request::Shutdown => {
                if matches!(self.pending, Pending::Exec(_)) {
                    // An exec that never ran: nothing to wait for.
                    self.abandon = true;
                    return ok_reply();
                }
                // The shim ends by itself right after the exit; while the container runs
                // there is nothing to shut down without killing it.
                error_reply("the container is still running")
            }
        }
    }

    /// `resize`: the pty's window size (a later pty gets it when it arrives).
    fn resize(&mut self, height: u16, width: u16) -> serde_json::Value {
        let Stdio::Terminal(output) = &self.stdio else {
            return error_reply("cannot resize: the process is not a tty");
        };
        if self.exit.is_some() {
            return error_reply("the container is not running");
        }
        match &output.fd {
            Some(master) => {
                match runtime::console::set_window_size(master.as_fd(), height, width) {
                    Ok(()) => ok_reply(),
                    Err(e) => error_reply(&e.to_string()),
                }
            }
            None => {
                self.pending_size = Some((height, width));
                ok_reply()
            }
        }
    }

    /// `start`: the held container's program, or the exec'd process.
    fn start(&mut self) -> serde_json::Value {
        if self.exit.is_some() {
            return error_reply("the container is not running");
        }
        match std::mem::replace(&mut self.pending, Pending::Nothing) {
            Pending::Nothing => match self.role {
                Role::Container { .. } => error_reply("the container was already started"),
                Role::Exec => error_reply("the process was already started"),
            },
            Pending::Held => match self.backend.start(&self.id) {
                Ok(()) => ok_reply(),
                Err(error) => {
                    // Nothing half-made stays: the created init goes, the shim finishes.
                    let _ = self.backend.kill(&self.id, libc::SIGKILL, true);
                    error_reply(&error.to_string())
                }
            },
            Pending::Exec(exec) => {
                let result = exec.run(&self.backend, &self.id, self.pending_size);
                // The exec'd process may have ended already; its SIGCHLD is queued, but reap
                // now anyway (cheap).
                match result {
                    Ok((pid, master)) => {
                        self.pid = pid;
                        if let (Some(master), Stdio::Terminal(output)) = (master, &mut self.stdio) {
                            output.fd = Some(master);
                        }
                        self.reap();
                        serde_json::json!({ "ok": true, "pid": pid })
                    }
                    Err(error) => {
                        self.abandon = true;
                        error_reply(&error.to_string())
                    }
                }
            }
        }
    }

    /// Closes every attach session, after giving each the rest of its output (bounded).
    fn close_attaches(&mut self) {
        for mut attach in std::mem::take(&mut self.attaches) {
            if !attach.out.is_empty() && !attach.dead {
                let _ = attach.stream.set_nonblocking(false);
                let _ = attach.stream.set_write_timeout(Some(ATTACH_FLUSH_TIMEOUT));
                let _ = attach.stream.write_all(&attach.out);
            }
            let _ = attach.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    /// An exec that never ran (or failed to): its sessions are closed, its state directory
    /// removed.
    fn leave(mut self) {
        self.close_attaches();
        let _ = std::fs::remove_dir_all(&self.state_dir);
    }

    /// After the exit: delete the container, log the last output, close the attach sessions,
    /// write exit.json, answer the waiters.
    fn finish(mut self) {
        let mut exit = self.exit.take().unwrap_or_else(|| ExitRecord {
            // The loop ended without the exit (poll failed): report it as lost.
            exit_code: 255,
            signal: None,
            finished_at: chrono::Utc::now(),
            oom_killed: false,
        });
        if let Role::Container { .. } = self.role {
            exit.oom_killed = self.oom_killed();
            let _ = self.backend.delete(&self.id);
        }
        self.read_rest();
        let mut entries = std::mem::take(&mut self.entries);
        match &mut self.stdio {
            Stdio::Pipes { stdout, stderr, .. } => {
                close_output(stdout, &mut entries);
                close_output(stderr, &mut entries);
            }
            Stdio::Terminal(output) => close_output(output, &mut entries),
        }
        if let Some(log) = &mut self.log {
            crate::log::flush(log, &mut entries);
        }
        self.close_attaches();
        let _ = write_exit(&self.state_dir, &exit);
        let reply = serde_json::to_value(&exit).unwrap_or_default();
        for mut waiter in std::mem::take(&mut self.waiters) {
            send(&mut waiter, &reply);
        }
        let _ = std::fs::remove_file(self.state_dir.join(SOCKET_FILE));
    }

    fn oom_killed(&self) -> bool {
        let Role::Container { oom_cgroup } = &self.role else {
            return false;
        };
        let stats = match (&self.backend, oom_cgroup) {
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

/// Sends `signal` to one process (an exec'd one: the runtime's `kill` is for the init).
fn kill_pid(pid: i32, signal: i32) -> crate::Result<()> {
    let signal = Signal::try_from(signal)
        .map_err(|_| crate::Error::InvalidArgument(format!("unknown signal {signal}")))?;
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), signal)
        .map_err(crate::error::sys("signal the process"))
}

/// The end of an output: its unfinished line is logged and the descriptor closed.
fn close_output(output: &mut Output, entries: &mut Vec<u8>) {
    if output.fd.take().is_some() {
        output.splitter.finish(crate::log::now().as_str(), entries);
    }
}

fn ok_reply() -> serde_json::Value {
    serde_json::json!({ "ok": true })
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

/// Writes exit.json atomically (temporary file, rename), so a reader never sees half. No
/// fsync: the state directory is runtime state under the exec root (a tmpfs on most hosts),
/// read after a crash of the daemon, never after one of the machine.
fn write_exit(state_dir: &std::path::Path, exit: &ExitRecord) -> std::io::Result<()> {
    let temporary = state_dir.join(format!(".{EXIT_FILE}.tmp"));
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(&serde_json::to_vec(exit).map_err(std::io::Error::other)?)?;
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
