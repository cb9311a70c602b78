//! Shared models of Berth, at the bottom of the crate graph: no I/O here.

mod error_kind;

pub use error_kind::ErrorKind;
