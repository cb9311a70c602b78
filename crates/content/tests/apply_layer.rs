//! Crate integration tests of layer application on the real kernel. They need root (mknod,
//! chown, trusted.* xattrs) and skip themselves otherwise.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;
use content::{
    ApplyOptions, Compression, ContentError, WhiteoutMode, apply_layer, apply_layer_atomic,
    apply_layer_with, sha256_digest,
};
use tar::EntryType;

#[test]
fn round_trip_all_entry_kinds() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("rootfs");
    fs::create_dir(&target).unwrap();

    let mut t = TarBuilder::new();
    t.dir("etc", 0o755, 0, 0);
    t.file("etc/hostname", b"berth\n", 0o644, 0, 0);
    t.file_with_xattrs(
        "bin/tool",
        b"#!/bin/sh\n",
        0o4755,
        1000,
        1001,
        &[("SCHILY.xattr.user.origin", b"layer".as_slice())],
    );
    t.symlink("etc/link", "/etc/hostname");
    t.hardlink("etc/hard", "etc/hostname");
    t.node("dev/null", EntryType::Char, 1, 3, 0o666);
    t.node("dev/loop9", EntryType::Block, 7, 9, 0o660);
    t.node("run/fifo", EntryType::Fifo, 0, 0, 0o600);
    t.dir("var/empty", 0o1777, 0, 0);
    let plain = t.finish();

    let stats = apply_layer(&target, &plain[..]).unwrap();
    assert_eq!(stats.diff_id, sha256_digest(&plain));
    assert_eq!(stats.tar_size, plain.len() as u64);
    assert_eq!(stats.compression, Compression::None);
    assert_eq!(stats.entries, 9);
    assert_eq!(stats.content_bytes, 6 + 10);

    assert_eq!(fs::read(target.join("etc/hostname")).unwrap(), b"berth\n");
    let tool = fs::metadata(target.join("bin/tool")).unwrap();
    assert_eq!(
        tool.permissions().mode() & 0o7777,
        0o4755,
        "setuid kept after chown"
    );
    assert_eq!((tool.uid(), tool.gid()), (1000, 1001));
    assert_eq!(tool.mtime(), MTIME);
    assert_eq!(
        xattr_get(&target.join("bin/tool"), "user.origin").as_deref(),
        Some(&b"layer"[..])
    );
    // Implicit parent directories are 0755.
    assert_eq!(
        fs::metadata(target.join("bin"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o755
    );
    assert_eq!(
        fs::read_link(target.join("etc/link")).unwrap(),
        Path::new("/etc/hostname")
    );
    let hard = fs::metadata(target.join("etc/hard")).unwrap();
    let orig = fs::metadata(target.join("etc/hostname")).unwrap();
    assert_eq!(hard.ino(), orig.ino());
    let null = fs::metadata(target.join("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), rustix::fs::makedev(1, 3));
    assert_eq!(
        null.permissions().mode() & 0o777,
        0o666,
        "umask does not apply"
    );
    assert!(
        fs::metadata(target.join("dev/loop9"))
            .unwrap()
            .file_type()
            .is_block_device()
    );
    assert!(
        fs::metadata(target.join("run/fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    let empty = fs::metadata(target.join("var/empty")).unwrap();
    assert_eq!(empty.permissions().mode() & 0o7777, 0o1777);
    // Directory mtimes are restored after their children were written.
    assert_eq!(fs::metadata(target.join("etc")).unwrap().mtime(), MTIME);
}

#[test]
fn compressed_layers_give_the_same_tree_and_diff_id() {
    if !is_root() {
        return;
    }
    let mut t = TarBuilder::new();
    t.file("a/b", &b"payload".repeat(1000), 0o644, 0, 0);
    let plain = t.finish();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&plain).unwrap();
    let gz = gz.finish().unwrap();
    let zst = zstd::stream::encode_all(&plain[..], 3).unwrap();
    for (input, kind) in [(gz, Compression::Gzip), (zst, Compression::Zstd)] {
        let dir = tempfile::tempdir().unwrap();
        let stats = apply_layer(dir.path(), &input[..]).unwrap();
        assert_eq!(stats.compression, kind);
        assert_eq!(stats.diff_id, sha256_digest(&plain), "{kind:?}");
        assert_eq!(
            fs::read(dir.path().join("a/b")).unwrap(),
            b"payload".repeat(1000)
        );
    }
}

#[test]
fn dot_dot_entry_is_refused() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("rootfs");
    fs::create_dir(&target).unwrap();
    let name = unique("evil");
    let mut t = TarBuilder::new();
    t.raw_file(format!("../{name}").as_bytes(), b"pwned");
    t.raw_file(format!("a/../../../{name}").as_bytes(), b"pwned");
    let err = apply_layer(&target, &t.finish()[..]).unwrap_err();
    assert!(matches!(err, ContentError::Breakout { .. }), "{err}");
    assert_eq!(err.kind(), types::ErrorKind::InvalidArgument);
    assert!(!dir.path().join(&name).exists());
    assert!(!Path::new("/").join(&name).exists());
}

#[test]
fn absolute_entry_is_taken_relative_to_the_root() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let name = unique("abs");
    let mut t = TarBuilder::new();
    t.raw_file(format!("/{name}/evil").as_bytes(), b"inside");
    t.raw_file(format!("/../../{name}/evil2").as_bytes(), b"inside");
    apply_layer(dir.path(), &t.finish()[..]).unwrap();
    assert_eq!(
        fs::read(dir.path().join(&name).join("evil")).unwrap(),
        b"inside"
    );
    assert_eq!(
        fs::read(dir.path().join(&name).join("evil2")).unwrap(),
        b"inside"
    );
    assert!(!Path::new("/").join(&name).exists());
}

#[test]
fn file_through_symlinked_parent_never_leaves_the_root() {
    if !is_root() {
        return;
    }
    // The host directory exists, so an extractor that follows the symlink would write there.
    let host = tempfile::Builder::new()
        .prefix("berth-host-")
        .tempdir()
        .unwrap();
    let host_dir = host.path().to_path_buf();
    for (link_target, through) in [
        (host_dir.to_str().unwrap().to_owned(), "link/evil"),
        (
            "../../../../../../..".to_owned() + host_dir.to_str().unwrap(),
            "rel/evil",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let link_name = through.split('/').next().unwrap();
        let mut t = TarBuilder::new();
        t.symlink(link_name, &link_target);
        t.raw_file(through.as_bytes(), b"pwned");
        let result = apply_layer(dir.path(), &t.finish()[..]);
        // Either refused, or contained under the target; never on the host.
        if result.is_ok() {
            let inside = dir
                .path()
                .join(host_dir.strip_prefix("/").unwrap())
                .join("evil");
            assert!(inside.exists(), "the file went somewhere unexpected");
        }
        assert_eq!(
            fs::read_dir(&host_dir).unwrap().count(),
            0,
            "{through} escaped"
        );
        // The symlink itself is kept as data.
        assert!(
            fs::symlink_metadata(dir.path().join(link_name))
                .unwrap()
                .is_symlink()
        );
    }
}

#[test]
fn symlink_then_directory_and_file_stays_inside() {
    if !is_root() {
        return;
    }
    let host = tempfile::Builder::new()
        .prefix("berth-host-")
        .tempdir()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut t = TarBuilder::new();
    t.symlink("escape", host.path().to_str().unwrap());
    // A directory entry of the same name replaces the symlink rather than following it.
    t.dir("escape", 0o755, 0, 0);
    t.raw_file(b"escape/evil", b"pwned");
    apply_layer(dir.path(), &t.finish()[..]).unwrap();
    assert!(dir.path().join("escape").is_dir());
    assert!(dir.path().join("escape/evil").exists());
    assert_eq!(fs::read_dir(host.path()).unwrap().count(), 0);
}

#[test]
fn hard_links_outside_are_refused() {
    if !is_root() {
        return;
    }
    let passwd_before = fs::metadata("/etc/passwd").unwrap();
    let cases: &[&[u8]] = &[b"/etc/passwd", b"../x", b"../../../../etc/passwd"];
    for link_target in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut t = TarBuilder::new();
        t.hardlink_raw(b"h", link_target);
        let err = apply_layer(dir.path(), &t.finish()[..]).unwrap_err();
        assert!(
            matches!(err, ContentError::Breakout { .. } | ContentError::Io { .. }),
            "{err}"
        );
        assert!(!dir.path().join("h").exists());
    }
    // Through a symlinked directory: `s -> /etc`, then `h` linked to `s/passwd`.
    let dir = tempfile::tempdir().unwrap();
    let mut t = TarBuilder::new();
    t.symlink("s", "/etc");
    t.hardlink_raw(b"h", b"s/passwd");
    assert!(apply_layer(dir.path(), &t.finish()[..]).is_err());
    let passwd_after = fs::metadata("/etc/passwd").unwrap();
    assert_eq!(passwd_before.nlink(), passwd_after.nlink());
}

#[test]
fn truncated_archives_are_clean_errors() {
    if !is_root() {
        return;
    }
    let mut t = TarBuilder::new();
    t.file("big", &vec![7u8; 10_000], 0o644, 0, 0);
    t.file("after", b"x", 0o644, 0, 0);
    let whole = t.finish();
    // Cut inside the data, inside the first header, and inside the second header.
    for cut in [5_000, 100, 512 + 10_240 + 100] {
        let dir = tempfile::tempdir().unwrap();
        let err = apply_layer(dir.path(), &whole[..cut]).unwrap_err();
        assert!(
            matches!(err, ContentError::InvalidTar(_)),
            "cut {cut}: {err}"
        );
        assert_eq!(err.kind(), types::ErrorKind::InvalidArgument);
    }
    // Truncated gzip stream.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&whole).unwrap();
    let gz = gz.finish().unwrap();
    let dir = tempfile::tempdir().unwrap();
    assert!(apply_layer(dir.path(), &gz[..gz.len() / 2]).is_err());
}

#[test]
fn garbage_and_oversized_headers_are_clean_errors() {
    if !is_root() {
        return;
    }
    // Size field that is not octal.
    let mut h = raw_header(b"f", EntryType::Regular, 0);
    h.as_old_mut().size.copy_from_slice(b"zzzzzzzzzzz\0");
    h.set_cksum();
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend([0u8; 1024]);
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        apply_layer(dir.path(), &bytes[..]).unwrap_err(),
        ContentError::InvalidTar(_)
    ));

    // A header claiming 1 TiB of data that is not there.
    let h = raw_header(b"huge", EntryType::Regular, 1 << 40);
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend([1u8; 4096]);
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        apply_layer(dir.path(), &bytes[..]).unwrap_err(),
        ContentError::InvalidTar(_)
    ));

    // A bad checksum.
    let mut h = raw_header(b"f", EntryType::Regular, 0);
    h.as_old_mut().cksum.copy_from_slice(b"0000000\0");
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend([0u8; 1024]);
    let dir = tempfile::tempdir().unwrap();
    assert!(apply_layer(dir.path(), &bytes[..]).is_err());

    // A GNU long name claiming far more bytes than the stream has.
    let h = raw_header(b"././@LongLink", EntryType::GNULongName, 1 << 30);
    let mut bytes = h.as_bytes().to_vec();
    bytes.extend([b'a'; 2048]);
    let dir = tempfile::tempdir().unwrap();
    assert!(apply_layer(dir.path(), &bytes[..]).is_err());

    // Pure garbage.
    let dir = tempfile::tempdir().unwrap();
    assert!(apply_layer(dir.path(), &[0x55u8; 3000][..]).is_err());
}

#[test]
fn whiteouts_become_overlay_whiteouts() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut t = TarBuilder::new();
    t.dir("etc", 0o755, 0, 0);
    t.raw_file(b"etc/.wh.gone", b"");
    t.dir("opaque", 0o755, 0, 0);
    t.raw_file(b"opaque/.wh..wh..opq", b"");
    t.raw_file(b"opaque/new", b"n");
    t.raw_file(b"deep/er/.wh..wh..opq", b"");
    t.raw_file(b".wh..wh.plnk", b"");
    let stats = apply_layer(dir.path(), &t.finish()[..]).unwrap();
    assert_eq!(stats.whiteouts, 4);
    let gone = fs::symlink_metadata(dir.path().join("etc/gone")).unwrap();
    assert!(gone.file_type().is_char_device());
    assert_eq!(gone.rdev(), 0);
    assert!(!dir.path().join("etc/.wh.gone").exists());
    assert_eq!(
        xattr_get(&dir.path().join("opaque"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert_eq!(
        xattr_get(&dir.path().join("deep/er"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(dir.path().join("opaque/new").exists());
    assert!(!dir.path().join(".wh..wh.plnk").exists());
    assert!(!dir.path().join("opaque/.wh..wh..opq").exists());
}

#[test]
fn forged_overlay_xattrs_are_dropped() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut t = TarBuilder::new();
    t.dir_with_xattrs(
        "d",
        &[
            ("SCHILY.xattr.trusted.overlay.redirect", b"/etc".as_slice()),
            ("SCHILY.xattr.trusted.overlay.opaque", b"y".as_slice()),
            ("SCHILY.xattr.user.kept", b"1".as_slice()),
        ],
    );
    apply_layer(dir.path(), &t.finish()[..]).unwrap();
    let d = dir.path().join("d");
    assert_eq!(xattr_get(&d, "trusted.overlay.redirect"), None);
    assert_eq!(xattr_get(&d, "trusted.overlay.opaque"), None);
    assert_eq!(xattr_get(&d, "user.kept").as_deref(), Some(&b"1"[..]));
}

#[test]
fn delete_mode_applies_whiteouts_to_a_full_tree() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut base = TarBuilder::new();
    base.file("keep", b"k", 0o644, 0, 0);
    base.file("gone", b"g", 0o644, 0, 0);
    base.file("gonedir/x", b"x", 0o644, 0, 0);
    base.file("opq/old1", b"1", 0o644, 0, 0);
    base.file("opq/sub/old2", b"2", 0o644, 0, 0);
    let options = ApplyOptions {
        whiteouts: WhiteoutMode::Delete,
        ..ApplyOptions::default()
    };
    apply_layer_with(dir.path(), &base.finish()[..], &options).unwrap();

    let mut upper = TarBuilder::new();
    upper.raw_file(b".wh.gone", b"");
    upper.raw_file(b".wh.gonedir", b"");
    upper.raw_file(b".wh.never-existed", b"");
    upper.raw_file(b"opq/new", b"n");
    upper.raw_file(b"opq/.wh..wh..opq", b"");
    apply_layer_with(dir.path(), &upper.finish()[..], &options).unwrap();

    assert!(dir.path().join("keep").exists());
    assert!(!dir.path().join("gone").exists());
    assert!(!dir.path().join("gonedir").exists());
    assert!(!dir.path().join("never-existed").exists());
    assert!(
        dir.path().join("opq/new").exists(),
        "this layer's own file survives"
    );
    assert!(!dir.path().join("opq/old1").exists());
    assert!(!dir.path().join("opq/sub").exists());
}

#[test]
fn replacing_entries_follows_docker_rules() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut t = TarBuilder::new();
    t.file("d/inner", b"i", 0o644, 0, 0);
    t.dir("d", 0o700, 0, 0); // dir over dir: kept, contents stay
    t.file("f", b"old", 0o644, 0, 0);
    t.dir("f", 0o755, 0, 0); // dir over file: replaced
    t.dir("g/sub", 0o755, 0, 0);
    t.file("g", b"file now", 0o644, 0, 0); // file over dir: replaced
    apply_layer(dir.path(), &t.finish()[..]).unwrap();
    assert!(dir.path().join("d/inner").exists());
    assert_eq!(
        fs::metadata(dir.path().join("d"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    assert!(dir.path().join("f").is_dir());
    assert_eq!(fs::read(dir.path().join("g")).unwrap(), b"file now");
}

#[test]
fn atomic_apply_is_all_or_nothing() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("layer");
    let mut bad = TarBuilder::new();
    bad.file("ok", b"fine", 0o644, 0, 0);
    bad.raw_file(b"../evil", b"x");
    let err = apply_layer_atomic(&target, &bad.finish()[..], &ApplyOptions::default());
    assert!(err.is_err());
    assert_eq!(
        fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no target, no temp dir"
    );

    let mut good = TarBuilder::new();
    good.file("ok", b"fine", 0o644, 0, 0);
    apply_layer_atomic(&target, &good.finish()[..], &ApplyOptions::default()).unwrap();
    assert_eq!(fs::read(target.join("ok")).unwrap(), b"fine");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    // The target must not exist yet.
    let mut again = TarBuilder::new();
    again.file("x", b"", 0o644, 0, 0);
    assert!(matches!(
        apply_layer_atomic(&target, &again.finish()[..], &ApplyOptions::default()),
        Err(ContentError::TargetExists(_))
    ));
}

#[test]
fn unsupported_compression_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let err = apply_layer(dir.path(), &b"BZh91AY&SY"[..]).unwrap_err();
    assert_eq!(err.kind(), types::ErrorKind::Unsupported);
}

#[test]
fn whiteouts_never_hide_entries_of_their_own_layer_overlay() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut t = TarBuilder::new();
    // Deleted and recreated as a directory: must hide the lower one (opaque).
    t.raw_file(b".wh.re", b"");
    t.dir("re", 0o755, 0, 0);
    t.raw_file(b"re/new", b"n");
    // Written, then whited out in the same layer: the layer's own content stays.
    t.raw_file(b"own/x", b"x");
    t.raw_file(b".wh.own", b"");
    t.raw_file(b"file", b"f");
    t.raw_file(b".wh.file", b"");
    apply_layer(dir.path(), &t.finish()[..]).unwrap();
    let opaque = |p: &str| xattr_get(&dir.path().join(p), "trusted.overlay.opaque");
    assert!(dir.path().join("re").is_dir());
    assert_eq!(opaque("re").as_deref(), Some(&b"y"[..]));
    assert!(dir.path().join("re/new").exists());
    assert_eq!(fs::read(dir.path().join("own/x")).unwrap(), b"x");
    assert_eq!(opaque("own").as_deref(), Some(&b"y"[..]));
    assert_eq!(fs::read(dir.path().join("file")).unwrap(), b"f");
}

#[test]
fn whiteouts_never_hide_entries_of_their_own_layer_delete() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let options = ApplyOptions {
        whiteouts: WhiteoutMode::Delete,
        ..ApplyOptions::default()
    };
    let mut base = TarBuilder::new();
    base.raw_file(b"re/old", b"o");
    base.raw_file(b"d/sub/old", b"o");
    base.raw_file(b"d/gone", b"o");
    base.raw_file(b"own/old", b"o");
    apply_layer_with(dir.path(), &base.finish()[..], &options).unwrap();

    let mut t = TarBuilder::new();
    t.raw_file(b".wh.re", b"");
    t.raw_file(b"re/new", b"n");
    // Opaque marker after this layer's own entries: only lower content goes, recursively.
    t.raw_file(b"d/sub/new", b"n");
    t.raw_file(b"d/.wh..wh..opq", b"");
    t.raw_file(b"own/x", b"x");
    t.raw_file(b".wh.own", b"");
    apply_layer_with(dir.path(), &t.finish()[..], &options).unwrap();

    let exists = |p: &str| dir.path().join(p).exists();
    assert!(exists("re/new") && !exists("re/old"));
    assert!(exists("d/sub/new") && !exists("d/sub/old") && !exists("d/gone"));
    assert!(exists("own/x") && !exists("own/old"));
}
