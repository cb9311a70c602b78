//! The docker CLI under a real pseudo-terminal, and the websocket framing of the attach
//! endpoint: shared by the interactive and TLS tests.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Daemon, docker_cli, wait_until};

/// The docker CLI running on the slave side of a pty, as in a terminal: its own session with
/// the pty as controlling terminal, so it gets SIGWINCH when the window size changes.
pub struct Terminal {
    what: String,
    master: std::fs::File,
    child: Child,
    output: Arc<Mutex<Vec<u8>>>,
}

pub fn winsize(rows: u16, cols: u16) -> nix::pty::Winsize {
    nix::pty::Winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

impl Terminal {
    /// The docker CLI with `args` against `daemon`'s unix socket, in a `rows` x `cols` pty.
    pub fn spawn(daemon: &Daemon, args: &[&str], rows: u16, cols: u16) -> Terminal {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        Self::start(daemon, &args, rows, cols, Some(daemon.host()))
    }

    /// The docker CLI with `args` (which name the host, e.g. `-H tcp://... --tlsverify ...`)
    /// in a `rows` x `cols` pty.
    pub fn spawn_with_flags(daemon: &Daemon, args: &[String], rows: u16, cols: u16) -> Terminal {
        Self::start(daemon, args, rows, cols, None)
    }

    fn start(
        daemon: &Daemon,
        args: &[String],
        rows: u16,
        cols: u16,
        host: Option<String>,
    ) -> Terminal {
        let pty = nix::pty::openpty(Some(&winsize(rows, cols)), None).expect("openpty");
        let slave: OwnedFd = pty.slave;
        let mut command = Command::new(docker_cli());
        match host {
            Some(host) => command.env("DOCKER_HOST", host),
            None => command.env_remove("DOCKER_HOST"),
        };
        command
            .env("DOCKER_CONFIG", daemon.dir.path().join("docker-config"))
            .env("TERM", "xterm")
            .args(args)
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave));
        // SAFETY: between fork and exec only async-signal-safe calls (setsid, ioctl).
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::ioctl(0, libc::TIOCSCTTY as _, 0) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("spawn docker in a pty");
        // The parent's copies of the slave are gone with `command`.
        drop(command);
        let master = std::fs::File::from(pty.master);
        let output = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("dup master");
        let sink = output.clone();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // EIO once every holder of the slave has gone.
            while let Ok(n) = reader.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buffer[..n]);
            }
        });
        Terminal {
            what: format!("docker {}", args.join(" ")),
            master,
            child,
            output,
        }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.output.lock().unwrap()).into_owned()
    }

    /// The output after `mark`.
    pub fn since(&self, mark: usize) -> String {
        let output = self.output.lock().unwrap();
        String::from_utf8_lossy(&output[mark.min(output.len())..]).into_owned()
    }

    /// Where the output is now, for a later [`Terminal::expect`].
    pub fn mark(&self) -> usize {
        self.output.lock().unwrap().len()
    }

    /// Waits until the output after `mark` contains `needle`.
    #[track_caller]
    pub fn expect(&self, mark: usize, needle: &str) {
        let found = wait_until(Duration::from_secs(20), || {
            let output = self.output.lock().unwrap();
            String::from_utf8_lossy(&output[mark.min(output.len())..]).contains(needle)
        });
        assert!(
            found,
            "{}: {needle:?} not seen; output: {:?}",
            self.what,
            self.text()
        );
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.master.write_all(bytes).expect("write to the pty");
    }

    /// Types a line and waits for `needle` in what follows.
    #[track_caller]
    pub fn run(&mut self, line: &str, needle: &str) {
        let mark = self.mark();
        self.send(format!("{line}\r").as_bytes());
        self.expect(mark, needle);
    }

    /// Changes the window size: TIOCSWINSZ on the master makes the kernel signal SIGWINCH to
    /// the terminal's foreground process group (tty_ioctl(4)), which is the CLI.
    pub fn resize(&self, rows: u16, cols: u16) {
        let size = winsize(rows, cols);
        // SAFETY: TIOCSWINSZ with a valid winsize on our pty master.
        let rc = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &size) };
        assert_eq!(rc, 0, "TIOCSWINSZ");
    }

    /// The CLI's exit code, once it has exited.
    #[track_caller]
    pub fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status.code().unwrap_or(-1);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("{} did not exit; output: {:?}", self.what, self.text());
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads one websocket frame (RFC 6455 section 5.2) from the server: (opcode, payload).
pub fn read_ws_frame(stream: &mut impl Read) -> (u8, Vec<u8>) {
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).expect("frame head");
    let mut length = (head[1] & 0x7f) as u64;
    if length == 126 {
        let mut extended = [0u8; 2];
        stream.read_exact(&mut extended).unwrap();
        length = u16::from_be_bytes(extended) as u64;
    } else if length == 127 {
        let mut extended = [0u8; 8];
        stream.read_exact(&mut extended).unwrap();
        length = u64::from_be_bytes(extended);
    }
    let mut payload = vec![0u8; length as usize];
    stream.read_exact(&mut payload).unwrap();
    (head[0] & 0x0f, payload)
}

/// Opens `/containers/{container}/attach/ws` on `stream` (the opening handshake of RFC 6455
/// section 4.1; the key is any 16 bytes in base64), sends `payload` in one masked binary frame
/// (section 5.3) and asserts that the container (a `cat`) sends it back raw, in binary frames,
/// without Docker's multiplexing header.
pub fn websocket_echo(stream: &mut (impl Read + Write), container: &str, payload: &[u8]) {
    let request = format!(
        "GET /v1.47/containers/{container}/attach/ws?stream=1&stdin=1&stdout=1&stderr=1 HTTP/1.1\r\n\
        Host: docker\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).expect("handshake answer");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let mask = [0x12u8, 0x34, 0x56, 0x78];
    let mut frame = vec![0x82, 0x80 | payload.len() as u8];
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    stream.write_all(&frame).unwrap();
    let mut received = Vec::new();
    while received.len() < payload.len() {
        let (opcode, data) = read_ws_frame(stream);
        assert_eq!(opcode, 2, "binary frames");
        received.extend_from_slice(&data);
    }
    assert_eq!(received, payload);
}
