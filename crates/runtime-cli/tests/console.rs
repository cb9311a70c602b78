//! `--console-socket`: with process.terminal true the runtime sends the pty
//! master over a unix socket as SCM_RIGHTS (runc's docs/terminals.md
//! describes the protocol); we drive a shell through it.
//! Needs root; see tests/common/mod.rs.

mod common;

use std::fs::File;
use std::io::{IoSliceMut, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, UnixAddr, recvmsg};
use serde_json::json;

/// Accepts one connection on `listener` within `timeout`, failing early
/// when the runtime exits first.
fn accept_within(
    listener: &UnixListener,
    timeout: Duration,
    runtime: &mut std::process::Child,
    runtime_err: &dyn Fn() -> String,
) -> UnixStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return stream;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(
                    Instant::now() < deadline,
                    "nobody connected to the console socket: {}",
                    runtime_err()
                );
                if let Some(status) = runtime.try_wait().unwrap() {
                    panic!(
                        "runtime exited ({status}) before connecting: {}",
                        runtime_err()
                    );
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// Receives one file descriptor sent as SCM_RIGHTS (unix(7)).
fn receive_fd(stream: &UnixStream) -> OwnedFd {
    let mut data = [0u8; 4096];
    let mut iov = [IoSliceMut::new(&mut data)];
    let mut space = nix::cmsg_space!([RawFd; 1]);
    let msg = recvmsg::<UnixAddr>(
        stream.as_raw_fd(),
        &mut iov,
        Some(&mut space),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .expect("recvmsg on the console socket");
    for cmsg in msg.cmsgs().expect("control messages") {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            let fd = *fds.first().expect("one fd");
            // SAFETY: the kernel just installed `fd` in our table for this
            // message (SCM_RIGHTS); nothing else owns it.
            return unsafe { OwnedFd::from_raw_fd(fd) };
        }
    }
    panic!("no SCM_RIGHTS in the console socket message");
}

/// Reads from the pty master until the slave side is closed (EIO) or EOF.
fn read_until_hangup(master: &mut File, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    let mut output = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        let mut fds = [PollFd::new(
            std::os::fd::AsFd::as_fd(master),
            PollFlags::POLLIN,
        )];
        let ready = poll(&mut fds, PollTimeout::from(100u16)).expect("poll");
        if ready == 0 {
            continue;
        }
        match master.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => output.extend_from_slice(&buf[..n]),
            Err(_) => break, // EIO: every slave fd is closed
        }
    }
    String::from_utf8_lossy(&output).into_owned()
}

/// create --console-socket + start: the test receives the pty master,
/// types into the shell and reads its output; the shell's exit code is
/// collected by making this test process a child subreaper (prctl(2)), as
/// podman's conmon does, since runc only accepts a console socket when it
/// detaches (create, run --detach).
#[test]
fn console_socket_gets_the_pty_master() {
    // SAFETY: PR_SET_CHILD_SUBREAPER takes an integer flag and changes only
    // how this process adopts orphans; this test binary has no other test.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(rc, 0, "prctl(PR_SET_CHILD_SUBREAPER)");

    let mut c = Container::new("console", &["sh"]);
    c.config["process"]["terminal"] = json!(true);
    c.config["process"]["consoleSize"] = json!({ "height": 25, "width": 80 });
    c.write_config();
    let socket = c.dir().join("console.sock");
    let listener = UnixListener::bind(&socket).unwrap();

    let bundle = c.bundle();
    let err_path = c.dir().join("runtime.err");
    let mut create = Command::new(runtime_path())
        .arg("--root")
        .arg(c.state_root())
        .args(["create", "--bundle", path_str(&bundle)])
        .arg("--console-socket")
        .arg(&socket)
        .arg(&c.id)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(File::create(&err_path).unwrap())
        .spawn()
        .unwrap();
    let runtime_err = || std::fs::read_to_string(&err_path).unwrap_or_default();

    let stream = accept_within(
        &listener,
        Duration::from_secs(30),
        &mut create,
        &runtime_err,
    );
    let mut master = File::from(receive_fd(&stream));
    assert!(
        nix::unistd::isatty(&master).unwrap(),
        "received fd is not a tty"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let created = loop {
        if let Some(status) = create.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "create did not return");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(created.success(), "create failed: {}", runtime_err());
    assert_eq!(c.status(), "created");
    let pid = c.pid();

    c.start().ok();
    master.write_all(b"echo hi; tty; exit 3\n").unwrap();
    let output = read_until_hangup(&mut master, Duration::from_secs(30));
    let lines: Vec<&str> = output.lines().map(|l| l.trim_end_matches('\r')).collect();
    assert!(lines.contains(&"hi"), "no 'hi' in {output:?}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("/dev/pts/") || *l == "/dev/console"),
        "stdin is not a terminal inside: {output:?}"
    );

    // The init was re-parented to us when create exited: reap it.
    let status = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(pid), None)
        .expect("waitpid on the container init");
    assert_eq!(
        status,
        nix::sys::wait::WaitStatus::Exited(nix::unistd::Pid::from_raw(pid), 3),
        "exit status of the shell"
    );
    c.wait_status("stopped", Duration::from_secs(10));
    c.rt(&["delete", &c.id]).ok();
    assert_nothing_left(&c);
}
