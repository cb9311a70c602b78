//! `berth-shim`: the per-container monitor (engine.md, "The shim").
//!
//! One shim process per container. It is the parent (a child subreaper) of the container's
//! init, holds the container's stdio and writes it to a json-file log, records the exit status
//! in `exit.json`, and answers a small JSON protocol on `shim.sock`, including attach sessions
//! that carry the container's stdio (interactive.md). It runs in its own session, so a restart
//! of the engine that started it kills nothing. It has no threads and no async runtime: one
//! poll(2) loop, small buffers, to stay near 1 MiB of memory. `berth-shim exec` is the same
//! monitor for one process exec'd in a running container.
//!
//! Crate map:
//! - [`options`]: the command lines of `berth-shim start` and `berth-shim exec`;
//! - [`start`]: the foreground/daemon split and the container's setup;
//! - [`exec`]: the setup of a shim for one process exec'd in a running container;
//! - [`backend`]: the built-in runtime library or an external runc-like binary;
//! - [`monitor`]: the poll loop, reaping, attach sessions, the socket protocol's server side;
//! - [`log`]: the json-file format;
//! - [`memory`]: giving back what setup touched;
//! - [`protocol`]: the files and socket protocol, with the client side for the engine.

pub mod backend;
pub mod error;
pub mod exec;
pub mod log;
pub mod memory;
pub mod monitor;
pub mod options;
pub mod protocol;
pub mod start;

pub use error::{Error, Result};
pub use options::{ExecOptions, StartOptions};
pub use protocol::{ExitRecord, Request, ShimState, ShimStatus, StateDir};
