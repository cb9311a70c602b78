//! The seccomp filter of a container: Docker's profile format, and Berth's built-in default
//! profile, evaluated into the OCI runtime spec's `linux.seccomp` section.
//!
//! What dockerd does, and so what this does (docs.docker.com, "Seccomp security profiles for
//! Docker"):
//! - without `--security-opt seccomp=...` a container gets the built-in default profile: an
//!   allowlist (anything not listed fails with EPERM) that leaves out the syscalls that are not
//!   namespaced or that only a capability the container lacks would make useful;
//! - `--privileged` and `seccomp=unconfined` run without a filter;
//! - `seccomp=<profile>` applies a profile in Docker's JSON format (the CLI sends the file's
//!   content). That format is the OCI one plus conditions per rule: `includes`/`excludes` of
//!   capabilities, architectures (Go's names: amd64, arm64, ...) and a minimum kernel version,
//!   and an `archMap` naming each architecture's sub-architectures (x86_64: x86 and x32, so a
//!   32-bit syscall entry cannot bypass the filter).
//!
//! A profile is evaluated against the container's final capability set, the machine's
//! architecture and the running kernel, giving a plain [`LinuxSeccomp`] that the runtime
//! compiles (crates/runtime/src/seccomp.rs).

use std::collections::HashSet;
use std::path::PathBuf;

use bollard_stubs::models::HostConfig;
use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompArgBuilder,
    LinuxSeccompBuilder, LinuxSeccompFilterFlag, LinuxSeccompOperator, LinuxSyscallBuilder,
};
use serde::Deserialize;

use crate::error::{Error, Result};

/// A seccomp profile in Docker's format.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub default_action: LinuxSeccompAction,
    #[serde(default)]
    pub default_errno_ret: Option<u32>,
    /// The OCI form: architectures listed directly. Exclusive with `arch_map`.
    #[serde(default)]
    pub architectures: Vec<Arch>,
    /// Docker's form: per native architecture, the sub-architectures to filter too.
    #[serde(default)]
    pub arch_map: Vec<ArchMap>,
    #[serde(default)]
    pub flags: Vec<LinuxSeccompFilterFlag>,
    #[serde(default)]
    pub listener_path: Option<PathBuf>,
    #[serde(default)]
    pub listener_metadata: Option<String>,
    #[serde(default)]
    pub syscalls: Vec<Rule>,
}

/// One `archMap` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchMap {
    pub architecture: Arch,
    #[serde(default)]
    pub sub_architectures: Vec<Arch>,
}

/// One rule of a profile: `action` for the named syscalls, when its conditions hold.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rule {
    /// A single name (the format's older spelling); exclusive with `names`.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub names: Vec<String>,
    pub action: LinuxSeccompAction,
    #[serde(default)]
    pub errno_ret: Option<u32>,
    #[serde(default)]
    pub args: Vec<LinuxSeccompArg>,
    /// The rule applies only when all of these hold.
    #[serde(default)]
    pub includes: Condition,
    /// The rule does not apply when any of these holds.
    #[serde(default)]
    pub excludes: Condition,
}

/// The conditions of a rule.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Capability names (`CAP_SYS_ADMIN`).
    #[serde(default)]
    pub caps: Vec<String>,
    /// Architectures in Go's naming (`amd64`, `arm64`, `386`, `s390x`, ...).
    #[serde(default)]
    pub arches: Vec<String>,
    /// "MAJOR.MINOR": the running kernel must be at least this.
    #[serde(default)]
    pub min_kernel: Option<String>,
}

/// What a profile is evaluated against.
#[derive(Debug, Clone)]
pub struct Target {
    /// Capability names the container's process gets (bounding set).
    pub capabilities: HashSet<String>,
    /// The machine's architecture in Go's naming.
    pub arch: &'static str,
    /// The running kernel's (major, minor).
    pub kernel: (u32, u32),
}

impl Target {
    /// This machine, with the given capabilities.
    pub fn host(capabilities: &HashSet<Capability>) -> Self {
        Self {
            capabilities: capabilities.iter().map(|c| format!("CAP_{c}")).collect(),
            arch: go_arch(std::env::consts::ARCH),
            kernel: kernel_version(),
        }
    }
}

impl Profile {
    /// Parses a profile (Docker's format, or the OCI section, which is a subset).
    pub fn parse(text: &str) -> Result<Self> {
        let profile: Profile = serde_json::from_str(text)
            .map_err(|e| Error::invalid(format!("decoding seccomp profile failed: {e}")))?;
        if !profile.architectures.is_empty() && !profile.arch_map.is_empty() {
            return Err(Error::invalid(
                "decoding seccomp profile failed: use either 'architectures' or 'archMap'",
            ));
        }
        for rule in &profile.syscalls {
            if rule.name.is_some() && !rule.names.is_empty() {
                return Err(Error::invalid(
                    "decoding seccomp profile failed: use either 'name' or 'names'",
                ));
            }
        }
        Ok(profile)
    }

    /// The OCI section for a container: rules whose conditions do not hold are left out.
    pub fn evaluate(&self, target: &Target) -> Result<LinuxSeccomp> {
        let native = native_arch(target.arch);
        let architectures: Vec<Arch> = if !self.arch_map.is_empty() {
            self.arch_map
                .iter()
                .filter(|m| Some(m.architecture) == native)
                .flat_map(|m| std::iter::once(m.architecture).chain(m.sub_architectures.clone()))
                .collect()
        } else {
            self.architectures.clone()
        };
        let mut syscalls = Vec::new();
        for rule in &self.syscalls {
            if !rule.applies(target) {
                continue;
            }
            let names: Vec<String> = rule.name.iter().chain(rule.names.iter()).cloned().collect();
            if names.is_empty() {
                continue;
            }
            let mut syscall = LinuxSyscallBuilder::default()
                .names(names)
                .action(rule.action);
            if let Some(errno) = rule.errno_ret {
                syscall = syscall.errno_ret(errno);
            }
            if !rule.args.is_empty() {
                syscall = syscall.args(rule.args.clone());
            }
            syscalls.push(syscall.build().map_err(internal)?);
        }
        let mut seccomp = LinuxSeccompBuilder::default()
            .default_action(self.default_action)
            .syscalls(syscalls);
        if let Some(errno) = self.default_errno_ret {
            seccomp = seccomp.default_errno_ret(errno);
        }
        if !architectures.is_empty() {
            seccomp = seccomp.architectures(architectures);
        }
        if !self.flags.is_empty() {
            seccomp = seccomp.flags(self.flags.clone());
        }
        if let Some(path) = &self.listener_path {
            seccomp = seccomp.listener_path(path.clone());
        }
        if let Some(metadata) = &self.listener_metadata {
            seccomp = seccomp.listener_metadata(metadata.clone());
        }
        seccomp.build().map_err(internal)
    }
}

impl Rule {
    fn applies(&self, target: &Target) -> bool {
        let includes = &self.includes;
        if !includes
            .caps
            .iter()
            .all(|c| target.capabilities.contains(c.as_str()))
        {
            return false;
        }
        if !includes.arches.is_empty() && !includes.arches.iter().any(|a| a == target.arch) {
            return false;
        }
        if let Some(min) = includes.min_kernel.as_deref()
            && parse_kernel(min).is_some_and(|min| target.kernel < min)
        {
            return false;
        }
        let excludes = &self.excludes;
        if excludes
            .caps
            .iter()
            .any(|c| target.capabilities.contains(c.as_str()))
        {
            return false;
        }
        if excludes.arches.iter().any(|a| a == target.arch) {
            return false;
        }
        if let Some(min) = excludes.min_kernel.as_deref()
            && parse_kernel(min).is_some_and(|min| target.kernel >= min)
        {
            return false;
        }
        true
    }
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(format!("seccomp profile: {e}"))
}

/// Rust's architecture names to Go's, which profiles use.
fn go_arch(rust: &str) -> &'static str {
    match rust {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "mips64" => "mips64le",
        _ => "unknown",
    }
}

/// The libseccomp architecture of a Go architecture name.
fn native_arch(go: &str) -> Option<Arch> {
    Some(match go {
        "amd64" => Arch::ScmpArchX86_64,
        "386" => Arch::ScmpArchX86,
        "arm64" => Arch::ScmpArchAarch64,
        "arm" => Arch::ScmpArchArm,
        "ppc64le" => Arch::ScmpArchPpc64le,
        "s390x" => Arch::ScmpArchS390x,
        "riscv64" => Arch::ScmpArchRiscv64,
        "mips64le" => Arch::ScmpArchMipsel64,
        _ => return None,
    })
}

/// "6.18.44-foo" -> (6, 18).
fn parse_kernel(release: &str) -> Option<(u32, u32)> {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next().and_then(|m| m.parse().ok()).unwrap_or(0);
    Some((major, minor))
}

fn kernel_version() -> (u32, u32) {
    nix::sys::utsname::uname()
        .ok()
        .and_then(|u| parse_kernel(&u.release().to_string_lossy()))
        .unwrap_or((0, 0))
}

/// The filter of a container, from its HostConfig and final capability set: None when it
/// runs unconfined (`--privileged`, `seccomp=unconfined`), else the given profile or the
/// built-in default, evaluated.
pub fn for_container(
    host_config: &HostConfig,
    capabilities: &HashSet<Capability>,
) -> Result<Option<LinuxSeccomp>> {
    let mut chosen = None;
    for option in host_config.security_opt.iter().flatten() {
        if let Some(value) = option
            .strip_prefix("seccomp=")
            .or_else(|| option.strip_prefix("seccomp:"))
        {
            chosen = Some(value);
        }
    }
    let profile = match chosen {
        Some("unconfined") => return Ok(None),
        // dockerd keeps a profile that was asked for explicitly even with --privileged.
        Some("builtin") | None if host_config.privileged.unwrap_or(false) => return Ok(None),
        Some("builtin") | None => default_profile(),
        Some(value) => {
            // The docker CLI sends the file's content; a path is accepted too (berth, API).
            let text = if value.trim_start().starts_with('{') {
                value.to_string()
            } else {
                std::fs::read_to_string(value).map_err(|e| {
                    Error::invalid(format!("opening seccomp profile ({value}) failed: {e}"))
                })?
            };
            Profile::parse(&text)?
        }
    };
    profile.evaluate(&Target::host(capabilities)).map(Some)
}

/// `errno` values the default profile returns.
const EPERM: u32 = 1;
const ENOSYS: u32 = 38;

/// Namespace flags of clone(2) (<linux/sched.h>): CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC,
/// NEWUSER, NEWPID, NEWNET. Without CAP_SYS_ADMIN a container may not make namespaces (a new
/// user namespace would give it every capability inside, and reach kernel code paths that
/// assume privilege).
const CLONE_NAMESPACE_FLAGS: u64 =
    0x0002_0000 | 0x0200_0000 | 0x0400_0000 | 0x0800_0000 | 0x1000_0000 | 0x2000_0000 | 0x4000_0000;

/// personality(2) values a container may set (<linux/personality.h>): PER_LINUX, PER_LINUX32,
/// UNAME26, UNAME26|PER_LINUX32, and 0xffffffff, which only queries. Other flags (READ_IMPLIES_EXEC,
/// ADDR_NO_RANDOMIZE, ...) weaken the process's own hardening.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// Syscalls every container may make: the kernel's syscall table (include/uapi/asm-generic
/// and arch/x86/entry/syscalls) without those that act on the whole machine (time, modules,
/// swap, reboot, kexec, accounting, keyrings, which are not namespaced), those that need a
/// capability the default set lacks (listed in [`CAPABILITY_GATED`]), and obsolete or
/// unimplemented entries. Names a libseccomp release does not know are skipped by the
/// runtime; 32-bit names apply to the x86/x32 sub-architectures.
#[rustfmt::skip]
const ALLOWED: &[&str] = &[
    // Files and file descriptors.
    "access", "chdir", "chmod", "chown", "chown32", "close", "close_range", "copy_file_range",
    "creat", "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fadvise64_64",
    "fallocate", "fchdir", "fchmod", "fchmodat", "fchmodat2", "fchown", "fchown32", "fchownat",
    "fcntl", "fcntl64", "fdatasync", "fgetxattr", "flistxattr", "flock", "fremovexattr",
    "fsetxattr", "fstat", "fstat64", "ioctl", "fstatat64", "fstatfs", "fstatfs64", "fsync", "ftruncate",
    "ftruncate64", "futimesat", "getcwd", "getdents", "getdents64", "getxattr", "getxattrat",
    "lchown", "lchown32", "lgetxattr", "link", "linkat", "listxattr", "listxattrat",
    "llistxattr", "lremovexattr", "lseek", "_llseek", "lsetxattr", "lstat", "lstat64", "mkdir",
    "mkdirat", "mknod", "mknodat", "name_to_handle_at", "newfstatat", "open", "openat", "openat2",
    "pipe", "pipe2", "pread64", "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read",
    "readahead", "readlink", "readlinkat", "readv", "removexattr", "removexattrat", "rename",
    "renameat", "renameat2", "rmdir", "sendfile", "sendfile64", "setxattr", "setxattrat",
    "splice", "stat", "stat64", "statfs", "statfs64", "statx", "symlink", "symlinkat", "sync",
    "sync_file_range", "syncfs", "tee", "truncate", "truncate64", "umask", "unlink", "unlinkat",
    "utime", "utimensat", "utimensat_time64", "utimes", "vmsplice", "write", "writev",
    "cachestat", "file_getattr", "file_setattr",
    // Waiting on descriptors, events, timers.
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "eventfd", "eventfd2", "inotify_add_watch", "inotify_init", "inotify_init1",
    "inotify_rm_watch", "poll", "ppoll", "ppoll_time64", "pselect6", "pselect6_time64",
    "select", "_newselect", "signalfd", "signalfd4", "timerfd_create", "timerfd_gettime",
    "timerfd_gettime64", "timerfd_settime", "timerfd_settime64", "fanotify_mark",
    // Asynchronous I/O (not io_uring, whose operations run out of this filter's sight).
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_pgetevents_time64",
    "io_setup", "io_submit",
    // Memory.
    "brk", "madvise", "membarrier", "memfd_create", "mincore", "mlock", "mlock2", "mlockall",
    "mmap", "mmap2", "mprotect", "mremap", "mseal", "msync", "munlock", "munlockall", "munmap",
    "pkey_alloc", "pkey_free", "pkey_mprotect", "remap_file_pages", "map_shadow_stack",
    // Processes, threads, signals.
    "arch_prctl", "capget", "capset", "execve", "execveat", "exit", "exit_group", "fork",
    "get_robust_list", "get_thread_area", "getcpu", "getegid", "getegid32", "geteuid",
    "geteuid32", "getgid", "getgid32", "getgroups", "getgroups32", "getitimer", "getpgid",
    "getpgrp", "getpid", "getppid", "getpriority", "getresgid", "getresgid32", "getresuid",
    "getresuid32", "getrlimit", "getrusage", "getsid", "gettid", "getuid", "getuid32",
    "ioprio_get", "ioprio_set", "kill", "pause", "pidfd_open", "pidfd_send_signal", "prctl",
    "prlimit64", "process_mrelease", "restart_syscall", "rseq", "rt_sigaction",
    "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_sigtimedwait_time64", "rt_tgsigqueueinfo", "sched_get_priority_max",
    "sched_get_priority_min", "sched_getaffinity", "sched_getattr", "sched_getparam",
    "sched_getscheduler", "sched_rr_get_interval", "sched_rr_get_interval_time64",
    "sched_setaffinity", "sched_setattr", "sched_setparam", "sched_setscheduler",
    "sched_yield", "seccomp", "set_robust_list", "set_thread_area", "set_tid_address",
    "setfsgid", "setfsgid32", "setfsuid", "setfsuid32", "setgid", "setgid32", "setgroups",
    "setgroups32", "setitimer", "setpgid", "setpriority", "setregid", "setregid32",
    "setresgid", "setresgid32", "setresuid", "setresuid32", "setreuid", "setreuid32",
    "setrlimit", "setsid", "setuid", "setuid32", "sigaction", "sigaltstack", "signal",
    "sigpending", "sigprocmask", "sigreturn", "sigsuspend", "tgkill", "tkill", "ugetrlimit",
    "vfork", "wait4", "waitid", "waitpid", "landlock_add_rule", "landlock_create_ruleset",
    "landlock_restrict_self", "futex", "futex_requeue", "futex_time64", "futex_wait",
    "futex_waitv", "futex_wake",
    // Time (reading it; setting it is CAP_SYS_TIME's).
    "adjtimex", "alarm", "clock_getres", "clock_getres_time64", "clock_gettime",
    "clock_gettime64", "clock_nanosleep", "clock_nanosleep_time64", "gettimeofday",
    "nanosleep", "time", "timer_create", "timer_delete", "timer_getoverrun", "timer_gettime",
    "timer_gettime64", "timer_settime", "timer_settime64", "times",
    // Sockets and System V / POSIX IPC (namespaced).
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt",
    "listen", "recv", "recvfrom", "recvmmsg", "recvmmsg_time64", "recvmsg", "send", "sendmmsg",
    "sendmsg", "sendto", "setsockopt", "shutdown", "socket", "socketcall", "socketpair", "ipc",
    "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedreceive_time64",
    "mq_timedsend", "mq_timedsend_time64", "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd",
    "semctl", "semget", "semop", "semtimedop", "semtimedop_time64", "shmat", "shmctl", "shmdt",
    "shmget",
    // The machine, as the container's namespaces show it.
    "getrandom", "sethostname", "setdomainname", "sysinfo", "uname",
];

/// Syscalls allowed only when the container holds a capability, by capability.
#[rustfmt::skip]
const CAPABILITY_GATED: &[(&str, &[&str])] = &[
    ("CAP_SYS_ADMIN", &[
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "listmount", "lookup_dcookie", "mount", "mount_setattr", "move_mount", "open_tree",
        "open_tree_attr", "perf_event_open", "pivot_root", "quotactl", "quotactl_fd", "setns",
        "statmount", "swapoff", "swapon", "syslog", "umount", "umount2", "unshare",
    ]),
    ("CAP_SYS_BOOT", &["reboot"]),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_MODULE", &["delete_module", "finit_module", "init_module"]),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_PTRACE", &[
        "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
        "ptrace", "userfaultfd",
    ]),
    ("CAP_SYS_RAWIO", &["ioperm", "iopl"]),
    ("CAP_SYS_TIME", &[
        "clock_adjtime", "clock_adjtime64", "clock_settime", "clock_settime64", "settimeofday",
        "stime",
    ]),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    ("CAP_SYS_NICE", &[
        "get_mempolicy", "mbind", "migrate_pages", "move_pages", "set_mempolicy",
        "set_mempolicy_home_node",
    ]),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_BPF", &["bpf"]),
    ("CAP_PERFMON", &["perf_event_open"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
];

/// Syscalls no container gets from the default profile, whatever its capabilities: keyrings
/// (not namespaced), kexec, obsolete or never-implemented entries, io_uring (its operations run
/// out of the filter's sight), memfd_secret. Listed so that a test can check that every
/// syscall of the kernel is decided on; [`ALLOWED`] and [`CAPABILITY_GATED`] hold the rest,
/// with `personality`, `clone`, `clone3` and architecture-specific calls in rules of their
/// own ([`default_profile`]).
#[cfg_attr(not(test), allow(dead_code))]
#[rustfmt::skip]
const DENIED: &[&str] = &[
    "_sysctl", "add_key", "afs_syscall", "create_module", "epoll_ctl_old", "epoll_wait_old",
    "get_kernel_syms", "getpmsg", "io_uring_enter", "io_uring_register", "io_uring_setup",
    "kexec_file_load", "kexec_load", "keyctl", "memfd_secret", "nfsservctl", "putpmsg",
    "query_module", "request_key", "security", "sysfs", "tuxcall", "uselib", "ustat",
    "vserver",
];

/// Syscalls allowed from kernel 4.8 on without CAP_SYS_PTRACE: before 4.8 a tracer could
/// change a syscall after the filter ran (the seccomp check moved after ptrace in 4.8).
const PTRACE_SINCE_4_8: &[&str] = &["process_vm_readv", "process_vm_writev", "ptrace"];

/// Architecture-specific syscalls (Go architecture names).
const ARCH_SPECIFIC: &[(&[&str], &[&str])] = &[
    (&["amd64", "386"], &["modify_ldt"]),
    (
        &["s390x"],
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
    ),
    (
        &["arm", "arm64"],
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
        ],
    ),
    (&["ppc64le"], &["sync_file_range2"]),
];

fn allow(names: &[&str]) -> Rule {
    Rule {
        name: None,
        names: names.iter().map(|n| n.to_string()).collect(),
        action: LinuxSeccompAction::ScmpActAllow,
        errno_ret: None,
        args: Vec::new(),
        includes: Condition::default(),
        excludes: Condition::default(),
    }
}

fn arg(
    index: usize,
    value: u64,
    value_two: Option<u64>,
    op: LinuxSeccompOperator,
) -> LinuxSeccompArg {
    let mut builder = LinuxSeccompArgBuilder::default()
        .index(index)
        .value(value)
        .op(op);
    if let Some(two) = value_two {
        builder = builder.value_two(two);
    }
    builder.build().expect("a complete seccomp argument")
}

fn caps(names: &[&str]) -> Condition {
    Condition {
        caps: names.iter().map(|n| n.to_string()).collect(),
        ..Default::default()
    }
}

/// Berth's built-in profile (see [`ALLOWED`] and [`CAPABILITY_GATED`] for what it allows).
pub fn default_profile() -> Profile {
    let mut rules = vec![allow(ALLOWED)];
    for value in PERSONALITIES {
        rules.push(Rule {
            args: vec![arg(0, value, None, LinuxSeccompOperator::ScmpCmpEq)],
            ..allow(&["personality"])
        });
    }
    rules.push(Rule {
        includes: Condition {
            min_kernel: Some("4.8".into()),
            ..Default::default()
        },
        ..allow(PTRACE_SINCE_4_8)
    });
    for (arches, names) in ARCH_SPECIFIC {
        rules.push(Rule {
            includes: Condition {
                arches: arches.iter().map(|a| a.to_string()).collect(),
                ..Default::default()
            },
            ..allow(names)
        });
    }
    for (cap, names) in CAPABILITY_GATED {
        rules.push(Rule {
            includes: caps(&[cap]),
            ..allow(names)
        });
    }
    // clone(2) without namespace flags. The flags are the first argument on every architecture
    // but s390, where they come second.
    for (index, arches) in [
        (0, ["amd64", "386", "arm64", "arm", "ppc64le"].as_slice()),
        (1, &["s390x"]),
    ] {
        rules.push(Rule {
            args: vec![arg(
                index,
                CLONE_NAMESPACE_FLAGS,
                Some(0),
                LinuxSeccompOperator::ScmpCmpMaskedEq,
            )],
            includes: Condition {
                arches: arches.iter().map(|a| a.to_string()).collect(),
                ..Default::default()
            },
            excludes: caps(&["CAP_SYS_ADMIN"]),
            ..allow(&["clone"])
        });
    }
    // clone3(2) passes its flags in memory, out of the filter's sight: ENOSYS makes C libraries
    // fall back to clone(2), whose flags the rule above checks.
    rules.push(Rule {
        action: LinuxSeccompAction::ScmpActErrno,
        errno_ret: Some(ENOSYS),
        excludes: caps(&["CAP_SYS_ADMIN"]),
        ..allow(&["clone3"])
    });
    Profile {
        default_action: LinuxSeccompAction::ScmpActErrno,
        default_errno_ret: Some(EPERM),
        arch_map: vec![
            ArchMap {
                architecture: Arch::ScmpArchX86_64,
                sub_architectures: vec![Arch::ScmpArchX86, Arch::ScmpArchX32],
            },
            ArchMap {
                architecture: Arch::ScmpArchAarch64,
                sub_architectures: vec![Arch::ScmpArchArm],
            },
            ArchMap {
                architecture: Arch::ScmpArchS390x,
                sub_architectures: vec![Arch::ScmpArchS390],
            },
        ],
        syscalls: rules,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(caps: &[&str]) -> Target {
        Target {
            capabilities: caps.iter().map(|c| c.to_string()).collect(),
            arch: "amd64",
            kernel: (6, 1),
        }
    }

    fn allowed(seccomp: &LinuxSeccomp) -> Vec<(String, Option<usize>)> {
        seccomp
            .syscalls()
            .iter()
            .flatten()
            .filter(|s| s.action() == LinuxSeccompAction::ScmpActAllow)
            .flat_map(|s| {
                let args = s.args().as_ref().map(|a| a.len());
                s.names().iter().map(move |n| (n.clone(), args))
            })
            .collect()
    }

    fn unconditionally_allowed(seccomp: &LinuxSeccomp, name: &str) -> bool {
        allowed(seccomp)
            .iter()
            .any(|(n, args)| n == name && args.is_none())
    }

    #[test]
    fn default_profile_gates_by_capability() {
        let profile = default_profile();
        let plain = profile
            .evaluate(&target(&["CAP_CHOWN", "CAP_SYS_CHROOT"]))
            .unwrap();
        assert_eq!(plain.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(plain.default_errno_ret(), Some(EPERM));
        assert_eq!(
            plain.architectures().clone().unwrap(),
            vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
        );
        for name in ["read", "execve", "chroot", "ptrace", "modify_ldt"] {
            assert!(unconditionally_allowed(&plain, name), "{name}");
        }
        for name in [
            "mount", "unshare", "setns", "keyctl", "add_key", "reboot", "bpf", "clone",
        ] {
            assert!(!unconditionally_allowed(&plain, name), "{name}");
        }
        // clone only without namespace flags; clone3 answers ENOSYS.
        assert!(allowed(&plain).contains(&("clone".into(), Some(1))));
        let clone3 = plain
            .syscalls()
            .iter()
            .flatten()
            .find(|s| s.names().contains(&"clone3".to_string()))
            .unwrap();
        assert_eq!(clone3.errno_ret(), Some(ENOSYS));

        let admin = profile.evaluate(&target(&["CAP_SYS_ADMIN"])).unwrap();
        for name in ["mount", "unshare", "setns", "clone", "clone3"] {
            assert!(unconditionally_allowed(&admin, name), "{name}");
        }
        assert!(!allowed(&admin).contains(&("clone".into(), Some(1))));
        assert!(!unconditionally_allowed(&admin, "chroot"));
    }

    #[test]
    fn conditions_follow_docker_semantics() {
        let text = r#"{
            "defaultAction": "SCMP_ACT_ALLOW",
            "archMap": [{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
                        {"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]}],
            "syscalls": [
                {"names": ["a"], "action": "SCMP_ACT_ERRNO", "includes": {"caps": ["CAP_X", "CAP_Y"]}},
                {"names": ["b"], "action": "SCMP_ACT_ERRNO", "excludes": {"caps": ["CAP_X"]}},
                {"names": ["c"], "action": "SCMP_ACT_ERRNO", "includes": {"arches": ["arm64"]}},
                {"names": ["d"], "action": "SCMP_ACT_ERRNO", "includes": {"minKernel": "6.2"}},
                {"name": "e", "action": "SCMP_ACT_ERRNO", "errnoRet": 5,
                 "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}
            ]}"#;
        let profile = Profile::parse(text).unwrap();
        let seccomp = profile.evaluate(&target(&["CAP_X"])).unwrap();
        let names: Vec<String> = seccomp
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().clone())
            .collect();
        assert_eq!(names, vec!["e".to_string()]);
        assert_eq!(
            seccomp.architectures().clone().unwrap(),
            vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86]
        );
        let seccomp = profile
            .evaluate(&Target {
                kernel: (6, 2),
                ..target(&["CAP_X", "CAP_Y"])
            })
            .unwrap();
        let names: Vec<String> = seccomp
            .syscalls()
            .iter()
            .flatten()
            .flat_map(|s| s.names().clone())
            .collect();
        assert_eq!(names, vec!["a", "d", "e"]);
    }

    #[test]
    fn refuses_bad_profiles() {
        for text in [
            "not json",
            r#"{"syscalls": []}"#,
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86"],
                "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}"#,
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"name": "a", "names": ["b"], "action": "SCMP_ACT_ALLOW"}]}"#,
        ] {
            let error = Profile::parse(text).unwrap_err();
            assert!(
                error.message.starts_with("decoding seccomp profile failed"),
                "{text}: {}",
                error.message
            );
        }
    }

    #[test]
    fn chooses_the_profile_from_host_config() {
        let caps: HashSet<Capability> = [Capability::Chown].into();
        let host = |opts: &[&str], privileged: bool| HostConfig {
            security_opt: Some(opts.iter().map(|o| o.to_string()).collect()),
            privileged: Some(privileged),
            ..Default::default()
        };
        assert!(for_container(&host(&[], false), &caps).unwrap().is_some());
        assert!(for_container(&host(&[], true), &caps).unwrap().is_none());
        assert!(
            for_container(&host(&["seccomp=unconfined"], false), &caps)
                .unwrap()
                .is_none()
        );
        let given = r#"{"defaultAction": "SCMP_ACT_LOG"}"#;
        let seccomp = for_container(&host(&[&format!("seccomp={given}")], true), &caps)
            .unwrap()
            .unwrap();
        assert_eq!(seccomp.default_action(), LinuxSeccompAction::ScmpActLog);
        let missing = for_container(&host(&["seccomp=/nonexistent.json"], false), &caps);
        assert!(
            missing
                .unwrap_err()
                .message
                .contains("opening seccomp profile")
        );
    }

    #[test]
    fn every_syscall_of_the_kernel_headers_is_decided() {
        // The x86_64 syscall table of the installed kernel headers (linux-libc-dev).
        let Ok(header) = std::fs::read_to_string("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
        else {
            return;
        };
        let mut decided: HashSet<&str> = ALLOWED.iter().copied().collect();
        decided.extend(DENIED);
        decided.extend(
            CAPABILITY_GATED
                .iter()
                .flat_map(|(_, names)| names.iter().copied()),
        );
        decided.extend(
            ARCH_SPECIFIC
                .iter()
                .flat_map(|(_, names)| names.iter().copied()),
        );
        decided.extend(["personality", "clone", "clone3"]);
        let undecided: Vec<&str> = header
            .lines()
            .filter_map(|line| line.strip_prefix("#define __NR_"))
            .filter_map(|rest| rest.split_whitespace().next())
            .filter(|name| !decided.contains(name))
            .collect();
        assert!(undecided.is_empty(), "not in any list: {undecided:?}");
        let both: Vec<&&str> = ALLOWED.iter().filter(|n| DENIED.contains(n)).collect();
        assert!(both.is_empty(), "allowed and denied: {both:?}");
    }

    #[test]
    fn kernel_versions() {
        assert_eq!(parse_kernel("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(parse_kernel("4.8"), Some((4, 8)));
        assert_eq!(parse_kernel("5"), Some((5, 0)));
        assert_eq!(parse_kernel("x"), None);
    }
}
