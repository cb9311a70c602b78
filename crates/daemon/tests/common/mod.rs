//! End-to-end harness: a real `berthd` on its own socket and data root in a tempdir, driven by
//! the real docker CLI (/usr/local/bin/docker, or `DOCKER` env) and by `berth`. Every daemon is
//! torn down with its containers, mounts and files, also when a test panics.
#![allow(dead_code)]

pub mod terminal;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A binary built next to berthd (same target directory).
pub fn sibling_binary(name: &str) -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_berthd")).with_file_name(name)
}

/// The docker CLI under test.
pub fn docker_cli() -> PathBuf {
    std::env::var_os("DOCKER")
        .map(PathBuf::from)
        .unwrap_or_else(|| "/usr/local/bin/docker".into())
}

/// Output of a CLI call.
#[derive(Debug)]
pub struct Run {
    pub what: String,
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    #[track_caller]
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "{} failed:\nstdout: {}\nstderr: {}",
            self.what, self.stdout, self.stderr
        );
        self
    }
    pub fn out(&self) -> String {
        self.stdout.trim().to_string()
    }
}

pub fn output_of(what: String, output: Output) -> Run {
    Run {
        what,
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// A running daemon.
pub struct Daemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    child: Option<Child>,
    /// More berthd flags (after the data root, exec root, unix socket and config file).
    extra_args: Vec<String>,
    /// This daemon's share of the host's networking (bridge, subnets, nftables table).
    pub net: NetSlot,
}

/// A machine-wide unique slot for one test daemon's networking, held (flock) while the daemon
/// lives, so parallel tests — of this process, other test binaries, other engineers — never
/// share a bridge, a subnet or an nftables table:
/// bridge and table `berth-t<N>`, default bridge 10.210.N.1/24, new networks from
/// 10.211.N.0/24 in /28s, containers' DNS upstream 127.0.0.1 (nothing answers: no query ever
/// leaves the machine).
pub struct NetSlot {
    pub index: u32,
    _lock: std::fs::File,
}

impl NetSlot {
    pub fn take() -> NetSlot {
        let dir = Path::new("/run/berth-test-nets");
        std::fs::create_dir_all(dir).expect("slot dir");
        let start = std::process::id() % 200;
        for step in 0..200 {
            let index = (start + step) % 200;
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(dir.join(format!("{index}.lock")))
                .expect("slot lock file");
            // SAFETY: flock on a descriptor this function owns.
            let locked = unsafe {
                libc::flock(
                    std::os::fd::AsRawFd::as_raw_fd(&file),
                    libc::LOCK_EX | libc::LOCK_NB,
                )
            } == 0;
            if locked {
                return NetSlot { index, _lock: file };
            }
        }
        panic!("no free network slot for a test daemon");
    }

    pub fn bridge(&self) -> String {
        format!("berth-t{}", self.index)
    }

    /// The default bridge's subnet.
    pub fn subnet(&self) -> String {
        format!("10.210.{}.0/24", self.index)
    }

    /// The default bridge's gateway (the host's address on it).
    pub fn gateway(&self) -> String {
        format!("10.210.{}.1", self.index)
    }

    /// A /24 no daemon uses, for a test's own `--subnet` (`which` < 8).
    pub fn spare_subnet(&self, which: u32) -> String {
        format!("10.{}.{}.0/24", 212 + which, self.index)
    }

    /// The daemon.json keys of this slot, merged into `config`.
    fn merge_into(&self, config: &str) -> String {
        let mut value: serde_json::Value = if config.trim().is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_str(config).expect("daemon config is JSON")
        };
        let object = value.as_object_mut().expect("daemon config is an object");
        let defaults = serde_json::json!({
            "bridge": self.bridge(),
            "bip": format!("{}/24", self.gateway()),
            "default-address-pools": [{"base": format!("10.211.{}.0/24", self.index), "size": 28}],
            "dns": ["127.0.0.1"],
        });
        for (key, item) in defaults.as_object().expect("object") {
            object.entry(key.clone()).or_insert(item.clone());
        }
        value.to_string()
    }

    /// Removes what a daemon of this slot leaves on the host: its default bridge, bridges of
    /// networks a failed test left, its nftables table and its accept rules in
    /// iptables-nft's FORWARD chain.
    pub fn clean(&self, data_root: &Path) {
        let mut links = vec![self.bridge()];
        for entry in std::fs::read_dir(data_root.join("network"))
            .into_iter()
            .flatten()
            .flatten()
        {
            let record = std::fs::read_to_string(entry.path())
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
            if let Some(record) = record.filter(|r| r["driver"] == "bridge")
                && let Some(name) = record["interface"].as_str()
            {
                links.push(name.to_string());
            }
        }
        for link in links {
            let _ = Command::new("ip")
                .args(["link", "delete", &link])
                .stderr(Stdio::null())
                .status();
        }
        let table = self.bridge();
        let _ = Command::new("nft")
            .args(["delete", "table", "ip", &table])
            .stderr(Stdio::null())
            .status();
        let listing = Command::new("nft")
            .args(["-a", "list", "chain", "ip", "filter", "FORWARD"])
            .stderr(Stdio::null())
            .output();
        if let Ok(listing) = listing {
            let tag = format!("\"berth:{table}\"");
            for line in String::from_utf8_lossy(&listing.stdout).lines() {
                if let Some(handle) = line
                    .contains(&tag)
                    .then(|| line.rsplit("# handle ").next())
                    .flatten()
                {
                    let _ = Command::new("nft")
                        .args([
                            "delete",
                            "rule",
                            "ip",
                            "filter",
                            "FORWARD",
                            "handle",
                            handle.trim(),
                        ])
                        .status();
                }
            }
        }
    }
}

impl Daemon {
    /// Starts berthd and waits until `/_ping` answers.
    pub fn start() -> Daemon {
        Self::start_full(|_| {}, "", &[])
    }

    /// Starts berthd with `config` as its configuration file (daemon.json keys), to which the
    /// daemon's network slot adds its keys (unless `config` sets them).
    pub fn start_with_config(config: &str) -> Daemon {
        Self::start_full(|_| {}, config, &[])
    }

    /// Starts berthd with more flags (e.g. `-H tcp://...` and TLS) and `config` as its
    /// configuration file when given. The unix socket stays, for readiness and cleanup.
    pub fn start_with_args(config: Option<&str>, args: &[String]) -> Daemon {
        Self::start_full(|_| {}, config.unwrap_or(""), args)
    }

    /// Starts berthd after `setup` has prepared its tempdir (for example mounted a file
    /// system on `<dir>/data`, the data root); whatever `setup` mounted there is unmounted
    /// on drop with the rest.
    pub fn start_with_setup(setup: impl FnOnce(&Path)) -> Daemon {
        Self::start_full(setup, "", &[])
    }

    /// The one way the daemons above start: a tempdir prepared by `setup`, a network slot,
    /// `config` with the slot's keys merged in, and `args` after the usual flags.
    fn start_full(setup: impl FnOnce(&Path), config: &str, args: &[String]) -> Daemon {
        assert_eq!(
            // SAFETY: geteuid has no preconditions and cannot fail.
            unsafe { libc::geteuid() },
            0,
            "the end-to-end tests need root"
        );
        let dir = tempfile::Builder::new()
            .prefix("berthd-e2e-")
            .tempdir()
            .expect("tempdir");
        setup(dir.path());
        let net = NetSlot::take();
        std::fs::write(dir.path().join("none.json"), net.merge_into(config))
            .expect("write daemon config");
        let socket = dir.path().join("run/berth.sock");
        let mut daemon = Daemon {
            dir,
            socket,
            child: None,
            extra_args: args.to_vec(),
            net,
        };
        daemon.spawn();
        daemon
    }

    pub fn data_root(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("berthd.log"))
            .expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_berthd"))
            .arg("--data-root")
            .arg(self.data_root())
            .arg("--exec-root")
            .arg(self.dir.path().join("run"))
            .arg("-H")
            .arg(format!("unix://{}", self.socket.display()))
            .arg("--config-file")
            .arg(self.dir.path().join("none.json"))
            .arg("--debug")
            .args(&self.extra_args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start berthd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("berthd did not come up: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("berthd.log")).unwrap_or_default()
    }

    /// kill -9 of the daemon (containers keep running in their shims).
    pub fn kill_hard(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the daemon again on the same roots.
    pub fn restart(&mut self) {
        self.kill_hard();
        self.spawn();
    }

    pub fn host(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Runs the docker CLI against this daemon.
    pub fn docker(&self, args: &[&str]) -> Run {
        self.docker_with_stdin(args, None)
    }

    pub fn docker_with_stdin(&self, args: &[&str], stdin: Option<&Path>) -> Run {
        let mut command = Command::new(docker_cli());
        command
            .env("DOCKER_HOST", self.host())
            .env("DOCKER_CONFIG", self.dir.path().join("docker-config"))
            .args(args);
        command.stdin(match stdin {
            Some(path) => Stdio::from(std::fs::File::open(path).expect("stdin file")),
            None => Stdio::null(),
        });
        output_of(
            format!("docker {}", args.join(" ")),
            command.output().expect("run docker"),
        )
    }

    /// Runs the berth CLI against this daemon.
    pub fn berth(&self, args: &[&str]) -> Run {
        let mut command = Command::new(sibling_binary("berth"));
        command
            .env("BERTH_HOST", self.host())
            .args(args)
            .stdin(Stdio::null());
        output_of(
            format!("berth {}", args.join(" ")),
            command.output().expect("run berth"),
        )
    }

    /// Imports a busybox rootfs (Debian's busybox-static) as `busybox:latest`.
    pub fn import_busybox(&self) {
        let rootfs = self.dir.path().join("busybox-rootfs");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/busybox-rootfs.sh");
        let status = Command::new("bash")
            .arg(script)
            .arg(&rootfs)
            .stdout(Stdio::null())
            .status()
            .expect("rootfs");
        assert!(status.success());
        let tar = self.dir.path().join("busybox.tar");
        let status = Command::new("tar")
            .arg("-C")
            .arg(&rootfs)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .expect("tar");
        assert!(status.success());
        self.docker_with_stdin(&["import", "-", "busybox:latest"], Some(&tar))
            .ok();
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.child.is_some() {
            let ids = self.docker(&["ps", "-aq"]).stdout;
            let ids: Vec<&str> = ids.split_whitespace().collect();
            if !ids.is_empty() {
                let mut args = vec!["rm", "-f"];
                args.extend(ids);
                let _ = self.docker(&args);
            }
            let _ = self.docker(&["network", "prune", "-f"]);
        }
        if let Some(mut child) = self.child.take() {
            // SAFETY: kill with a valid pid of our child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let _ = child.wait();
        }
        // Shims of containers that a failed test left behind.
        for entry in std::fs::read_dir(self.dir.path().join("run/shims"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if let Ok(pid) = std::fs::read_to_string(entry.path().join("shim.pid"))
                && let Ok(pid) = pid.trim().parse::<i32>()
            {
                // SAFETY: plain kill(2).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        // Mounts left under the tempdir, deepest first.
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let prefix = self.dir.path().display().to_string();
        let mut mounts: Vec<&str> = mountinfo
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for mount in mounts {
            let path = std::ffi::CString::new(mount).expect("path");
            // SAFETY: umount2 with a NUL-terminated path.
            unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
        }
        self.net.clean(&self.data_root());
    }
}

/// Polls until `check` holds or the timeout passes.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    check()
}

/// An HTTP/1.0 exchange on the daemon's socket (the body ends with the connection): status
/// and body.
pub fn http(daemon: &Daemon, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
    let mut stream = std::os::unix::net::UnixStream::connect(&daemon.socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: berth\r\n");
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
    } else {
        request.push_str("\r\n");
    }
    std::io::Write::write_all(&mut stream, request.as_bytes()).expect("write");
    let mut raw = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut raw);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}
