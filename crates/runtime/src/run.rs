//! `run`: create + start, then (unless detached) wait for the container's end and delete it.

use crate::container::Runtime;
use crate::create::CreateOptions;
use crate::error::Result;
use crate::reap;

impl Runtime {
    /// `run`: returns the container's exit code (0 when detached).
    pub fn run(&self, options: &CreateOptions, detach: bool) -> Result<i32> {
        let record = self.create(options)?;
        if let Err(error) = self.start(&options.id) {
            let _ = self.delete(&options.id, true);
            return Err(error);
        }
        if detach {
            return Ok(0);
        }
        let signals = reap::block_signals()?;
        let code = reap::wait_forwarding(record.pid, &signals);
        let deleted = self.delete(&options.id, true);
        let code = code?;
        deleted?;
        Ok(code)
    }
}
