//! Hijacked stdio sessions shared by `run`, `start -a`, `attach` and `exec`: the local
//! terminal in raw mode (restored on every exit path), our stdin copied to the connection
//! through the detach-key matcher, the output copied raw (TTY) or demultiplexed (8-byte
//! frames), the remote TTY following our size, and docker's signal proxy.
//!
//! Also the `attach` command itself.

use std::os::fd::AsFd;
use std::sync::{Arc, Mutex};

use clap::Args;
use client::containers::AttachOptions;
use client::{Client, Hijacked, stream};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app::{CmdResult, Failure};

/// What docker's `attach` and `exec` print after a detach (moby/term `EscapeError`).
pub const DETACHED_MESSAGE: &str = "read escape sequence";

/// docker's default detach sequence, ctrl-p ctrl-q (docker `container.DefaultDetachKeys`).
pub const DEFAULT_DETACH_KEYS: &str = "ctrl-p,ctrl-q";

/// Parses a detach-key specification as docker does (moby/term `ToBytes`): a comma-separated
/// list of single characters or `ctrl-<c>` for `c` in `a`-`z`, `@`, `[`, `\`, `]`, `^`, `_`.
pub fn parse_detach_keys(spec: &str) -> Result<Vec<u8>, String> {
    let mut keys = Vec::new();
    for key in spec.split(',') {
        let lower = key.to_ascii_lowercase();
        if let Some(c) = lower.strip_prefix("ctrl-") {
            let code = match c.as_bytes() {
                [b @ b'a'..=b'z'] => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(format!("Unknown character: '{c}'")),
            };
            keys.push(code);
        } else if key.len() == 1 {
            keys.push(key.as_bytes()[0]);
        } else {
            return Err(format!("Unknown character: '{key}'"));
        }
    }
    Ok(keys)
}

/// Watches the bytes typed on stdin for the detach sequence. Bytes that might start the
/// sequence are held back; when the sequence breaks they are released in order, so nothing
/// typed is lost (docker's escape proxy, moby/term `NewEscapeProxy`).
#[derive(Debug, Clone)]
pub struct EscapeMatcher {
    keys: Vec<u8>,
    matched: usize,
}

/// What [`EscapeMatcher::feed`] found in a chunk of input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Escape {
    /// Forward these bytes (possibly empty: all held back).
    Forward(Vec<u8>),
    /// The detach sequence was typed; forward these bytes (typed before it) first, then detach.
    Detach(Vec<u8>),
}

impl EscapeMatcher {
    /// A matcher of `keys` (empty: never detaches).
    pub fn new(keys: Vec<u8>) -> Self {
        EscapeMatcher { keys, matched: 0 }
    }

    /// Feeds a chunk of input.
    pub fn feed(&mut self, input: &[u8]) -> Escape {
        if self.keys.is_empty() {
            return Escape::Forward(input.to_vec());
        }
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Escape::Detach(out);
                }
                continue;
            }
            // The sequence broke: release what was held, then see whether this byte starts
            // a new sequence.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return Escape::Detach(out);
                }
            } else {
                out.push(b);
            }
        }
        Escape::Forward(out)
    }

    /// Bytes held back at end of input (released when stdin ends).
    pub fn pending(&self) -> &[u8] {
        &self.keys[..self.matched]
    }
}

/// The local terminal in raw mode, restored on drop and, while it lives, on the signals that
/// would otherwise end `berth` with the terminal left raw (SIGTERM, SIGHUP, SIGINT, SIGQUIT:
/// restore, then exit with 128 + the signal number, as a shell reports a death by signal).
pub struct TerminalGuard {
    saved: Arc<Mutex<Option<nix::sys::termios::Termios>>>,
    watcher: Option<tokio::task::JoinHandle<()>>,
}

fn restore(saved: &Mutex<Option<nix::sys::termios::Termios>>) {
    use nix::sys::termios::{SetArg, tcsetattr};
    if let Ok(mut s) = saved.lock()
        && let Some(t) = s.take()
    {
        let _ = tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &t);
    }
}

impl TerminalGuard {
    /// Puts stdin in raw mode (cfmakeraw(3)) if it is a terminal; None otherwise.
    pub fn raw() -> Option<TerminalGuard> {
        use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};
        use std::io::IsTerminal;
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return None;
        }
        let saved = tcgetattr(stdin.as_fd()).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
        let saved = Arc::new(Mutex::new(Some(saved)));
        let watcher = {
            use tokio::signal::unix::{SignalKind, signal};
            let saved = saved.clone();
            let mut streams = Vec::new();
            for (kind, number) in [
                (SignalKind::terminate(), nix::libc::SIGTERM),
                (SignalKind::hangup(), nix::libc::SIGHUP),
                (SignalKind::interrupt(), nix::libc::SIGINT),
                (SignalKind::quit(), nix::libc::SIGQUIT),
            ] {
                if let Ok(s) = signal(kind) {
                    streams.push((s, number));
                }
            }
            tokio::spawn(async move {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                for (mut s, number) in streams {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        if s.recv().await.is_some() {
                            let _ = tx.send(number);
                        }
                    });
                }
                if let Some(number) = rx.recv().await {
                    restore(&saved);
                    std::process::exit(128 + number);
                }
            })
        };
        Some(TerminalGuard {
            saved,
            watcher: Some(watcher),
        })
    }

    /// Restores the terminal now (idempotent).
    pub fn restore(&self) {
        restore(&self.saved);
    }
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore(&self.saved);
        if let Some(w) = self.watcher.take() {
            w.abort();
        }
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The output stream ended (the process exited, or the daemon closed the connection).
    OutputEnded,
    /// The user typed the detach sequence.
    Detached,
}

/// What a session copies.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// The stream is raw (the remote side has a TTY); else 8-byte frames.
    pub tty: bool,
    /// Copy our stdin to the connection (and close its write side at our EOF).
    pub stdin: bool,
    /// The detach sequence (empty: none).
    pub detach_keys: Vec<u8>,
}

/// A session running in the background: started before the container or exec starts, so
/// that no early output is lost and the terminal is raw from the first byte.
pub struct Session {
    task: tokio::task::JoinHandle<std::io::Result<SessionEnd>>,
    terminal: Option<TerminalGuard>,
}

impl Session {
    /// Starts copying. The terminal goes raw when the remote side has a TTY and our stdin,
    /// a terminal, is attached (docker's hijack `setupInput`).
    pub fn begin(hijacked: Hijacked, o: SessionOptions) -> Session {
        let terminal = if o.tty && o.stdin {
            TerminalGuard::raw()
        } else {
            None
        };
        let task = tokio::spawn(copy_session(hijacked, o));
        Session { task, terminal }
    }

    /// Waits for the end of the session and restores the terminal.
    pub async fn finish(mut self) -> std::io::Result<SessionEnd> {
        let r = (&mut self.task).await;
        if let Some(t) = self.terminal.take() {
            t.restore();
        }
        match r {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e.to_string())),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn copy_session(hijacked: Hijacked, o: SessionOptions) -> std::io::Result<SessionEnd> {
    let (reader, mut writer) = tokio::io::split(hijacked);
    let (detach_tx, detach_rx) = tokio::sync::oneshot::channel::<()>();
    let input = if o.stdin {
        let keys = o.detach_keys.clone();
        Some(tokio::spawn(async move {
            let mut matcher = EscapeMatcher::new(keys);
            let mut stdin = tokio::io::stdin();
            let mut buf = vec![0u8; 4096];
            loop {
                let n = match stdin.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                match matcher.feed(&buf[..n]) {
                    Escape::Forward(bytes) => {
                        if !bytes.is_empty() && writer.write_all(&bytes).await.is_err() {
                            return;
                        }
                        let _ = writer.flush().await;
                    }
                    Escape::Detach(bytes) => {
                        let _ = writer.write_all(&bytes).await;
                        let _ = writer.flush().await;
                        let _ = detach_tx.send(());
                        return;
                    }
                }
            }
            let pending = matcher.pending().to_vec();
            let _ = writer.write_all(&pending).await;
            // End of our stdin: half-close, so the container's stdin sees EOF.
            let _ = writer.shutdown().await;
            // Keep the write half alive (dropping it is harmless: the read half owns the
            // connection too), and never signal a detach.
            std::future::pending::<()>().await;
        }))
    } else {
        drop(writer);
        None
    };
    let output = async {
        let mut stdout = tokio::io::stdout();
        let mut stderr = tokio::io::stderr();
        if o.tty {
            stream::raw_copy(reader, &mut stdout).await
        } else {
            stream::demux_copy(reader, &mut stdout, &mut stderr).await
        }
    };
    let end = tokio::select! {
        r = output => r.map(|_| SessionEnd::OutputEnded),
        Ok(()) = detach_rx => Ok(SessionEnd::Detached),
    };
    if let Some(i) = input {
        i.abort();
    }
    end
}

/// What a terminal size is sent to.
#[derive(Debug, Clone)]
pub enum ResizeTarget {
    /// `POST /containers/{id}/resize`.
    Container(String),
    /// `POST /exec/{id}/resize`.
    Exec(String),
}

async fn resize(c: &Client, target: &ResizeTarget, h: u16, w: u16) -> Result<(), client::Error> {
    match target {
        ResizeTarget::Container(id) => c.container_resize(id, h, w).await,
        ResizeTarget::Exec(id) => c.exec_resize(id, h, w).await,
    }
}

/// Gives the remote TTY the size of ours now (retrying briefly: the process may not be
/// running yet, as docker's `initTtySize` does) and after each SIGWINCH. Returns None when
/// our stdout is not a terminal.
pub fn follow_terminal_size(c: &Client, target: ResizeTarget) -> Option<TaskGuard> {
    crate::system::terminal_size()?;
    let c = c.clone();
    Some(TaskGuard(tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let mut winch = signal(SignalKind::window_change()).ok();
        if let Some((h, w)) = crate::system::terminal_size() {
            for attempt in 0..5u64 {
                if resize(&c, &target, h, w).await.is_ok() {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20 * (attempt + 1))).await;
            }
        }
        loop {
            let Some(s) = winch.as_mut() else { return };
            if s.recv().await.is_none() {
                return;
            }
            if let Some((h, w)) = crate::system::terminal_size() {
                let _ = resize(&c, &target, h, w).await;
            }
        }
    })))
}

/// A background task aborted when dropped.
pub struct TaskGuard(tokio::task::JoinHandle<()>);

impl TaskGuard {
    /// Spawns `f` on the runtime, tied to the guard.
    pub fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(f: F) -> TaskGuard {
        TaskGuard(tokio::spawn(f))
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The signals docker's `ForwardAllSignals` passes on: all catchable ones except SIGCHLD,
/// SIGPIPE and SIGURG (the Go runtime's preemption signal); SIGKILL and SIGSTOP cannot be
/// caught, SIGILL, SIGFPE, SIGSEGV, SIGBUS and SIGTRAP are faults of our own.
const PROXIED_SIGNALS: [(i32, &str); 21] = [
    (nix::libc::SIGHUP, "SIGHUP"),
    (nix::libc::SIGINT, "SIGINT"),
    (nix::libc::SIGQUIT, "SIGQUIT"),
    (nix::libc::SIGABRT, "SIGABRT"),
    (nix::libc::SIGUSR1, "SIGUSR1"),
    (nix::libc::SIGUSR2, "SIGUSR2"),
    (nix::libc::SIGALRM, "SIGALRM"),
    (nix::libc::SIGTERM, "SIGTERM"),
    (nix::libc::SIGSTKFLT, "SIGSTKFLT"),
    (nix::libc::SIGCONT, "SIGCONT"),
    (nix::libc::SIGTSTP, "SIGTSTP"),
    (nix::libc::SIGTTIN, "SIGTTIN"),
    (nix::libc::SIGTTOU, "SIGTTOU"),
    (nix::libc::SIGXCPU, "SIGXCPU"),
    (nix::libc::SIGXFSZ, "SIGXFSZ"),
    (nix::libc::SIGVTALRM, "SIGVTALRM"),
    (nix::libc::SIGPROF, "SIGPROF"),
    (nix::libc::SIGWINCH, "SIGWINCH"),
    (nix::libc::SIGIO, "SIGIO"),
    (nix::libc::SIGPWR, "SIGPWR"),
    (nix::libc::SIGSYS, "SIGSYS"),
];

/// Forwards the signals `berth` receives to the container (docker's `--sig-proxy`, used
/// without a TTY only: with one, ctrl-c travels as a byte).
pub fn proxy_signals(c: &Client, id: &str) -> TaskGuard {
    use tokio::signal::unix::{SignalKind, signal};
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<&'static str>();
    let mut listeners = Vec::new();
    for (number, name) in PROXIED_SIGNALS {
        let Ok(mut s) = signal(SignalKind::from_raw(number)) else {
            continue;
        };
        let tx = tx.clone();
        listeners.push(tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(name).is_err() {
                    break;
                }
            }
        }));
    }
    drop(tx);
    let (c, id) = (c.clone(), id.to_string());
    TaskGuard(tokio::spawn(async move {
        let _listeners: Vec<TaskGuard> = listeners.into_iter().map(TaskGuard).collect();
        while let Some(name) = rx.recv().await {
            let _ = c.container_kill(&id, Some(name)).await;
        }
    }))
}

/// The detach keys of a command: the flag, else docker's default.
pub fn detach_keys_of(flag: Option<&str>) -> Result<(Vec<u8>, Option<String>), Failure> {
    match flag {
        Some(spec) if !spec.is_empty() => {
            let keys = parse_detach_keys(spec).map_err(|e| {
                Failure::new(format!("Invalid detach keys ({spec}) provided: {e}")).with_status(1)
            })?;
            Ok((keys, Some(spec.to_string())))
        }
        _ => Ok((
            parse_detach_keys(DEFAULT_DETACH_KEYS).unwrap_or_default(),
            None,
        )),
    }
}

/// The check docker makes before attaching a terminal's stdin to a TTY (`CheckTty`).
pub fn check_tty(attach_stdin: bool, tty: bool) -> Result<(), Failure> {
    use std::io::IsTerminal;
    if tty && attach_stdin && !std::io::stdin().is_terminal() {
        return Err(Failure::new("the input device is not a TTY"));
    }
    Ok(())
}

/// `attach`.
#[derive(Debug, Clone, Args)]
pub struct AttachArgs {
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Do not attach STDIN
    #[arg(long = "no-stdin")]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long = "sig-proxy", default_value_t = true, num_args = 0..=1, default_missing_value = "true", require_equals = true, action = clap::ArgAction::Set)]
    pub sig_proxy: bool,
    /// Container
    pub container: String,
}

/// `attach`: the container's stdio until it exits (its status) or the user detaches
/// ("read escape sequence", status 1, as docker).
pub async fn attach(c: &Client, a: AttachArgs) -> CmdResult {
    let info = c.container_inspect(&a.container).await?;
    let state = &info["State"];
    if state["Paused"].as_bool() == Some(true) {
        return Err(Failure::new(
            "You cannot attach to a paused container, unpause it first",
        ));
    }
    if state["Restarting"].as_bool() == Some(true) {
        return Err(Failure::new(
            "You cannot attach to a restarting container, wait until it is running",
        ));
    }
    if state["Running"].as_bool() != Some(true) {
        return Err(Failure::new(
            "You cannot attach to a stopped container, start it first",
        ));
    }
    let id = info["Id"].as_str().unwrap_or(&a.container).to_string();
    let tty = info["Config"]["Tty"].as_bool().unwrap_or(false);
    let stdin = !a.no_stdin && info["Config"]["OpenStdin"].as_bool().unwrap_or(false);
    check_tty(stdin, tty)?;
    let (keys, keys_flag) = detach_keys_of(a.detach_keys.as_deref())?;
    let hijacked = c
        .container_attach_with(
            &id,
            &AttachOptions {
                stream: true,
                stdin,
                stdout: true,
                stderr: true,
                logs: false,
                detach_keys: keys_flag,
            },
        )
        .await?;
    let waiter = c.container_wait(&id, None).await?;
    let session = Session::begin(
        hijacked,
        SessionOptions {
            tty,
            stdin,
            detach_keys: keys,
        },
    );
    let _resizer = if tty {
        follow_terminal_size(c, ResizeTarget::Container(id.clone()))
    } else {
        None
    };
    let _signals = (a.sig_proxy && !tty).then(|| proxy_signals(c, &id));
    match session.finish().await {
        // docker's attach reports the detach as its escape error, status 1 (run and start
        // treat it as success).
        Ok(SessionEnd::Detached) => return Err(Failure::new(DETACHED_MESSAGE)),
        Ok(SessionEnd::OutputEnded) => {}
        Err(e) => return Err(Failure::new(e.to_string())),
    }
    let w = waiter.result().await?;
    Ok(w.status_code as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_key_specs() {
        assert_eq!(parse_detach_keys("ctrl-p,ctrl-q").unwrap(), [16, 17]);
        assert_eq!(parse_detach_keys("ctrl-a").unwrap(), [1]);
        assert_eq!(parse_detach_keys("CTRL-Z,x").unwrap(), [26, b'x']);
        assert_eq!(
            parse_detach_keys("ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_").unwrap(),
            [0, 27, 28, 29, 30, 31]
        );
        assert!(parse_detach_keys("ctrl-1").is_err());
        assert!(parse_detach_keys("ab").is_err());
        assert!(parse_detach_keys("").is_err());
    }

    #[test]
    fn escape_sequence_in_one_chunk() {
        let mut m = EscapeMatcher::new(vec![16, 17]);
        assert_eq!(
            m.feed(b"ls\r\x10\x11rest"),
            Escape::Detach(b"ls\r".to_vec())
        );
    }

    #[test]
    fn escape_sequence_across_chunks() {
        let mut m = EscapeMatcher::new(vec![16, 17]);
        assert_eq!(m.feed(b"a\x10"), Escape::Forward(b"a".to_vec()));
        assert_eq!(m.pending(), [16]);
        assert_eq!(m.feed(b"\x11"), Escape::Detach(vec![]));
    }

    #[test]
    fn broken_sequence_releases_held_bytes() {
        let mut m = EscapeMatcher::new(vec![16, 17]);
        assert_eq!(m.feed(b"\x10"), Escape::Forward(vec![]));
        assert_eq!(m.feed(b"x"), Escape::Forward(b"\x10x".to_vec()));
        // A repeated first key: the first is released, the second may still start it.
        assert_eq!(m.feed(b"\x10\x10"), Escape::Forward(b"\x10".to_vec()));
        assert_eq!(m.feed(b"\x11"), Escape::Detach(vec![]));
    }

    #[test]
    fn no_keys_never_detach() {
        let mut m = EscapeMatcher::new(vec![]);
        assert_eq!(m.feed(b"\x10\x11"), Escape::Forward(b"\x10\x11".to_vec()));
    }

    #[test]
    fn single_key_sequence() {
        let mut m = EscapeMatcher::new(vec![b'q']);
        assert_eq!(m.feed(b"abqc"), Escape::Detach(b"ab".to_vec()));
    }
}
