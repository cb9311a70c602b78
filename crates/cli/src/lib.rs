//! `berth`: a Docker-compatible command line over the `client` crate.
//!
//! The output formats (tables, durations, sizes, `--format` templates, inspect JSON) follow
//! the docker CLI closely because scripts parse them. The pure pieces are public for tests:
//! [`template`], [`tabwriter`], [`units`], [`format`].

pub mod app;
mod container;
pub mod format;
mod image;
pub mod options;
mod run;
mod system;
pub mod tabwriter;
pub mod template;
pub mod units;

pub use app::main;
