//! The OCI runtime spec of a container, from Docker's Config and HostConfig, with Docker's
//! defaults: capabilities, masked and read-only paths, /dev and /sys mounts, resources.
//! Pure: values in, a spec out.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use bollard_stubs::models::{ContainerConfig, HostConfig};
use oci_spec::runtime::{
    Capability, LinuxBlockIoBuilder, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxPidsBuilder, LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimit, PosixRlimitBuilder,
    PosixRlimitType, ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use crate::error::{Error, Result};

/// Every capability of Linux 6.x, in kernel order (capabilities(7)).
pub const ALL_CAPABILITIES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Docker's default capabilities (moby's oci/caps defaults).
pub const DEFAULT_CAPABILITIES: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

const MASKED_PATHS: [&str; 12] = [
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What the spec is made from, beyond Config and HostConfig.
#[derive(Debug, Clone)]
pub struct SpecInput<'a> {
    pub id: &'a str,
    pub config: &'a ContainerConfig,
    pub host_config: &'a HostConfig,
    /// Program and arguments after merging with the image.
    pub args: Vec<String>,
    /// Environment after merging with the image.
    pub env: Vec<String>,
    pub cwd: String,
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub rootfs: PathBuf,
    /// Files bind-mounted over /etc/hostname, /etc/hosts, /etc/resolv.conf.
    pub etc_files: Vec<(PathBuf, &'static str)>,
    pub cgroup_path: String,
    /// Host path of the init binary (`berth-init`) when the container runs one as its pid 1
    /// (see [`init_binary`]): bind-mounted read-only at [`INIT_PATH`] and put before the
    /// command, `INIT_PATH -- args...`, as dockerd does.
    pub init_binary: Option<PathBuf>,
    /// The container's volumes, binds and tmpfs mounts, in mount order. They replace a
    /// default mount or an /etc file at the same destination.
    pub mounts: Vec<volume::ContainerMount>,
    /// `linux.rootfsPropagation` when binds need it (`rshared`, `rslave`).
    pub rootfs_propagation: Option<String>,
    /// The network namespace to join (the engine's for the container's networks, or another
    /// container's); None: a new one (`none`), or the host's for `--network host`.
    pub network_namespace: Option<PathBuf>,
}

/// Where the init is mounted inside the container: dockerd's path, which tools and scripts
/// look for (moby daemon/oci_linux.go, "inContainerInitPath").
pub const INIT_PATH: &str = "/sbin/docker-init";

/// The init binary a container runs as pid 1: HostConfig.Init when set, else the daemon's
/// default (daemon.json `init`). Fails when an init is wanted but the daemon has none.
pub fn init_binary(
    host_config: &HostConfig,
    default_init: bool,
    binary: Option<&Path>,
) -> Result<Option<PathBuf>> {
    if !host_config.init.unwrap_or(default_init) {
        return Ok(None);
    }
    match binary {
        Some(path) => Ok(Some(path.to_path_buf())),
        None => Err(Error::internal(
            "--init requested but the daemon has no init binary (berth-init next to berthd, or daemon.json init-path)",
        )),
    }
}

fn mount(destination: &str, kind: &str, source: &str, options: &[&str]) -> Result<Mount> {
    MountBuilder::default()
        .destination(destination)
        .typ(kind)
        .source(source)
        .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(|e| Error::internal(e.to_string()))
}

fn bad(e: impl std::fmt::Display) -> Error {
    Error::internal(e.to_string())
}

/// Normalises "net_admin", "NET_ADMIN" or "CAP_NET_ADMIN" to "CAP_NET_ADMIN".
fn capability_name(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    }
}

/// The daemon's bounding set (CapBnd of /proc/self/status, proc(5)), as a bit mask by
/// capability number; every capability when it cannot be read.
fn held_capability_mask() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| parse_cap_bnd(&status))
        .unwrap_or(u64::MAX)
}

fn parse_cap_bnd(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("CapBnd:"))?;
    u64::from_str_radix(line["CapBnd:".len()..].trim(), 16).ok()
}

/// The names of every capability the daemon holds: what `--privileged` and `--cap-add ALL` give.
/// Docker asks for all of them, which capset(2) refuses on a host whose root lacks some (this
/// one has no CAP_SYS_RESOURCE); a container cannot get more than its creator holds anyway.
pub(crate) fn held_capabilities() -> Vec<String> {
    let held = held_capability_mask();
    ALL_CAPABILITIES
        .iter()
        .enumerate()
        .filter(|(number, _)| held & (1u64 << number) != 0)
        .map(|(_, name)| name.to_string())
        .collect()
}

/// The capability set from Docker's defaults and --cap-add/--cap-drop ("ALL" allowed).
pub fn capabilities(host_config: &HostConfig) -> Result<HashSet<Capability>> {
    let all = held_capabilities();
    let privileged = host_config.privileged.unwrap_or(false);
    let mut names: Vec<String> = if privileged {
        all.clone()
    } else {
        DEFAULT_CAPABILITIES.iter().map(|c| c.to_string()).collect()
    };
    let adds = host_config.cap_add.clone().unwrap_or_default();
    let drops = host_config.cap_drop.clone().unwrap_or_default();
    for drop in &drops {
        if drop.eq_ignore_ascii_case("all") {
            names.clear();
        } else {
            let drop = capability_name(drop);
            names.retain(|n| *n != drop);
        }
    }
    for add in &adds {
        if add.eq_ignore_ascii_case("all") {
            names = all.clone();
        } else {
            let add = capability_name(add);
            if !names.contains(&add) {
                names.push(add);
            }
        }
    }
    names
        .iter()
        .map(|name| {
            serde_json::from_value::<Capability>(serde_json::Value::String(name.clone()))
                .map_err(|_| Error::invalid(format!("invalid capability: {name}")))
        })
        .collect()
}

fn rlimit_type(name: &str) -> Result<PosixRlimitType> {
    let upper = format!("RLIMIT_{}", name.to_ascii_uppercase());
    serde_json::from_value(serde_json::Value::String(upper))
        .map_err(|_| Error::invalid(format!("invalid ulimit type: {name}")))
}

/// Builds the OCI spec.
pub fn build(input: &SpecInput<'_>) -> Result<Spec> {
    let host = input.host_config;
    let privileged = host.privileged.unwrap_or(false);
    let caps = capabilities(host)?;
    let seccomp = crate::seccomp::for_container(host, &caps)?;
    let tty = input.config.tty.unwrap_or(false);

    let mut rlimits: Vec<PosixRlimit> = Vec::new();
    for ulimit in host.ulimits.iter().flatten() {
        let name = ulimit.name.clone().unwrap_or_default();
        rlimits.push(
            PosixRlimitBuilder::default()
                .typ(rlimit_type(&name)?)
                .soft(ulimit.soft.unwrap_or(0) as u64)
                .hard(ulimit.hard.unwrap_or(0) as u64)
                .build()
                .map_err(bad)?,
        );
    }
    let no_new_privileges = host.security_opt.iter().flatten().any(|o| {
        o == "no-new-privileges" || o == "no-new-privileges:true" || o == "no-new-privileges=true"
    });
    let args = match &input.init_binary {
        Some(_) => [INIT_PATH.to_string(), "--".to_string()]
            .into_iter()
            .chain(input.args.iter().cloned())
            .collect(),
        None => input.args.clone(),
    };
    let mut process = ProcessBuilder::default()
        .terminal(tty)
        .args(args)
        .env(input.env.clone())
        .cwd(input.cwd.clone())
        .user(
            UserBuilder::default()
                .uid(input.uid)
                .gid(input.gid)
                .additional_gids(input.additional_gids.clone())
                .build()
                .map_err(bad)?,
        )
        .capabilities(
            // Inheritable and ambient stay empty, as dockerd leaves them since the fix of
            // CVE-2022-24769: oci-spec's defaults for unset sets (AUDIT_WRITE, KILL,
            // NET_BIND_SERVICE) would give a non-root user ambient capabilities, and with
            // --cap-drop ALL make capset(2) fail (an inheritable bit outside the bounding set).
            LinuxCapabilitiesBuilder::default()
                .bounding(caps.clone())
                .effective(caps.clone())
                .permitted(caps)
                .inheritable(HashSet::new())
                .ambient(HashSet::new())
                .build()
                .map_err(bad)?,
        )
        .no_new_privileges(no_new_privileges)
        .build()
        .map_err(bad)?;
    if !rlimits.is_empty() {
        process.set_rlimits(Some(rlimits));
    }
    if let Some(score) = host.oom_score_adj.filter(|s| *s != 0) {
        process.set_oom_score_adj(Some(score as i32));
    }

    let sys_options: &[&str] = if privileged {
        &["nosuid", "noexec", "nodev"]
    } else {
        &["nosuid", "noexec", "nodev", "ro"]
    };
    let shm_size = host.shm_size.filter(|s| *s > 0).unwrap_or(64 * 1024 * 1024);
    let shm_option = format!("size={shm_size}");
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount("/sys", "sysfs", "sysfs", sys_options)?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &[
                "nosuid",
                "noexec",
                "nodev",
                "relatime",
                if privileged { "rw" } else { "ro" },
            ],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", &shm_option],
        )?,
    ];
    for (path, destination) in &input.etc_files {
        mounts.push(mount(
            destination,
            "bind",
            &path.display().to_string(),
            &["rbind", "rprivate"],
        )?);
    }
    // The user's mounts win over a default at the same destination (-v x:/dev/shm), as
    // in dockerd's setMounts.
    mounts.retain(|m| {
        !input
            .mounts
            .iter()
            .any(|user| Path::new(&user.destination) == m.destination())
    });
    for user in &input.mounts {
        let options: Vec<&str> = user.options.iter().map(String::as_str).collect();
        mounts.push(mount(
            &user.destination,
            &user.kind,
            &user.source,
            &options,
        )?);
    }
    if let Some(init) = &input.init_binary {
        mounts.push(mount(
            INIT_PATH,
            "bind",
            &init.display().to_string(),
            &["bind", "ro"],
        )?);
    }

    let network = host.network_mode.as_deref().unwrap_or("default");
    let mut namespaces = vec![
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Cgroup,
    ];
    if host.pid_mode.as_deref() == Some("host") {
        namespaces.retain(|n| *n != LinuxNamespaceType::Pid);
    }
    if host.ipc_mode.as_deref() == Some("host") {
        namespaces.retain(|n| *n != LinuxNamespaceType::Ipc);
    }
    // Which networks exist is the engine's business; here only host versus a namespace.
    if network == "host" {
        namespaces.retain(|n| *n != LinuxNamespaceType::Uts);
    } else {
        namespaces.push(LinuxNamespaceType::Network);
    }
    let namespaces = namespaces
        .into_iter()
        .map(|typ| {
            let mut builder = LinuxNamespaceBuilder::default().typ(typ);
            if typ == LinuxNamespaceType::Network
                && let Some(path) = &input.network_namespace
            {
                builder = builder.path(path.clone());
            }
            builder.build().map_err(bad)
        })
        .collect::<Result<Vec<_>>>()?;

    let resources = resources(host)?;
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .cgroups_path(PathBuf::from(&input.cgroup_path))
        .resources(resources)
        .build()
        .map_err(bad)?;
    if !privileged {
        linux.set_masked_paths(Some(MASKED_PATHS.iter().map(|p| p.to_string()).collect()));
        linux.set_readonly_paths(Some(READONLY_PATHS.iter().map(|p| p.to_string()).collect()));
    }
    linux.set_seccomp(seccomp);

    let hostname = if network == "host" {
        None
    } else {
        Some(
            input
                .config
                .hostname
                .clone()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| input.id[..12.min(input.id.len())].to_string()),
        )
    };
    let mut spec = SpecBuilder::default()
        .version("1.2.0")
        .root(
            RootBuilder::default()
                .path(input.rootfs.clone())
                .readonly(host.readonly_rootfs.unwrap_or(false))
                .build()
                .map_err(bad)?,
        )
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(bad)?;
    spec.set_hostname(hostname);
    if let (Some(propagation), Some(linux)) = (&input.rootfs_propagation, spec.linux_mut()) {
        linux.set_rootfs_propagation(Some(propagation.clone()));
    }
    if let Some(domain) = input.config.domainname.clone().filter(|d| !d.is_empty()) {
        spec.set_domainname(Some(domain));
    }
    Ok(spec)
}

fn resources(host: &HostConfig) -> Result<oci_spec::runtime::LinuxResources> {
    let mut builder = LinuxResourcesBuilder::default();
    let privileged = host.privileged.unwrap_or(false);
    // Deny every device (the runtime adds the defaults every container needs), or allow all
    // for --privileged.
    let all_devices = LinuxDeviceCgroupBuilder::default()
        .allow(privileged)
        .access("rwm")
        .build()
        .map_err(bad)?;
    builder = builder.devices(vec![all_devices]);

    let mut memory = LinuxMemoryBuilder::default();
    let mut has_memory = false;
    if let Some(limit) = host.memory.filter(|m| *m != 0) {
        if limit < 6 * 1024 * 1024 {
            return Err(Error::invalid("Minimum memory limit allowed is 6MB"));
        }
        memory = memory.limit(limit);
        has_memory = true;
        match host.memory_swap {
            Some(-1) => memory = memory.swap(-1),
            Some(swap) if swap > 0 => {
                if swap < limit {
                    return Err(Error::invalid(
                        "Minimum memoryswap limit should be larger than memory limit, see usage",
                    ));
                }
                memory = memory.swap(swap);
            }
            // Docker's default: as much swap as memory.
            _ => memory = memory.swap(limit * 2),
        }
    }
    if let Some(reservation) = host.memory_reservation.filter(|m| *m > 0) {
        memory = memory.reservation(reservation);
        has_memory = true;
    }
    if has_memory {
        builder = builder.memory(memory.build().map_err(bad)?);
    }

    let mut cpu = LinuxCpuBuilder::default();
    let mut has_cpu = false;
    if let Some(nano) = host.nano_cpus.filter(|n| *n > 0) {
        if host.cpu_quota.is_some_and(|q| q > 0) || host.cpu_period.is_some_and(|p| p > 0) {
            return Err(Error::invalid(
                "Conflicting options: Nano CPUs and CPU Period/Quota cannot both be set",
            ));
        }
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get() as i64)
            .unwrap_or(1);
        if nano > cpus * 1_000_000_000 {
            return Err(Error::invalid(format!(
                "range of CPUs is from 0.01 to {cpus}.00, as there are only {cpus} CPUs available"
            )));
        }
        cpu = cpu.period(100_000u64).quota(nano * 100_000 / 1_000_000_000);
        has_cpu = true;
    }
    if let Some(quota) = host.cpu_quota.filter(|q| *q > 0) {
        cpu = cpu.quota(quota);
        has_cpu = true;
    }
    if let Some(period) = host.cpu_period.filter(|p| *p > 0) {
        cpu = cpu.period(period as u64);
        has_cpu = true;
    }
    if let Some(shares) = host.cpu_shares.filter(|s| *s > 0) {
        cpu = cpu.shares(shares as u64);
        has_cpu = true;
    }
    if let Some(cpus) = host.cpuset_cpus.clone().filter(|c| !c.is_empty()) {
        cpu = cpu.cpus(cpus);
        has_cpu = true;
    }
    if let Some(mems) = host.cpuset_mems.clone().filter(|c| !c.is_empty()) {
        cpu = cpu.mems(mems);
        has_cpu = true;
    }
    if has_cpu {
        builder = builder.cpu(cpu.build().map_err(bad)?);
    }
    if let Some(limit) = host.pids_limit.filter(|l| *l != 0) {
        builder = builder.pids(
            LinuxPidsBuilder::default()
                .limit(limit)
                .build()
                .map_err(bad)?,
        );
    }
    if let Some(weight) = host.blkio_weight.filter(|w| *w > 0) {
        if !(10..=1000).contains(&weight) {
            return Err(Error::invalid("Range of blkio weight is from 10 to 1000"));
        }
        builder = builder.block_io(
            LinuxBlockIoBuilder::default()
                .weight(weight)
                .build()
                .map_err(bad)?,
        );
    }
    builder.build().map_err(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input<'a>(config: &'a ContainerConfig, host: &'a HostConfig) -> SpecInput<'a> {
        SpecInput {
            id: "0123456789abcdef0123",
            config,
            host_config: host,
            args: vec!["sh".into()],
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            uid: 0,
            gid: 0,
            additional_gids: vec![],
            rootfs: "/tmp/rootfs".into(),
            etc_files: vec![],
            cgroup_path: "/berth/x".into(),
            init_binary: None,
            mounts: vec![],
            rootfs_propagation: None,
            network_namespace: None,
        }
    }

    #[test]
    fn docker_defaults_and_limits() {
        let config = ContainerConfig::default();
        let host = HostConfig {
            memory: Some(64 * 1024 * 1024),
            nano_cpus: Some(500_000_000),
            pids_limit: Some(10),
            cap_drop: Some(vec!["chown".into()]),
            cap_add: Some(vec!["SYS_ADMIN".into()]),
            ..Default::default()
        };
        let spec = build(&input(&config, &host)).unwrap();
        assert_eq!(spec.hostname().as_deref(), Some("0123456789ab"));
        let linux = spec.linux().as_ref().unwrap();
        let resources = linux.resources().as_ref().unwrap();
        let memory = resources.memory().as_ref().unwrap();
        assert_eq!(memory.limit(), Some(64 * 1024 * 1024));
        assert_eq!(memory.swap(), Some(128 * 1024 * 1024));
        assert_eq!(resources.cpu().as_ref().unwrap().quota(), Some(50_000));
        assert_eq!(resources.pids().as_ref().unwrap().limit(), 10);
        let caps = spec
            .process()
            .as_ref()
            .unwrap()
            .capabilities()
            .as_ref()
            .unwrap();
        let bounding = caps.bounding().as_ref().unwrap();
        assert!(bounding.contains(&Capability::SysAdmin));
        assert!(!bounding.contains(&Capability::Chown));
        assert!(
            linux
                .masked_paths()
                .as_ref()
                .unwrap()
                .contains(&"/proc/kcore".to_string())
        );
    }

    #[test]
    fn no_inheritable_or_ambient_capabilities() {
        let config = ContainerConfig::default();
        for host in [
            HostConfig::default(),
            HostConfig {
                cap_drop: Some(vec!["ALL".into()]),
                ..Default::default()
            },
        ] {
            let spec = build(&input(&config, &host)).unwrap();
            let caps = spec
                .process()
                .as_ref()
                .unwrap()
                .capabilities()
                .clone()
                .unwrap();
            assert_eq!(caps.inheritable().as_ref().map(|s| s.len()), Some(0));
            assert_eq!(caps.ambient().as_ref().map(|s| s.len()), Some(0));
        }
    }

    #[test]
    fn init_runs_the_command_under_docker_init() {
        let config = ContainerConfig::default();
        let host = HostConfig {
            init: Some(true),
            ..Default::default()
        };
        let binary = Path::new("/usr/local/bin/berth-init");
        let init = init_binary(&host, false, Some(binary)).unwrap();
        assert_eq!(init.as_deref(), Some(binary));
        let mut with_init = input(&config, &host);
        with_init.init_binary = init;
        let spec = build(&with_init).unwrap();
        assert_eq!(
            spec.process().as_ref().unwrap().args().as_deref(),
            Some(&["/sbin/docker-init".to_string(), "--".into(), "sh".into()][..])
        );
        let mount = spec
            .mounts()
            .as_ref()
            .unwrap()
            .iter()
            .find(|m| m.destination() == Path::new(INIT_PATH))
            .expect("init mount");
        assert_eq!(mount.source().as_deref(), Some(binary));
        assert_eq!(mount.typ().as_deref(), Some("bind"));
        assert!(
            mount
                .options()
                .as_ref()
                .unwrap()
                .contains(&"ro".to_string())
        );
    }

    #[test]
    fn init_follows_host_config_then_daemon_default() {
        let binary = Path::new("/b/berth-init");
        let unset = HostConfig::default();
        let off = HostConfig {
            init: Some(false),
            ..Default::default()
        };
        let on = HostConfig {
            init: Some(true),
            ..Default::default()
        };
        assert_eq!(init_binary(&unset, false, Some(binary)).unwrap(), None);
        assert!(init_binary(&unset, true, Some(binary)).unwrap().is_some());
        assert_eq!(init_binary(&off, true, Some(binary)).unwrap(), None);
        assert!(init_binary(&on, false, Some(binary)).unwrap().is_some());
        // Wanted but missing: a clear error rather than a container without its init.
        assert!(init_binary(&on, false, None).is_err());
        assert_eq!(init_binary(&off, false, None).unwrap(), None);
        // Without an init the command is unchanged.
        let config = ContainerConfig::default();
        let spec = build(&input(&config, &unset)).unwrap();
        assert_eq!(
            spec.process().as_ref().unwrap().args().as_deref(),
            Some(&["sh".to_string()][..])
        );
    }

    #[test]
    fn refuses_bad_values() {
        let config = ContainerConfig::default();
        let small = HostConfig {
            memory: Some(1024),
            ..Default::default()
        };
        assert!(build(&input(&config, &small)).is_err());
        let cap = HostConfig {
            cap_add: Some(vec!["NOT_A_CAP".into()]),
            ..Default::default()
        };
        assert!(build(&input(&config, &cap)).is_err());
    }

    #[test]
    fn network_namespaces_are_new_joined_or_the_hosts() {
        let config = ContainerConfig::default();
        let network = |spec: &Spec| {
            spec.linux()
                .as_ref()
                .unwrap()
                .namespaces()
                .as_ref()
                .unwrap()
                .iter()
                .find(|n| n.typ() == LinuxNamespaceType::Network)
                .map(|n| n.path().clone())
        };
        let none = HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        };
        assert_eq!(network(&build(&input(&config, &none)).unwrap()), Some(None));
        let host = HostConfig {
            network_mode: Some("host".into()),
            ..Default::default()
        };
        assert_eq!(network(&build(&input(&config, &host)).unwrap()), None);
        let bridge = HostConfig {
            network_mode: Some("bridge".into()),
            ..Default::default()
        };
        let mut joined = input(&config, &bridge);
        joined.network_namespace = Some("/run/berth/netns/0123456789ab".into());
        assert_eq!(
            network(&build(&joined).unwrap()),
            Some(Some("/run/berth/netns/0123456789ab".into()))
        );
    }

    #[test]
    fn reads_the_bounding_set() {
        let status = "Name:\tx\nCapBnd:\t000001fffeffffff\nCapAmb:\t0\n";
        assert_eq!(parse_cap_bnd(status), Some(0x1fffeffffff));
        assert_eq!(parse_cap_bnd("Name: x"), None);
        assert!(held_capabilities().contains(&"CAP_CHOWN".to_string()));
    }
}
