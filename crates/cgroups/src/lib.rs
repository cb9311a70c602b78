//! cgroups: cgroup v1, v2 and hybrid hierarchies: detect the host layout, create a cgroup at a
//! relative path in every hierarchy, write OCI resource limits, freeze, kill, read stats,
//! destroy. Knows nothing of containers.
//!
//! Map: `hierarchy` reads mountinfo ([`Hierarchies`], [`Layout`]); `cgroup` is the lifecycle
//! ([`Cgroup`]); one file per OCI resource section (`memory`, `cpu`, `pids`, `blkio`,
//! `hugetlb`, `network`, `devices`, `unified`) with `apply` calling them in order; [`bpf`] is
//! the cgroup v2 device filter; `freezer` has freeze/thaw/kill; `stats` and `features` read.
//!
//! Each controller is served from the v1 hierarchy that binds it, else from cgroup2 when it
//! is enabled there (so a hybrid host's hugetlb goes to `/sys/fs/cgroup/unified`).
//!
//! ```no_run
//! # fn main() -> Result<(), cgroups::Error> {
//! let hierarchies = cgroups::Hierarchies::detect()?;
//! let cgroup = cgroups::Cgroup::new(&hierarchies, "/berth/abc")?;
//! cgroup.create()?;
//! cgroup.add_process(std::process::id() as i32)?;
//! # Ok(()) }
//! ```

mod apply;
mod blkio;
pub mod bpf;
mod cgroup;
mod cpu;
mod devices;
mod error;
mod features;
mod freezer;
mod fs;
mod hierarchy;
mod hugetlb;
mod memory;
mod network;
mod pids;
mod stats;
#[cfg(test)]
mod testing;
mod unified;

pub use blkio::blkio_weight_to_io_weight;
pub use cgroup::Cgroup;
pub use cpu::shares_to_weight;
pub use error::{Error, Result};
pub use features::HostFeatures;
pub use hierarchy::{Hierarchies, Layout, V1Hierarchy};
pub use stats::{
    BlkioEntry, BlkioStats, CpuStats, HugetlbStats, MemoryStats, PidsStats, Stats, ThrottlingStats,
};
