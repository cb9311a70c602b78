//! Networks with the real docker CLI against berthd (issue 6): user-defined networks with DNS
//! by name and alias, isolation, --internal, published ports (loopback, the host's own address,
//! hairpin, -P, UDP), egress NAT seen by a fake upstream host, macvlan, DNS forwarding, the
//! container files, network modes, the `docker network` commands, kill -9 of the daemon with
//! published ports, and bad input leaving nothing half-made.
//!
//! All traffic stays on this machine: between the host and namespaces the tests made
//! (containers, and the fake hosts below). Each daemon has its own bridge, subnets and
//! nftables table (common::NetSlot).

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::process::Command;
use std::time::Duration;

use common::{Daemon, Run, wait_until};

/// A network namespace of the test's own, reachable from the host over a veth pair:
/// `host_side` (on the host, `10.X.N.1/24`) and `eth0` inside (`10.X.N.2/24`). Removed on drop.
struct FakeHost {
    name: String,
    host_side: String,
    pub address: Ipv4Addr,
    pub host_address: Ipv4Addr,
}

fn sh(command: &str) -> std::process::Output {
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .output()
        .expect("sh")
}

fn must(command: &str) {
    let output = sh(command);
    assert!(
        output.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl FakeHost {
    /// `octet` picks the /16 (10.octet.N.0/24 with N the daemon's slot).
    fn new(daemon: &Daemon, role: &str, octet: u8, attach_to_host: bool) -> FakeHost {
        let n = daemon.net.index;
        let name = format!("berth-{role}{n}");
        let host_side = format!("berth-{role}{n}h");
        let address = Ipv4Addr::new(10, octet, n as u8, 2);
        let host_address = Ipv4Addr::new(10, octet, n as u8, 1);
        let _ = sh(&format!(
            "ip netns delete {name} 2>/dev/null; ip link delete {host_side} 2>/dev/null"
        ));
        must(&format!("ip netns add {name}"));
        must(&format!(
            "ip link add {host_side} type veth peer name eth0 netns {name}"
        ));
        must(&format!(
            "ip -n {name} link set lo up && ip -n {name} addr add {address}/24 dev eth0 && ip -n {name} link set eth0 up"
        ));
        if attach_to_host {
            must(&format!(
                "ip addr add {host_address}/24 dev {host_side} && ip link set {host_side} up && ip -n {name} route add default via {host_address}"
            ));
        } else {
            must(&format!("ip link set {host_side} up"));
        }
        FakeHost {
            name,
            host_side,
            address,
            host_address,
        }
    }

    /// Serves HTTP once per connection inside the namespace: the body is the peer's address.
    /// Returns the port and the receiver of the peers seen.
    fn serve_http(&self, port: u16) -> std::sync::mpsc::Receiver<String> {
        let (sender, receiver) = std::sync::mpsc::channel();
        let path = format!("/run/netns/{}", self.name);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("netns file");
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind");
            ready_tx.send(()).unwrap();
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let peer = stream
                    .peer_addr()
                    .map(|p| p.ip().to_string())
                    .unwrap_or_default();
                let mut request = [0u8; 1024];
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = stream.read(&mut request);
                let body = format!("{peer}\n");
                let _ = stream.write_all(
                    format!(
                        "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
                if sender.send(peer).is_err() {
                    return;
                }
            }
        });
        ready_rx
            .recv_timeout(Duration::from_secs(5))
            .expect("listener up");
        receiver
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        let _ = sh(&format!(
            "ip link delete {} 2>/dev/null; ip netns delete {} 2>/dev/null",
            self.host_side, self.name
        ));
    }
}

fn curl(url: &str) -> Option<String> {
    let output = Command::new("curl")
        .args(["-s", "-m", "5", url])
        .output()
        .expect("curl");
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// The host's own first global IPv4 address outside the test bridges.
fn host_address() -> String {
    let output = sh(
        "ip -4 -o addr show scope global | awk '$2 !~ /^(berth|br-|veth)/ {print $4}' | head -1",
    );
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    text.split('/').next().unwrap_or_default().to_string()
}

fn short(id: &str) -> String {
    id[..12].to_string()
}

/// A fetch from a throwaway container: busybox wget under `timeout` (wget's own -T crashes
/// the static busybox). Not as pid 1: the container's init ignores the SIGTERM of `timeout`,
/// and a dropped connection would then wait for the kernel's connect timeout (minutes).
fn fetch_within(daemon: &Daemon, network: &str, url: &str, seconds: u32) -> Run {
    let script = format!("timeout {seconds} wget -q -O - {url}; exit $?");
    daemon.docker(&[
        "run",
        "--rm",
        "--network",
        network,
        "busybox",
        "sh",
        "-c",
        &script,
    ])
}

fn fetch(daemon: &Daemon, network: &str, url: &str) -> Run {
    fetch_within(daemon, network, url, 5)
}

/// A fetch expected to fail (blocked traffic is dropped: wait less).
fn fetch_blocked(daemon: &Daemon, network: &str, url: &str) -> Run {
    fetch_within(daemon, network, url, 2)
}

/// Ports of this daemon's tests: unique per slot.
fn port(daemon: &Daemon, which: u16) -> u16 {
    20000 + daemon.net.index as u16 * 20 + which
}

fn nft_table(daemon: &Daemon) -> String {
    let output = Command::new("nft")
        .args(["list", "table", "ip", &daemon.net.bridge()])
        .output()
        .expect("nft");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn links() -> Vec<String> {
    let output = sh("ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The host ends of veths enslaved to a bridge.
fn ports_of_bridge(bridge: &str) -> usize {
    let output = sh(&format!(
        "ip -o link show master {bridge} 2>/dev/null | wc -l"
    ));
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

fn web(daemon: &Daemon, args: &[&str]) -> String {
    let mut command = vec!["run", "-d"];
    command.extend_from_slice(args);
    command.extend_from_slice(&["busybox", "httpd", "-f", "-p", "80", "-h", "/etc"]);
    daemon.docker(&command).ok().out()
}

#[test]
fn user_networks_resolve_names_and_aliases_and_are_isolated() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon.docker(&["network", "create", "front"]).ok();
    daemon.docker(&["network", "create", "back"]).ok();
    let id = web(
        &daemon,
        &[
            "--name",
            "web",
            "--network",
            "front",
            "--network-alias",
            "www",
        ],
    );
    // By name, by alias, by short id, by NAME.NETWORK.
    for target in ["web", "www", &short(&id), "web.front"] {
        let got = fetch(&daemon, "front", &format!("http://{target}/hostname"));
        assert_eq!(got.ok().out(), short(&id), "{target}: {}", got.stderr);
    }
    // Another network sees neither the name nor the address.
    let address = daemon
        .docker(&[
            "inspect",
            "-f",
            "{{.NetworkSettings.Networks.front.IPAddress}}",
            "web",
        ])
        .ok()
        .out();
    let lookup = daemon.docker(&[
        "run",
        "--rm",
        "--network",
        "back",
        "busybox",
        "nslookup",
        "web",
    ]);
    assert_ne!(lookup.code, 0, "{}", lookup.stdout);
    let direct = fetch_blocked(&daemon, "back", &format!("http://{address}/hostname"));
    assert_ne!(direct.code, 0, "{}", direct.stdout);
    // The default bridge has no embedded DNS either.
    let default = fetch_blocked(&daemon, "bridge", &format!("http://{address}/hostname"));
    assert_ne!(default.code, 0, "{}", default.stdout);

    // Round robin over an alias that two containers share.
    web(
        &daemon,
        &[
            "--name",
            "svc1",
            "--network",
            "front",
            "--network-alias",
            "svc",
        ],
    );
    web(
        &daemon,
        &[
            "--name",
            "svc2",
            "--network",
            "front",
            "--network-alias",
            "svc",
        ],
    );
    let answers = daemon
        .docker(&[
            "run",
            "--rm",
            "--network",
            "front",
            "busybox",
            "nslookup",
            "svc",
        ])
        .ok()
        .stdout
        .clone();
    assert_eq!(answers.matches("Address: 10.211.").count(), 2, "{answers}");
    let mut seen = std::collections::HashSet::new();
    for _ in 0..8 {
        seen.insert(fetch(&daemon, "front", "http://svc/hostname").ok().out());
    }
    assert!(!seen.is_empty());

    // resolv.conf points at the embedded server.
    let resolv = daemon
        .docker(&[
            "run",
            "--rm",
            "--network",
            "front",
            "busybox",
            "cat",
            "/etc/resolv.conf",
        ])
        .ok()
        .stdout
        .clone();
    assert!(resolv.contains("nameserver 127.0.0.11"), "{resolv}");
    assert!(resolv.contains("ndots:0"), "{resolv}");
}

#[test]
fn egress_is_masqueraded_and_internal_networks_have_no_way_out() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let upstream = FakeHost::new(&daemon, "up", 220, true);
    let seen = upstream.serve_http(8000);
    let url = format!("http://{}:8000/", upstream.address);
    // The default bridge: out through NAT, the fake host sees the host's address.
    let got = fetch(&daemon, "bridge", &url);
    assert_eq!(got.ok().out(), upstream.host_address.to_string());
    assert_eq!(
        seen.recv_timeout(Duration::from_secs(5)).unwrap(),
        upstream.host_address.to_string()
    );
    // A user-defined network too.
    daemon.docker(&["network", "create", "open"]).ok();
    assert_eq!(
        fetch(&daemon, "open", &url).ok().out(),
        upstream.host_address.to_string()
    );
    seen.recv_timeout(Duration::from_secs(5)).unwrap();
    // --internal: no default route, nothing gets out.
    daemon
        .docker(&["network", "create", "--internal", "closed"])
        .ok();
    let routes = daemon
        .docker(&[
            "run",
            "--rm",
            "--network",
            "closed",
            "busybox",
            "ip",
            "route",
        ])
        .ok()
        .stdout
        .clone();
    assert!(!routes.contains("default"), "{routes}");
    let blocked = fetch_blocked(&daemon, "closed", &url);
    assert_ne!(blocked.code, 0, "{}", blocked.stdout);
    assert!(
        seen.try_recv().is_err(),
        "an internal container reached the outside"
    );
    let inspect = daemon
        .docker(&["network", "inspect", "-f", "{{.Internal}}", "closed"])
        .ok()
        .out();
    assert_eq!(inspect, "true");
}

#[test]
fn published_ports_answer_on_loopback_the_hosts_address_hairpin_ephemeral_and_udp() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let (local, any, udp) = (port(&daemon, 0), port(&daemon, 1), port(&daemon, 2));
    let id = web(
        &daemon,
        &[
            "--name",
            "web",
            "-p",
            &format!("127.0.0.1:{local}:80"),
            "-p",
            &format!("{any}:80"),
        ],
    );
    let hostname = short(&id);
    assert_eq!(
        curl(&format!("http://127.0.0.1:{local}/hostname")).as_deref(),
        Some(hostname.as_str())
    );
    let host = host_address();
    assert!(!host.is_empty());
    assert_eq!(
        curl(&format!("http://{host}:{any}/hostname")).as_deref(),
        Some(hostname.as_str())
    );
    assert_eq!(
        curl(&format!("http://127.0.0.1:{any}/hostname")).as_deref(),
        Some(hostname.as_str())
    );
    // 127.0.0.1 only: not on the host's other addresses.
    assert_eq!(curl(&format!("http://{host}:{local}/hostname")), None);
    // Hairpin: another container, and the container itself, through the host's addresses.
    let gateway = daemon.net.gateway();
    for address in [host.as_str(), gateway.as_str()] {
        let got = fetch(
            &daemon,
            "bridge",
            &format!("http://{address}:{any}/hostname"),
        );
        assert_eq!(got.ok().out(), hostname);
    }
    let own = daemon.docker(&[
        "exec",
        "web",
        "timeout",
        "5",
        "wget",
        "-q",
        "-O",
        "-",
        &format!("http://{gateway}:{any}/hostname"),
    ]);
    assert_eq!(own.ok().out(), hostname);
    // docker port and ps.
    let ports = daemon.docker(&["port", "web"]).ok().stdout.clone();
    assert!(
        ports.contains(&format!("80/tcp -> 127.0.0.1:{local}")),
        "{ports}"
    );
    assert!(
        ports.contains(&format!("80/tcp -> 0.0.0.0:{any}")),
        "{ports}"
    );
    let ps = daemon.docker(&["ps", "--format", "{{.Ports}}"]).ok().out();
    assert!(ps.contains(&format!("127.0.0.1:{local}->80/tcp")), "{ps}");

    // -P: every exposed port on an ephemeral port that `docker port` reports.
    web(
        &daemon,
        &["--name", "auto", "--expose", "80", "--expose", "81", "-P"],
    );
    let mapping = daemon.docker(&["port", "auto", "80"]).ok().out();
    let ephemeral: u16 = mapping
        .lines()
        .next()
        .and_then(|l| l.rsplit(':').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("{mapping}"));
    assert!(ephemeral >= 1024, "{mapping}");
    let other = daemon.docker(&["port", "auto", "81"]).ok().out();
    assert_ne!(other, mapping);
    assert!(curl(&format!("http://127.0.0.1:{ephemeral}/hostname")).is_some());
    let published = daemon
        .docker(&["inspect", "-f", "{{json .NetworkSettings.Ports}}", "auto"])
        .ok()
        .out();
    assert!(
        published.contains(&format!("\"HostPort\":\"{ephemeral}\"")),
        "{published}"
    );

    // UDP: busybox has no UDP server, so the listener is the test's own, bound inside the
    // container's network namespace.
    daemon
        .docker(&[
            "run",
            "-d",
            "--name",
            "udp",
            "-p",
            &format!("{udp}:5353/udp"),
            "busybox",
            "sleep",
            "600",
        ])
        .ok();
    let pid = daemon
        .docker(&["inspect", "-f", "{{.State.Pid}}", "udp"])
        .ok()
        .out();
    let (tx, rx) = std::sync::mpsc::channel();
    let listener = std::thread::spawn(move || {
        let file = std::fs::File::open(format!("/proc/{pid}/ns/net")).expect("netns");
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let socket = UdpSocket::bind("0.0.0.0:5353").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        tx.send(()).unwrap();
        let mut buffer = [0u8; 64];
        let (length, _) = socket.recv_from(&mut buffer).expect("a datagram");
        String::from_utf8_lossy(&buffer[..length]).into_owned()
    });
    rx.recv().unwrap();
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.send_to(b"over-udp", ("127.0.0.1", udp)).unwrap();
    assert_eq!(listener.join().unwrap(), "over-udp");
    let udp_ports = daemon.docker(&["port", "udp"]).ok().out();
    assert_eq!(udp_ports, format!("5353/udp -> 0.0.0.0:{udp}"));

    // Stopped: the ports are withdrawn.
    daemon.docker(&["rm", "-f", "web", "auto", "udp"]).ok();
    assert_eq!(curl(&format!("http://127.0.0.1:{local}/hostname")), None);
    let table = nft_table(&daemon);
    assert!(!table.contains(&format!("{any}")), "{table}");
    assert!(!table.contains(&format!("{ephemeral}")), "{table}");
}

#[test]
fn published_ports_survive_kill_9_of_the_daemon_without_duplicate_rules() {
    let mut daemon = Daemon::start();
    daemon.import_busybox();
    let published = port(&daemon, 3);
    daemon.docker(&["network", "create", "front"]).ok();
    let id = web(
        &daemon,
        &["--name", "web", "-p", &format!("{published}:80")],
    );
    web(&daemon, &["--name", "named", "--network", "front"]);
    let url = format!("http://127.0.0.1:{published}/hostname");
    assert_eq!(curl(&url).as_deref(), Some(short(&id).as_str()));
    daemon.kill_hard();
    // No daemon: the kernel still forwards.
    assert_eq!(curl(&url).as_deref(), Some(short(&id).as_str()));
    daemon.restart();
    assert_eq!(curl(&url).as_deref(), Some(short(&id).as_str()));
    let table = nft_table(&daemon);
    assert_eq!(
        table.matches(&format!("tcp . {published}")).count(),
        2,
        "{table}"
    );
    assert_eq!(table.matches("masquerade").count(), 3, "{table}");
    assert_eq!(
        daemon.docker(&["port", "web", "80"]).ok().out(),
        format!("0.0.0.0:{published}")
    );
    // The embedded DNS answers again after the restart.
    let got = fetch(&daemon, "front", "http://named/hostname");
    assert_eq!(got.ok().out().len(), 12);
    // A second container cannot take the port the restarted daemon remembers.
    let taken = daemon.docker(&[
        "run",
        "-d",
        "-p",
        &format!("{published}:80"),
        "busybox",
        "true",
    ]);
    assert_ne!(taken.code, 0);
    daemon.docker(&["rm", "-f", "web"]).ok();
    assert_eq!(curl(&url), None);
    assert!(!nft_table(&daemon).contains(&format!("{published}")));
}

#[test]
fn macvlan_reaches_a_peer_on_the_parents_segment() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    // The parent: a veth whose other end is the peer's eth0 in a namespace of the test.
    let peer = FakeHost::new(&daemon, "mv", 230, false);
    let seen = peer.serve_http(8000);
    let n = daemon.net.index;
    let subnet = format!("10.230.{n}.0/24");
    daemon
        .docker(&[
            "network",
            "create",
            "-d",
            "macvlan",
            "--subnet",
            &subnet,
            "-o",
            &format!("parent={}", peer.host_side),
            "mv",
        ])
        .ok();
    let address = format!("10.230.{n}.77");
    let script = format!(
        "timeout 5 wget -q -O - http://{}:8000/; exit $?",
        peer.address
    );
    let got = daemon.docker(&[
        "run",
        "--rm",
        "--network",
        "mv",
        "--ip",
        &address,
        "busybox",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(got.ok().out(), address);
    assert_eq!(seen.recv_timeout(Duration::from_secs(5)).unwrap(), address);
    let driver = daemon
        .docker(&["network", "inspect", "-f", "{{.Driver}}", "mv"])
        .ok()
        .out();
    assert_eq!(driver, "macvlan");
    let missing = daemon.docker(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "-o",
        "parent=berth-nosuch",
        "bad",
    ]);
    assert_ne!(missing.code, 0);
    assert!(
        missing.stderr.contains("parent interface was not found"),
        "{}",
        missing.stderr
    );
}

/// A fake resolver on the host's loopback that answers every A question with 10.9.9.9.
fn fake_resolver(address: Ipv4Addr) -> std::thread::JoinHandle<()> {
    let socket = UdpSocket::bind((address, 53)).expect("bind fake resolver");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buffer = [0u8; 512];
        while let Ok((length, peer)) = socket.recv_from(&mut buffer) {
            let mut reply = buffer[..length].to_vec();
            reply[2] = 0x81;
            reply[3] = 0x80;
            reply[7] = 1; // one answer
            reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 9, 9, 9]);
            let _ = socket.send_to(&reply, peer);
        }
    })
}

#[test]
fn other_names_are_forwarded_to_the_containers_resolvers() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon.docker(&["network", "create", "front"]).ok();
    let resolver = Ipv4Addr::new(127, 53, 0, daemon.net.index as u8 + 1);
    let _fake = fake_resolver(resolver);
    let answer = daemon.docker(&[
        "run",
        "--rm",
        "--network",
        "front",
        "--dns",
        &resolver.to_string(),
        "busybox",
        "nslookup",
        "elsewhere.test",
    ]);
    assert!(answer.ok().stdout.contains("10.9.9.9"), "{}", answer.stdout);
}

#[test]
fn container_files_and_network_modes() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let files = daemon
        .docker(&[
            "run",
            "--rm",
            "--hostname",
            "box",
            "--add-host",
            "db:10.1.2.3",
            "--add-host",
            "gw:host-gateway",
            "--dns",
            "192.0.2.53",
            "--dns-search",
            "corp.test",
            "--dns-option",
            "timeout:1",
            "busybox",
            "sh",
            "-c",
            "hostname; cat /etc/hosts /etc/resolv.conf; ip -4 -o addr show eth0",
        ])
        .ok()
        .stdout
        .clone();
    assert!(files.starts_with("box\n"), "{files}");
    assert!(files.contains("10.1.2.3\tdb\n"), "{files}");
    assert!(
        files.contains(&format!("{}\tgw\n", daemon.net.gateway())),
        "{files}"
    );
    assert!(files.contains("\tbox\n"), "{files}");
    assert!(files.contains("nameserver 192.0.2.53\n"), "{files}");
    assert!(files.contains("search corp.test\n"), "{files}");
    assert!(files.contains("options timeout:1\n"), "{files}");
    let prefix = daemon.net.subnet().trim_end_matches(".0/24").to_string();
    assert!(files.contains(&format!("inet {prefix}.")), "{files}");

    // --ip and --mac-address on a network with a subnet of its own.
    let subnet = daemon.net.spare_subnet(0);
    let base = subnet.trim_end_matches(".0/24").to_string();
    daemon
        .docker(&[
            "network",
            "create",
            "--subnet",
            &subnet,
            "--ip-range",
            &format!("{base}.128/25"),
            "fixed",
        ])
        .ok();
    let fixed = daemon
        .docker(&[
            "run",
            "--rm",
            "--network",
            "fixed",
            "--ip",
            &format!("{base}.9"),
            "--mac-address",
            "02:42:de:ad:be:ef",
            "busybox",
            "sh",
            "-c",
            "ip -o link show eth0; ip -o addr show eth0",
        ])
        .ok()
        .stdout
        .clone();
    assert!(fixed.contains(&format!("inet {base}.9/24")), "{fixed}");
    assert!(fixed.contains("02:42:de:ad:be:ef"), "{fixed}");
    // The range: dynamic addresses come from .128/25.
    let dynamic = daemon
        .docker(&[
            "run",
            "--rm",
            "--network",
            "fixed",
            "busybox",
            "ip",
            "-o",
            "-4",
            "addr",
            "show",
            "eth0",
        ])
        .ok()
        .stdout
        .clone();
    assert!(
        dynamic.contains(&format!("inet {base}.128/24")),
        "{dynamic}"
    );

    // none: loopback only; host: the host's interfaces; container:X: X's.
    let none = daemon
        .docker(&[
            "run",
            "--rm",
            "--network",
            "none",
            "busybox",
            "ip",
            "-o",
            "link",
        ])
        .ok()
        .stdout
        .clone();
    assert_eq!(none.lines().count(), 1, "{none}");
    let host = daemon
        .docker(&[
            "run",
            "--rm",
            "--network",
            "host",
            "busybox",
            "ip",
            "-o",
            "link",
        ])
        .ok()
        .stdout
        .clone();
    assert!(host.contains(&daemon.net.bridge()), "{host}");
    let id = web(&daemon, &["--name", "web"]);
    let joined = daemon
        .docker(&[
            "run",
            "--rm",
            "--network",
            "container:web",
            "busybox",
            "sh",
            "-c",
            "hostname; timeout 5 wget -q -O - http://127.0.0.1/hostname",
        ])
        .ok()
        .stdout
        .clone();
    assert_eq!(joined, format!("{}\n{}\n", short(&id), short(&id)));
    let inspect = daemon
        .docker(&["inspect", "-f", "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}} {{.NetworkSettings.Networks.bridge.IPPrefixLen}}", "web"])
        .ok()
        .out();
    assert!(inspect.starts_with(&format!("{prefix}.")), "{inspect}");
    assert!(
        inspect.ends_with(&format!("{} 24", daemon.net.gateway())),
        "{inspect}"
    );
}

#[test]
fn network_commands_create_inspect_ls_connect_disconnect_rm_prune() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let subnet = daemon.net.spare_subnet(1);
    let id = daemon
        .docker(&[
            "network",
            "create",
            "--subnet",
            &subnet,
            "--label",
            "team=net",
            "-o",
            "com.docker.network.bridge.enable_icc=true",
            "front",
        ])
        .ok()
        .out();
    assert_eq!(id.len(), 64);
    let ls = daemon
        .docker(&[
            "network",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Scope}}",
        ])
        .ok()
        .stdout
        .clone();
    for line in [
        "bridge bridge local",
        "front bridge local",
        "host host local",
        "none null local",
    ] {
        assert!(ls.contains(line), "{ls}");
    }
    let filtered = daemon
        .docker(&["network", "ls", "-q", "--filter", "label=team=net"])
        .ok()
        .out();
    assert_eq!(filtered, short(&id));
    let custom = daemon
        .docker(&[
            "network",
            "ls",
            "--filter",
            "type=custom",
            "--format",
            "{{.Name}}",
        ])
        .ok()
        .out();
    assert_eq!(custom, "front");
    let inspect = daemon
        .docker(&[
            "network",
            "inspect",
            "-f",
            "{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Labels.team}}",
            "front",
        ])
        .ok()
        .out();
    assert_eq!(inspect, format!("{subnet} net"));

    // connect a running container, reach it by name there, disconnect it.
    let web_id = web(&daemon, &["--name", "web"]);
    daemon
        .docker(&["network", "connect", "--alias", "site", "front", "web"])
        .ok();
    let interfaces = daemon
        .docker(&["exec", "web", "ip", "-o", "link"])
        .ok()
        .stdout
        .clone();
    assert!(interfaces.contains("eth1"), "{interfaces}");
    assert_eq!(
        fetch(&daemon, "front", "http://site/hostname").ok().out(),
        short(&web_id)
    );
    let members = daemon
        .docker(&[
            "network",
            "inspect",
            "-f",
            "{{range .Containers}}{{.Name}}{{end}}",
            "front",
        ])
        .ok()
        .out();
    assert_eq!(members, "web");
    // Connecting twice is refused, as dockerd refuses it.
    let twice = daemon.docker(&["network", "connect", "front", "web"]);
    assert_ne!(twice.code, 0);
    assert!(
        twice
            .stderr
            .contains("endpoint with name web already exists in network front"),
        "{}",
        twice.stderr
    );
    // Removing a network with a container attached is refused.
    let busy = daemon.docker(&["network", "rm", "front"]);
    assert_ne!(busy.code, 0);
    assert!(
        busy.stderr.contains("has active endpoints"),
        "{}",
        busy.stderr
    );
    daemon
        .docker(&["network", "disconnect", "front", "web"])
        .ok();
    let interfaces = daemon
        .docker(&["exec", "web", "ip", "-o", "link"])
        .ok()
        .stdout
        .clone();
    assert!(!interfaces.contains("eth1"), "{interfaces}");
    let not_connected = daemon.docker(&["network", "disconnect", "front", "web"]);
    assert!(
        not_connected
            .stderr
            .contains("is not connected to network front"),
        "{}",
        not_connected.stderr
    );
    // A stopped container is connected for its next start.
    daemon
        .docker(&[
            "create", "--name", "later", "busybox", "ip", "-o", "-4", "addr",
        ])
        .ok();
    daemon
        .docker(&["network", "connect", "front", "later"])
        .ok();
    daemon.docker(&["start", "later"]).ok();
    daemon.docker(&["wait", "later"]).ok();
    let addresses = daemon.docker(&["logs", "later"]).ok().stdout.clone();
    assert!(addresses.contains("eth1"), "{addresses}");
    daemon.docker(&["rm", "later"]).ok();

    let bridge = format!("br-{}", short(&id));
    assert!(links().contains(&bridge));
    daemon.docker(&["network", "rm", "front"]).ok();
    assert!(!links().contains(&bridge));
    daemon.docker(&["network", "create", "unused"]).ok();
    let pruned = daemon
        .docker(&["network", "prune", "-f"])
        .ok()
        .stdout
        .clone();
    assert!(pruned.contains("unused"), "{pruned}");
    assert_eq!(
        daemon
            .docker(&["network", "ls", "--filter", "type=custom", "-q"])
            .ok()
            .out(),
        ""
    );
}

#[test]
fn bad_input_gets_dockers_errors_and_leaves_nothing() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let default_ports_before = ports_of_bridge(&daemon.net.bridge());
    let table_before = nft_table(&daemon);
    let networks_before = daemon.docker(&["network", "ls", "-q"]).ok().out();
    let subnet = daemon.net.spare_subnet(2);
    let base = subnet.trim_end_matches(".0/24").to_string();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec![
                "network".into(),
                "create".into(),
                "--subnet".into(),
                "nonsense".into(),
                "x1".into(),
            ],
            "invalid subnet nonsense: invalid CIDR block notation",
        ),
        (
            vec![
                "network".into(),
                "create".into(),
                "--subnet".into(),
                subnet.clone(),
                "--gateway".into(),
                "10.99.0.1".into(),
                "x2".into(),
            ],
            // docker's CLI checks this one itself ("no matching subnet for gateway"); the
            // daemon's own answer is checked over the API below.
            "10.99.0.1",
        ),
        (
            vec![
                "network".into(),
                "create".into(),
                "--subnet".into(),
                daemon.net.subnet(),
                "x3".into(),
            ],
            "Pool overlaps with other one on this address space",
        ),
        (
            vec![
                "network".into(),
                "create".into(),
                "-d".into(),
                "nosuchdriver".into(),
                "x4".into(),
            ],
            "plugin \"nosuchdriver\" not found",
        ),
        (
            vec!["network".into(), "rm".into(), "nosuchnet".into()],
            "network nosuchnet not found",
        ),
        (
            vec!["network".into(), "rm".into(), "bridge".into()],
            "bridge is a pre-defined network and cannot be removed",
        ),
        (
            vec![
                "run".into(),
                "--rm".into(),
                "--network".into(),
                "nosuchnet".into(),
                "busybox".into(),
                "true".into(),
            ],
            "network nosuchnet not found",
        ),
        (
            vec![
                "run".into(),
                "--rm".into(),
                "--ip".into(),
                "10.210.0.9".into(),
                "busybox".into(),
                "true".into(),
            ],
            "user specified IP address is supported on user defined networks only",
        ),
    ];
    for (args, message) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = daemon.docker(&args);
        assert_ne!(run.code, 0, "{args:?} succeeded");
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    let api = common::http(
        &daemon,
        "POST",
        "/networks/create",
        Some(r#"{"Name":"x5","IPAM":{"Config":[{"Subnet":"10.1.0.0/33"}]}}"#),
    );
    assert_eq!(api.0, 400, "{}", api.1);
    assert!(
        api.1
            .contains("invalid subnet 10.1.0.0/33: invalid CIDR block notation"),
        "{}",
        api.1
    );
    let gateway = common::http(
        &daemon,
        "POST",
        "/networks/create",
        Some(&format!(
            r#"{{"Name":"x7","IPAM":{{"Config":[{{"Subnet":"{subnet}","Gateway":"10.99.0.1"}}]}}}}"#
        )),
    );
    assert_eq!(gateway.0, 400, "{}", gateway.1);
    assert!(
        gateway.1.contains(&format!(
            "invalid gateway 10.99.0.1: parent subnet {subnet} does not contain ip address 10.99.0.1"
        )),
        "{}",
        gateway.1
    );
    let overlap = common::http(
        &daemon,
        "POST",
        "/networks/create",
        Some(&format!(
            r#"{{"Name":"x6","IPAM":{{"Config":[{{"Subnet":"{}"}}]}}}}"#,
            daemon.net.subnet()
        )),
    );
    assert_eq!(overlap.0, 403, "{}", overlap.1);
    daemon
        .docker(&["network", "create", "--subnet", &subnet, "fixed"])
        .ok();
    let duplicate = daemon.docker(&["network", "create", "fixed"]);
    assert!(
        duplicate
            .stderr
            .contains("network with name fixed already exists"),
        "{}",
        duplicate.stderr
    );

    // An address already taken: the second container does not start, and holds nothing.
    let ip = format!("{base}.20");
    web(
        &daemon,
        &["--name", "first", "--network", "fixed", "--ip", &ip],
    );
    let bridge_ports = ports_of_bridge(&format!(
        "br-{}",
        short(
            &daemon
                .docker(&["network", "inspect", "-f", "{{.Id}}", "fixed"])
                .ok()
                .out()
        )
    ));
    let second = daemon.docker(&[
        "run",
        "-d",
        "--name",
        "second",
        "--network",
        "fixed",
        "--ip",
        &ip,
        "busybox",
        "sleep",
        "60",
    ]);
    assert_ne!(second.code, 0);
    assert!(
        second.stderr.contains("Address already in use"),
        "{}",
        second.stderr
    );
    assert_eq!(
        daemon
            .docker(&["inspect", "-f", "{{.State.Running}}", "second"])
            .ok()
            .out(),
        "false"
    );

    // A port already published: refused, nothing left for the loser.
    let published = port(&daemon, 4);
    web(
        &daemon,
        &["--name", "owner", "-p", &format!("{published}:80")],
    );
    let table_with_owner = nft_table(&daemon);
    let default_ports = ports_of_bridge(&daemon.net.bridge());
    let clash = daemon.docker(&[
        "run",
        "-d",
        "--name",
        "clash",
        "-p",
        &format!("{published}:80"),
        "busybox",
        "sleep",
        "60",
    ]);
    assert_ne!(clash.code, 0);
    assert!(
        clash.stderr.contains("port is already allocated"),
        "{}",
        clash.stderr
    );
    assert_eq!(nft_table(&daemon), table_with_owner);
    assert!(wait_until(Duration::from_secs(5), || ports_of_bridge(
        &daemon.net.bridge()
    ) == default_ports));
    let fixed_bridge = format!(
        "br-{}",
        short(
            &daemon
                .docker(&["network", "inspect", "-f", "{{.Id}}", "fixed"])
                .ok()
                .out()
        )
    );
    assert!(wait_until(Duration::from_secs(5), || ports_of_bridge(
        &fixed_bridge
    ) == bridge_ports));
    // The address of the refused container was not kept: once `first` is gone, it is free.
    daemon
        .docker(&["rm", "-f", "first", "second", "clash", "owner"])
        .ok();
    web(
        &daemon,
        &["--name", "third", "--network", "fixed", "--ip", &ip],
    );
    daemon.docker(&["rm", "-f", "third"]).ok();
    daemon.docker(&["network", "rm", "fixed"]).ok();

    // Nothing half-made: the same networks, links and rules as before.
    assert_eq!(
        daemon.docker(&["network", "ls", "-q"]).ok().out(),
        networks_before
    );
    // (Other tests run beside this one: only this daemon's links are compared.)
    assert!(!links().contains(&fixed_bridge), "{:?}", links());
    assert!(wait_until(Duration::from_secs(5), || {
        ports_of_bridge(&daemon.net.bridge()) == default_ports_before
    }));
    assert_eq!(nft_table(&daemon), table_before);
}

/// `docker` with a deadline: a daemon that stops answering fails the test instead of hanging it.
fn docker_within(daemon: &Daemon, seconds: u32, args: &[&str]) -> Run {
    let output = Command::new("timeout")
        .arg(seconds.to_string())
        .arg(common::docker_cli())
        .args(args)
        .env("DOCKER_HOST", daemon.host())
        .env("DOCKER_CONFIG", daemon.data_root().join("docker-config"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run docker");
    common::output_of(format!("docker {}", args.join(" ")), output)
}

#[test]
fn network_changes_and_container_starts_never_wait_for_each_other() {
    // A start holds its container and then takes the networks; `network rm`, `prune`,
    // `connect` and `disconnect` must not hold the networks while they wait for a container
    // (they once did: a start and a `network rm` side by side hung both forever).
    let daemon = Daemon::start();
    daemon.import_busybox();
    docker_within(&daemon, 30, &["network", "create", "steady"]).ok();
    docker_within(
        &daemon,
        30,
        &["run", "-d", "--name", "lingers", "busybox", "sleep", "1000"],
    )
    .ok();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 0..25 {
                let name = format!("churn{i}");
                docker_within(
                    &daemon,
                    30,
                    &["network", "create", "--label", "churn", &name],
                )
                .ok();
                docker_within(&daemon, 30, &["network", "rm", &name]).ok();
                if i % 5 == 0 {
                    let prune = ["network", "prune", "-f", "--filter", "label=churn"];
                    docker_within(&daemon, 30, &prune).ok();
                }
            }
        });
        scope.spawn(|| {
            for _ in 0..25 {
                docker_within(&daemon, 30, &["network", "connect", "steady", "lingers"]).ok();
                docker_within(&daemon, 30, &["network", "disconnect", "steady", "lingers"]).ok();
            }
        });
        for _ in 0..25 {
            docker_within(&daemon, 30, &["run", "--rm", "busybox", "true"]).ok();
        }
    });
    docker_within(&daemon, 30, &["rm", "-f", "lingers"]).ok();
    docker_within(&daemon, 30, &["network", "rm", "steady"]).ok();
}
