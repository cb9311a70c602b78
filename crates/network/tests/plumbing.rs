//! The crate against the real kernel, as root: every test runs in a network namespace of its
//! own (a thread that unshares one: links, nftables tables and sysctls it makes vanish with
//! it), so nothing touches the host's network and tests run in parallel.
//!
//! Covered: a bridge and veth pairs into namespaces bound on files; container to container and
//! host to container; published ports on 127.0.0.1, on the host's own address and over UDP
//! (nftables DNAT, kernel-only loopback); egress masquerade seen by a fake upstream host; an
//! internal bridge without a way out; isolation between bridges; icc off; hairpin; macvlan on a
//! veth parent reaching a peer on that segment; the embedded DNS server inside a namespace
//! (UDP and TCP).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::Ipv4Net;
use network::firewall::{BridgePolicy, Firewall, PortForward, Protocol};
use network::link::{InterfaceConfig, Netlink};
use network::{dns, netns, sysctl};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Runs `body` in a fresh network namespace on its own thread with a current-thread runtime.
fn in_own_namespace<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    assert!(is_root(), "the plumbing tests need root");
    std::thread::spawn(move || {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let host = Netlink::current().expect("netlink");
            host.loopback_up().await.expect("lo up");
            body().await;
        });
    })
    .join()
    .expect("test thread");
}

/// A container-like namespace bound on a file, with a listener on port 80 inside.
struct Sandbox {
    path: PathBuf,
    netlink: Netlink,
    listener: TcpListener,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        netns::remove(&self.path);
    }
}

async fn sandbox(dir: &Path, name: &str) -> Sandbox {
    let path = dir.join(name);
    let (socket, listener) = netns::create(&path, || {
        let socket = network::link::open_socket()?;
        // Bound before the interface exists: any address of the namespace, port 80.
        let listener = TcpListener::bind("0.0.0.0:80")?;
        Ok((socket, listener))
    })
    .expect("create namespace");
    assert!(netns::is_bound(&path));
    let netlink = Netlink::from_socket(socket).expect("netlink in namespace");
    netlink.loopback_up().await.expect("lo up inside");
    Sandbox {
        path,
        netlink,
        listener,
    }
}

async fn attach(
    host: &Netlink,
    bridge: u32,
    sandbox: &Sandbox,
    veth: &str,
    address: Ipv4Addr,
    gateway: Option<Ipv4Addr>,
) {
    let namespace = netns::open(&sandbox.path).unwrap();
    host.add_veth(
        veth,
        Some(bridge),
        "eth0",
        &namespace,
        network::ipam::mac_of(address),
        None,
    )
    .await
    .expect("veth");
    sandbox
        .netlink
        .configure(&InterfaceConfig {
            name: "eth0".into(),
            address,
            prefix_len: 24,
            gateway,
        })
        .await
        .expect("configure");
}

/// Connects (from a thread inside `namespace` when given) and returns what the peer sees.
fn connect(namespace: Option<&Path>, target: SocketAddr) -> std::io::Result<()> {
    let work = move || -> network::Result<()> {
        let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(2))?;
        stream.write_all(b"ping")?;
        Ok(())
    };
    match namespace {
        Some(path) => netns::enter(path, work).map_err(|e| std::io::Error::other(e.message)),
        None => work().map_err(|e| std::io::Error::other(e.message)),
    }
}

/// Accepts one connection and returns the peer's address and the first bytes.
fn accept(listener: &TcpListener) -> (SocketAddr, String) {
    listener.set_nonblocking(false).unwrap();
    let (mut stream, peer) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut text = [0u8; 4];
    stream.read_exact(&mut text).unwrap();
    (peer, String::from_utf8_lossy(&text).into_owned())
}

fn ip(text: &str) -> Ipv4Addr {
    text.parse().unwrap()
}

fn bridge_policy(name: &str, subnet: &str, internal: bool, icc: bool) -> BridgePolicy {
    BridgePolicy {
        bridge: name.into(),
        subnet: subnet.parse().unwrap(),
        internal,
        icc,
        masquerade: true,
    }
}

#[test]
fn bridge_nat_and_published_ports() {
    in_own_namespace(|| async {
        let dir = tempfile::tempdir().unwrap();
        let host = Netlink::current().unwrap();
        sysctl::enable_forwarding().unwrap();
        let gateway: Ipv4Net = "10.77.0.1/24".parse().unwrap();
        let (bridge, created) = host.ensure_bridge("br-t0", gateway, None).await.unwrap();
        assert!(created);
        // Idempotent: a second call finds it and its address.
        assert_eq!(
            host.ensure_bridge("br-t0", gateway, None).await.unwrap(),
            (bridge, false)
        );
        sysctl::enable_route_localnet("br-t0").unwrap();

        let a = sandbox(dir.path(), "a").await;
        let b = sandbox(dir.path(), "b").await;
        attach(
            &host,
            bridge,
            &a,
            "veth-a",
            ip("10.77.0.2"),
            Some(ip("10.77.0.1")),
        )
        .await;
        attach(
            &host,
            bridge,
            &b,
            "veth-b",
            ip("10.77.0.3"),
            Some(ip("10.77.0.1")),
        )
        .await;

        // host -> container, container -> container
        connect(None, "10.77.0.2:80".parse().unwrap()).unwrap();
        assert_eq!(accept(&a.listener).0.ip(), ip("10.77.0.1"));
        connect(Some(&b.path), "10.77.0.2:80".parse().unwrap()).unwrap();
        assert_eq!(accept(&a.listener).0.ip(), ip("10.77.0.3"));

        // Published ports.
        let firewall = Firewall::new("berth-plumbing");
        let ports = [
            PortForward {
                protocol: Protocol::Tcp,
                host_ip: Some(Ipv4Addr::LOCALHOST),
                host_port: 8080,
                container_ip: ip("10.77.0.2"),
                container_port: 80,
            },
            PortForward {
                protocol: Protocol::Tcp,
                host_ip: None,
                host_port: 8081,
                container_ip: ip("10.77.0.2"),
                container_port: 80,
            },
        ];
        let policy = bridge_policy("br-t0", "10.77.0.0/24", false, true);
        network::firewall::apply(&firewall.rebuild(std::slice::from_ref(&policy), &ports[..1]))
            .unwrap();
        network::firewall::apply(&firewall.add_ports(&ports[1..])).unwrap();
        // 127.0.0.1:8080 from the host: DNAT in output, masqueraded behind the bridge.
        connect(None, "127.0.0.1:8080".parse().unwrap()).unwrap();
        let (peer, text) = accept(&a.listener);
        assert_eq!(peer.ip(), ip("10.77.0.1"));
        assert_eq!(text, "ping");
        // 8081 on any address: the host's own (the bridge's here), and hairpin from b and a.
        connect(None, "10.77.0.1:8081".parse().unwrap()).unwrap();
        accept(&a.listener);
        connect(Some(&b.path), "10.77.0.1:8081".parse().unwrap()).unwrap();
        accept(&a.listener);
        connect(Some(&a.path), "10.77.0.1:8081".parse().unwrap()).unwrap();
        accept(&a.listener);
        // 8080 is bound to 127.0.0.1 only.
        assert!(connect(None, "10.77.0.1:8080".parse().unwrap()).is_err());
        // Withdrawn: refused.
        network::firewall::apply(&firewall.remove_ports(&ports)).unwrap();
        assert!(connect(None, "127.0.0.1:8080".parse().unwrap()).is_err());

        // UDP publishing.
        let udp = netns::enter(&a.path, || Ok(UdpSocket::bind("0.0.0.0:53")?)).unwrap();
        udp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let udp_port = PortForward {
            protocol: Protocol::Udp,
            host_ip: None,
            host_port: 5353,
            container_ip: ip("10.77.0.2"),
            container_port: 53,
        };
        network::firewall::apply(&firewall.add_ports(&[udp_port])).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(b"dns?", "127.0.0.1:5353").unwrap();
        let mut buffer = [0u8; 16];
        let (length, _) = udp.recv_from(&mut buffer).unwrap();
        assert_eq!(&buffer[..length], b"dns?");

        // A rebuild from scratch (what a restarted daemon does) keeps exactly one copy.
        network::firewall::apply(&firewall.rebuild(std::slice::from_ref(&policy), &[udp_port]))
            .unwrap();
        network::firewall::apply(&firewall.rebuild(&[policy], &[udp_port])).unwrap();
        let listing = std::process::Command::new("nft")
            .args(["list", "table", "ip", "berth-plumbing"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&listing.stdout);
        assert_eq!(text.matches("udp . 5353").count(), 2, "{text}");
        assert_eq!(text.matches("masquerade").count(), 3, "{text}");
        assert_eq!(text.matches("10.77.0.0/24").count(), 2, "{text}");

        network::firewall::apply(&firewall.delete()).unwrap();
        assert!(!network::firewall::table_exists("berth-plumbing"));
    });
}

#[test]
fn egress_is_masqueraded_internal_networks_have_no_way_out_and_bridges_are_isolated() {
    in_own_namespace(|| async {
        let dir = tempfile::tempdir().unwrap();
        let host = Netlink::current().unwrap();
        sysctl::enable_forwarding().unwrap();
        // The fake upstream host: a namespace behind a veth, routed from "the host".
        let upstream = sandbox(dir.path(), "upstream").await;
        let up_ns = netns::open(&upstream.path).unwrap();
        let (up_index, _) = host
            .ensure_bridge("br-up", "10.88.0.1/24".parse().unwrap(), None)
            .await
            .unwrap();
        host.add_veth(
            "veth-up",
            Some(up_index),
            "eth0",
            &up_ns,
            [2, 0, 0, 0, 0, 9],
            None,
        )
        .await
        .unwrap();
        upstream
            .netlink
            .configure(&InterfaceConfig {
                name: "eth0".into(),
                address: ip("10.88.0.2"),
                prefix_len: 24,
                gateway: None,
            })
            .await
            .unwrap();

        let (open, _) = host
            .ensure_bridge("br-open", "10.77.1.1/24".parse().unwrap(), None)
            .await
            .unwrap();
        let (closed, _) = host
            .ensure_bridge("br-int", "10.77.2.1/24".parse().unwrap(), None)
            .await
            .unwrap();
        let (quiet, _) = host
            .ensure_bridge("br-quiet", "10.77.3.1/24".parse().unwrap(), None)
            .await
            .unwrap();
        let a = sandbox(dir.path(), "a").await;
        let b = sandbox(dir.path(), "b").await;
        let c = sandbox(dir.path(), "c").await;
        let d = sandbox(dir.path(), "d").await;
        attach(
            &host,
            open,
            &a,
            "veth-a",
            ip("10.77.1.2"),
            Some(ip("10.77.1.1")),
        )
        .await;
        attach(
            &host,
            closed,
            &b,
            "veth-b",
            ip("10.77.2.2"),
            Some(ip("10.77.2.1")),
        )
        .await;
        attach(
            &host,
            quiet,
            &c,
            "veth-c",
            ip("10.77.3.2"),
            Some(ip("10.77.3.1")),
        )
        .await;
        attach(
            &host,
            quiet,
            &d,
            "veth-d",
            ip("10.77.3.3"),
            Some(ip("10.77.3.1")),
        )
        .await;
        let firewall = Firewall::new("berth-egress");
        network::firewall::apply(&firewall.rebuild(
            &[
                bridge_policy("br-open", "10.77.1.0/24", false, true),
                bridge_policy("br-int", "10.77.2.0/24", true, true),
                bridge_policy("br-quiet", "10.77.3.0/24", false, false),
            ],
            &[],
        ))
        .unwrap();

        // The upstream sees the host's address, not the container's.
        connect(Some(&a.path), "10.88.0.2:80".parse().unwrap()).unwrap();
        assert_eq!(accept(&upstream.listener).0.ip(), ip("10.88.0.1"));
        // Internal: no way out, and no way in from another bridge.
        assert!(connect(Some(&b.path), "10.88.0.2:80".parse().unwrap()).is_err());
        assert!(connect(Some(&a.path), "10.77.2.2:80".parse().unwrap()).is_err());
        // Isolation: a bridge cannot reach another one's containers.
        assert!(connect(Some(&a.path), "10.77.3.2:80".parse().unwrap()).is_err());
        assert!(connect(Some(&c.path), "10.77.1.2:80".parse().unwrap()).is_err());
        // icc off: the two containers of br-quiet cannot talk, but the way out is open.
        assert!(connect(Some(&d.path), "10.77.3.2:80".parse().unwrap()).is_err());
        connect(Some(&c.path), "10.88.0.2:80".parse().unwrap()).unwrap();
        accept(&upstream.listener);
        network::firewall::apply(&firewall.delete()).unwrap();
        drop(up_ns);
    });
}

#[test]
fn macvlan_on_a_veth_parent_reaches_a_peer_of_the_segment() {
    in_own_namespace(|| async {
        let dir = tempfile::tempdir().unwrap();
        let host = Netlink::current().unwrap();
        let peer = sandbox(dir.path(), "peer").await;
        let container = sandbox(dir.path(), "container").await;
        // The parent: a veth whose other end is the peer's eth0.
        let peer_ns = netns::open(&peer.path).unwrap();
        let parent = host
            .add_veth(
                "mv-parent",
                None,
                "eth0",
                &peer_ns,
                [2, 0, 0, 0, 0, 7],
                None,
            )
            .await
            .unwrap();
        peer.netlink
            .configure(&InterfaceConfig {
                name: "eth0".into(),
                address: ip("10.66.0.2"),
                prefix_len: 24,
                gateway: None,
            })
            .await
            .unwrap();
        let container_ns = netns::open(&container.path).unwrap();
        host.add_macvlan("eth0", parent, &container_ns, [2, 0, 0, 0, 0, 8], None)
            .await
            .unwrap();
        container
            .netlink
            .configure(&InterfaceConfig {
                name: "eth0".into(),
                address: ip("10.66.0.3"),
                prefix_len: 24,
                gateway: None,
            })
            .await
            .unwrap();
        connect(Some(&container.path), "10.66.0.2:80".parse().unwrap()).unwrap();
        assert_eq!(accept(&peer.listener).0.ip(), ip("10.66.0.3"));
    });
}

#[test]
fn embedded_dns_answers_inside_the_namespace_and_forwards_the_rest() {
    in_own_namespace(|| async {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c");
        // Loopback up before the bind: a socket bound to 127.0.0.11 while `lo` is down
        // answers from 127.0.0.1, which a connected resolver drops.
        let sockets = netns::create(&path, || {
            netns::loopback_up()?;
            dns::bind_sockets()
        })
        .unwrap();
        let registry = dns::Registry::new();
        registry.attach("c1", "n1", "front", &["web".to_string()], ip("10.1.2.3"));
        // A fake upstream on this namespace's loopback answers everything else.
        let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
        let upstream_address = upstream.local_addr().unwrap();
        registry.set_upstream("c1", vec![upstream_address], false);
        let server = dns::serve(registry.clone(), "c1".into(), sockets).unwrap();
        let fake = std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            let (length, peer) = upstream.recv_from(&mut buffer).unwrap();
            // Echo the question back with the QR bit: enough to prove the relay.
            buffer[2] |= 0x80;
            upstream.send_to(&buffer[..length], peer).unwrap();
        });
        let answers = tokio::task::spawn_blocking(move || {
            netns::enter(&path, || {
                // Connected, as resolvers are: the answer must come from 127.0.0.11.
                let socket = UdpSocket::bind("127.0.0.1:0")?;
                socket.connect("127.0.0.11:53")?;
                socket.set_read_timeout(Some(Duration::from_secs(3)))?;
                let mut out = Vec::new();
                for name in ["web", "elsewhere.example"] {
                    let query = query_bytes(name);
                    socket.send(&query)?;
                    let mut buffer = [0u8; 512];
                    let length = socket
                        .recv(&mut buffer)
                        .map_err(|e| std::io::Error::other(format!("{name}: {e}")))?;
                    out.push(buffer[..length].to_vec());
                }
                // TCP too (RFC 1035 4.2.2: each message after its two-byte length).
                let mut stream = TcpStream::connect("127.0.0.11:53")?;
                stream.set_read_timeout(Some(Duration::from_secs(3)))?;
                let query = query_bytes("web");
                stream.write_all(&(query.len() as u16).to_be_bytes())?;
                stream.write_all(&query)?;
                let mut length = [0u8; 2];
                stream.read_exact(&mut length)?;
                let mut reply = vec![0u8; u16::from_be_bytes(length) as usize];
                stream.read_exact(&mut reply)?;
                out.push(reply);
                Ok(out)
            })
        })
        .await
        .unwrap()
        .unwrap();
        fake.join().unwrap();
        // The local answer carries web's address; the forwarded one came back from upstream.
        assert!(
            answers[0].windows(4).any(|w| w == [10, 1, 2, 3]),
            "{:?}",
            answers[0]
        );
        assert_eq!(answers[1][2] & 0x80, 0x80);
        assert!(
            answers[2].windows(4).any(|w| w == [10, 1, 2, 3]),
            "{:?}",
            answers[2]
        );
        drop(server);
        netns::remove(&dir.path().join("c"));
    });
}

fn query_bytes(name: &str) -> Vec<u8> {
    let mut bytes = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        bytes.push(label.len() as u8);
        bytes.extend_from_slice(label.as_bytes());
    }
    bytes.extend_from_slice(&[0, 0, 1, 0, 1]);
    bytes
}
