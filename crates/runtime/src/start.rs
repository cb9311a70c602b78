//! `start`: releases a created container's init by opening the read end of its exec fifo.

use std::os::fd::AsFd;
use std::time::Duration;

use nix::fcntl::{OFlag, open};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::stat::Mode;

use crate::container::Runtime;
use crate::error::{Error, Result, sys};
use crate::hooks::{self, HookPoint};
use crate::state::{ContainerRecord, Status};

impl Runtime {
    /// `start`: the created container runs its program. Poststart hooks run afterwards.
    pub fn start(&self, id: &str) -> Result<ContainerRecord> {
        let record = self.root.load(id)?;
        let status = self.status(&record);
        if status != Status::Created {
            return Err(Error::FailedPrecondition(format!(
                "cannot start a container that is {status}"
            )));
        }
        let fifo_path = self.root.exec_fifo(id);
        // Non-blocking, so a dead init cannot hang us: poll for the byte while it lives.
        let fifo = open(
            &fifo_path,
            OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(sys("open exec fifo"))?;
        loop {
            let mut fds = [PollFd::new(fifo.as_fd(), PollFlags::POLLIN)];
            let ready = poll(&mut fds, PollTimeout::from(100u16)).map_err(sys("poll exec fifo"))?;
            if ready > 0 {
                let mut byte = [0u8; 1];
                match nix::unistd::read(&fifo, &mut byte) {
                    Ok(1) => break,
                    Ok(_) | Err(nix::errno::Errno::EAGAIN) => {}
                    Err(errno) => return Err(Error::sys("read exec fifo", errno)),
                }
            }
            if !crate::state::is_alive(&record) {
                let _ = std::fs::remove_file(&fifo_path);
                return Err(Error::FailedPrecondition(
                    "the container's init process exited before start".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        std::fs::remove_file(&fifo_path).map_err(sys("remove exec fifo"))?;
        let poststart = hooks::of(&record.spec, HookPoint::Poststart);
        if !poststart.is_empty() {
            // Poststart hooks run after the user's program is executed (config.md): the init
            // wrote the fifo byte just before its execve, so wait until its image changed.
            wait_for_exec(record.pid);
            let state = self.hook_state(&record, Status::Running);
            hooks::run_logging_failures(&poststart, HookPoint::Poststart, &state);
        }
        Ok(record)
    }
}

/// Waits (briefly) until the process no longer runs the runtime's own (sealed) image.
fn wait_for_exec(pid: i32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while std::time::Instant::now() < deadline {
        match std::fs::read_link(format!("/proc/{pid}/exe")) {
            Ok(exe) if exe.to_string_lossy().starts_with("/memfd:berth-runtime") => {}
            _ => return,
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}
