//! `pause` and `resume`: freeze and thaw every process of the container through its cgroup.

use crate::container::Runtime;
use crate::error::{Error, Result};
use crate::state::Status;

impl Runtime {
    /// `pause`: only a running container can be paused.
    pub fn pause(&self, id: &str) -> Result<()> {
        let record = self.root.load(id)?;
        let status = self.status(&record);
        if status != Status::Running {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is {status}, not running"
            )));
        }
        Ok(self.cgroup_of(&record)?.freeze()?)
    }

    /// `resume`: only a paused container can be resumed.
    pub fn resume(&self, id: &str) -> Result<()> {
        let record = self.root.load(id)?;
        let status = self.status(&record);
        if status != Status::Paused {
            return Err(Error::FailedPrecondition(format!(
                "container {id} is {status}, not paused"
            )));
        }
        Ok(self.cgroup_of(&record)?.thaw()?)
    }
}
