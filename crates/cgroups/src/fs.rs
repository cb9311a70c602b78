//! Small helpers over cgroupfs files that attach the path to every error.
//!
//! Writes open the existing file with `O_WRONLY|O_TRUNC` and never create it: a cgroup file that
//! is absent means the controller or feature is absent, and creating a regular file in its place
//! (possible only in the fake trees of the unit tests) would hide that.

use std::io::{ErrorKind as IoKind, Write};
use std::path::Path;

use crate::error::{Error, Result};

/// Writes `value` to the existing file `path` in one write(2), as cgroupfs expects.
pub(crate) fn write(path: &Path, value: &str) -> Result<()> {
    #[cfg(test)]
    WRITES.with(|w| w.borrow_mut().push((path.to_path_buf(), value.to_string())));
    let op = || format!("write {value:?} to");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(|e| Error::io(op(), path, e))?;
    file.write_all(value.as_bytes())
        .map_err(|e| Error::io(op(), path, e))
}

#[cfg(test)]
thread_local! {
    /// Every write of this thread, in order, so unit tests can check sequences that a file
    /// (which keeps only the last value) cannot show.
    pub(crate) static WRITES: std::cell::RefCell<Vec<(std::path::PathBuf, String)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Reads a whole file as text.
pub(crate) fn read(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))
}

/// Reads a file, `None` when it does not exist.
pub(crate) fn read_opt(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Reads a file holding one unsigned number; `max` reads as `None`, a missing file as `None`.
pub(crate) fn read_u64(path: &Path) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.trim().parse().ok()
}

/// Parses `key value` lines (memory.stat, cpu.stat...) into pairs; bad lines are skipped.
pub(crate) fn parse_flat_keyed(text: &str) -> Vec<(String, u64)> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            let key = parts.next()?;
            let value = parts.next()?.parse().ok()?;
            Some((key.to_string(), value))
        })
        .collect()
}

/// True when `path` exists (any file type).
pub(crate) fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_does_not_create_files() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("memory.max");
        let err = write(&missing, "5").unwrap_err();
        assert_eq!(err.kind(), types::ErrorKind::NotFound);
        assert!(!missing.exists());
        std::fs::write(&missing, "max\n").unwrap();
        write(&missing, "5").unwrap();
        assert_eq!(std::fs::read_to_string(&missing).unwrap(), "5");
    }

    #[test]
    fn flat_keyed() {
        let pairs = parse_flat_keyed("usage_usec 10\nuser_usec 4\nbad\n");
        assert_eq!(
            pairs,
            vec![("usage_usec".into(), 10), ("user_usec".into(), 4)]
        );
    }
}
