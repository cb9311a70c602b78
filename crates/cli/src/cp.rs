//! `cp`: copy files between a container and the local filesystem through the archive API,
//! with docker's path rules (moby `pkg/archive/copy.go` and the CLI's `cp.go`, as behaviour):
//!
//! - `SRC` a directory, `DEST` missing: `DEST` is created with the directory's content;
//!   `DEST` an existing directory: the source directory is copied *into* it, unless `SRC`
//!   ends in `/.`, which copies its content.
//! - `SRC` a file: `DEST` an existing directory receives it under its own name; otherwise
//!   `DEST` names the file (a `DEST` ending in `/` must then exist: "no such directory").
//! - A directory never replaces a file ("cannot copy directory").
//! - `-L` follows a symlink in `SRC`; `-` is a tar stream on stdin (to a container
//!   directory) or stdout (from a container).
//!
//! The tar the daemon gets or sends names entries after the source's base name; the client
//! renames that first component when the destination's name differs ("rebasing").

use std::io::{IsTerminal, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use clap::Args;
use client::Client;

use crate::app::{CmdResult, Failure};

/// `cp`.
#[derive(Debug, Clone, Args)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy. Progress output is automatically suppressed if
    /// no terminal is attached
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Source: CONTAINER:SRC_PATH, a local path, or - (a tar on stdin)
    #[arg(allow_hyphen_values = true)]
    pub src: String,
    /// Destination: CONTAINER:DEST_PATH, a local path, or - (a tar on stdout)
    #[arg(allow_hyphen_values = true)]
    pub dest: String,
}

/// Splits a `cp` argument into container and path (docker's `splitCpArg`): an absolute
/// path, a path without `:`, or one whose part before `:` starts with `.` is local.
pub fn split_cp_arg(arg: &str) -> (Option<&str>, &str) {
    if arg.starts_with('/') {
        return (None, arg);
    }
    match arg.split_once(':') {
        Some((container, path)) if !container.starts_with('.') => (Some(container), path),
        _ => (None, arg),
    }
}

/// Go's `filepath.Clean`: lexical normalisation (no `.`, no `x/..`, no double or trailing
/// slashes; "." for an empty result).
pub fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".into(),
        (false, false) => joined,
    }
}

/// Go's `filepath.Base`: the last element ("." for empty, "/" for all slashes).
pub fn base(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Go's `filepath.Dir`: all but the last element, cleaned.
pub fn dir(path: &str) -> String {
    match path.rfind('/') {
        Some(i) => clean(&path[..=i]),
        None => ".".into(),
    }
}

/// Does the path end with a separator?
pub fn has_trailing_separator(path: &str) -> bool {
    path.ends_with('/')
}

/// Does the path name the current directory of its parent (`dir/.`)?
pub fn specifies_current_dir(path: &str) -> bool {
    base(path) == "."
}

/// Does the path say it must be a directory (`dir/` or `dir/.`)?
pub fn asserts_directory(path: &str) -> bool {
    has_trailing_separator(path) || specifies_current_dir(path)
}

/// Splits a path into parent and entry, keeping a trailing `/.` as the entry `.` (moby
/// `SplitPathDirEntry`).
pub fn split_path_dir_entry(path: &str) -> (String, String) {
    let mut cleaned = clean(path);
    if specifies_current_dir(path) {
        cleaned.push_str("/.");
    }
    (dir(&cleaned), base(&cleaned))
}

/// After resolving a symlink, the name the copy must keep: the user's base name when the
/// resolved path's differs (moby `GetRebaseName`). Returns (resolved path, rebase name).
pub fn rebase_name(path: &str, resolved: &str) -> (String, Option<String>) {
    let mut resolved = resolved.to_string();
    if specifies_current_dir(path) && !specifies_current_dir(&resolved) {
        resolved.push_str("/.");
    }
    if has_trailing_separator(path) && !has_trailing_separator(&resolved) {
        resolved.push('/');
    }
    let rebase = (base(path) != base(&resolved)).then(|| base(path));
    (resolved, rebase)
}

/// The source side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceInfo {
    /// The path as resolved.
    pub path: String,
    /// It is a directory.
    pub is_dir: bool,
    /// The name the copy must carry instead of the resolved path's base name.
    pub rebase: Option<String>,
}

/// The destination side of a copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestInfo {
    /// The path (symlinks resolved).
    pub path: String,
    /// Something exists there.
    pub exists: bool,
    /// It is a directory.
    pub is_dir: bool,
}

/// Why a copy cannot be made (moby's archive errors, same words).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CopyError {
    /// A directory source onto an existing non-directory.
    #[error("cannot copy directory")]
    CannotCopyDir,
    /// A file source to a path asserted to be a directory that does not exist.
    #[error("no such directory")]
    DirNotExists,
    /// The destination's parent is not a directory.
    #[error("not a directory")]
    NotDirectory,
}

/// Where to extract and how to rename: the extraction directory and the optional
/// (old first component, new first component) rename of the archive's entries
/// (moby `PrepareArchiveCopy`). The archive is taken as already named after the source's
/// rebase name when it has one.
pub fn copy_plan(
    src: &SourceInfo,
    dst: &DestInfo,
) -> Result<(String, Option<(String, String)>), CopyError> {
    let (dst_dir, dst_base) = split_path_dir_entry(&dst.path);
    let (_, src_base) = split_path_dir_entry(&src.path);
    let src_base = src.rebase.clone().unwrap_or(src_base);
    let rename = |dir: String| Ok((dir, Some((src_base.clone(), dst_base.clone()))));
    if dst.exists && dst.is_dir {
        // Into the directory, under the source's own name.
        return Ok((dst.path.clone(), None));
    }
    if dst.exists && src.is_dir {
        return Err(CopyError::CannotCopyDir);
    }
    if dst.exists || src.is_dir {
        return rename(dst_dir);
    }
    if asserts_directory(&dst.path) {
        return Err(CopyError::DirNotExists);
    }
    rename(dst_dir)
}

/// Renames the first component `old` of a tar entry name to `new` (names outside `old`
/// are kept). `old` of "." matches "." and "./x".
pub fn rebase_entry(name: &str, old: &str, new: &str) -> String {
    let trimmed = name
        .strip_prefix("./")
        .filter(|_| old != ".")
        .unwrap_or(name);
    if trimmed == old || trimmed == format!("{old}/") {
        let slash = if trimmed.ends_with('/') { "/" } else { "" };
        return format!("{new}{slash}");
    }
    match trimmed.strip_prefix(&format!("{old}/")) {
        Some(rest) => format!("{new}/{rest}"),
        None => name.to_string(),
    }
}

/// The local destination of a copy from a container (moby `CopyInfoDestinationPath`):
/// symlinks are followed; a missing path needs an existing parent directory.
pub fn local_destination(path: &str) -> Result<DestInfo, String> {
    let mut current = path.to_string();
    for _ in 0..255 {
        match std::fs::symlink_metadata(&current) {
            Ok(m) if m.file_type().is_symlink() => {
                let target =
                    std::fs::read_link(&current).map_err(|e| format!("readlink {current}: {e}"))?;
                let target = target.to_string_lossy().into_owned();
                current = if target.starts_with('/') {
                    target
                } else {
                    format!("{}/{}", split_path_dir_entry(&current).0, target)
                };
            }
            Ok(m) => {
                return Ok(DestInfo {
                    path: current,
                    exists: true,
                    is_dir: m.is_dir(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let (parent, _) = split_path_dir_entry(&current);
                let m = std::fs::metadata(&parent)
                    .map_err(|e| format!("stat {parent}: {}", os_text(&e)))?;
                if !m.is_dir() {
                    return Err(CopyError::NotDirectory.to_string());
                }
                return Ok(DestInfo {
                    path: current,
                    exists: false,
                    is_dir: false,
                });
            }
            Err(e) => return Err(format!("lstat {current}: {}", os_text(&e))),
        }
    }
    Err("too many links".into())
}

/// Checks a local destination before anything is fetched (docker's `ValidateOutputPath`):
/// its directory must exist, and an existing path must be a directory or a regular file.
pub fn validate_output_path(path: &str) -> Result<(), String> {
    let parent = dir(&clean(path));
    if !parent.is_empty() && parent != "." && !Path::new(&parent).exists() {
        return Err(format!(
            "invalid output path: directory {parent:?} does not exist"
        ));
    }
    if let Ok(m) = std::fs::metadata(path)
        && !m.is_dir()
        && !m.is_file()
    {
        return Err(format!(
            "invalid output path: {path:?} must be a directory or a regular file"
        ));
    }
    Ok(())
}

/// The local source of a copy to a container (moby `CopyInfoSourcePath`): symlinks in the
/// parent are resolved; the last component only with `-L`.
pub fn local_source(path: &str, follow: bool) -> Result<SourceInfo, String> {
    let (resolved, rebase) = if follow {
        let real =
            std::fs::canonicalize(path).map_err(|e| format!("lstat {path}: {}", os_text(&e)))?;
        rebase_name(path, &real.to_string_lossy())
    } else {
        let (parent, entry) = split_path_dir_entry(path);
        let real_parent =
            std::fs::canonicalize(&parent).map_err(|e| format!("lstat {path}: {}", os_text(&e)))?;
        let resolved = format!(
            "{}/{entry}",
            real_parent.to_string_lossy().trim_end_matches('/')
        );
        let rebase =
            (has_trailing_separator(path) && base(path) != base(&resolved)).then(|| base(path));
        (resolved, rebase)
    };
    let m = std::fs::symlink_metadata(&resolved)
        .map_err(|e| format!("lstat {resolved}: {}", os_text(&e)))?;
    Ok(SourceInfo {
        path: resolved,
        is_dir: m.is_dir(),
        rebase,
    })
}

/// The OS message of an I/O error without Rust's " (os error N)" suffix, as Go prints it.
fn os_text(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => {
            let mut t = s[..i].to_string();
            if let Some(first) = t.get_mut(0..1) {
                first.make_ascii_lowercase();
            }
            t
        }
        None => s,
    }
}

/// Writes a tar of the local `src` (entries named after `name`, the source's base name or
/// its rebase, renamed by `rename`) to `out`. Sockets are skipped, as docker does.
pub fn write_tar<W: Write>(
    src: &SourceInfo,
    rename: Option<&(String, String)>,
    out: W,
) -> std::io::Result<W> {
    let (_, entry) = split_path_dir_entry(&src.path);
    let top = src.rebase.clone().unwrap_or(entry);
    let mut builder = tar::Builder::new(out);
    builder.follow_symlinks(false);
    let name_of = |rel: &str| {
        let name = if rel.is_empty() {
            top.clone()
        } else {
            format!("{top}/{rel}")
        };
        match rename {
            Some((old, new)) => rebase_entry(&name, old, new),
            None => name,
        }
    };
    let mut stack = vec![(PathBuf::from(&src.path), String::new())];
    while let Some((path, rel)) = stack.pop() {
        let m = std::fs::symlink_metadata(&path)?;
        if m.file_type().is_socket() {
            continue;
        }
        builder.append_path_with_name(&path, name_of(&rel))?;
        if m.is_dir() {
            let mut children: Vec<_> = std::fs::read_dir(&path)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            children.sort();
            for child in children.into_iter().rev() {
                let child_rel = if rel.is_empty() {
                    child.clone()
                } else {
                    format!("{rel}/{child}")
                };
                stack.push((path.join(&child), child_rel));
            }
        }
    }
    builder.into_inner()
}

/// Extracts a tar into the local directory `dir`, renaming entries by `renames` in order; entries may
/// not leave `dir` (no `..`, no absolute names, no path through a symlink that points out);
/// a directory never replaces a non-directory or the reverse (docker's NoOverwriteDirNonDir);
/// modes and times are the archive's, ownership ours (docker's NoLchown).
pub fn extract_tar<R: Read>(
    input: R,
    dir: &Path,
    renames: &[(String, String)],
) -> Result<(), String> {
    let rebase_all = |name: &str| {
        renames
            .iter()
            .fold(name.to_string(), |n, (old, new)| rebase_entry(&n, old, new))
    };
    let root =
        std::fs::canonicalize(dir).map_err(|e| format!("{}: {}", dir.display(), os_text(&e)))?;
    let mut archive = tar::Archive::new(input);
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_overwrite(true);
    let mut dirs = Vec::new();
    for entry in archive.entries().map_err(|e| e.to_string())? {
        let mut entry = entry.map_err(|e| e.to_string())?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = rebase_all(&raw);
        let rel = clean(&name);
        if rel.starts_with('/') || rel == ".." || rel.starts_with("../") {
            return Err(format!(
                "invalid archive entry {raw:?}: outside of the destination"
            ));
        }
        let target = if rel == "." {
            root.clone()
        } else {
            root.join(&rel)
        };
        if let Some(parent) = target.parent().filter(|_| rel != ".") {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("mkdir {}: {}", parent.display(), os_text(&e)))?;
            let real_parent = std::fs::canonicalize(parent).map_err(|e| e.to_string())?;
            if !real_parent.starts_with(&root) {
                return Err(format!(
                    "invalid archive entry {raw:?}: outside of the destination"
                ));
            }
        }
        let kind = entry.header().entry_type();
        let existing = std::fs::symlink_metadata(&target).ok();
        if let Some(m) = &existing {
            if m.is_dir() && !kind.is_dir() {
                return Err(format!(
                    "cannot overwrite directory {:?} with non-directory {:?}",
                    target.display().to_string(),
                    name
                ));
            }
            if !m.is_dir() && kind.is_dir() {
                return Err(format!(
                    "cannot overwrite non-directory {:?} with directory {:?}",
                    target.display().to_string(),
                    name
                ));
            }
        }
        if kind.is_dir() {
            std::fs::create_dir_all(&target).map_err(|e| os_text(&e))?;
            let mode = entry.header().mode().unwrap_or(0o755);
            let mtime = entry.header().mtime().unwrap_or(0);
            // The mode and time are set at the end: adding children changes the time, and a
            // read-only mode would stop them.
            dirs.push((target, mode, mtime));
            continue;
        }
        if kind.is_hard_link() {
            let link = entry
                .link_name()
                .map_err(|e| e.to_string())?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default();
            let link = rebase_all(&link);
            let link_rel = clean(&link);
            if link_rel.starts_with('/') || link_rel.starts_with("..") {
                return Err(format!(
                    "invalid hardlink {link:?}: outside of the destination"
                ));
            }
            if existing.is_some() {
                let _ = std::fs::remove_file(&target);
            }
            std::fs::hard_link(root.join(&link_rel), &target).map_err(|e| os_text(&e))?;
            continue;
        }
        if existing.is_some() {
            let _ = std::fs::remove_file(&target);
        }
        entry
            .unpack(&target)
            .map_err(|e| format!("{}: {e}", target.display()))?;
    }
    for (path, mode, mtime) in dirs.into_iter().rev() {
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode & 0o7777));
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(mtime);
        if let Ok(f) = std::fs::File::open(&path) {
            let _ = f.set_modified(t);
        }
    }
    Ok(())
}

/// `cp`.
pub async fn cp(c: &Client, a: CpArgs) -> CmdResult {
    let (src_container, src_path) = split_cp_arg(&a.src);
    let (dst_container, dst_path) = split_cp_arg(&a.dest);
    match (src_container, dst_container) {
        (Some(_), Some(_)) => Err(Failure::new("copying between containers is not supported")),
        (None, None) => Err(Failure::new("must specify at least one container source")),
        (Some(container), None) => {
            if src_path.is_empty() {
                return Err(Failure::new(format!(
                    "source \"{}\" cannot be empty",
                    a.src
                )));
            }
            from_container(c, &a, container, src_path, dst_path).await
        }
        (None, Some(container)) => {
            if dst_path.is_empty() {
                return Err(Failure::new(format!(
                    "destination \"{}\" cannot be empty",
                    a.dest
                )));
            }
            to_container(c, &a, src_path, container, dst_path).await
        }
    }
}

fn progress_wanted(a: &CpArgs) -> bool {
    !a.quiet && std::io::stderr().is_terminal()
}

fn pipe() -> Result<(std::io::PipeReader, std::io::PipeWriter), Failure> {
    std::io::pipe().map_err(|e| Failure::new(format!("pipe: {e}")))
}

async fn from_container(
    c: &Client,
    a: &CpArgs,
    container: &str,
    src_path: &str,
    dst_path: &str,
) -> CmdResult {
    if dst_path != "-" {
        validate_output_path(dst_path).map_err(Failure::new)?;
    }
    let mut src_path = src_path.to_string();
    let mut rebase = None;
    if a.follow_link {
        let stat = c.container_stat_path(container, &src_path).await?;
        if stat.is_symlink() {
            let mut target = stat.link_target.clone();
            if !target.starts_with('/') {
                target = format!("{}/{}", split_path_dir_entry(&src_path).0, target);
            }
            let (resolved, name) = rebase_name(&src_path, &target);
            src_path = resolved;
            rebase = name;
        }
    }
    let (stat, mut body) = c.container_archive_get(container, &src_path).await?;
    if dst_path == "-" {
        let mut out = tokio::io::stdout();
        tokio::io::copy(&mut body, &mut out).await?;
        tokio::io::AsyncWriteExt::flush(&mut out).await?;
        return Ok(0);
    }
    let dst = local_destination(dst_path).map_err(Failure::new)?;
    let src = SourceInfo {
        path: src_path.clone(),
        is_dir: stat.is_dir(),
        rebase,
    };
    let (dir, rename) = copy_plan(&src, &dst).map_err(|e| Failure::new(e.to_string()))?;
    // The archive names entries after the resolved path: first give them the name the user
    // asked for (-L of a symlink), then apply the plan.
    let mut renames = Vec::new();
    if let Some(r) = &src.rebase {
        renames.push((split_path_dir_entry(&src.path).1, r.clone()));
    }
    renames.extend(rename);
    let (reader, writer) = pipe()?;
    let mut sender = tokio::net::unix::pipe::Sender::from_owned_fd(OwnedFd::from(writer))?;
    let extract =
        tokio::task::spawn_blocking(move || extract_tar(reader, Path::new(&dir), &renames));
    let copied = tokio::io::copy(&mut body, &mut sender).await;
    drop(sender);
    match extract.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(Failure::new(e)),
        Err(e) => return Err(Failure::new(e.to_string())),
    }
    let n = copied?;
    if progress_wanted(a) {
        eprintln!(
            "Successfully copied {} to {dst_path}",
            crate::units::human_size(n as f64)
        );
    }
    Ok(0)
}

async fn to_container(
    c: &Client,
    a: &CpArgs,
    src_path: &str,
    container: &str,
    dst_path: &str,
) -> CmdResult {
    let mut dst = DestInfo {
        path: dst_path.to_string(),
        exists: false,
        is_dir: false,
    };
    let mut stat = c.container_stat_path(container, dst_path).await;
    if let Ok(s) = &stat
        && s.is_symlink()
    {
        let mut target = s.link_target.clone();
        if !target.starts_with('/') {
            target = format!("{}/{}", split_path_dir_entry(dst_path).0, target);
        }
        dst.path = target.clone();
        stat = c.container_stat_path(container, &target).await;
    }
    if let Ok(s) = &stat {
        // Only directories and regular files can be written to (docker's
        // ValidateOutputPathFileMode): Go's device, pipe, socket and irregular bits.
        let special = (1u32 << 26) | (1 << 25) | (1 << 24) | (1 << 21) | (1 << 19);
        if s.mode & special != 0 {
            return Err(Failure::new(format!(
                "destination \"{container}:{dst_path}\" must be a directory or a regular file"
            )));
        }
        dst.exists = true;
        dst.is_dir = s.is_dir();
    } else if let Err(e) = &stat
        && e.status() != Some(404)
    {
        return Err(Failure::new(crate::app::describe(e)));
    }
    if src_path == "-" {
        if !dst.is_dir {
            return Err(Failure::new(format!(
                "destination \"{container}:{dst_path}\" must be a directory"
            )));
        }
        let body = client::reader_body(tokio::io::stdin());
        c.container_archive_put(container, &dst.path, body, true, a.archive)
            .await?;
        return Ok(0);
    }
    let src = local_source(src_path, a.follow_link).map_err(Failure::new)?;
    let (dir, rename) = copy_plan(&src, &dst).map_err(|e| Failure::new(e.to_string()))?;
    let (reader, writer) = pipe()?;
    let receiver = tokio::net::unix::pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
    let build = tokio::task::spawn_blocking(move || {
        let counter = CountingWriter {
            inner: writer,
            count: 0,
        };
        write_tar(&src, rename.as_ref(), counter).map(|w| w.count)
    });
    let put = c
        .container_archive_put(
            container,
            &dir,
            client::reader_body(receiver),
            true,
            a.archive,
        )
        .await;
    let built = build.await.map_err(|e| Failure::new(e.to_string()))?;
    put?;
    let n = built.map_err(|e| Failure::new(e.to_string()))?;
    if progress_wanted(a) {
        eprintln!(
            "Successfully copied {} to {container}:{dst_path}",
            crate::units::human_size(n as f64)
        );
    }
    Ok(0)
}

/// A writer that counts what passes (the size reported after a copy).
struct CountingWriter<W> {
    inner: W,
    count: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The owner of a local file (for tests of `-a`).
pub fn owner_of(path: &Path) -> std::io::Result<(u32, u32)> {
    let m = std::fs::symlink_metadata(path)?;
    Ok((m.uid(), m.gid()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cp_arguments() {
        assert_eq!(split_cp_arg("c1:/etc/passwd"), (Some("c1"), "/etc/passwd"));
        assert_eq!(split_cp_arg("/abs:path"), (None, "/abs:path"));
        assert_eq!(split_cp_arg("./file:name"), (None, "./file:name"));
        assert_eq!(split_cp_arg("local"), (None, "local"));
        assert_eq!(split_cp_arg("-"), (None, "-"));
        assert_eq!(split_cp_arg("c1:"), (Some("c1"), ""));
    }

    #[test]
    fn go_path_helpers() {
        assert_eq!(clean("a//b/./c/.."), "a/b");
        assert_eq!(clean("/../x"), "/x");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(base("/a/b/"), "b");
        assert_eq!(base("/"), "/");
        assert_eq!(dir("/a/b"), "/a");
        assert_eq!(dir("b"), ".");
        assert_eq!(split_path_dir_entry("/a/b/."), ("/a/b".into(), ".".into()));
        assert_eq!(split_path_dir_entry("/a/b/"), ("/a".into(), "b".into()));
        assert!(asserts_directory("x/") && asserts_directory("x/.") && !asserts_directory("x"));
    }

    fn src(path: &str, is_dir: bool) -> SourceInfo {
        SourceInfo {
            path: path.into(),
            is_dir,
            rebase: None,
        }
    }

    fn dst(path: &str, exists: bool, is_dir: bool) -> DestInfo {
        DestInfo {
            path: path.into(),
            exists,
            is_dir,
        }
    }

    #[test]
    fn docker_path_rules() {
        // File into an existing directory: kept under its own name.
        assert_eq!(
            copy_plan(&src("/etc/hosts", false), &dst("/tmp/d", true, true)),
            Ok(("/tmp/d".into(), None))
        );
        // File to a new name: extracted in the parent, renamed.
        assert_eq!(
            copy_plan(&src("/etc/hosts", false), &dst("/tmp/new", false, false)),
            Ok(("/tmp".into(), Some(("hosts".into(), "new".into()))))
        );
        // File over an existing file: renamed to it.
        assert_eq!(
            copy_plan(&src("/etc/hosts", false), &dst("/tmp/f", true, false)),
            Ok(("/tmp".into(), Some(("hosts".into(), "f".into()))))
        );
        // File to a missing path that must be a directory.
        assert_eq!(
            copy_plan(&src("/etc/hosts", false), &dst("/tmp/nodir/", false, false)),
            Err(CopyError::DirNotExists)
        );
        // Directory to a missing path: becomes that directory.
        assert_eq!(
            copy_plan(&src("/etc", true), &dst("/tmp/copy", false, false)),
            Ok(("/tmp".into(), Some(("etc".into(), "copy".into()))))
        );
        // Directory into an existing directory: a subdirectory of the same name.
        assert_eq!(
            copy_plan(&src("/etc", true), &dst("/tmp/d", true, true)),
            Ok(("/tmp/d".into(), None))
        );
        // Directory content (`/.`) into an existing directory: the archive's "." is it.
        assert_eq!(
            copy_plan(&src("/etc/.", true), &dst("/tmp/d", true, true)),
            Ok(("/tmp/d".into(), None))
        );
        // Directory content to a missing path: "." becomes the new directory.
        assert_eq!(
            copy_plan(&src("/etc/.", true), &dst("/tmp/new", false, false)),
            Ok(("/tmp".into(), Some((".".into(), "new".into()))))
        );
        // Directory over a file.
        assert_eq!(
            copy_plan(&src("/etc", true), &dst("/tmp/f", true, false)),
            Err(CopyError::CannotCopyDir)
        );
        // A followed symlink keeps the user's name.
        let followed = SourceInfo {
            path: "/real/target".into(),
            is_dir: false,
            rebase: Some("link".into()),
        };
        assert_eq!(
            copy_plan(&followed, &dst("/tmp/d", true, true)),
            Ok(("/tmp/d".into(), None))
        );
        assert_eq!(
            copy_plan(&followed, &dst("/tmp/new", false, false)),
            Ok(("/tmp".into(), Some(("link".into(), "new".into()))))
        );
    }

    #[test]
    fn entries_are_rebased_on_the_first_component() {
        assert_eq!(rebase_entry("etc", "etc", "copy"), "copy");
        assert_eq!(rebase_entry("etc/", "etc", "copy"), "copy/");
        assert_eq!(rebase_entry("etc/hosts", "etc", "copy"), "copy/hosts");
        assert_eq!(rebase_entry("etcetera", "etc", "copy"), "etcetera");
        assert_eq!(rebase_entry(".", ".", "new"), "new");
        assert_eq!(rebase_entry("./", ".", "new"), "new/");
        assert_eq!(rebase_entry("./a/b", ".", "new"), "new/a/b");
        assert_eq!(rebase_entry("./etc/x", "etc", "copy"), "copy/x");
    }

    #[test]
    fn symlink_rebase_names() {
        assert_eq!(
            rebase_name("/a/link", "/a/target"),
            ("/a/target".into(), Some("link".into()))
        );
        assert_eq!(
            rebase_name("/a/link/.", "/a/target"),
            ("/a/target/.".into(), None)
        );
        assert_eq!(rebase_name("/a/same", "/b/same"), ("/b/same".into(), None));
    }

    #[test]
    fn local_round_trip_keeps_content_and_modes() {
        let t = tempfile::tempdir().unwrap();
        let src_dir = t.path().join("src");
        std::fs::create_dir_all(src_dir.join("sub")).unwrap();
        std::fs::write(src_dir.join("sub/run.sh"), "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(
            src_dir.join("sub/run.sh"),
            std::fs::Permissions::from_mode(0o751),
        )
        .unwrap();
        std::os::unix::fs::symlink("sub/run.sh", src_dir.join("link")).unwrap();
        let out = t.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let source = local_source(src_dir.to_str().unwrap(), false).unwrap();
        assert!(source.is_dir);
        let dest = local_destination(out.join("copy").to_str().unwrap()).unwrap();
        let (dir, rename) = copy_plan(&source, &dest).unwrap();
        let tar = write_tar(&source, None, Vec::new()).unwrap();
        let renames: Vec<_> = rename.into_iter().collect();
        extract_tar(&tar[..], Path::new(&dir), &renames).unwrap();
        let copied = out.join("copy/sub/run.sh");
        assert_eq!(std::fs::read_to_string(&copied).unwrap(), "#!/bin/sh\n");
        assert_eq!(
            std::fs::metadata(&copied).unwrap().permissions().mode() & 0o777,
            0o751
        );
        assert_eq!(
            std::fs::read_link(out.join("copy/link")).unwrap(),
            Path::new("sub/run.sh")
        );
    }

    #[test]
    fn extraction_refuses_escapes() {
        let t = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, "evil", t.path().parent().unwrap())
            .unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        b.append_data(&mut h, "evil/owned", &b"x"[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let err = extract_tar(&tar[..], t.path(), &[]).unwrap_err();
        assert!(err.contains("outside of the destination"), "{err}");
        assert!(!t.path().parent().unwrap().join("owned").exists());
    }

    #[test]
    fn directory_never_replaces_a_file() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("x"), "file").unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        b.append_data(&mut h, "x/", &b""[..]).unwrap();
        let tar = b.into_inner().unwrap();
        let err = extract_tar(&tar[..], t.path(), &[]).unwrap_err();
        assert!(err.contains("cannot overwrite non-directory"), "{err}");
    }
}
