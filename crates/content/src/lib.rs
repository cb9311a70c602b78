//! Content of images on local disk: a content-addressed blob store with digest-verified
//! writes, layer application (tar + gzip/zstd, whiteouts, containment beneath the target),
//! layer diffs of overlay upper directories, and snapshots (overlayfs, with a copy fallback)
//! that are described as mounts for the caller to perform.
//!
//! Everything here is synchronous file system work: async callers use `spawn_blocking`.

mod apply;
mod beneath;
mod blob_store;
mod chain_id;
mod changes;
mod compression;
mod copy;
mod diff;
mod error;
mod hash;
mod path_archive;
mod snapshot;
mod whiteout;

pub use apply::{
    ApplyOptions, ApplyStats, WhiteoutMode, apply_layer, apply_layer_atomic, apply_layer_with,
    build_dir_atomic,
};
pub use blob_store::{BlobStore, Ingester, Manager, Provider, ingest_bytes, read_blob};
pub use chain_id::{chain_id, chain_ids, next_chain_id};
pub use changes::{Change, ChangeKind, overlay_changes, tree_changes};
pub use compression::{Compression, decompress, detect};
pub use copy::{copy_tree, tree_size};
pub use diff::{diff_overlay_upper, diff_trees};
pub use error::{ContentError, Result};
pub use hash::{HashingReader, HashingWriter, sha256_digest};
pub use path_archive::{ContainerRoot, PathStat, go_file_mode};
pub use snapshot::{Mount, SnapshotDriver, SnapshotStore};
pub use whiteout::{OPAQUE_MARKER, OVERLAY_OPAQUE_XATTR, WHITEOUT_META_PREFIX, WHITEOUT_PREFIX};
