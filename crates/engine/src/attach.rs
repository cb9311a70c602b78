//! Attaching to a container's stdio through its shim: the session of `POST
//! /containers/{id}/attach`, detach keys, and tty resize.
//!
//! Lifecycle of a session:
//! 1. [`Engine::attach`] checks the container and either connects to its shim's `attach`
//!    operation at once (running or paused container) or registers a *pending* session (created,
//!    exited or restarting container: `docker run` and `docker start -a` attach before they
//!    start). The API answers the hijack only after this call returned, so a start that follows
//!    sees the pending session.
//! 2. The next start launches the shim with `--hold` (runtime `create` only), connects every
//!    pending session, and only then lets the process run: no early output is lost.
//! 3. [`AttachSession::connect`] yields the shim connection; [`ShimStream::pump`] copies the
//!    client's input to it (watching for the detach keys) and its output (already framed by the
//!    shim without a tty, raw with one) to the client, until the output ends (the process
//!    exited and the shim drained it), the client leaves, or the client types the detach keys.
//!    Detaching ends the session only; the container runs on.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{oneshot, watch};

use crate::error::{Error, Result};
use crate::record::Status;
use crate::shim_client;
use crate::{Engine, StatusChange};

/// Docker's default detach sequence: ctrl-p ctrl-q.
pub const DEFAULT_DETACH_KEYS: [u8; 2] = [0x10, 0x11];

/// A detach key sequence, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachKeys(Vec<u8>);

impl Default for DetachKeys {
    fn default() -> Self {
        Self(DEFAULT_DETACH_KEYS.to_vec())
    }
}

impl DetachKeys {
    /// Parses Docker's notation (moby's `term.ToBytes`): keys separated by commas, each a single
    /// character or `ctrl-X` where X is one of `@`, `a`..`z`, `[`, `\`, `]`, `^`, `_` (control
    /// codes 0..=31). Example: `"ctrl-a,x"` is `[0x01, b'x']`.
    pub fn parse(text: &str) -> Result<Self> {
        let invalid = || Error::invalid(format!("Invalid detach keys ({text}) provided"));
        let mut bytes = Vec::new();
        for key in text.split(',') {
            if key.len() == 1 {
                bytes.push(key.as_bytes()[0]);
                continue;
            }
            let rest = key
                .get(..5)
                .filter(|prefix| prefix.eq_ignore_ascii_case("ctrl-"))
                .map(|_| &key[5..])
                .ok_or_else(invalid)?;
            let code = match rest.as_bytes() {
                [b'@'] => 0,
                [c @ b'a'..=b'z'] | [c @ b'A'..=b'Z'] => c.to_ascii_lowercase() - b'a' + 1,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(invalid()),
            };
            bytes.push(code);
        }
        Ok(Self(bytes))
    }

    /// The keys of a request: its own, else the default (an empty value means the default too).
    pub fn from_request(text: Option<&str>) -> Result<Self> {
        match text.filter(|t| !t.is_empty()) {
            Some(text) => Self::parse(text),
            None => Ok(Self::default()),
        }
    }

    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Finds the detach sequence in a stream of input, as Docker's escape proxy does: bytes that
/// may start the sequence are held back until it is clear whether they do; a mismatch releases
/// them, a full match ends the input (the sequence itself is never forwarded).
#[derive(Debug)]
pub struct DetachScanner {
    keys: Vec<u8>,
    matched: usize,
}

impl DetachScanner {
    pub fn new(keys: &DetachKeys) -> Self {
        Self {
            keys: keys.0.clone(),
            matched: 0,
        }
    }

    /// Appends the bytes of `input` to forward to `forward`; returns true when the sequence is
    /// complete (the rest of `input` is dropped).
    pub fn feed(&mut self, input: &[u8], forward: &mut Vec<u8>) -> bool {
        if self.keys.is_empty() {
            forward.extend_from_slice(input);
            return false;
        }
        for &byte in input {
            if byte == self.keys[self.matched] {
                self.matched += 1;
            } else {
                forward.extend_from_slice(&self.keys[..self.matched]);
                self.matched = 0;
                if byte == self.keys[0] {
                    self.matched = 1;
                } else {
                    forward.push(byte);
                }
            }
            if self.matched == self.keys.len() {
                return true;
            }
        }
        false
    }
}

/// What a client asks for when it attaches.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub detach_keys: DetachKeys,
}

/// A session waiting for its container's start.
pub(crate) struct PendingAttach {
    stdin: bool,
    stdout: bool,
    stderr: bool,
    sender: oneshot::Sender<Result<UnixStream>>,
}

impl PendingAttach {
    /// Connects this session to the shim of `state_dir` (held before its start) and hands the
    /// connection to the waiting client.
    pub(crate) async fn connect(self, state_dir: &std::path::Path) {
        if self.sender.is_closed() {
            return;
        }
        let stream = shim_client::attach(state_dir, self.stdin, self.stdout, self.stderr).await;
        let _ = self.sender.send(stream);
    }
}

/// Pending sessions by container id.
#[derive(Default)]
pub(crate) struct PendingAttaches(std::sync::Mutex<HashMap<String, Vec<PendingAttach>>>);

impl PendingAttaches {
    fn add(&self, id: &str, pending: PendingAttach) {
        let mut table = self.0.lock().expect("attach table");
        let list = table.entry(id.to_string()).or_default();
        list.retain(|p| !p.sender.is_closed());
        list.push(pending);
    }

    /// Whether a client attached to the container waits for its next start.
    pub(crate) fn has_waiting(&self, id: &str) -> bool {
        let table = self.0.lock().expect("attach table");
        table
            .get(id)
            .is_some_and(|list| list.iter().any(|p| !p.sender.is_closed()))
    }

    /// Takes the sessions of a container whose client still waits.
    pub(crate) fn take(&self, id: &str) -> Vec<PendingAttach> {
        let mut table = self.0.lock().expect("attach table");
        let mut list = table.remove(id).unwrap_or_default();
        list.retain(|p| !p.sender.is_closed());
        list
    }
}

enum Connection {
    Ready(UnixStream),
    Pending {
        receiver: oneshot::Receiver<Result<UnixStream>>,
        status: watch::Receiver<StatusChange>,
    },
}

/// A client's attach session, connected or waiting for the container's start.
pub struct AttachSession {
    /// Whether the container has a tty: the output is then raw, else Docker's multiplexed frames.
    pub tty: bool,
    stdin: bool,
    detach_keys: DetachKeys,
    connection: Connection,
}

impl AttachSession {
    /// Waits until the session is connected to the shim (at the container's next start when it
    /// does not run). Fails when the container is removed or its start fails.
    pub async fn connect(self) -> Result<ShimStream> {
        let stream = match self.connection {
            Connection::Ready(stream) => stream,
            Connection::Pending {
                receiver,
                mut status,
            } => {
                let removed = async {
                    loop {
                        if status.borrow_and_update().removed || status.changed().await.is_err() {
                            return;
                        }
                    }
                };
                tokio::select! {
                    stream = receiver => stream.map_err(|_| Error::conflict("the container did not start"))??,
                    () = removed => return Err(Error::conflict("the container was removed")),
                }
            }
        };
        Ok(ShimStream {
            stream,
            stdin: self.stdin,
            detach_keys: self.detach_keys,
        })
    }
}

/// How a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// The process's output ended: it exited and the shim sent everything.
    OutputEnded,
    /// The client typed the detach keys.
    Detached,
    /// The client went away (a write to it failed).
    ClientGone,
}

/// A connection to a shim's `attach` operation, with the session's input settings.
pub struct ShimStream {
    stream: UnixStream,
    stdin: bool,
    detach_keys: DetachKeys,
}

impl ShimStream {
    pub(crate) fn new(stream: UnixStream, stdin: bool, detach_keys: DetachKeys) -> Self {
        Self {
            stream,
            stdin,
            detach_keys,
        }
    }

    /// The raw connection (output only: for clients that did not upgrade their connection).
    pub fn into_inner(self) -> UnixStream {
        self.stream
    }

    /// Copies both ways between `client` and the shim until the session ends. The client's
    /// end of input (a half-close, as the docker CLI does after its stdin's end) is passed on
    /// as a half-close to the shim, which closes the process's stdin for `StdinOnce`.
    pub async fn pump<C>(self, client: C) -> SessionEnd
    where
        C: AsyncRead + AsyncWrite + Unpin,
    {
        self.pump_then(client, std::future::ready(())).await
    }

    /// [`ShimStream::pump`], with `before_close` awaited between the end of the output and the
    /// close of the client's connection (an exec records its exit code there: the docker CLI
    /// inspects the exec as soon as its stream ends).
    pub async fn pump_then<C, F>(self, client: C, before_close: F) -> SessionEnd
    where
        C: AsyncRead + AsyncWrite + Unpin,
        F: std::future::Future<Output = ()>,
    {
        let (mut client_read, mut client_write) = tokio::io::split(client);
        let (mut shim_read, mut shim_write) = self.stream.into_split();
        let stdin = self.stdin;
        let mut scanner = DetachScanner::new(&self.detach_keys);
        let output = async {
            let mut buffer = vec![0u8; 32 * 1024];
            loop {
                match shim_read.read(&mut buffer).await {
                    Ok(0) | Err(_) => {
                        let _ = client_write.flush().await;
                        before_close.await;
                        let _ = client_write.shutdown().await;
                        return SessionEnd::OutputEnded;
                    }
                    Ok(n) => {
                        if client_write.write_all(&buffer[..n]).await.is_err()
                            || client_write.flush().await.is_err()
                        {
                            return SessionEnd::ClientGone;
                        }
                    }
                }
            }
        };
        let input = async {
            let mut buffer = vec![0u8; 8 * 1024];
            let mut forward = Vec::with_capacity(8 * 1024);
            loop {
                match client_read.read(&mut buffer).await {
                    Ok(0) | Err(_) => {
                        let _ = shim_write.shutdown().await;
                        return None;
                    }
                    Ok(n) => {
                        if !stdin {
                            continue;
                        }
                        forward.clear();
                        let detached = scanner.feed(&buffer[..n], &mut forward);
                        if !forward.is_empty() && shim_write.write_all(&forward).await.is_err() {
                            return None;
                        }
                        if detached {
                            return Some(SessionEnd::Detached);
                        }
                    }
                }
            }
        };
        tokio::pin!(output, input);
        tokio::select! {
            end = &mut output => end,
            detached = &mut input => match detached {
                Some(end) => end,
                None => output.await,
            },
        }
    }
}

impl Engine {
    /// `POST /containers/{id}/attach?stream=1`: connects to a running container's shim now, or
    /// registers a session that its next start connects.
    pub async fn attach(&self, name_or_id: &str, options: AttachOptions) -> Result<AttachSession> {
        let entry = self.find(name_or_id)?;
        let record = entry.record.lock().await;
        let tty = record.config.tty.unwrap_or(false);
        // As dockerd: stdin is only attached when the container keeps one open.
        let stdin = options.stdin && record.config.open_stdin.unwrap_or(false);
        let connection = match record.state.status {
            Status::Running | Status::Paused => Connection::Ready(
                shim_client::attach(
                    &self.shim_dir(&record.id),
                    stdin,
                    options.stdout,
                    options.stderr,
                )
                .await?,
            ),
            Status::Removing | Status::Dead => {
                return Err(Error::conflict(format!(
                    "container {} is marked for removal",
                    record.id
                )));
            }
            Status::Created | Status::Exited | Status::Restarting => {
                let (sender, receiver) = oneshot::channel();
                self.attaches.add(
                    &record.id,
                    PendingAttach {
                        stdin,
                        stdout: options.stdout,
                        stderr: options.stderr,
                        sender,
                    },
                );
                Connection::Pending {
                    receiver,
                    status: entry.status.subscribe(),
                }
            }
        };
        Ok(AttachSession {
            tty,
            stdin,
            detach_keys: options.detach_keys,
            connection,
        })
    }

    /// `POST /containers/{id}/resize?h=&w=`: the size of the container's pty.
    pub async fn resize(&self, name_or_id: &str, height: u16, width: u16) -> Result<()> {
        let entry = self.find(name_or_id)?;
        let record = entry.record.lock().await;
        if !record.state.status.is_running() {
            return Err(Error::conflict(format!(
                "container {} is not running",
                record.id
            )));
        }
        if !record.config.tty.unwrap_or(false) {
            return Err(not_a_tty("container", &record.id));
        }
        shim_client::resize(&self.shim_dir(&record.id), height, width).await
    }

    /// Connects the pending sessions of a container that was just created in its shim (held
    /// before its start), and sets the pty's first size.
    pub(crate) async fn connect_pending(
        self: &Arc<Self>,
        pending: Vec<PendingAttach>,
        state_dir: &std::path::Path,
        console_size: Option<(u16, u16)>,
    ) {
        for session in pending {
            session.connect(state_dir).await;
        }
        if let Some((height, width)) = console_size {
            let _ = shim_client::resize(state_dir, height, width).await;
        }
    }
}

/// The answer to a resize of a process without a pty.
pub(crate) fn not_a_tty(what: &str, id: &str) -> Error {
    Error::invalid(format!(
        "cannot resize {what} {id}: it was not created with a TTY"
    ))
}

/// Docker's `ConsoleSize` ([height, width]) as a pty size, if set and not zero.
pub(crate) fn console_size<T: Copy + TryInto<u16>>(size: Option<&[T]>) -> Option<(u16, u16)> {
    match size? {
        [height, width] => {
            let height: u16 = (*height).try_into().ok()?;
            let width: u16 = (*width).try_into().ok()?;
            (height > 0 && width > 0).then_some((height, width))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockers_detach_notation() {
        let cases: [(&str, Option<Vec<u8>>); 8] = [
            ("ctrl-p,ctrl-q", Some(vec![0x10, 0x11])),
            ("ctrl-a,x", Some(vec![0x01, b'x'])),
            (
                "ctrl-@,ctrl-[,ctrl-\\,ctrl-],ctrl-^,ctrl-_",
                Some(vec![0, 27, 28, 29, 30, 31]),
            ),
            ("a", Some(vec![b'a'])),
            ("ctrl-", None),
            ("ctrl-ab", None),
            ("shift-a", None),
            ("", None),
        ];
        for (text, expected) in cases {
            let parsed = DetachKeys::parse(text).ok().map(|k| k.0);
            assert_eq!(parsed, expected, "{text:?}");
        }
        assert_eq!(DetachKeys::from_request(None).unwrap().0, vec![0x10, 0x11]);
        assert_eq!(
            DetachKeys::from_request(Some("")).unwrap().0,
            vec![0x10, 0x11]
        );
        let error = DetachKeys::parse("ctrl-1").unwrap_err();
        assert_eq!(error.kind, types::ErrorKind::InvalidArgument);
        assert_eq!(error.message, "Invalid detach keys (ctrl-1) provided");
    }

    #[test]
    fn scanner_holds_back_a_prefix_and_detaches_on_the_sequence() {
        let keys = DetachKeys::default();
        let mut scanner = DetachScanner::new(&keys);
        let mut out = Vec::new();
        assert!(!scanner.feed(b"ab\x10", &mut out));
        assert_eq!(out, b"ab"); // ctrl-p held back
        out.clear();
        assert!(!scanner.feed(b"c", &mut out));
        assert_eq!(out, b"\x10c"); // released on a mismatch
        out.clear();
        assert!(!scanner.feed(b"\x10", &mut out));
        assert!(scanner.feed(b"\x11rest", &mut out));
        assert!(out.is_empty()); // across reads, never forwarded
        // A repeated first key: the first one is released, the second may start the sequence.
        let mut scanner = DetachScanner::new(&keys);
        let mut out = Vec::new();
        assert!(scanner.feed(b"\x10\x10\x11", &mut out));
        assert_eq!(out, b"\x10");
        // One-key sequences and no sequence.
        let mut scanner = DetachScanner::new(&DetachKeys::parse("x").unwrap());
        let mut out = Vec::new();
        assert!(scanner.feed(b"abxz", &mut out));
        assert_eq!(out, b"ab");
        let mut scanner = DetachScanner::new(&DetachKeys(Vec::new()));
        let mut out = Vec::new();
        assert!(!scanner.feed(b"\x10\x11", &mut out));
        assert_eq!(out, b"\x10\x11");
    }

    #[test]
    fn console_sizes() {
        assert_eq!(console_size(Some(&[24usize, 80][..])), Some((24, 80)));
        assert_eq!(console_size(Some(&[0i64, 0][..])), None);
        assert_eq!(console_size::<usize>(Some(&[24][..])), None);
        assert_eq!(console_size::<usize>(None), None);
        assert_eq!(console_size(Some(&[70000i64, 80][..])), None);
    }

    #[tokio::test]
    async fn pump_forwards_both_ways_and_detaches() {
        let (shim_side, engine_side) = UnixStream::pair().unwrap();
        let (client, mut user) = tokio::io::duplex(1024);
        let stream = ShimStream::new(engine_side, true, DetachKeys::default());
        let session = tokio::spawn(stream.pump(client));
        let (mut shim_read, mut shim_write) = shim_side.into_split();
        user.write_all(b"echo hi\n").await.unwrap();
        let mut line = [0u8; 8];
        shim_read.read_exact(&mut line).await.unwrap();
        assert_eq!(&line, b"echo hi\n");
        shim_write.write_all(b"hi\r\n").await.unwrap();
        let mut echoed = [0u8; 4];
        user.read_exact(&mut echoed).await.unwrap();
        assert_eq!(&echoed, b"hi\r\n");
        user.write_all(b"\x10\x11").await.unwrap();
        assert_eq!(session.await.unwrap(), SessionEnd::Detached);
        // The shim sees its client gone, without the keys.
        let mut rest = Vec::new();
        shim_read.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn pump_passes_end_of_input_and_ends_with_the_output() {
        let (shim_side, engine_side) = UnixStream::pair().unwrap();
        let (client, mut user) = tokio::io::duplex(1024);
        let stream = ShimStream::new(engine_side, true, DetachKeys::default());
        let session = tokio::spawn(stream.pump(client));
        let (mut shim_read, mut shim_write) = shim_side.into_split();
        user.write_all(b"data").await.unwrap();
        user.shutdown().await.unwrap();
        let mut input = Vec::new();
        shim_read.read_to_end(&mut input).await.unwrap();
        assert_eq!(input, b"data"); // then the half-close
        shim_write
            .write_all(b"\x01\0\0\0\0\0\0\x04data")
            .await
            .unwrap();
        drop(shim_write);
        assert_eq!(session.await.unwrap(), SessionEnd::OutputEnded);
        let mut output = Vec::new();
        user.read_to_end(&mut output).await.unwrap();
        assert_eq!(output, b"\x01\0\0\0\0\0\0\x04data");
    }
}
