//! Seccomp filter of the container process (config-linux.md, "Seccomp"; seccomp(2),
//! seccomp_rule_add(3)).
//!
//! The spec is first translated into a [`FilterPlan`] (plain data, unit-tested), then
//! [`load`] builds a libseccomp filter from the plan and loads it into the calling process.
//!
//! Translation rules, each a fact of the spec or of libseccomp:
//! - `SCMP_ACT_ERRNO` and `SCMP_ACT_TRACE` take `errnoRet` (`defaultErrnoRet` for the default
//!   action), EPERM when absent (config-linux.md).
//! - A syscall name the linked libseccomp does not know is skipped with a debug log: Docker's
//!   default profile lists syscalls of every kernel generation.
//! - A rule whose action equals the default action is skipped: libseccomp refuses it (EACCES)
//!   and it changes nothing.
//! - Conditions of one rule are ANDed, but libseccomp accepts only one comparison per argument
//!   index in a rule; when a rule compares the same argument twice, each condition becomes its
//!   own rule (ORed), which is how profiles such as Docker's are meant to be read.
//! - `SCMP_CMP_MASKED_EQ` compares `(arg & value) == valueTwo`.
//!
//! The filter does not set `no_new_privs` itself (libseccomp would by default): whether the
//! process gets it is the spec's `process.noNewPrivileges`, applied by the caller. Without it,
//! loading needs `CAP_SYS_ADMIN`, so the caller then loads the filter before dropping
//! capabilities.

use std::os::fd::{FromRawFd, OwnedFd};
use std::path::Path;

use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterAttr, ScmpFilterContext,
    ScmpSyscall, error::SeccompError,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompFilterFlag,
    LinuxSeccompOperator, LinuxSyscall,
};

use crate::{Error, Result};

/// Number of syscall arguments a seccomp filter can inspect (`struct seccomp_data`).
const SYSCALL_ARGS: usize = 6;

/// `SECCOMP_SET_MODE_FILTER` of seccomp(2).
const SECCOMP_SET_MODE_FILTER: libc::c_uint = 1;
/// Filter flags of seccomp(2) (`<linux/seccomp.h>`).
const SECCOMP_FILTER_FLAG_TSYNC: libc::c_uint = 1 << 0;
const SECCOMP_FILTER_FLAG_LOG: libc::c_uint = 1 << 1;
const SECCOMP_FILTER_FLAG_SPEC_ALLOW: libc::c_uint = 1 << 2;
const SECCOMP_FILTER_FLAG_NEW_LISTENER: libc::c_uint = 1 << 3;
const SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: libc::c_uint = 1 << 5;

/// One libseccomp rule: `action` when `syscall` is called and all `conditions` hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Syscall name, as libseccomp resolves it.
    pub syscall: String,
    /// What the filter does on a match.
    pub action: ScmpAction,
    /// Argument comparisons, all of which must hold.
    pub conditions: Vec<ScmpArgCompare>,
}

/// A seccomp filter described as data: what [`load`] installs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterPlan {
    /// Action for syscalls no rule matches.
    pub default_action: ScmpAction,
    /// Architectures besides the native one.
    pub architectures: Vec<ScmpArch>,
    /// Filter attributes to turn on (TSYNC, LOG, SSB, WAITKILL).
    pub attributes: Vec<ScmpFilterAttr>,
    /// Rules in spec order; syscalls unknown to libseccomp already left out.
    pub rules: Vec<Rule>,
}

impl FilterPlan {
    /// Translates the spec's `linux.seccomp` section.
    ///
    /// Errors (InvalidArgument) on an architecture, flag or errno value this build cannot
    /// honour, and on an argument index beyond the six a filter can see.
    pub fn from_spec(seccomp: &LinuxSeccomp) -> Result<Self> {
        let default_action = action(seccomp.default_action(), seccomp.default_errno_ret())?;
        let architectures = seccomp
            .architectures()
            .iter()
            .flatten()
            .map(|a| arch(*a))
            .collect::<Result<Vec<_>>>()?;
        let mut attributes = Vec::new();
        for flag in seccomp.flags().iter().flatten() {
            if !flag_supported(*flag) {
                return Err(Error::InvalidArgument(format!(
                    "seccomp flag {} is not supported by this kernel or libseccomp",
                    flag_name(*flag)
                )));
            }
            attributes.push(flag_attribute(*flag));
        }
        let mut rules = Vec::new();
        for syscall in seccomp.syscalls().iter().flatten() {
            rules_of(syscall, default_action, &mut rules)?;
        }
        Ok(Self {
            default_action,
            architectures,
            attributes,
            rules,
        })
    }

    /// Whether some rule (or the default) notifies a user-space agent.
    pub fn uses_notify(&self) -> bool {
        self.default_action == ScmpAction::Notify
            || self.rules.iter().any(|r| r.action == ScmpAction::Notify)
    }

    /// The seccomp(2) flags that the filter attributes stand for.
    fn kernel_flags(&self) -> libc::c_uint {
        self.attributes
            .iter()
            .map(|attribute| match attribute {
                ScmpFilterAttr::CtlTsync => SECCOMP_FILTER_FLAG_TSYNC,
                ScmpFilterAttr::CtlLog => SECCOMP_FILTER_FLAG_LOG,
                ScmpFilterAttr::CtlSsb => SECCOMP_FILTER_FLAG_SPEC_ALLOW,
                ScmpFilterAttr::CtlWaitkill => SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV,
                _ => 0,
            })
            .fold(0, |all, flag| all | flag)
    }

    /// Builds the filter with libseccomp and loads it into the calling process; returns the
    /// user-notification listener when an action is `SCMP_ACT_NOTIFY`.
    ///
    /// libseccomp remembers the listener's number in its global state: this gives the
    /// ownership to the caller, so nothing in this process may reset libseccomp's global state
    /// afterwards (nothing here does).
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        let filter = self.build()?;
        filter.load().map_err(scmp("load seccomp filter"))?;
        if !self.uses_notify() {
            return Ok(None);
        }
        let fd = filter
            .get_notify_fd()
            .map_err(scmp("get seccomp listener"))?;
        // SAFETY: the kernel just created this listener for our filter (NEW_LISTENER); nobody
        // else in this process owns or closes it (see the ownership note above).
        Ok(Some(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Builds the libseccomp filter (not loaded).
    pub fn build(&self) -> Result<ScmpFilterContext> {
        let mut filter =
            ScmpFilterContext::new(self.default_action).map_err(scmp("create seccomp filter"))?;
        // Report the kernel's errno on failure instead of libseccomp's generic ECANCELED.
        filter
            .set_api_sysrawrc(true)
            .map_err(scmp("set seccomp attribute SYSRAWRC"))?;
        filter
            .set_ctl_nnp(false)
            .map_err(scmp("set seccomp attribute NNP"))?;
        for attribute in &self.attributes {
            filter
                .set_filter_attr(*attribute, 1)
                .map_err(scmp(format!("set seccomp attribute {attribute:?}")))?;
        }
        for arch in &self.architectures {
            filter
                .add_arch(*arch)
                .map_err(scmp(format!("add seccomp architecture {arch:?}")))?;
        }
        for rule in &self.rules {
            // Resolved again here: `from_spec` kept only names that resolve.
            let syscall = ScmpSyscall::from_name(&rule.syscall)
                .map_err(scmp(format!("resolve syscall {}", rule.syscall)))?;
            filter
                .add_rule_conditional(rule.action, syscall, &rule.conditions)
                .map_err(scmp(format!("add seccomp rule for {}", rule.syscall)))?;
        }
        Ok(filter)
    }
}

/// A filter ready to be loaded by the process it will confine: prepared by the runtime before
/// it forks, loaded by the container's process (or exec'd process) just before execve.
#[derive(Debug)]
pub enum PreparedFilter {
    /// A compiled program (`struct sock_filter` array) and the seccomp(2) flags to load it
    /// with: read from the compiled-filter cache or compiled just now.
    Program { bpf: Vec<u8>, flags: libc::c_uint },
    /// A filter libseccomp loads itself: one with a user-notification listener (libseccomp
    /// must own the listener), or any filter when no cache is used.
    Plan(FilterPlan),
}

/// Translates the spec's filter and, with a `cache` directory, compiles it once per distinct
/// filter: compiling a profile of Docker's size (~350 rules on three architectures) costs
/// libseccomp about 8 ms, which would be paid by every container start; reading the program
/// back costs microseconds.
///
/// Cache entries are named by the SHA-256 of the spec's seccomp section, the linked
/// libseccomp's version and its API level (which decide the program generated). The directory
/// must be writable by root only: its programs are loaded as they are. Entries are written to
/// a temporary name and renamed, so a concurrent reader sees a whole program or none.
pub fn prepare(seccomp: &LinuxSeccomp, cache: Option<&Path>) -> Result<PreparedFilter> {
    let plan = FilterPlan::from_spec(seccomp)?;
    let Some(cache) = cache.filter(|_| !plan.uses_notify()) else {
        return Ok(PreparedFilter::Plan(plan));
    };
    let flags = plan.kernel_flags();
    let path = cache.join(format!("{}.bpf", cache_key(seccomp)));
    if let Ok(bpf) = std::fs::read(&path)
        && !bpf.is_empty()
        && bpf.len() % SOCK_FILTER_SIZE == 0
    {
        return Ok(PreparedFilter::Program { bpf, flags });
    }
    let filter = plan.build()?;
    std::fs::create_dir_all(cache)
        .map_err(|e| Error::sys(format!("create {}", cache.display()), e))?;
    let temporary = cache.join(format!(".{}.{}", std::process::id(), path_name(&path)));
    let written = (|| -> Result<Vec<u8>> {
        let mut file = std::fs::File::create(&temporary)
            .map_err(|e| Error::sys(format!("create {}", temporary.display()), e))?;
        filter
            .export_bpf(&mut file)
            .map_err(scmp("export seccomp program"))?;
        let bpf = std::fs::read(&temporary)
            .map_err(|e| Error::sys(format!("read {}", temporary.display()), e))?;
        std::fs::rename(&temporary, &path)
            .map_err(|e| Error::sys(format!("rename to {}", path.display()), e))?;
        Ok(bpf)
    })();
    match written {
        Ok(bpf) => Ok(PreparedFilter::Program { bpf, flags }),
        Err(error) => {
            // The cache is an optimisation: without it, libseccomp loads the filter itself.
            tracing::debug!("seccomp cache: {error}");
            let _ = std::fs::remove_file(&temporary);
            Ok(PreparedFilter::Plan(plan))
        }
    }
}

fn path_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// `sizeof(struct sock_filter)` (<linux/filter.h>): code u16, jt u8, jf u8, k u32.
const SOCK_FILTER_SIZE: usize = 8;

fn cache_key(seccomp: &LinuxSeccomp) -> String {
    use sha2::Digest;
    let mut hash = sha2::Sha256::new();
    hash.update(serde_json::to_vec(seccomp).unwrap_or_default());
    if let Ok(version) = libseccomp::ScmpVersion::current() {
        hash.update(format!(
            "libseccomp {}.{}.{} api {}",
            version.major,
            version.minor,
            version.micro,
            libseccomp::get_api()
        ));
    }
    hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

impl PreparedFilter {
    /// Loads the filter into the calling process. Returns the user-notification listener when
    /// an action is `SCMP_ACT_NOTIFY`; the caller sends it to the agent at `listenerPath`.
    pub fn load(&self) -> Result<Option<OwnedFd>> {
        match self {
            Self::Program { bpf, flags } => {
                load_program(bpf, *flags)?;
                Ok(None)
            }
            Self::Plan(plan) => plan.load(),
        }
    }
}

/// `struct sock_fprog` (<linux/filter.h>).
#[repr(C)]
struct SockFprog {
    len: libc::c_ushort,
    filter: *const u8,
}

/// Installs a compiled program with seccomp(2). Like libseccomp's load, this needs
/// no_new_privs or CAP_SYS_ADMIN.
fn load_program(bpf: &[u8], flags: libc::c_uint) -> Result<()> {
    let len = libc::c_ushort::try_from(bpf.len() / SOCK_FILTER_SIZE).map_err(|_| {
        Error::InvalidArgument("seccomp program is longer than the kernel accepts".into())
    })?;
    let program = SockFprog {
        len,
        filter: bpf.as_ptr(),
    };
    // SAFETY: `program` points at `len` whole sock_filter entries that live through the call;
    // the kernel copies the program and keeps no reference to our memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            &program as *const SockFprog,
        )
    };
    if rc != 0 {
        return Err(Error::sys(
            "load seccomp filter",
            std::io::Error::last_os_error(),
        ));
    }
    Ok(())
}

/// Builds and loads the filter of `linux.seccomp` into the calling process, with no cache (see
/// [`prepare`] and [`PreparedFilter::load`]).
pub fn load(seccomp: &LinuxSeccomp) -> Result<Option<OwnedFd>> {
    FilterPlan::from_spec(seccomp)?.load()
}

/// Action names this build supports (for `features`). `SCMP_ACT_NOTIFY` needs libseccomp API
/// level 6 (kernel 5.5 and libseccomp 2.5).
pub fn supported_actions() -> Vec<&'static str> {
    let mut actions = vec![
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_KILL_THREAD",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_LOG",
    ];
    if libseccomp::get_api() >= 6 {
        actions.push("SCMP_ACT_NOTIFY");
    }
    actions
}

/// Comparison operator names (for `features`).
pub fn supported_operators() -> Vec<&'static str> {
    vec![
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ]
}

/// Architecture names the linked libseccomp accepts (for `features`), found by adding each to
/// a scratch filter: an older libseccomp lacks the newest architectures.
pub fn supported_archs() -> Vec<&'static str> {
    let Ok(mut filter) = ScmpFilterContext::new(ScmpAction::Allow) else {
        return Vec::new();
    };
    ALL_ARCHS
        .iter()
        .filter(|(_, spec)| arch(*spec).is_ok_and(|a| filter.add_arch(a).is_ok()))
        .map(|(name, _)| *name)
        .collect()
}

/// Flag names that both the kernel and libseccomp support (for `features`).
pub fn supported_flags() -> Vec<&'static str> {
    ALL_FLAGS
        .iter()
        .filter(|f| flag_supported(**f))
        .map(|f| flag_name(*f))
        .collect()
}

/// Every architecture of the spec with its name.
const ALL_ARCHS: [(&str, Arch); 24] = [
    ("SCMP_ARCH_NATIVE", Arch::ScmpArchNative),
    ("SCMP_ARCH_X86", Arch::ScmpArchX86),
    ("SCMP_ARCH_X86_64", Arch::ScmpArchX86_64),
    ("SCMP_ARCH_X32", Arch::ScmpArchX32),
    ("SCMP_ARCH_ARM", Arch::ScmpArchArm),
    ("SCMP_ARCH_AARCH64", Arch::ScmpArchAarch64),
    ("SCMP_ARCH_MIPS", Arch::ScmpArchMips),
    ("SCMP_ARCH_MIPS64", Arch::ScmpArchMips64),
    ("SCMP_ARCH_MIPS64N32", Arch::ScmpArchMips64n32),
    ("SCMP_ARCH_MIPSEL", Arch::ScmpArchMipsel),
    ("SCMP_ARCH_MIPSEL64", Arch::ScmpArchMipsel64),
    ("SCMP_ARCH_MIPSEL64N32", Arch::ScmpArchMipsel64n32),
    ("SCMP_ARCH_PPC", Arch::ScmpArchPpc),
    ("SCMP_ARCH_PPC64", Arch::ScmpArchPpc64),
    ("SCMP_ARCH_PPC64LE", Arch::ScmpArchPpc64le),
    ("SCMP_ARCH_S390", Arch::ScmpArchS390),
    ("SCMP_ARCH_S390X", Arch::ScmpArchS390x),
    ("SCMP_ARCH_PARISC", Arch::ScmpArchParisc),
    ("SCMP_ARCH_PARISC64", Arch::ScmpArchParisc64),
    ("SCMP_ARCH_RISCV64", Arch::ScmpArchRiscv64),
    ("SCMP_ARCH_LOONGARCH64", Arch::ScmpArchLoongarch64),
    ("SCMP_ARCH_M68K", Arch::ScmpArchM68k),
    ("SCMP_ARCH_SH", Arch::ScmpArchSh),
    ("SCMP_ARCH_SHEB", Arch::ScmpArchSheb),
];

/// Every filter flag of the spec.
const ALL_FLAGS: [LinuxSeccompFilterFlag; 4] = [
    LinuxSeccompFilterFlag::SeccompFilterFlagTsync,
    LinuxSeccompFilterFlag::SeccompFilterFlagLog,
    LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow,
    LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv,
];

/// The spec's name of a flag.
fn flag_name(flag: LinuxSeccompFilterFlag) -> &'static str {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => "SECCOMP_FILTER_FLAG_TSYNC",
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => "SECCOMP_FILTER_FLAG_LOG",
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
        }
    }
}

/// The libseccomp attribute that makes libseccomp pass a flag to seccomp(2).
fn flag_attribute(flag: LinuxSeccompFilterFlag) -> ScmpFilterAttr {
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => ScmpFilterAttr::CtlTsync,
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => ScmpFilterAttr::CtlLog,
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => ScmpFilterAttr::CtlSsb,
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => ScmpFilterAttr::CtlWaitkill,
    }
}

/// Whether the linked libseccomp can pass `flag` (LOG since 2.4, SSB since 2.5, WAITKILL since
/// 2.6) and the running kernel accepts it.
fn flag_supported(flag: LinuxSeccompFilterFlag) -> bool {
    let (major, minor) = libseccomp::ScmpVersion::current()
        .map(|v| (v.major, v.minor))
        .unwrap_or((0, 0));
    let library = |want_minor: u32| (major, minor) >= (2, want_minor);
    match flag {
        LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
            kernel_accepts_flags(SECCOMP_FILTER_FLAG_TSYNC)
        }
        LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
            library(4) && kernel_accepts_flags(SECCOMP_FILTER_FLAG_LOG)
        }
        LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
            library(5) && kernel_accepts_flags(SECCOMP_FILTER_FLAG_SPEC_ALLOW)
        }
        // The kernel takes WAIT_KILLABLE_RECV only together with NEW_LISTENER (seccomp(2)).
        LinuxSeccompFilterFlag::SeccompFilterFlagWaitKillableRecv => {
            library(6)
                && kernel_accepts_flags(
                    SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | SECCOMP_FILTER_FLAG_NEW_LISTENER,
                )
        }
    }
}

/// Probes the kernel: seccomp(2) checks the flags before it reads the program, so a NULL
/// program fails with EFAULT when the flags are known and EINVAL when not (ENOSYS without
/// seccomp at all). Nothing is installed either way.
fn kernel_accepts_flags(flags: libc::c_uint) -> bool {
    // SAFETY: a NULL program pointer makes the kernel fail the call (EFAULT or EINVAL, or
    // EACCES) without installing a filter or touching our memory.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            SECCOMP_SET_MODE_FILTER,
            flags,
            std::ptr::null::<libc::c_void>(),
        )
    };
    rc != 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EFAULT)
}

/// libseccomp action of a spec action; `errno_ret` defaults to EPERM.
fn action(action: LinuxSeccompAction, errno_ret: Option<u32>) -> Result<ScmpAction> {
    let value = || -> Result<u16> {
        let value = errno_ret.unwrap_or(libc::EPERM as u32);
        u16::try_from(value).map_err(|_| {
            Error::InvalidArgument(format!("seccomp errnoRet {value} is out of range"))
        })
    };
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(i32::from(value()?)),
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(value()?),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
    })
}

/// libseccomp architecture of a spec architecture.
fn arch(arch: Arch) -> Result<ScmpArch> {
    Ok(match arch {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    })
}

/// libseccomp comparison of a spec argument condition.
fn condition(arg: &LinuxSeccompArg) -> Result<ScmpArgCompare> {
    if arg.index() >= SYSCALL_ARGS {
        return Err(Error::InvalidArgument(format!(
            "seccomp argument index {} is out of range (0-5)",
            arg.index()
        )));
    }
    let (op, datum) = match arg.op() {
        LinuxSeccompOperator::ScmpCmpNe => (ScmpCompareOp::NotEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpLt => (ScmpCompareOp::Less, arg.value()),
        LinuxSeccompOperator::ScmpCmpLe => (ScmpCompareOp::LessOrEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpEq => (ScmpCompareOp::Equal, arg.value()),
        LinuxSeccompOperator::ScmpCmpGe => (ScmpCompareOp::GreaterEqual, arg.value()),
        LinuxSeccompOperator::ScmpCmpGt => (ScmpCompareOp::Greater, arg.value()),
        // `value` is the mask and `valueTwo` the value the masked argument must equal.
        LinuxSeccompOperator::ScmpCmpMaskedEq => (
            ScmpCompareOp::MaskedEqual(arg.value()),
            arg.value_two().unwrap_or(0),
        ),
    };
    // Checked above: the index is below 6.
    Ok(ScmpArgCompare::new(arg.index() as u32, op, datum))
}

/// Appends the rules of one spec syscall entry to `rules`.
fn rules_of(syscall: &LinuxSyscall, default: ScmpAction, rules: &mut Vec<Rule>) -> Result<()> {
    let action = action(syscall.action(), syscall.errno_ret())?;
    if action == default {
        tracing::debug!(names = ?syscall.names(), "seccomp rule repeats the default action, skipped");
        return Ok(());
    }
    let args = syscall.args().as_deref().unwrap_or_default();
    let conditions = args.iter().map(condition).collect::<Result<Vec<_>>>()?;
    let mut indexes: Vec<usize> = args.iter().map(|a| a.index()).collect();
    indexes.sort_unstable();
    let repeats_an_index = indexes.windows(2).any(|w| w[0] == w[1]);
    // One rule with all conditions (AND), or one rule per condition when an argument is
    // compared more than once, which libseccomp cannot hold in one rule.
    let groups: Vec<Vec<ScmpArgCompare>> = if repeats_an_index {
        conditions.into_iter().map(|c| vec![c]).collect()
    } else {
        vec![conditions]
    };
    for name in syscall.names() {
        if ScmpSyscall::from_name(name).is_err() {
            tracing::debug!(syscall = %name, "syscall unknown to libseccomp, seccomp rule skipped");
            continue;
        }
        for group in &groups {
            rules.push(Rule {
                syscall: name.clone(),
                action,
                conditions: group.clone(),
            });
        }
    }
    Ok(())
}

/// Wraps a libseccomp error with its step; the errno is the kernel's or libseccomp's when it
/// reports one.
fn scmp(what: impl Into<String>) -> impl FnOnce(SeccompError) -> Error {
    let what = what.into();
    move |e| {
        let source = match e.sysrawrc() {
            Some(rc) if rc < 0 => std::io::Error::from_raw_os_error(-rc),
            _ => std::io::Error::other(e.to_string()),
        };
        Error::sys(what, source)
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd;

    use libseccomp::{ScmpNotifReq, ScmpNotifResp, ScmpNotifRespFlags};
    use nix::errno::Errno;
    use nix::sys::signal::Signal;
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};

    use super::*;
    use crate::test_support::{exited_ok, in_child};

    fn spec(json: &str) -> LinuxSeccomp {
        serde_json::from_str(json).expect("valid seccomp json")
    }

    #[test]
    fn plan_translates_actions_errnos_and_skips() {
        let plan = FilterPlan::from_spec(&spec(
            r#"{
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 38,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
                "syscalls": [
                    {"names": ["getpid", "no_such_syscall_xyz"], "action": "SCMP_ACT_ALLOW"},
                    {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO"},
                    {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
                    {"names": ["ptrace"], "action": "SCMP_ACT_TRACE", "errnoRet": 7},
                    {"names": ["reboot"], "action": "SCMP_ACT_KILL"},
                    {"names": ["kexec_load"], "action": "SCMP_ACT_KILL_PROCESS"},
                    {"names": ["acct"], "action": "SCMP_ACT_NOTIFY"},
                    {"names": ["swapon"], "action": "SCMP_ACT_LOG"},
                    {"names": ["swapoff"], "action": "SCMP_ACT_TRAP"}
                ]
            }"#,
        ))
        .unwrap();
        assert_eq!(plan.default_action, ScmpAction::Errno(38));
        assert_eq!(plan.architectures, vec![ScmpArch::X8664, ScmpArch::X86]);
        let got: Vec<(&str, ScmpAction)> = plan
            .rules
            .iter()
            .map(|r| (r.syscall.as_str(), r.action))
            .collect();
        assert_eq!(
            got,
            vec![
                ("getpid", ScmpAction::Allow),
                ("mkdir", ScmpAction::Errno(libc::EPERM)),
                // rmdir repeats the default action: skipped.
                ("ptrace", ScmpAction::Trace(7)),
                ("reboot", ScmpAction::KillThread),
                ("kexec_load", ScmpAction::KillProcess),
                ("acct", ScmpAction::Notify),
                ("swapon", ScmpAction::Log),
                ("swapoff", ScmpAction::Trap),
            ]
        );
        assert!(plan.uses_notify());
        plan.build().expect("libseccomp accepts the plan");
    }

    #[test]
    fn plan_splits_rules_comparing_one_argument_twice() {
        let plan = FilterPlan::from_spec(&spec(
            r#"{
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [
                    {"names": ["personality"], "action": "SCMP_ACT_ERRNO", "args": [
                        {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                        {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}
                    ]},
                    {"names": ["clone"], "action": "SCMP_ACT_ERRNO", "args": [
                        {"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"},
                        {"index": 1, "value": 5, "op": "SCMP_CMP_GT"}
                    ]}
                ]
            }"#,
        ))
        .unwrap();
        let shape: Vec<(&str, usize)> = plan
            .rules
            .iter()
            .map(|r| (r.syscall.as_str(), r.conditions.len()))
            .collect();
        assert_eq!(
            shape,
            vec![("personality", 1), ("personality", 1), ("clone", 2)]
        );
        assert_eq!(
            plan.rules[2].conditions[0],
            ScmpArgCompare::new(0, ScmpCompareOp::MaskedEqual(2114060288), 0)
        );
        plan.build().expect("libseccomp accepts the plan");
    }

    #[test]
    fn plan_rejects_bad_values() {
        let bad_index = spec(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
                "action": "SCMP_ACT_ERRNO", "args": [{"index": 6, "value": 0, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        assert!(matches!(
            FilterPlan::from_spec(&bad_index),
            Err(Error::InvalidArgument(_))
        ));
        let bad_errno = spec(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"],
                "action": "SCMP_ACT_ERRNO", "errnoRet": 70000}]}"#,
        );
        assert!(matches!(
            FilterPlan::from_spec(&bad_errno),
            Err(Error::InvalidArgument(_))
        ));
    }

    #[test]
    fn features_lists() {
        assert!(supported_actions().contains(&"SCMP_ACT_ERRNO"));
        assert_eq!(supported_operators().len(), 7);
        let archs = supported_archs();
        assert!(archs.contains(&"SCMP_ARCH_X86_64") && archs.contains(&"SCMP_ARCH_NATIVE"));
        assert!(supported_flags().contains(&"SECCOMP_FILTER_FLAG_TSYNC"));
    }

    #[test]
    fn errno_rule_blocks_mkdir_only() {
        let dir = tempfile::tempdir().unwrap();
        let blocked = dir.path().join("blocked");
        let file = dir.path().join("file");
        let filter = spec(
            r#"{
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["mkdir", "mkdirat", "not_a_syscall"],
                              "action": "SCMP_ACT_ERRNO"}]
            }"#,
        );
        exited_ok(in_child(|| {
            match load(&filter) {
                Ok(None) => {}
                _ => return 2,
            }
            match nix::unistd::mkdir(&blocked, nix::sys::stat::Mode::from_bits_truncate(0o755)) {
                Err(Errno::EPERM) => {}
                _ => return 3,
            }
            if std::fs::write(&file, b"still works").is_err() {
                return 4;
            }
            0
        }));
        assert!(!blocked.exists());
        assert!(file.exists());
    }

    #[test]
    fn cached_program_is_compiled_once_and_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("cache");
        let blocked = dir.path().join("blocked");
        let filter = spec(
            r#"{
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "flags": ["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                              "errnoRet": 13}]
            }"#,
        );
        let first = prepare(&filter, Some(&cache)).unwrap();
        let entries: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        assert!(entries[0].ends_with(".bpf"), "{entries:?}");
        let PreparedFilter::Program { bpf, flags } = &first else {
            panic!("not compiled: {first:?}")
        };
        assert_eq!(*flags, SECCOMP_FILTER_FLAG_LOG);
        // The second preparation reads the same program back; a different filter gets its own.
        let PreparedFilter::Program { bpf: again, .. } = prepare(&filter, Some(&cache)).unwrap()
        else {
            panic!("not cached")
        };
        assert_eq!(&again, bpf);
        let other = spec(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["rmdir"], "action": "SCMP_ACT_ERRNO"}]}"#,
        );
        prepare(&other, Some(&cache)).unwrap();
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 2);

        exited_ok(in_child(|| {
            // Loading a raw program needs no_new_privs or CAP_SYS_ADMIN, as with libseccomp.
            if first.load().is_err() {
                return 2;
            }
            match nix::unistd::mkdir(&blocked, nix::sys::stat::Mode::from_bits_truncate(0o755)) {
                Err(Errno::EACCES) => 0,
                _ => 3,
            }
        }));
        assert!(!blocked.exists());

        // A notify filter is left to libseccomp (it owns the listener); no cache, no program.
        let notify = spec(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
            {"names": ["acct"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        );
        assert!(matches!(
            prepare(&notify, Some(&cache)).unwrap(),
            PreparedFilter::Plan(_)
        ));
        assert!(matches!(
            prepare(&filter, None).unwrap(),
            PreparedFilter::Plan(_)
        ));
    }

    #[test]
    fn argument_condition_selects_calls() {
        // personality(0xffffffff) only queries the persona: refuse that call, allow others.
        let filter = spec(
            r#"{
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["personality"], "action": "SCMP_ACT_ERRNO",
                              "errnoRet": 15,
                              "args": [{"index": 0, "value": 4294967295, "op": "SCMP_CMP_EQ"}]}]
            }"#,
        );
        exited_ok(in_child(|| {
            // SAFETY: personality(2) with an integer argument.
            let current = unsafe { libc::personality(0xffff_ffff) };
            if current < 0 {
                return 2;
            }
            if load(&filter).is_err() {
                return 3;
            }
            // SAFETY: as above.
            let query = unsafe { libc::personality(0xffff_ffff) };
            if query != -1 || Errno::last() != Errno::ENOTBLK {
                return 4;
            }
            // Setting the persona it already has is another argument: allowed.
            // SAFETY: as above; the persona does not change.
            if unsafe { libc::personality(current as libc::c_ulong) } != current {
                return 5;
            }
            0
        }));
    }

    #[test]
    fn kill_process_action_kills_with_sigsys() {
        let filter = spec(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getppid"], "action": "SCMP_ACT_KILL_PROCESS"}]}"#,
        );
        let status = in_child(|| {
            if load(&filter).is_err() {
                return 2;
            }
            nix::unistd::getppid();
            3
        });
        assert!(
            matches!(status, WaitStatus::Signaled(_, Signal::SIGSYS, _)),
            "child ended with {status:?}"
        );
    }

    #[test]
    fn notify_action_returns_a_working_listener() {
        let filter = spec(
            r#"{"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_NOTIFY"}]}"#,
        );
        exited_ok(in_child(|| {
            let listener = match load(&filter) {
                Ok(Some(fd)) => fd,
                _ => return 2,
            };
            // A grandchild inherits the filter; its acct(2) waits for our answer.
            // SAFETY: the grandchild only makes one syscall and `_exit`s.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    // SAFETY: acct(NULL) turns accounting off; here it is answered by the agent.
                    let rc = unsafe { libc::acct(std::ptr::null()) };
                    let code = if rc == -1 && Errno::last() == Errno::ENOTBLK {
                        0
                    } else {
                        1
                    };
                    // SAFETY: ends the grandchild.
                    unsafe { libc::_exit(code) }
                }
                Ok(ForkResult::Parent { child }) => {
                    let Ok(req) = ScmpNotifReq::receive(listener.as_raw_fd()) else {
                        return 4;
                    };
                    if req.data.syscall != ScmpSyscall::from_name("acct").unwrap() {
                        return 5;
                    }
                    let resp = ScmpNotifResp::new_error(
                        req.id,
                        -libc::ENOTBLK,
                        ScmpNotifRespFlags::empty(),
                    );
                    if resp.respond(listener.as_raw_fd()).is_err() {
                        return 6;
                    }
                    match waitpid(child, None) {
                        Ok(WaitStatus::Exited(_, 0)) => 0,
                        _ => 7,
                    }
                }
                Err(_) => 3,
            }
        }));
    }

    #[test]
    fn allowlist_profile_denies_the_rest() {
        // The shape of Docker's default profile: deny by default, allow a list that names
        // syscalls of several kernel generations and architectures.
        let filter = spec(
            r#"{
                "defaultAction": "SCMP_ACT_ERRNO",
                "defaultErrnoRet": 1,
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [
                    {"names": ["read", "write", "close", "exit", "exit_group", "getpid",
                               "rt_sigreturn", "rt_sigprocmask", "rt_sigaction", "sigaltstack",
                               "brk", "mmap", "munmap", "mprotect", "madvise", "futex",
                               "sched_yield", "socketcall", "waitpid", "landlock_restrict_self",
                               "some_future_syscall"],
                     "action": "SCMP_ACT_ALLOW"},
                    {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                     "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                               "op": "SCMP_CMP_MASKED_EQ"}]}
                ]
            }"#,
        );
        exited_ok(in_child(|| {
            if load(&filter).is_err() {
                return 2;
            }
            if nix::unistd::getpid().as_raw() <= 0 {
                return 3;
            }
            // Not in the list: the default errno.
            // SAFETY: getppid(2) has no arguments; called raw to see its errno.
            let rc = unsafe { libc::syscall(libc::SYS_getppid) };
            if rc != -1 || Errno::last() != Errno::EPERM {
                return 4;
            }
            0
        }));
    }
}
