//! The local driver's options (`docker volume create -o type=... -o device=... -o o=...`): their
//! validation, and the mount they describe, as data. The driver performs it (see
//! [`crate::local`]); this file is pure.
//!
//! Rules as dockerd's local driver has them (moby volume/local): only `type`, `device`, `o`
//! and `size` are known; `type` and `device` go together and `o` needs both; `o` is split as
//! mount(8) would, its flag words becoming `MS_*` flags and the rest the data string.

use std::collections::HashMap;

/// A validation failure, with dockerd's wording (the caller adds `create NAME: `).
pub type OptionError = String;

/// Checks the options of a new local volume.
pub fn validate(options: &HashMap<String, String>) -> Result<(), OptionError> {
    let mut keys: Vec<&String> = options.keys().collect();
    keys.sort();
    for key in keys {
        if !matches!(key.as_str(), "type" | "device" | "o" | "size") {
            return Err(format!("invalid option: {key:?}"));
        }
    }
    // Each option with the options it needs (moby: mandatoryOpts).
    for (option, needs) in [
        ("device", &["type"][..]),
        ("type", &["device"][..]),
        ("o", &["device", "type"][..]),
    ] {
        if options.contains_key(option) {
            for need in needs {
                if !options.contains_key(*need) {
                    return Err(format!("missing required option: {need:?}"));
                }
            }
        }
    }
    if options.contains_key("size") {
        // Quotas need an xfs project-quota backing file system.
        return Err("quota size requested but no quota support".into());
    }
    Ok(())
}

/// One mount a local volume with options needs, as mount(2) takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMount {
    /// `device=`: a block device, a directory (bind), `tmpfs`...
    pub source: String,
    /// `type=` (`none` for a bind).
    pub fs_type: String,
    /// `MS_*` flags from the flag words of `o=`.
    pub flags: u64,
    /// The rest of `o=`, comma-joined (file system specific data).
    pub data: String,
}

/// mount(8) flag words and the `MS_*` bits they set (`true`) or clear (`false`).
const FLAG_WORDS: &[(&str, bool, u64)] = &[
    ("ro", true, libc::MS_RDONLY),
    ("rw", false, libc::MS_RDONLY),
    ("nosuid", true, libc::MS_NOSUID),
    ("suid", false, libc::MS_NOSUID),
    ("nodev", true, libc::MS_NODEV),
    ("dev", false, libc::MS_NODEV),
    ("noexec", true, libc::MS_NOEXEC),
    ("exec", false, libc::MS_NOEXEC),
    ("sync", true, libc::MS_SYNCHRONOUS),
    ("async", false, libc::MS_SYNCHRONOUS),
    ("dirsync", true, libc::MS_DIRSYNC),
    ("mand", true, libc::MS_MANDLOCK),
    ("nomand", false, libc::MS_MANDLOCK),
    ("noatime", true, libc::MS_NOATIME),
    ("atime", false, libc::MS_NOATIME),
    ("nodiratime", true, libc::MS_NODIRATIME),
    ("diratime", false, libc::MS_NODIRATIME),
    ("relatime", true, libc::MS_RELATIME),
    ("norelatime", false, libc::MS_RELATIME),
    ("strictatime", true, libc::MS_STRICTATIME),
    ("nostrictatime", false, libc::MS_STRICTATIME),
    ("bind", true, libc::MS_BIND),
    ("rbind", true, libc::MS_BIND | libc::MS_REC),
    ("defaults", false, 0),
];

/// The mount of a local volume's options; None when the volume is a plain directory.
pub fn plan(options: &HashMap<String, String>) -> Option<LocalMount> {
    let fs_type = options.get("type")?.clone();
    let source = options.get("device").cloned().unwrap_or_default();
    let mut flags = 0u64;
    let mut data = Vec::new();
    for word in options
        .get("o")
        .map(String::as_str)
        .unwrap_or("")
        .split(',')
        .filter(|w| !w.is_empty())
    {
        match FLAG_WORDS.iter().find(|(name, _, _)| *name == word) {
            Some((_, true, bits)) => flags |= bits,
            Some((_, false, bits)) => flags &= !bits,
            None => data.push(word),
        }
    }
    Some(LocalMount {
        source,
        fs_type,
        flags,
        data: data.join(","),
    })
}

impl LocalMount {
    /// Whether this is a bind mount (the type is then ignored).
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }

    /// Flags that a bind mount only takes in a second, remounting call (mount(2)).
    pub fn bind_remount_flags(&self) -> u64 {
        self.flags
            & (libc::MS_RDONLY
                | libc::MS_NOSUID
                | libc::MS_NODEV
                | libc::MS_NOEXEC
                | libc::MS_NOATIME
                | libc::MS_NODIRATIME
                | libc::MS_RELATIME
                | libc::MS_STRICTATIME)
    }

    /// dockerd's description of a failed mount:
    /// `mount DEVICE:TARGET, flags: 0x1000, data: size=1m: CAUSE`.
    pub fn describe_failure(&self, target: &str, cause: &str) -> String {
        let mut text = format!(
            "failed to mount local volume: mount {}:{target}, flags: {:#x}",
            self.source, self.flags
        );
        if !self.data.is_empty() {
            text.push_str(&format!(", data: {}", self.data));
        }
        text.push_str(&format!(": {cause}"));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn validation_table() {
        for (given, expected) in [
            (&[][..], Ok(())),
            (
                &[("type", "tmpfs"), ("device", "tmpfs"), ("o", "size=1m")][..],
                Ok(()),
            ),
            (&[("foo", "bar")][..], Err("invalid option: \"foo\"")),
            (
                &[("type", "nfs")][..],
                Err("missing required option: \"device\""),
            ),
            (
                &[("device", "/dev/x")][..],
                Err("missing required option: \"type\""),
            ),
            (
                &[("type", "nfs"), ("o", "addr=1")][..],
                Err("missing required option: \"device\""),
            ),
            (
                &[("o", "ro")][..],
                Err("missing required option: \"device\""),
            ),
            (
                &[("size", "1g")][..],
                Err("quota size requested but no quota support"),
            ),
        ] {
            assert_eq!(
                validate(&opts(given)).map_err(|e| e.to_string()),
                expected.map_err(str::to_string),
                "{given:?}"
            );
        }
    }

    #[test]
    fn plans_split_flags_from_data() {
        assert_eq!(plan(&opts(&[])), None);
        let tmpfs = plan(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs"),
            ("o", "size=1m,uid=1000,noexec"),
        ]))
        .unwrap();
        assert_eq!(tmpfs.fs_type, "tmpfs");
        assert_eq!(tmpfs.source, "tmpfs");
        assert_eq!(tmpfs.flags, libc::MS_NOEXEC);
        assert_eq!(tmpfs.data, "size=1m,uid=1000");
        assert!(!tmpfs.is_bind());
        let bind = plan(&opts(&[
            ("type", "none"),
            ("device", "/srv"),
            ("o", "bind,ro"),
        ]))
        .unwrap();
        assert!(bind.is_bind());
        assert_eq!(bind.bind_remount_flags(), libc::MS_RDONLY);
        assert_eq!(bind.data, "");
        assert_eq!(
            bind.describe_failure("/v/_data", "no such file or directory"),
            "failed to mount local volume: mount /srv:/v/_data, flags: 0x1001: no such file or directory"
        );
        assert_eq!(
            tmpfs.describe_failure("/v", "x"),
            "failed to mount local volume: mount tmpfs:/v, flags: 0x8, data: size=1m,uid=1000: x"
        );
        // A later word wins: "ro,rw" is writable.
        let rw = plan(&opts(&[
            ("type", "none"),
            ("device", "/srv"),
            ("o", "bind,ro,rw"),
        ]))
        .unwrap();
        assert_eq!(rw.bind_remount_flags(), 0);
    }
}
