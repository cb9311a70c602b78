//! Terminal support: the pty of a container with `process.terminal: true`, handed to the
//! caller over runc's `--console-socket` protocol.
//!
//! Protocol (as runc defines it and containerd/podman implement it): the caller listens on an
//! `AF_UNIX` `SOCK_STREAM` socket; the runtime connects, sends one message whose payload is the
//! pty's name and whose `SCM_RIGHTS` control message carries the pty master, and closes. The
//! caller then owns the master and relays it.
//!
//! Order in the container's init process:
//! 1. [`connect_console_socket`] before `pivot_root`, while the host path is reachable;
//! 2. [`open_pty`] after the pivot, so the pty comes from the container's own devpts
//!    (`/dev/ptmx`) and its slave is visible inside the container;
//! 3. [`send_master`], then close the master (the container must not keep it);
//! 4. `setsid()`, then [`attach_stdio`].

use std::io::{IoSlice, IoSliceMut};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd};
use std::path::Path;

use nix::fcntl::{OFlag, open};
use nix::sys::socket::{
    AddressFamily, ControlMessage, ControlMessageOwned, MsgFlags, SockFlag, SockType, UnixAddr,
    accept4, connect, recvmsg, sendmsg, socket,
};
use nix::sys::stat::Mode;

use crate::error::sys;
use crate::{Error, Result};

/// Connects to the console socket at `path` (`--console-socket`). The socket is close-on-exec,
/// so the container's program never inherits it.
pub fn connect_console_socket(path: &Path) -> Result<OwnedFd> {
    let what = || format!("connect to console socket {}", path.display());
    let address = UnixAddr::new(path).map_err(sys(what()))?;
    let socket = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(sys("create console socket"))?;
    connect(socket.as_raw_fd(), &address).map_err(sys(what()))?;
    Ok(socket)
}

/// Opens a new pty pair through `/dev/ptmx` and returns `(master, slave)`, both close-on-exec;
/// the slave is opened with `O_NOCTTY` (it becomes the controlling terminal only in
/// [`attach_stdio`]).
///
/// The slave is opened with `TIOCGPTPEER` (Linux 4.13), which reaches the slave through the
/// master's own devpts instance instead of a path: a path under `/dev/pts` could be a different
/// mount, or be replaced, inside a container (the reason the ioctl was added). Kernels without
/// it fall back to `/dev/pts/<n>`.
pub fn open_pty() -> Result<(OwnedFd, OwnedFd)> {
    let flags = OFlag::O_RDWR | OFlag::O_NOCTTY | OFlag::O_CLOEXEC;
    let master = open("/dev/ptmx", flags, Mode::empty()).map_err(sys("open /dev/ptmx"))?;

    // unlockpt(3): clear the lock the kernel puts on every new slave.
    let unlock: libc::c_int = 0;
    // SAFETY: TIOCSPTLCK reads one c_int from the valid pointer we pass.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSPTLCK, &unlock) };
    if rc != 0 {
        return Err(Error::sys("unlock pty", std::io::Error::last_os_error()));
    }

    let peer_flags = (libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC) as libc::c_ulong;
    // SAFETY: TIOCGPTPEER takes open flags as an integer and returns a new fd or -1.
    let fd = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTPEER, peer_flags) };
    let slave = if fd >= 0 {
        // SAFETY: the kernel just returned this new descriptor; nothing else owns it.
        unsafe { OwnedFd::from_raw_fd(fd) }
    } else {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINVAL) && err.raw_os_error() != Some(libc::ENOTTY) {
            return Err(Error::sys("open pty slave", err));
        }
        let path = format!("/dev/pts/{}", pty_number(master.as_fd())?);
        open(path.as_str(), flags, Mode::empty()).map_err(sys(format!("open {path}")))?
    };
    Ok((master, slave))
}

/// Sends `master` over the connected console `socket` with `SCM_RIGHTS`; the payload is the
/// pty's slave name (`/dev/pts/<n>`).
pub fn send_master(socket: BorrowedFd<'_>, master: BorrowedFd<'_>) -> Result<()> {
    let name = format!("/dev/pts/{}", pty_number(master)?);
    let fds = [master.as_raw_fd()];
    let control = [ControlMessage::ScmRights(&fds)];
    let payload = [IoSlice::new(name.as_bytes())];
    // MSG_NOSIGNAL: a caller that went away must be an EPIPE error, not a SIGPIPE death.
    let sent = sendmsg::<UnixAddr>(
        socket.as_raw_fd(),
        &payload,
        &control,
        MsgFlags::MSG_NOSIGNAL,
        None,
    )
    .map_err(sys("send pty master to console socket"))?;
    if sent != name.len() {
        return Err(Error::sys(
            "send pty master to console socket",
            std::io::Error::new(std::io::ErrorKind::WriteZero, "short write"),
        ));
    }
    Ok(())
}

/// Makes `slave` the controlling terminal of the calling session leader (`TIOCSCTTY`; the
/// caller did `setsid()`) and makes it stdin, stdout and stderr.
pub fn attach_stdio(slave: OwnedFd) -> Result<()> {
    // SAFETY: TIOCSCTTY takes an integer argument (0: do not steal a terminal that is another
    // session's).
    let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCSCTTY, 0 as libc::c_int) };
    if rc != 0 {
        return Err(Error::sys(
            "set controlling terminal",
            std::io::Error::last_os_error(),
        ));
    }
    let raw = slave.as_raw_fd();
    for target in 0..=2 {
        if raw == target {
            // dup2 onto itself would keep close-on-exec set: clear it instead.
            nix::fcntl::fcntl(
                &slave,
                nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
            )
            .map_err(sys("clear close-on-exec on the terminal"))?;
            continue;
        }
        // SAFETY: dup2 of a valid descriptor onto 0, 1 or 2; the replaced standard descriptor is
        // not owned by any Rust object of ours (only by the process), so no double close.
        if unsafe { libc::dup2(raw, target) } < 0 {
            return Err(Error::sys(
                format!("dup terminal to fd {target}"),
                std::io::Error::last_os_error(),
            ));
        }
    }
    if raw <= 2 {
        // It is now one of the standard descriptors: leave it open.
        let _ = slave.into_raw_fd();
    }
    Ok(())
}

/// Receiving side of the protocol (tests, engines embedding the runtime): accepts one connection
/// on `listener` and returns the pty master it carries (close-on-exec).
pub fn receive_master(listener: BorrowedFd<'_>) -> Result<OwnedFd> {
    let raw = accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC)
        .map_err(sys("accept on console socket"))?;
    // SAFETY: accept4 just returned this new descriptor; nothing else owns it.
    let connection = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut name = [0u8; 4096];
    let mut payload = [IoSliceMut::new(&mut name)];
    let mut control = nix::cmsg_space!([std::os::fd::RawFd; 1]);
    let message = recvmsg::<UnixAddr>(
        connection.as_raw_fd(),
        &mut payload,
        Some(&mut control),
        MsgFlags::MSG_CMSG_CLOEXEC,
    )
    .map_err(sys("receive from console socket"))?;
    let mut received = Vec::new();
    for cmsg in message
        .cmsgs()
        .map_err(sys("read console socket control message"))?
    {
        if let ControlMessageOwned::ScmRights(fds) = cmsg {
            received.extend(fds);
        }
    }
    // SAFETY: each descriptor came with the message and is ours to own (and close).
    let mut owned = received
        .into_iter()
        .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    let master = owned.next().ok_or_else(|| {
        Error::sys(
            "receive from console socket",
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "message carries no descriptor",
            ),
        )
    })?;
    // Extra descriptors (none in the protocol) are closed when `owned` drops.
    Ok(master)
}

/// Sets the window size of a pty (`TIOCSWINSZ`, tty_ioctl(4)); `process.consoleSize` and resize
/// requests.
pub fn set_window_size(pty: BorrowedFd<'_>, rows: u16, cols: u16) -> Result<()> {
    let size = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the valid pointer we pass.
    let rc = unsafe { libc::ioctl(pty.as_raw_fd(), libc::TIOCSWINSZ, &size) };
    if rc != 0 {
        return Err(Error::sys(
            "set terminal size",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Number of the pty whose master is `master` (`TIOCGPTN`): its slave is `/dev/pts/<n>`.
fn pty_number(master: BorrowedFd<'_>) -> Result<u32> {
    let mut number: libc::c_uint = 0;
    // SAFETY: TIOCGPTN writes one c_uint into the valid pointer we pass.
    let rc = unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGPTN, &mut number) };
    if rc != 0 {
        return Err(Error::sys(
            "get pty number",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(number)
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use nix::sys::termios::{SetArg, cfmakeraw, tcgetattr, tcsetattr};

    use super::*;

    fn write_all(fd: BorrowedFd<'_>, data: &[u8]) {
        let mut done = 0;
        while done < data.len() {
            done += nix::unistd::write(fd, &data[done..]).expect("write");
        }
    }

    /// Reads until `want` bytes arrived (a pty may split them).
    fn read_exact(fd: BorrowedFd<'_>, want: usize) -> Vec<u8> {
        let mut out = Vec::new();
        let mut buf = [0u8; 256];
        while out.len() < want {
            let n = nix::unistd::read(fd, &mut buf).expect("read");
            assert!(n > 0, "eof after {out:?}");
            out.extend_from_slice(&buf[..n]);
        }
        out
    }

    /// Raw mode, so the line discipline neither echoes nor turns "\n" into "\r\n".
    fn make_raw(fd: BorrowedFd<'_>) {
        let mut attrs = tcgetattr(fd).unwrap();
        cfmakeraw(&mut attrs);
        tcsetattr(fd, SetArg::TCSANOW, &attrs).unwrap();
    }

    #[test]
    fn pty_pair_carries_data_both_ways() {
        let (master, slave) = open_pty().unwrap();
        make_raw(slave.as_fd());
        write_all(slave.as_fd(), b"from slave");
        assert_eq!(read_exact(master.as_fd(), 10), b"from slave");
        write_all(master.as_fd(), b"from master");
        assert_eq!(read_exact(slave.as_fd(), 11), b"from master");
    }

    #[test]
    fn window_size_is_set() {
        let (master, slave) = open_pty().unwrap();
        set_window_size(master.as_fd(), 40, 132).unwrap();
        let mut size = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes one winsize into the valid pointer we pass.
        let rc = unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut size) };
        assert_eq!(rc, 0);
        assert_eq!((size.ws_row, size.ws_col), (40, 132));
    }

    #[test]
    fn console_socket_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();

        let socket = connect_console_socket(&path).unwrap();
        let (master, slave) = open_pty().unwrap();
        make_raw(slave.as_fd());
        send_master(socket.as_fd(), master.as_fd()).unwrap();
        // The runtime closes its copies once sent.
        drop(master);
        drop(socket);

        let received = receive_master(listener.as_fd()).unwrap();
        write_all(slave.as_fd(), b"hello");
        assert_eq!(read_exact(received.as_fd(), 5), b"hello");
        write_all(received.as_fd(), b"typed");
        assert_eq!(read_exact(slave.as_fd(), 5), b"typed");
    }

    #[test]
    fn missing_console_socket_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = connect_console_socket(&dir.path().join("absent")).unwrap_err();
        assert!(err.to_string().contains("console socket"), "{err}");
    }

    #[test]
    fn attach_stdio_makes_the_pty_the_controlling_terminal() {
        use nix::sys::wait::{WaitStatus, waitpid};
        use nix::unistd::{ForkResult, fork, setsid};

        let (master, slave) = open_pty().unwrap();
        make_raw(slave.as_fd());
        // SAFETY: the child only makes syscalls on its own descriptors and `_exit`s; it never
        // returns into the multi-threaded test harness.
        let child = match unsafe { fork() }.unwrap() {
            ForkResult::Child => {
                drop(master);
                let code = (|| {
                    setsid().ok()?;
                    attach_stdio(slave).ok()?;
                    // SAFETY: isatty on a descriptor number.
                    if unsafe { libc::isatty(1) } != 1 {
                        return None;
                    }
                    // SAFETY: as above.
                    let stdout = unsafe { BorrowedFd::borrow_raw(1) };
                    nix::unistd::write(stdout, b"on tty").ok()?;
                    Some(0)
                })()
                .unwrap_or(1);
                // SAFETY: ends the child without running the harness' atexit handlers.
                unsafe { libc::_exit(code) }
            }
            ForkResult::Parent { child } => child,
        };
        drop(slave);
        assert_eq!(read_exact(master.as_fd(), 6), b"on tty");
        assert_eq!(waitpid(child, None).unwrap(), WaitStatus::Exited(child, 0));
    }
}
