//! fstab-style mount options (`"ro,nosuid,mode=755"`) turned into `mount(2)` arguments.
//!
//! OCI runtime-spec config.md "Mounts" says `options` are "mount options of the filesystem to
//! be used", in the style of mount(8): the generic ones become `MS_*` flags, propagation words
//! need separate `mount(2)` calls (the kernel rejects them mixed with other flags), and the
//! filesystem-specific rest (`mode=755`, `size=65536k`, `newinstance`, `gid=5`) is passed as the
//! `data` argument. The table is the one of mount(8) "FILESYSTEM-INDEPENDENT MOUNT OPTIONS".

use nix::mount::MsFlags;

/// `MS_NOSYMFOLLOW` (Linux 5.10) is missing from nix's `MsFlags`.
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// The parsed form of a mount's option list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountOptions {
    /// Flags the options set (`ro` sets `MS_RDONLY`, `rbind` sets `MS_BIND | MS_REC`).
    pub flags: MsFlags,
    /// Flags the options explicitly clear (`rw` clears `MS_RDONLY`, `suid` clears `MS_NOSUID`).
    /// A bind remount keeps the source's flags except these.
    pub cleared: MsFlags,
    /// Propagation changes (`MS_SHARED`, `MS_SLAVE | MS_REC`...), each one its own `mount(2)`
    /// call after the mount itself, in the order given.
    pub propagation: Vec<MsFlags>,
    /// Filesystem-specific options, passed joined by commas as `mount(2)`'s data.
    pub data: Vec<String>,
    /// `tmpcopyup`: copy the shadowed content of the destination into a new tmpfs (a runc
    /// extension).
    pub tmpcopyup: bool,
    /// `idmap` / `ridmap`: an id-mapped mount (runtime-spec config.md, Linux 5.12+).
    pub idmap: bool,
}

impl Default for MountOptions {
    fn default() -> Self {
        Self {
            flags: MsFlags::empty(),
            cleared: MsFlags::empty(),
            propagation: Vec::new(),
            data: Vec::new(),
            tmpcopyup: false,
            idmap: false,
        }
    }
}

/// What one option word does.
enum Effect {
    Set(MsFlags),
    Clear(MsFlags),
    Propagation(MsFlags),
    Tmpcopyup,
    Idmap,
    Nothing,
}

fn effect(word: &str) -> Option<Effect> {
    use Effect::*;
    Some(match word {
        "defaults" => Nothing,
        "ro" => Set(MsFlags::MS_RDONLY),
        "rw" => Clear(MsFlags::MS_RDONLY),
        "nosuid" => Set(MsFlags::MS_NOSUID),
        "suid" => Clear(MsFlags::MS_NOSUID),
        "nodev" => Set(MsFlags::MS_NODEV),
        "dev" => Clear(MsFlags::MS_NODEV),
        "noexec" => Set(MsFlags::MS_NOEXEC),
        "exec" => Clear(MsFlags::MS_NOEXEC),
        "sync" => Set(MsFlags::MS_SYNCHRONOUS),
        "async" => Clear(MsFlags::MS_SYNCHRONOUS),
        "dirsync" => Set(MsFlags::MS_DIRSYNC),
        "remount" => Set(MsFlags::MS_REMOUNT),
        "mand" => Set(MsFlags::MS_MANDLOCK),
        "nomand" => Clear(MsFlags::MS_MANDLOCK),
        "atime" => Clear(MsFlags::MS_NOATIME),
        "noatime" => Set(MsFlags::MS_NOATIME),
        "diratime" => Clear(MsFlags::MS_NODIRATIME),
        "nodiratime" => Set(MsFlags::MS_NODIRATIME),
        "relatime" => Set(MsFlags::MS_RELATIME),
        "norelatime" => Clear(MsFlags::MS_RELATIME),
        "strictatime" => Set(MsFlags::MS_STRICTATIME),
        "nostrictatime" => Clear(MsFlags::MS_STRICTATIME),
        "lazytime" => Set(MsFlags::MS_LAZYTIME),
        "nolazytime" => Clear(MsFlags::MS_LAZYTIME),
        "nosymfollow" => Set(MS_NOSYMFOLLOW),
        "symfollow" => Clear(MS_NOSYMFOLLOW),
        "silent" => Set(MsFlags::MS_SILENT),
        "loud" => Clear(MsFlags::MS_SILENT),
        "bind" => Set(MsFlags::MS_BIND),
        "rbind" => Set(MsFlags::MS_BIND | MsFlags::MS_REC),
        "private" => Propagation(MsFlags::MS_PRIVATE),
        "rprivate" => Propagation(MsFlags::MS_PRIVATE | MsFlags::MS_REC),
        "shared" => Propagation(MsFlags::MS_SHARED),
        "rshared" => Propagation(MsFlags::MS_SHARED | MsFlags::MS_REC),
        "slave" => Propagation(MsFlags::MS_SLAVE),
        "rslave" => Propagation(MsFlags::MS_SLAVE | MsFlags::MS_REC),
        "unbindable" => Propagation(MsFlags::MS_UNBINDABLE),
        "runbindable" => Propagation(MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
        "tmpcopyup" => Tmpcopyup,
        "idmap" | "ridmap" => Idmap,
        _ => return None,
    })
}

/// Maps a propagation word (`"rslave"`, `"shared"`...) to its flags, as used by
/// `linux.rootfsPropagation` (config-linux.md "Rootfs Mount Propagation").
pub fn propagation_flags(word: &str) -> Option<MsFlags> {
    match effect(word) {
        Some(Effect::Propagation(flags)) => Some(flags),
        _ => None,
    }
}

impl MountOptions {
    /// Parses an option list. Later words win over earlier ones (`ro,rw` is read-write), as
    /// with mount(8). Words that are not generic options go to [`MountOptions::data`].
    pub fn parse<S: AsRef<str>>(options: &[S]) -> Self {
        let mut parsed = Self::default();
        for word in options.iter().map(AsRef::as_ref) {
            match effect(word) {
                Some(Effect::Set(flags)) => {
                    parsed.flags.insert(flags);
                    parsed.cleared.remove(flags);
                }
                Some(Effect::Clear(flags)) => {
                    parsed.flags.remove(flags);
                    parsed.cleared.insert(flags);
                }
                Some(Effect::Propagation(flags)) => parsed.propagation.push(flags),
                Some(Effect::Tmpcopyup) => parsed.tmpcopyup = true,
                Some(Effect::Idmap) => parsed.idmap = true,
                Some(Effect::Nothing) => {}
                None if word.is_empty() => {}
                None => parsed.data.push(word.to_owned()),
            }
        }
        parsed
    }

    /// True for `bind` / `rbind` mounts.
    pub fn is_bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }

    /// The data argument of `mount(2)`, or `None` when there is none.
    pub fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }

    /// Flags that a bind mount ignores and so must be applied by a second
    /// `MS_BIND | MS_REMOUNT` call (mount(2): "the remaining bits in mountflags are ignored"
    /// for MS_BIND, apart from MS_REC).
    pub fn bind_remount_flags(&self) -> MsFlags {
        self.flags - (MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generic_flags_and_data_are_split() {
        let options = MountOptions::parse(&["nosuid", "strictatime", "mode=755", "size=65536k"]);
        assert_eq!(options.flags, MsFlags::MS_NOSUID | MsFlags::MS_STRICTATIME);
        assert_eq!(
            options.data_string().as_deref(),
            Some("mode=755,size=65536k")
        );
        assert!(!options.is_bind());
        assert!(options.propagation.is_empty());
    }

    #[test]
    fn devpts_options() {
        let options = MountOptions::parse(&[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ]);
        assert_eq!(options.flags, MsFlags::MS_NOSUID | MsFlags::MS_NOEXEC);
        assert_eq!(
            options.data,
            ["newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]
        );
    }

    #[test]
    fn later_words_win() {
        let options = MountOptions::parse(&["ro", "rw"]);
        assert!(!options.flags.contains(MsFlags::MS_RDONLY));
        assert!(options.cleared.contains(MsFlags::MS_RDONLY));
        let options = MountOptions::parse(&["rw", "ro"]);
        assert!(options.flags.contains(MsFlags::MS_RDONLY));
        assert!(!options.cleared.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn every_generic_word_is_a_flag() {
        let table: &[(&str, MsFlags, bool)] = &[
            ("ro", MsFlags::MS_RDONLY, true),
            ("rw", MsFlags::MS_RDONLY, false),
            ("nosuid", MsFlags::MS_NOSUID, true),
            ("suid", MsFlags::MS_NOSUID, false),
            ("nodev", MsFlags::MS_NODEV, true),
            ("dev", MsFlags::MS_NODEV, false),
            ("noexec", MsFlags::MS_NOEXEC, true),
            ("exec", MsFlags::MS_NOEXEC, false),
            ("sync", MsFlags::MS_SYNCHRONOUS, true),
            ("async", MsFlags::MS_SYNCHRONOUS, false),
            ("dirsync", MsFlags::MS_DIRSYNC, true),
            ("remount", MsFlags::MS_REMOUNT, true),
            ("mand", MsFlags::MS_MANDLOCK, true),
            ("nomand", MsFlags::MS_MANDLOCK, false),
            ("atime", MsFlags::MS_NOATIME, false),
            ("noatime", MsFlags::MS_NOATIME, true),
            ("diratime", MsFlags::MS_NODIRATIME, false),
            ("nodiratime", MsFlags::MS_NODIRATIME, true),
            ("relatime", MsFlags::MS_RELATIME, true),
            ("norelatime", MsFlags::MS_RELATIME, false),
            ("strictatime", MsFlags::MS_STRICTATIME, true),
            ("nostrictatime", MsFlags::MS_STRICTATIME, false),
            ("lazytime", MsFlags::MS_LAZYTIME, true),
            ("nosymfollow", MS_NOSYMFOLLOW, true),
            ("bind", MsFlags::MS_BIND, true),
        ];
        for (word, flag, set) in table {
            let options = MountOptions::parse(&[*word]);
            if *set {
                assert_eq!(options.flags, *flag, "{word}");
            } else {
                assert!(options.flags.is_empty(), "{word}");
                assert_eq!(options.cleared, *flag, "{word}");
            }
            assert!(options.data.is_empty(), "{word}");
        }
        let options = MountOptions::parse(&["rbind"]);
        assert_eq!(options.flags, MsFlags::MS_BIND | MsFlags::MS_REC);
        assert!(options.is_bind());
    }

    #[test]
    fn propagation_is_kept_apart_in_order() {
        let options = MountOptions::parse(&["rbind", "rprivate", "slave", "runbindable", "ro"]);
        assert_eq!(
            options.propagation,
            [
                MsFlags::MS_PRIVATE | MsFlags::MS_REC,
                MsFlags::MS_SLAVE,
                MsFlags::MS_UNBINDABLE | MsFlags::MS_REC
            ]
        );
        assert_eq!(options.bind_remount_flags(), MsFlags::MS_RDONLY);
        for (word, flags) in [
            ("private", MsFlags::MS_PRIVATE),
            ("rprivate", MsFlags::MS_PRIVATE | MsFlags::MS_REC),
            ("shared", MsFlags::MS_SHARED),
            ("rshared", MsFlags::MS_SHARED | MsFlags::MS_REC),
            ("slave", MsFlags::MS_SLAVE),
            ("rslave", MsFlags::MS_SLAVE | MsFlags::MS_REC),
            ("unbindable", MsFlags::MS_UNBINDABLE),
            ("runbindable", MsFlags::MS_UNBINDABLE | MsFlags::MS_REC),
        ] {
            assert_eq!(propagation_flags(word), Some(flags), "{word}");
        }
        assert_eq!(propagation_flags("ro"), None);
        assert_eq!(propagation_flags("bogus"), None);
    }

    #[test]
    fn extensions_are_recognised() {
        let options = MountOptions::parse(&["tmpcopyup", "idmap", "", "defaults"]);
        assert!(options.tmpcopyup);
        assert!(options.idmap);
        assert!(options.flags.is_empty());
        assert_eq!(options.data_string(), None);
        assert!(MountOptions::parse(&["ridmap"]).idmap);
    }
}
