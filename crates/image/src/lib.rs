//! Image records and workflows over the `content` crate: `docker import` of a root file
//! system tar, `docker save` / `docker load` archives, tags and references, resolving names
//! and id prefixes, inspect/list/history in the Engine API's shapes, removal and pruning
//! with Docker's conflict rules, and the writable root file systems of containers (returned
//! as mounts for the caller to perform), `docker commit` of a container's changes and its
//! `docker diff`.
//!
//! Everything is synchronous file system work: async callers use `spawn_blocking`.
//!
//! ```no_run
//! # fn f() -> image::Result<()> {
//! let store = image::ImageStore::open("/var/lib/berth/image")?;
//! let tar = std::fs::File::open("rootfs.tar").unwrap();
//! let name = types::Reference::parse_normalized("myimage:1")?;
//! let id = store.import(tar, Some(&name), &["CMD [\"sh\"]".to_owned()], None)?;
//! let mounts = store.prepare_rootfs("container1", &id)?; // perform them, run, unmount
//! store.remove_rootfs("container1")?;
//! # Ok(()) }
//! ```

mod archive;
mod changes;
mod commit;
mod config;
mod error;
mod id;
mod query;
mod record;
mod store;

pub use archive::LoadedImage;
pub use changes::apply_changes;
pub use commit::{CommitRequest, empty_layer_diff_id};
pub use config::{ContainerConfig, History, ImageConfigFile, RootFs};
pub use content::{Change, ChangeKind, Mount, SnapshotDriver};
pub use error::{Error, Result};
pub use id::ImageId;
pub use query::{ListOptions, glob_match};
pub use record::{ImageRecord, LayerRecord};
pub use store::{Image, ImageStore, ImageUse, PruneReport, RemoveAction, host_architecture};
