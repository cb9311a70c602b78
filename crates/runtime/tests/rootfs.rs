//! Root integration tests of `runtime::rootfs`: a busybox rootfs in a tempdir, set up by
//! `prepare_rootfs` / `enter_rootfs` / `finalize_rootfs` in a forked child that first enters a
//! new mount namespace. The child reports one line per check through a pipe and only ever
//! leaves through `_exit` or `execv`; its mounts die with its namespace, and each test checks
//! afterwards that the host's mount table has nothing under the tempdir.
//!
//! Needs root (they print a note and pass otherwise).

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use nix::sched::{CloneFlags, unshare};
use nix::sys::stat::{major, minor};
use nix::sys::statfs::{self, FsType};
use nix::sys::wait::{WaitStatus, waitpid};
use nix::unistd::{ForkResult, fork, getpid};
use oci_spec::runtime::{LinuxDeviceBuilder, LinuxDeviceType, Mount, MountBuilder, Spec};
use runtime::rootfs::{enter_rootfs, finalize_rootfs, prepare_rootfs};

const APPLETS: &[&str] = &[
    "sh", "ls", "cat", "echo", "mount", "touch", "mknod", "stat", "test", "true", "mkdir",
    "readlink",
];

fn is_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    eprintln!("skipping: rootfs integration tests need root");
    false
}

/// A tempdir holding `rootfs/` (busybox and a few files with nasty symlinks) and host-side
/// files to bind-mount from.
struct Fixture {
    dir: tempfile::TempDir,
    /// Unique name used for paths that must NOT appear on the host's /etc.
    unique: String,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("berth-rootfs-test")
            .tempdir()
            .unwrap();
        let unique = format!(
            "berth-rootfs-test-{}-{}",
            std::process::id(),
            dir.path().file_name().unwrap().to_string_lossy()
        );
        let fixture = Self { dir, unique };
        let root = fixture.rootfs();
        for d in [
            "bin",
            "proc",
            "sys",
            "dev",
            "etc",
            "tmp",
            "root",
            "secretdir",
            "usr/lib",
        ] {
            fs::create_dir_all(root.join(d)).unwrap();
        }
        fs::copy("/bin/busybox", root.join("bin/busybox")).unwrap();
        for applet in APPLETS {
            symlink("busybox", root.join("bin").join(applet)).unwrap();
        }
        fs::write(root.join("etc/marker"), "inside the rootfs\n").unwrap();
        fs::write(root.join("etc/secret"), "top secret\n").unwrap();
        fs::write(root.join("secretdir/file"), "hidden\n").unwrap();
        // Shadowed by tmpfs mounts with tmpcopyup.
        for dir in ["copyup", "copyup-ro"] {
            fs::create_dir_all(root.join(dir).join("sub")).unwrap();
            fs::write(root.join(dir).join("a.txt"), "copied\n").unwrap();
            fs::write(root.join(dir).join("sub/b"), "deep\n").unwrap();
            symlink("sub/b", root.join(dir).join("link")).unwrap();
        }
        // Mount destinations go through these: they must land inside the rootfs.
        symlink("/etc", root.join("evil-abs")).unwrap();
        symlink("../../../../../../../../etc", root.join("usr/lib/evil-rel")).unwrap();
        // Host-side sources of bind mounts.
        let data = fixture.dir.path().join("data");
        fs::create_dir_all(data.join("ro")).unwrap();
        fs::create_dir_all(data.join("rw")).unwrap();
        fs::write(fixture.dir.path().join("hostfile"), "from the host\n").unwrap();
        fixture
    }

    fn rootfs(&self) -> PathBuf {
        self.dir.path().join("rootfs")
    }

    /// Oci-spec's default spec (proc, /dev tmpfs, devpts, shm, mqueue, sysfs, cgroup; the
    /// default masked and read-only paths; a read-only root) plus mounts, devices and paths of
    /// our own.
    fn spec(&self) -> Spec {
        let mut spec = Spec::default();
        let mut mounts = spec.mounts().clone().unwrap();
        let bind = |source: PathBuf, destination: String, options: &[&str]| -> Mount {
            MountBuilder::default()
                .destination(destination)
                .typ("bind")
                .source(source)
                .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .build()
                .unwrap()
        };
        mounts.push(
            MountBuilder::default()
                .destination(format!("/evil-abs/{}", self.unique))
                .typ("tmpfs")
                .source("tmpfs")
                .options(vec!["nosuid".to_string(), "size=1m".to_string()])
                .build()
                .unwrap(),
        );
        mounts.push(bind(
            self.dir.path().join("hostfile"),
            format!("/usr/lib/evil-rel/{}-file", self.unique),
            &["bind", "ro"],
        ));
        for (destination, extra) in [("/copyup", None), ("/copyup-ro", Some("ro"))] {
            let mut options = vec!["tmpcopyup".to_string(), "nosuid".to_string()];
            options.extend(extra.map(str::to_string));
            mounts.push(
                MountBuilder::default()
                    .destination(destination)
                    .typ("tmpfs")
                    .source("tmpfs")
                    .options(options)
                    .build()
                    .unwrap(),
            );
        }
        mounts.push(bind(
            self.dir.path().join("data"),
            "/data".into(),
            &["rbind", "rw", "rprivate"],
        ));
        spec.set_mounts(Some(mounts));

        let linux = spec.linux_mut().as_mut().unwrap();
        let mut masked = linux.masked_paths().clone().unwrap();
        masked.extend([
            "/etc/secret".to_string(),
            "/secretdir".to_string(),
            "/does/not/exist".to_string(),
        ]);
        linux.set_masked_paths(Some(masked));
        let mut readonly = linux.readonly_paths().clone().unwrap();
        readonly.extend(["/data/ro".to_string(), "/nope".to_string()]);
        linux.set_readonly_paths(Some(readonly));
        linux.set_devices(Some(vec![
            LinuxDeviceBuilder::default()
                .path("/dev/fuse")
                .typ(LinuxDeviceType::C)
                .major(10)
                .minor(229)
                .file_mode(0o600u32)
                .uid(0u32)
                .gid(0u32)
                .build()
                .unwrap(),
            LinuxDeviceBuilder::default()
                .path("/dev/myfifo")
                .typ(LinuxDeviceType::P)
                .file_mode(0o644u32)
                .build()
                .unwrap(),
        ]));
        spec
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // The child's namespace is gone by now; nothing of ours may remain mounted on the host.
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let leaked: Vec<&str> = mountinfo
            .lines()
            .filter(|l| l.contains(&*self.dir.path().to_string_lossy()))
            .collect();
        if !std::thread::panicking() {
            assert!(leaked.is_empty(), "mounts leaked to the host: {leaked:?}");
        }
    }
}

/// One line per check: "ok NAME" or "fail NAME: why".
#[derive(Default)]
struct Report(Vec<String>);

impl Report {
    fn check(&mut self, name: &str, result: Result<(), String>) {
        match result {
            Ok(()) => self.0.push(format!("ok {name}")),
            Err(why) => self.0.push(format!("fail {name}: {why}")),
        }
    }
}

fn expect(condition: bool, why: impl FnOnce() -> String) -> Result<(), String> {
    if condition { Ok(()) } else { Err(why()) }
}

fn fs_type_is(path: &str, expected: FsType) -> Result<(), String> {
    let found = statfs::statfs(path)
        .map_err(|e| format!("statfs {path}: {e}"))?
        .filesystem_type();
    expect(found == expected, || {
        format!("{path} is {found:?}, expected {expected:?}")
    })
}

fn write_fails_with_erofs(path: &str) -> Result<(), String> {
    match fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
    {
        Ok(_) => Err(format!("{path} opened for writing")),
        Err(e) if e.raw_os_error() == Some(libc::EROFS) => Ok(()),
        Err(e) => Err(format!("{path}: {e}, expected EROFS")),
    }
}

fn reads_empty(path: &str) -> Result<(), String> {
    let mut content = Vec::new();
    fs::File::open(path)
        .and_then(|mut f| f.read_to_end(&mut content))
        .map_err(|e| format!("{path}: {e}"))?;
    expect(content.is_empty(), || {
        format!("{path} has {} bytes", content.len())
    })
}

/// The checks run in the container after `finalize_rootfs`.
fn container_checks(unique: &str, user_namespace: bool, report: &mut Report) {
    report.check(
        "user namespace as asked",
        (|| {
            let map = fs::read_to_string("/proc/self/uid_map").map_err(|e| e.to_string())?;
            let single = map.split_whitespace().collect::<Vec<_>>() == ["0", "0", "1"];
            expect(single == user_namespace, || format!("uid_map is {map:?}"))
        })(),
    );
    report.check(
        "devices made the right way",
        (|| {
            // mknod puts the node on the /dev tmpfs; in a user namespace it is a bind mount of
            // the host's node, on another filesystem.
            let null = fs::metadata("/dev/null").map_err(|e| e.to_string())?.dev();
            let dev = fs::metadata("/dev").map_err(|e| e.to_string())?.dev();
            expect((null != dev) == user_namespace, || {
                format!("/dev/null on {null}, /dev on {dev}")
            })
        })(),
    );
    report.check("inside the rootfs", {
        let marker = fs::read_to_string("/etc/marker").unwrap_or_default();
        expect(marker == "inside the rootfs\n", || {
            format!("/etc/marker reads {marker:?}")
        })
    });
    report.check(
        "/proc is proc",
        fs_type_is("/proc", statfs::PROC_SUPER_MAGIC),
    );
    report.check(
        "/proc/self works",
        expect(Path::new("/proc/self/status").exists(), || {
            "no /proc/self".into()
        }),
    );
    report.check("/dev is tmpfs", fs_type_is("/dev", statfs::TMPFS_MAGIC));
    report.check(
        "/dev/pts is devpts",
        fs_type_is("/dev/pts", statfs::DEVPTS_SUPER_MAGIC),
    );
    report.check(
        "/dev/shm is tmpfs",
        fs_type_is("/dev/shm", statfs::TMPFS_MAGIC),
    );
    report.check("/sys is sysfs", fs_type_is("/sys", statfs::SYSFS_MAGIC));
    report.check(
        "/sys is read-only",
        write_fails_with_erofs("/sys/berth-test"),
    );
    for (name, major_number, minor_number) in [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ] {
        let path = format!("/dev/{name}");
        report.check(
            &format!("{path} is char {major_number}:{minor_number} 0666"),
            (|| {
                let metadata = fs::symlink_metadata(&path).map_err(|e| format!("{path}: {e}"))?;
                expect(metadata.file_type().is_char_device(), || {
                    "not a char device".into()
                })?;
                let rdev = metadata.rdev();
                expect(
                    (major(rdev), minor(rdev)) == (major_number, minor_number),
                    || format!("{}:{}", major(rdev), minor(rdev)),
                )?;
                let mode = metadata.permissions().mode() & 0o7777;
                expect(mode == 0o666, || format!("mode {mode:o}"))
            })(),
        );
    }
    report.check(
        "/dev/null discards",
        fs::write("/dev/null", "x").map_err(|e| e.to_string()),
    );
    report.check(
        "/dev/fuse from linux.devices",
        (|| {
            let metadata = fs::symlink_metadata("/dev/fuse").map_err(|e| e.to_string())?;
            expect(metadata.file_type().is_char_device(), || {
                "not a char device".into()
            })?;
            expect(
                (major(metadata.rdev()), minor(metadata.rdev())) == (10, 229),
                || "wrong numbers".into(),
            )?;
            let mode = metadata.permissions().mode() & 0o7777;
            expect(mode == 0o600, || format!("mode {mode:o}"))
        })(),
    );
    report.check(
        "/dev/myfifo is a fifo 0644",
        (|| {
            let metadata = fs::symlink_metadata("/dev/myfifo").map_err(|e| e.to_string())?;
            expect(metadata.file_type().is_fifo(), || "not a fifo".into())?;
            let mode = metadata.permissions().mode() & 0o7777;
            expect(mode == 0o644, || format!("mode {mode:o}"))
        })(),
    );
    for (link, pointee) in [
        ("/dev/ptmx", "pts/ptmx"),
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        report.check(
            &format!("{link} -> {pointee}"),
            (|| {
                let found = fs::read_link(link).map_err(|e| format!("{link}: {e}"))?;
                expect(found == Path::new(pointee), || {
                    format!("points at {}", found.display())
                })
            })(),
        );
    }
    report.check(
        "/dev/pts/ptmx exists",
        expect(Path::new("/dev/ptmx").exists(), || "dangling".into()),
    );
    // The default masked files; this kernel may lack some (no /proc/kcore without
    // CONFIG_PROC_KCORE), but /proc/timer_list and /proc/keys are always there.
    for path in [
        "/proc/kcore",
        "/proc/timer_list",
        "/proc/keys",
        "/proc/latency_stats",
        "/proc/sched_debug",
    ] {
        if Path::new(path).exists() || matches!(path, "/proc/timer_list" | "/proc/keys") {
            report.check(&format!("{path} masked"), reads_empty(path));
        }
    }
    report.check("/etc/secret masked", reads_empty("/etc/secret"));
    report.check(
        "/secretdir masked",
        (|| {
            let entries = fs::read_dir("/secretdir")
                .map_err(|e| e.to_string())?
                .count();
            expect(entries == 0, || format!("{entries} entries"))?;
            write_fails_with_erofs("/secretdir/new")
        })(),
    );
    report.check(
        "/proc/sys read-only",
        write_fails_with_erofs("/proc/sys/kernel/hostname"),
    );
    if Path::new("/proc/sysrq-trigger").exists() {
        report.check(
            "/proc/sysrq-trigger read-only",
            write_fails_with_erofs("/proc/sysrq-trigger"),
        );
    }
    report.check(
        "readonly path /data/ro",
        write_fails_with_erofs("/data/ro/new"),
    );
    report.check(
        "/data/rw stays writable",
        fs::write("/data/rw/new", "x").map_err(|e| e.to_string()),
    );
    report.check("root read-only", write_fails_with_erofs("/new-file"));
    report.check(
        "absolute symlink destination stays inside",
        (|| {
            fs_type_is(&format!("/etc/{unique}"), statfs::TMPFS_MAGIC)?;
            fs::write(format!("/etc/{unique}/x"), "x").map_err(|e| e.to_string())
        })(),
    );
    report.check(
        "relative symlink destination stays inside",
        (|| {
            let path = format!("/etc/{unique}-file");
            let content = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
            expect(content == "from the host\n", || {
                format!("reads {content:?}")
            })?;
            write_fails_with_erofs(&path)
        })(),
    );
    report.check(
        "tmpcopyup copies into the tmpfs",
        (|| {
            fs_type_is("/copyup", statfs::TMPFS_MAGIC)?;
            let a = fs::read_to_string("/copyup/a.txt").map_err(|e| e.to_string())?;
            let b = fs::read_to_string("/copyup/link").map_err(|e| e.to_string())?;
            expect(a == "copied\n" && b == "deep\n", || {
                format!("read {a:?} {b:?}")
            })?;
            fs::write("/copyup/new", "x").map_err(|e| e.to_string())
        })(),
    );
    report.check(
        "tmpcopyup read-only",
        (|| {
            fs_type_is("/copyup-ro", statfs::TMPFS_MAGIC)?;
            let b = fs::read_to_string("/copyup-ro/sub/b").map_err(|e| e.to_string())?;
            expect(b == "deep\n", || format!("read {b:?}"))?;
            write_fails_with_erofs("/copyup-ro/new")
        })(),
    );
    report.check(
        "cgroup tmpfs read-only",
        (|| {
            fs_type_is("/sys/fs/cgroup", statfs::TMPFS_MAGIC)?;
            write_fails_with_erofs("/sys/fs/cgroup/new")
        })(),
    );
    report.check(
        "own memory cgroup",
        (|| {
            fs_type_is("/sys/fs/cgroup/memory", statfs::CGROUP_SUPER_MAGIC)?;
            let procs = fs::read_to_string("/sys/fs/cgroup/memory/cgroup.procs")
                .map_err(|e| e.to_string())?;
            let pid = getpid().as_raw().to_string();
            expect(procs.lines().any(|l| l == pid), || {
                format!("pid {pid} not in {procs:?}")
            })
        })(),
    );
    report.check(
        "unified hierarchy",
        fs_type_is("/sys/fs/cgroup/unified", statfs::CGROUP2_SUPER_MAGIC),
    );
    report.check(
        "cgroup hierarchies read-only",
        write_fails_with_erofs("/sys/fs/cgroup/cpu/cgroup.procs"),
    );
}

/// How the forked "init" is set up.
#[derive(Clone, Copy)]
struct Container {
    /// Namespaces to unshare besides the mount namespace.
    extra_flags: CloneFlags,
    /// `enter_rootfs(.., no_pivot)`.
    no_pivot: bool,
    /// Run in a new user namespace (root mapped to root, one id) with new pid and IPC
    /// namespaces, as a rootless-style container does: the setup then runs in a grandchild,
    /// pid 1 of the new pid namespace, since proc can only be mounted from inside it.
    user_namespace: bool,
    /// `linux.rootfsPropagation`.
    propagation: Option<&'static str>,
}

impl Default for Container {
    fn default() -> Self {
        Self {
            extra_flags: CloneFlags::empty(),
            no_pivot: false,
            user_namespace: false,
            propagation: None,
        }
    }
}

/// Writes the one-id map of a new user namespace (user_namespaces(7): a process may map its
/// own ids once `setgroups` is denied).
fn map_root_to_root() -> Result<(), String> {
    fs::write("/proc/self/setgroups", "deny").map_err(|e| format!("setgroups: {e}"))?;
    fs::write("/proc/self/uid_map", "0 0 1").map_err(|e| format!("uid_map: {e}"))?;
    fs::write("/proc/self/gid_map", "0 0 1").map_err(|e| format!("gid_map: {e}"))
}

/// Forks a child that enters new namespaces (always a mount namespace), sets up the rootfs,
/// runs the checks, reports them through a pipe, and then execs `sh -c script` from the
/// rootfs. Returns the report lines and the shell's exit code.
fn run_container(fixture: &Fixture, container: Container, script: &str) -> (Vec<String>, i32) {
    let mut spec = fixture.spec();
    if let Some(propagation) = container.propagation {
        spec.linux_mut()
            .as_mut()
            .unwrap()
            .set_rootfs_propagation(Some(propagation.to_string()));
    }
    let rootfs = fixture.rootfs();
    let unique = fixture.unique.clone();
    let script = std::ffi::CString::new(script).unwrap();
    let (read_end, write_end) = nix::unistd::pipe().unwrap();

    // Runs in the forked process that becomes the container's init; never returns.
    let init = move |pipe: fs::File, early: Result<(), String>| -> ! {
        let mut pipe = pipe;
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut report = Report::default();
            let setup = early.and_then(|()| {
                prepare_rootfs(&spec, &rootfs, container.user_namespace)
                    .map_err(|e| format!("prepare_rootfs: {e}"))?;
                enter_rootfs(&rootfs, container.no_pivot)
                    .map_err(|e| format!("enter_rootfs: {e}"))?;
                finalize_rootfs(&spec).map_err(|e| format!("finalize_rootfs: {e}"))
            });
            report.check("setup", setup.clone());
            if setup.is_ok() {
                container_checks(&unique, container.user_namespace, &mut report);
            }
            report.0
        }));
        let lines = outcome.unwrap_or_else(|_| vec!["fail panic: the child panicked".to_string()]);
        let ok = lines.iter().all(|l| l.starts_with("ok "));
        let _ = pipe.write_all(lines.join("\n").as_bytes());
        drop(pipe);
        if ok {
            // ETXTBSY: another test's forked child may still hold the inherited (O_CLOEXEC,
            // but not yet exec'd) descriptor that wrote its own copy of busybox... or ours.
            for _ in 0..100 {
                match nix::unistd::execv(c"/bin/sh", &[c"sh", c"-c", script.as_c_str()]) {
                    Err(nix::errno::Errno::ETXTBSY) => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => break,
                }
            }
        }
        // SAFETY: _exit ends the forked process without running the test process's atexit
        // handlers or unwinding into the harness.
        unsafe { libc::_exit(if ok { 127 } else { 1 }) }
    };

    // SAFETY: the child only runs our own code (glibc's fork leaves malloc usable in the
    // child of a multi-threaded process) and leaves through execv or _exit, never returning
    // into the test harness.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(read_end);
            let pipe = fs::File::from(write_end);
            if !container.user_namespace {
                let early = unshare(CloneFlags::CLONE_NEWNS | container.extra_flags)
                    .map_err(|e| format!("unshare: {e}"));
                init(pipe, early);
            }
            let flags = CloneFlags::CLONE_NEWUSER
                | CloneFlags::CLONE_NEWNS
                | CloneFlags::CLONE_NEWPID
                | CloneFlags::CLONE_NEWIPC
                | container.extra_flags;
            let early = unshare(flags)
                .map_err(|e| format!("unshare: {e}"))
                .and_then(|()| map_root_to_root());
            if early.is_err() {
                init(pipe, early);
            }
            // SAFETY: this child is single-threaded; the grandchild leaves through init (execv
            // or _exit), and this process only waits for it and _exits.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => init(pipe, Ok(())),
                Ok(ForkResult::Parent { child }) => {
                    drop(pipe);
                    let code = match waitpid(child, None) {
                        Ok(WaitStatus::Exited(_, code)) => code,
                        _ => 126,
                    };
                    // SAFETY: as above, _exit never returns into the harness.
                    unsafe { libc::_exit(code) }
                }
                Err(e) => init(pipe, Err(format!("fork: {e}"))),
            }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut text = String::new();
            fs::File::from(read_end).read_to_string(&mut text).unwrap();
            let code = match waitpid(child, None).unwrap() {
                WaitStatus::Exited(_, code) => code,
                other => panic!("child ended with {other:?}"),
            };
            (text.lines().map(str::to_owned).collect(), code)
        }
    }
}

fn assert_all_ok(lines: &[String]) {
    let failures: Vec<&String> = lines.iter().filter(|l| !l.starts_with("ok ")).collect();
    assert!(
        failures.is_empty(),
        "failed checks:\n{}\nall:\n{}",
        failures
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        lines.join("\n")
    );
    assert!(lines.len() > 30, "too few checks ran: {lines:?}");
}

/// What the busybox shell checks from inside: it runs from the rootfs, sees its devices and
/// proc, and cannot write to the root.
const SHELL_CHECKS: &str = "test -c /dev/null && test -L /dev/ptmx && test -d /proc/self/fd \
    && cat /etc/marker >/dev/null && ! touch /shell-file 2>/dev/null && echo hi > /dev/null";

fn assert_host_untouched(fixture: &Fixture) {
    let unique = &fixture.unique;
    assert!(
        !Path::new("/etc").join(unique).exists(),
        "mount destination escaped to the host's /etc"
    );
    assert!(
        !Path::new("/etc").join(format!("{unique}-file")).exists(),
        "bind destination escaped to the host's /etc"
    );
    let rootfs = fixture.rootfs();
    assert!(
        rootfs.join("etc").join(unique).is_dir(),
        "destination not created inside the rootfs"
    );
    assert!(rootfs.join("etc").join(format!("{unique}-file")).is_file());
    // Writes to the tmpcopyup tmpfs stayed in it.
    assert!(!rootfs.join("copyup/new").exists());
    // Devices went to the child's /dev tmpfs, not to the image directory.
    assert!(!rootfs.join("dev/null").exists());
}

#[test]
fn pivot_root_with_the_default_spec() {
    if !is_root() {
        return;
    }
    let fixture = Fixture::new();
    let (lines, code) = run_container(&fixture, Container::default(), SHELL_CHECKS);
    assert_all_ok(&lines);
    assert_eq!(code, 0, "busybox checks failed in the container");
    assert_host_untouched(&fixture);
}

#[test]
fn no_pivot_falls_back_to_move_and_chroot() {
    if !is_root() {
        return;
    }
    let fixture = Fixture::new();
    let (lines, code) = run_container(
        &fixture,
        Container {
            no_pivot: true,
            ..Default::default()
        },
        SHELL_CHECKS,
    );
    assert_all_ok(&lines);
    assert_eq!(code, 0, "busybox checks failed in the container");
    assert_host_untouched(&fixture);
}

#[test]
fn cgroup_namespace_sees_its_own_cgroups() {
    if !is_root() {
        return;
    }
    let fixture = Fixture::new();
    let (lines, code) = run_container(
        &fixture,
        Container {
            extra_flags: CloneFlags::CLONE_NEWCGROUP,
            ..Default::default()
        },
        SHELL_CHECKS,
    );
    assert_all_ok(&lines);
    assert_eq!(code, 0);
}

#[test]
fn user_namespace_binds_devices_and_sysfs() {
    if !is_root() {
        return;
    }
    let fixture = Fixture::new();
    let container = Container {
        user_namespace: true,
        ..Default::default()
    };
    let (lines, code) = run_container(&fixture, container, SHELL_CHECKS);
    assert_all_ok(&lines);
    assert_eq!(code, 0, "busybox checks failed in the container");
    assert_host_untouched(&fixture);
}

#[test]
fn user_namespace_without_pivot() {
    if !is_root() {
        return;
    }
    let fixture = Fixture::new();
    let container = Container {
        user_namespace: true,
        no_pivot: true,
        ..Default::default()
    };
    let (lines, code) = run_container(&fixture, container, SHELL_CHECKS);
    assert_all_ok(&lines);
    assert_eq!(code, 0, "busybox checks failed in the container");
}

#[test]
fn rootfs_propagation_variants() {
    if !is_root() {
        return;
    }
    // The host's mounts are private here (no systemd), so even rshared cannot reach them; the
    // fixture's Drop still checks that nothing leaked.
    // (runbindable is left out: it makes every host mount unbindable, so the bind mounts of
    // the spec, and the rootfs's own bind onto itself, fail with EINVAL, as with runc.)
    for propagation in [
        "rshared", "shared", "rprivate", "private", "slave", "rslave",
    ] {
        let fixture = Fixture::new();
        let container = Container {
            propagation: Some(propagation),
            ..Default::default()
        };
        let (lines, code) = run_container(&fixture, container, SHELL_CHECKS);
        assert_all_ok(&lines);
        assert_eq!(code, 0, "{propagation}");
        assert_host_untouched(&fixture);
    }
}

#[test]
fn rejects_a_relative_destination_without_mounting() {
    if !is_root() {
        return;
    }
    let fixture = Fixture::new();
    let mut spec = fixture.spec();
    let mut mounts = spec.mounts().clone().unwrap();
    mounts.push(
        MountBuilder::default()
            .destination("relative/dir")
            .typ("tmpfs")
            .source("tmpfs")
            .build()
            .unwrap(),
    );
    spec.set_mounts(Some(mounts));
    let rootfs = fixture.rootfs();
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    // SAFETY: as in run_container: the child leaves through _exit only.
    match unsafe { fork() }.unwrap() {
        ForkResult::Child => {
            drop(read_end);
            let mut pipe = fs::File::from(write_end);
            let message = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                if let Err(e) = unshare(CloneFlags::CLONE_NEWNS) {
                    return format!("unshare: {e}");
                }
                match prepare_rootfs(&spec, &rootfs, false) {
                    Ok(()) => "ok".to_string(),
                    Err(e @ runtime::Error::InvalidArgument(_)) => format!("invalid: {e}"),
                    Err(e) => format!("other: {e}"),
                }
            }))
            .unwrap_or_else(|_| "panic".to_string());
            let _ = pipe.write_all(message.as_bytes());
            drop(pipe);
            // SAFETY: see above.
            unsafe { libc::_exit(0) }
        }
        ForkResult::Parent { child } => {
            drop(write_end);
            let mut text = String::new();
            fs::File::from(read_end).read_to_string(&mut text).unwrap();
            waitpid(child, None).unwrap();
            assert!(
                text.starts_with("invalid: ") && text.contains("relative/dir"),
                "{text}"
            );
        }
    }
}

#[test]
fn fixture_is_removed() {
    if !is_root() {
        return;
    }
    let path;
    {
        let fixture = Fixture::new();
        path = fixture.dir.path().to_path_buf();
        let (lines, _) = run_container(&fixture, Container::default(), "true");
        assert_all_ok(&lines);
    }
    assert!(!path.exists(), "tempdir {} still exists", path.display());
}
