//! Volumes and the mounts of containers.
//!
//! - [`VolumeStore`]: every volume (records, references by containers, create/remove/prune,
//!   list filters, usage), dispatching to the [`local`] driver or to a plugin speaking
//!   Docker's volume plugin protocol ([`plugin`]).
//! - [`spec`]: what a container asks to mount (`-v`/Binds, `--mount`/Mounts,
//!   `--volumes-from`, `--tmpfs`, `Config.Volumes`), parsed and checked as dockerd does.
//! - [`MountPoint`]: a container's mount as its record keeps it, inspect shows it, and the
//!   runtime performs it ([`ContainerMount`], data for the engine to put in the OCI spec).
//! - [`propagation`] and [`subpath`]: the checks made when a container starts.
//!
//! The engine owns the flow: it resolves requests into mount points at create, mounts volumes
//! and builds the spec's mounts at start, unmounts at exit, releases at removal.

pub mod error;
pub mod filters;
pub mod local;
pub mod mountinfo;
pub mod mountpoint;
pub mod name;
pub mod options;
pub mod plugin;
pub mod propagation;
pub mod spec;
mod store;
pub mod subpath;

pub use error::{Error, Result};
pub use filters::Filters;
pub use mountpoint::{ContainerMount, MountKind, MountPoint, sort_by_depth};
pub use plugin::PluginConfig;
pub use spec::MountRequest;
pub use store::{
    ANONYMOUS_LABEL, CreateRequest, LOCAL_DRIVER, UsageData, VolumeRecord, VolumeStore, VolumeView,
};
