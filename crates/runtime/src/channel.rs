//! The setup protocol between the runtime process and the processes it forks (the intermediate
//! and the container's init, or an exec'd process), as typed messages over a `SOCK_SEQPACKET`
//! socket pair. Each end has methods named after the protocol steps, so the order of a
//! conversation reads in the code that drives it.
//!
//! Conversation of `create` (child = intermediate, then init; both hold the child end):
//! 1. intermediate (already in the container's cgroup, see create.rs):
//!    [`ChildEnd::request_id_mapping`] when it made a new user namespace; the runtime writes the
//!    id maps and answers [`ParentEnd::id_mapping_done`];
//! 2. intermediate: [`ChildEnd::report_pid`] with the pid of the forked init, then exits;
//! 3. init: [`ChildEnd::request_runtime_hooks`] when the spec has prestart/createRuntime hooks;
//!    the runtime runs them and answers [`ParentEnd::runtime_hooks_done`];
//! 4. init: [`ChildEnd::ready`] once the container is set up and waits on the exec fifo.
//!
//! A failure on the child side is sent as [`ChildMessage::Failed`]. The child end is close-on-exec,
//! so for an exec'd process the runtime reads end-of-file when `execve` succeeded.

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::socket::{self, AddressFamily, MsgFlags, SockFlag, SockType};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result, sys};

/// Largest message; they are small JSON documents.
const MAX_MESSAGE: usize = 64 * 1024;

/// What the forked side tells the runtime.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum ChildMessage {
    /// A new user namespace exists: write its uid/gid maps.
    IdMappingRequest,
    /// The process that will become the container's init (or the exec'd process) has this pid,
    /// as seen from the runtime's pid namespace.
    Pid(i32),
    /// The rootfs is mounted, not yet pivoted: run prestart and createRuntime hooks.
    RuntimeHooksRequest,
    /// Set up and waiting on the exec fifo.
    Ready,
    /// A step failed; the message is the error, one line.
    Failed(String),
}

/// What the runtime answers.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum ParentMessage {
    /// The id maps are written.
    IdMappingDone,
    /// The runtime hooks ran successfully.
    RuntimeHooksDone,
}

/// The runtime's end.
#[derive(Debug)]
pub struct ParentEnd(OwnedFd);

/// The forked processes' end.
#[derive(Debug)]
pub struct ChildEnd(OwnedFd);

/// Makes a connected pair; both ends are close-on-exec.
pub fn pair() -> Result<(ParentEnd, ChildEnd)> {
    let (parent, child) = socket::socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(sys("socketpair"))?;
    Ok((ParentEnd(parent), ChildEnd(child)))
}

fn send<T: Serialize>(fd: &OwnedFd, message: &T) -> Result<()> {
    let bytes = serde_json::to_vec(message).map_err(|e| Error::Child(e.to_string()))?;
    socket::send(fd.as_raw_fd(), &bytes, MsgFlags::MSG_NOSIGNAL)
        .map_err(sys("send on the setup channel"))?;
    Ok(())
}

/// Receives one message; `None` at end of file (the other side closed or exec'd).
fn receive<T: for<'de> Deserialize<'de>>(fd: &OwnedFd) -> Result<Option<T>> {
    let mut buffer = vec![0u8; MAX_MESSAGE];
    let length = loop {
        match socket::recv(fd.as_raw_fd(), &mut buffer, MsgFlags::empty()) {
            Err(nix::errno::Errno::EINTR) => continue,
            other => break other.map_err(sys("receive on the setup channel"))?,
        }
    };
    if length == 0 {
        return Ok(None);
    }
    serde_json::from_slice(&buffer[..length])
        .map(Some)
        .map_err(|e| Error::Child(format!("bad message on the setup channel: {e}")))
}

impl ParentEnd {
    /// Next message from the child side. A `Failed` message becomes the error; end of file
    /// becomes `Ok(None)`.
    pub fn next(&self) -> Result<Option<ChildMessage>> {
        match receive(&self.0)? {
            Some(ChildMessage::Failed(message)) => Err(Error::Child(message)),
            other => Ok(other),
        }
    }

    /// Like [`Self::next`] but end of file is an error naming the step that was expected.
    pub fn expect_next(&self, expected: &str) -> Result<ChildMessage> {
        self.next()?.ok_or_else(|| {
            Error::Child(format!(
                "container process exited before it reported {expected}"
            ))
        })
    }

    /// Answers an [`ChildMessage::IdMappingRequest`].
    pub fn id_mapping_done(&self) -> Result<()> {
        send(&self.0, &ParentMessage::IdMappingDone)
    }

    /// Answers a [`ChildMessage::RuntimeHooksRequest`].
    pub fn runtime_hooks_done(&self) -> Result<()> {
        send(&self.0, &ParentMessage::RuntimeHooksDone)
    }

    /// Raw descriptor, for poll.
    pub fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl ChildEnd {
    fn expect_answer(&self, expected: ParentMessage) -> Result<()> {
        match receive::<ParentMessage>(&self.0)? {
            Some(answer) if answer == expected => Ok(()),
            Some(other) => Err(Error::Child(format!(
                "expected {expected:?}, got {other:?}"
            ))),
            None => Err(Error::Child("the runtime went away during setup".into())),
        }
    }

    /// Step 1: asks for the id maps of the new user namespace and waits until they are written.
    pub fn request_id_mapping(&self) -> Result<()> {
        send(&self.0, &ChildMessage::IdMappingRequest)?;
        self.expect_answer(ParentMessage::IdMappingDone)
    }

    /// Step 2: reports the pid of the container process.
    pub fn report_pid(&self, pid: i32) -> Result<()> {
        send(&self.0, &ChildMessage::Pid(pid))
    }

    /// Step 3: asks the runtime to run the prestart and createRuntime hooks, and waits.
    pub fn request_runtime_hooks(&self) -> Result<()> {
        send(&self.0, &ChildMessage::RuntimeHooksRequest)?;
        self.expect_answer(ParentMessage::RuntimeHooksDone)
    }

    /// Step 4: the container is set up.
    pub fn ready(&self) -> Result<()> {
        send(&self.0, &ChildMessage::Ready)
    }

    /// Reports a failure; errors sending it are ignored (the runtime then sees end of file).
    pub fn failed(&self, error: &Error) {
        let _ = send(&self.0, &ChildMessage::Failed(error.to_string()));
    }

    /// Raw descriptor (kept open across setup, closed at exec).
    pub fn as_raw_fd(&self) -> i32 {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_conversation_round_trips() {
        let (parent, child) = pair().unwrap();
        let worker = std::thread::spawn(move || {
            child.request_id_mapping().unwrap();
            child.report_pid(42).unwrap();
            child.failed(&Error::InvalidArgument("boom".into()));
        });
        assert_eq!(
            parent.expect_next("mapping").unwrap(),
            ChildMessage::IdMappingRequest
        );
        parent.id_mapping_done().unwrap();
        assert_eq!(parent.expect_next("pid").unwrap(), ChildMessage::Pid(42));
        let error = parent.next().unwrap_err();
        assert_eq!(error.to_string(), "boom");
        worker.join().unwrap();
        assert!(
            parent.next().unwrap().is_none(),
            "end of file after the child is gone"
        );
    }
}
