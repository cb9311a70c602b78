//! A fake cgroup tree in a temporary directory for unit tests: the mountinfo of a host layout,
//! root files with the kernel's defaults, and [`FakeHost::mkcg`] standing in for the files the
//! kernel creates on mkdir.

use std::path::{Path, PathBuf};

use crate::fs::WRITES;
use crate::hierarchy::Hierarchies;

pub(crate) struct FakeHost {
    dir: tempfile::TempDir,
    mountinfo: String,
    /// (directory under the root, files with their initial content) per hierarchy.
    hierarchies: Vec<(&'static str, Vec<(&'static str, &'static str)>)>,
}

const MAX: &str = "9223372036854771712";

fn v1_files(name: &str) -> Vec<(&'static str, &'static str)> {
    let mut files = vec![("cgroup.procs", ""), ("tasks", "")];
    files.extend(match name {
        "cpu" => vec![
            ("cpu.shares", "1024"),
            ("cpu.cfs_period_us", "100000"),
            ("cpu.cfs_quota_us", "-1"),
            ("cpu.cfs_burst_us", "0"),
            ("cpu.idle", "0"),
            ("cpu.rt_period_us", "1000000"),
            ("cpu.rt_runtime_us", "0"),
            (
                "cpu.stat",
                "nr_periods 10\nnr_throttled 3\nthrottled_time 5000\n",
            ),
        ],
        "cpuacct" => vec![
            ("cpuacct.usage", "3000"),
            ("cpuacct.usage_user", "2000"),
            ("cpuacct.usage_sys", "1000"),
            ("cpuacct.usage_percpu", "1000 2000 \n"),
        ],
        "cpuset" => vec![("cpuset.cpus", ""), ("cpuset.mems", "")],
        "memory" => vec![
            ("memory.limit_in_bytes", MAX),
            ("memory.memsw.limit_in_bytes", MAX),
            ("memory.soft_limit_in_bytes", MAX),
            ("memory.swappiness", "60"),
            (
                "memory.oom_control",
                "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
            ),
            ("memory.usage_in_bytes", "4096"),
            ("memory.max_usage_in_bytes", "8192"),
            ("memory.memsw.usage_in_bytes", "4096"),
            ("memory.memsw.max_usage_in_bytes", "8192"),
            ("memory.kmem.tcp.limit_in_bytes", MAX),
            (
                "memory.stat",
                "cache 100\nrss 200\ninactive_file 50\ntotal_cache 100\n",
            ),
        ],
        "devices" => vec![
            ("devices.allow", ""),
            ("devices.deny", ""),
            ("devices.list", "a *:* rwm"),
        ],
        "freezer" => vec![("freezer.state", "THAWED")],
        "blkio" => vec![
            ("blkio.bfq.weight", "100"),
            ("blkio.bfq.weight_device", ""),
            ("blkio.throttle.read_bps_device", ""),
            ("blkio.throttle.write_bps_device", ""),
            ("blkio.throttle.read_iops_device", ""),
            ("blkio.throttle.write_iops_device", ""),
            (
                "blkio.throttle.io_service_bytes_recursive",
                "254:0 Read 4096\n254:0 Write 8192\n254:0 Total 12288\nTotal 12288\n",
            ),
            (
                "blkio.throttle.io_serviced_recursive",
                "254:0 Read 1\n254:0 Write 2\nTotal 3\n",
            ),
        ],
        "pids" => vec![("pids.max", "max"), ("pids.current", "3")],
        _ => vec![],
    });
    files
}

fn v2_files(with_controllers: &str) -> Vec<(&'static str, &'static str)> {
    let mut files = vec![
        ("cgroup.procs", ""),
        ("cgroup.subtree_control", ""),
        ("cgroup.freeze", "0"),
        ("cgroup.events", "populated 0\nfrozen 0\n"),
        ("cgroup.kill", ""),
        (
            "cpu.stat",
            "usage_usec 30\nuser_usec 20\nsystem_usec 10\nnr_periods 4\nnr_throttled 1\nthrottled_usec 7\n",
        ),
    ];
    for controller in with_controllers.split_whitespace() {
        files.extend(match controller {
            "cpu" => vec![
                ("cpu.weight", "100"),
                ("cpu.max", "max 100000"),
                ("cpu.max.burst", "0"),
                ("cpu.idle", "0"),
            ],
            "cpuset" => vec![("cpuset.cpus", ""), ("cpuset.mems", "")],
            "memory" => vec![
                ("memory.max", "max"),
                ("memory.low", "0"),
                ("memory.swap.max", "max"),
                ("memory.current", "4096"),
                ("memory.peak", "8192"),
                ("memory.swap.current", "0"),
                ("memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n"),
                ("memory.stat", "anon 200\nfile 100\ninactive_file 50\n"),
            ],
            "io" => vec![
                ("io.weight", "default 100"),
                ("io.max", ""),
                (
                    "io.stat",
                    "254:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
                ),
            ],
            "pids" => vec![("pids.max", "max"), ("pids.current", "2")],
            "hugetlb" => vec![
                ("hugetlb.2MB.max", "max"),
                ("hugetlb.2MB.current", "0"),
                ("hugetlb.2MB.events", "max 0\n"),
                ("hugetlb.1GB.max", "max"),
            ],
            "rdma" => vec![("rdma.max", "")],
            _ => vec![],
        });
    }
    files
}

impl FakeHost {
    /// The layout of the project's test host: v1 controllers plus cgroup2 with hugetlb only.
    pub(crate) fn hybrid() -> Self {
        let mut mountinfo = String::new();
        let mut hierarchies = Vec::new();
        for (i, name) in [
            "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
        ]
        .into_iter()
        .enumerate()
        {
            let opt = if name == "systemd" {
                "name=systemd".to_string()
            } else {
                name.to_string()
            };
            mountinfo.push_str(&format!(
                "{} 31 0:{} / /sys/fs/cgroup/{name} rw,relatime - cgroup cgroup rw,{opt}\n",
                32 + i,
                29 + i
            ));
            hierarchies.push((name, v1_files(name)));
        }
        mountinfo
            .push_str("41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
        hierarchies.push(("unified", v2_files("hugetlb")));
        Self::build(mountinfo, hierarchies, "hugetlb")
    }

    /// A cgroup2-only host with the usual controllers.
    pub(crate) fn unified() -> Self {
        let controllers = "cpuset cpu io memory hugetlb pids rdma";
        let mountinfo =
            "29 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n".to_string();
        Self::build(mountinfo, vec![("", v2_files(controllers))], controllers)
    }

    fn build(
        mountinfo: String,
        hierarchies: Vec<(&'static str, Vec<(&'static str, &'static str)>)>,
        v2_controllers: &'static str,
    ) -> Self {
        WRITES.with(|w| w.borrow_mut().clear());
        let dir = tempfile::tempdir().unwrap();
        let host = Self {
            dir,
            mountinfo,
            hierarchies,
        };
        for (name, files) in &host.hierarchies {
            let root = host.path(name);
            std::fs::create_dir_all(&root).unwrap();
            for (file, content) in files {
                std::fs::write(root.join(file), content).unwrap();
            }
            if *name == "cpuset" {
                std::fs::write(root.join("cpuset.cpus"), "0-1\n").unwrap();
                std::fs::write(root.join("cpuset.mems"), "0\n").unwrap();
            }
            if files.iter().any(|(f, _)| *f == "cgroup.subtree_control") {
                std::fs::write(root.join("cgroup.controllers"), v2_controllers).unwrap();
            }
        }
        host
    }

    pub(crate) fn hierarchies(&self) -> Hierarchies {
        Hierarchies::from_mountinfo(&self.mountinfo, self.dir.path()).unwrap()
    }

    /// A path under the fake `/sys/fs/cgroup`.
    pub(crate) fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join("sys/fs/cgroup").join(rel)
    }

    pub(crate) fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel))
            .unwrap()
            .trim()
            .to_string()
    }

    /// What the kernel does on mkdir: each level of `cgroup` gets its interface files.
    pub(crate) fn mkcg(&self, cgroup: &str) {
        for (name, files) in &self.hierarchies {
            let mut dir = self.path(name);
            for component in cgroup.split('/').filter(|c| !c.is_empty()) {
                dir.push(component);
                if dir.is_dir() {
                    continue;
                }
                std::fs::create_dir_all(&dir).unwrap();
                for (file, content) in files {
                    std::fs::write(dir.join(file), content).unwrap();
                }
                let parent = dir.parent().unwrap();
                if fs_has(parent, "cgroup.controllers") {
                    let offered =
                        std::fs::read_to_string(parent.join("cgroup.controllers")).unwrap();
                    std::fs::write(dir.join("cgroup.controllers"), offered).unwrap();
                }
            }
        }
    }

    /// The writes made by this thread since the host was built, as (path under the fake
    /// `/sys/fs/cgroup`, value).
    pub(crate) fn writes(&self) -> Vec<(String, String)> {
        let base = self.path("");
        WRITES.with(|w| {
            w.borrow()
                .iter()
                .map(|(p, v)| {
                    (
                        p.strip_prefix(&base).unwrap().display().to_string(),
                        v.clone(),
                    )
                })
                .collect()
        })
    }

    pub(crate) fn clear_writes(&self) {
        WRITES.with(|w| w.borrow_mut().clear());
    }
}

fn fs_has(dir: &Path, file: &str) -> bool {
    dir.join(file).exists()
}
