//! Whiteout names and overlayfs markers.
//!
//! In a layer tar (OCI image spec, layer.md "Whiteouts"): a file `.wh.<name>` says `<name>`
//! was deleted; `.wh..wh..opq` says its directory is opaque (nothing of the lower layers shows
//! through). On an overlayfs upper or lower directory (kernel
//! Documentation/filesystems/overlayfs.rst): a whiteout is a character device with device
//! number 0/0, and an opaque directory carries the xattr `trusted.overlay.opaque` = `y`.

/// Prefix of a whiteout entry's name in a layer tar.
pub const WHITEOUT_PREFIX: &str = ".wh.";
/// Prefix of whiteout metadata names (aufs bookkeeping, and the opaque marker).
pub const WHITEOUT_META_PREFIX: &str = ".wh..wh.";
/// Name of the opaque-directory marker in a layer tar.
pub const OPAQUE_MARKER: &str = ".wh..wh..opq";
/// The overlayfs xattr marking a directory opaque.
pub const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";
