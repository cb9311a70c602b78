//! Shared models of Berth, at the bottom of the crate graph: no I/O here.

mod digest;
mod error_kind;
mod human;
pub mod mountinfo;
mod reference;

pub use digest::{Algorithm, Digest, DigestError};
pub use error_kind::ErrorKind;
pub use human::human_duration;
pub use reference::{
    DEFAULT_DOMAIN, DEFAULT_TAG, LEGACY_DEFAULT_DOMAIN, NAME_TOTAL_LENGTH_MAX,
    OFFICIAL_REPO_PREFIX, Reference, ReferenceError,
};

/// Docker Engine API models (request and response bodies), from bollard-stubs.
pub use bollard_stubs::models;
