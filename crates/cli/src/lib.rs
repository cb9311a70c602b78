//! `berth`: a Docker-compatible command line over the `client` crate.
//!
//! The output formats (tables, durations, sizes, `--format` templates, inspect JSON) follow
//! the docker CLI closely because scripts parse them. The pure pieces are public for tests:
//! [`template`], [`tabwriter`], [`units`], [`format`].

pub mod app;
pub mod attach;
mod container;
pub mod cp;
pub mod disk;
pub mod exec;
pub mod format;
mod image;
pub mod mounts;
mod netopts;
mod network;
pub mod ops;
pub mod options;
mod run;
pub mod stats;
mod system;
pub mod tabwriter;
pub mod template;
pub mod tls;
pub mod units;
mod volume;

pub use app::main;
