//! OCI runtime library: turns an OCI bundle (config.json + rootfs) into an isolated, limited
//! process, following the OCI runtime specification (runtime.md, config.md, config-linux.md).
//!
//! Process model (one file per step):
//! - the *runtime* process (the CLI, or the shim) parses the spec, creates the cgroup and the
//!   state directory, and forks the *intermediate* process;
//! - the intermediate joins namespaces given by path, creates the new ones (user first, so the
//!   runtime can write its id maps) and forks the *init* process, which is pid 1 of a new pid
//!   namespace;
//! - the runtime moves the init into the cgroup while the init starts building its rootfs; the
//!   init waits for that before its cgroup namespace and cgroup mounts;
//! - init builds the rootfs, pivots into it, applies the process settings and waits on the
//!   `exec.fifo` until `start` opens it, then execs the user's program.
//!
//! The two sides talk through [`channel`] with one message type per protocol step.

pub mod bundle;
pub mod capabilities;
pub mod channel;
pub mod console;
pub mod container;
mod create;
mod delete;
pub mod error;
mod exec;
pub mod hooks;
mod init;
mod kill;
pub mod namespaces;
mod pause;
pub mod process;
pub mod reap;
pub mod rlimits;
pub mod rootfs;
mod run;
pub mod sealed_exe;
pub mod seccomp;
mod spawn;
mod start;
pub mod state;
#[cfg(test)]
mod test_support;

pub use container::{CgroupPathStyle, ContainerStatus, Runtime};
pub use create::CreateOptions;
pub use error::{Error, Result};
pub use exec::{ExecFlags, ExecOptions};
pub use kill::parse_signal;
pub use state::Status;
