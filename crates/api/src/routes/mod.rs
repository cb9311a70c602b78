//! One file per API resource.

pub mod archive;
pub mod attach;
pub mod containers;
pub mod exec;
pub mod images;
pub mod networks;
pub mod ops;
pub mod system;
pub mod volumes;
