//! `kill`: sends a signal to the container's init, or with `all` to every process of its cgroup.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::container::Runtime;
use crate::error::{Error, Result, sys};
use crate::state::Status;

/// Parses "TERM", "SIGTERM", "sigterm" or "15".
pub fn parse_signal(text: &str) -> Result<Signal> {
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number)
            .map_err(|_| Error::InvalidArgument(format!("unknown signal {text:?}")));
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    name.parse::<Signal>()
        .map_err(|_| Error::InvalidArgument(format!("unknown signal {text:?}")))
}

impl Runtime {
    /// `kill`: a stopped container cannot be signalled.
    pub fn kill(&self, id: &str, signal: Signal, all: bool) -> Result<()> {
        let record = self.root.load(id)?;
        if self.status(&record) == Status::Stopped {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is not running"
            )));
        }
        if all {
            return Ok(self.cgroup_of(&record)?.kill_all(signal as i32)?);
        }
        kill(Pid::from_raw(record.pid), signal).map_err(sys(format!("kill {}", record.pid)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_parse_in_every_spelling() {
        for text in ["TERM", "SIGTERM", "sigterm", "15"] {
            assert_eq!(parse_signal(text).unwrap(), Signal::SIGTERM);
        }
        assert_eq!(parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("999").is_err());
    }
}
