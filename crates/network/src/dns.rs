//! The embedded DNS server of user-defined networks: inside each attached container it answers
//! at 127.0.0.11:53 (UDP and TCP) with the addresses of the containers that share a network
//! with the asker — by container name, `--network-alias`, short id, or `NAME.NETWORK` — in a
//! random order each time (round robin over an alias), and forwards every other question to
//! the upstream servers the container would have had in its resolv.conf.
//!
//! The sockets are created inside the container's namespace by a namespace thread (see
//! [`crate::netns`]) and served here by the daemon; forwarding happens from the daemon's own
//! namespace, so an upstream on the host's loopback works too.
//!
//! [`Registry`] is the shared table of names; [`Registry::answer`] is the pure part (a query in,
//! an answer or "forward" out), unit-tested below.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use hickory_proto::rr::rdata::{A, PTR};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The address the embedded server answers on inside containers.
pub const ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 11);

/// Time to live of the answers: dockerd's 600 s.
const TTL: u32 = 600;

/// One container's presence on one network.
#[derive(Debug, Clone)]
struct Presence {
    container: String,
    /// Name, aliases, short id: lowercase, no trailing dot.
    names: Vec<String>,
    address: Ipv4Addr,
}

/// What one container may see and where its other questions go.
#[derive(Debug, Clone, Default)]
struct Scope {
    /// Network ids, in the order attached.
    networks: Vec<String>,
    upstream: Vec<SocketAddr>,
    /// No forwarding (every network internal).
    no_forward: bool,
}

#[derive(Debug, Default)]
struct Tables {
    /// Network id -> (network name, who is on it).
    networks: HashMap<String, (String, Vec<Presence>)>,
    /// Container id -> scope.
    scopes: HashMap<String, Scope>,
}

/// The names of every container on every user-defined network of the daemon.
#[derive(Debug, Default)]
pub struct Registry {
    tables: RwLock<Tables>,
}

/// What to do with a question.
#[derive(Debug, PartialEq)]
pub enum Answer {
    /// Send these bytes back.
    Reply(Vec<u8>),
    /// Ask the upstream servers and relay their answer.
    Forward(Vec<SocketAddr>),
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

impl Registry {
    pub fn new() -> Arc<Self> {
        Arc::default()
    }

    /// Puts a container on a network under `names` (name, aliases, short id).
    pub fn attach(
        &self,
        container: &str,
        network_id: &str,
        network_name: &str,
        names: &[String],
        address: Ipv4Addr,
    ) {
        let mut tables = self.tables.write().expect("dns lock");
        let entry = tables
            .networks
            .entry(network_id.to_string())
            .or_insert_with(|| (network_name.to_string(), Vec::new()));
        entry.0 = network_name.to_string();
        entry.1.retain(|p| p.container != container);
        entry.1.push(Presence {
            container: container.to_string(),
            names: names.iter().map(|n| normalize(n)).collect(),
            address,
        });
        let scope = tables.scopes.entry(container.to_string()).or_default();
        if !scope.networks.iter().any(|n| n == network_id) {
            scope.networks.push(network_id.to_string());
        }
    }

    /// Takes a container off a network.
    pub fn detach(&self, container: &str, network_id: &str) {
        let mut tables = self.tables.write().expect("dns lock");
        if let Some((_, presences)) = tables.networks.get_mut(network_id) {
            presences.retain(|p| p.container != container);
            if presences.is_empty() {
                tables.networks.remove(network_id);
            }
        }
        if let Some(scope) = tables.scopes.get_mut(container) {
            scope.networks.retain(|n| n != network_id);
        }
    }

    /// Sets where a container's other questions go (none: answered SERVFAIL).
    pub fn set_upstream(&self, container: &str, upstream: Vec<SocketAddr>, no_forward: bool) {
        let mut tables = self.tables.write().expect("dns lock");
        let scope = tables.scopes.entry(container.to_string()).or_default();
        scope.upstream = upstream;
        scope.no_forward = no_forward;
    }

    /// Forgets a container entirely.
    pub fn remove(&self, container: &str) {
        let mut tables = self.tables.write().expect("dns lock");
        let networks = tables
            .scopes
            .remove(container)
            .map(|s| s.networks)
            .unwrap_or_default();
        for network in networks {
            if let Some((_, presences)) = tables.networks.get_mut(&network) {
                presences.retain(|p| p.container != container);
                if presences.is_empty() {
                    tables.networks.remove(&network);
                }
            }
        }
    }

    /// The addresses `name` has for `asker` (empty: unknown here).
    pub fn lookup(&self, asker: &str, name: &str) -> Vec<Ipv4Addr> {
        let tables = self.tables.read().expect("dns lock");
        let Some(scope) = tables.scopes.get(asker) else {
            return Vec::new();
        };
        let name = normalize(name);
        let mut found = Vec::new();
        for network_id in &scope.networks {
            let Some((network_name, presences)) = tables.networks.get(network_id) else {
                continue;
            };
            // NAME.NETWORK names a container on that network only.
            let wanted = match name.strip_suffix(&format!(".{}", network_name.to_ascii_lowercase()))
            {
                Some(short) => short.to_string(),
                None => name.clone(),
            };
            for presence in presences {
                if presence.names.iter().any(|n| *n == wanted || *n == name)
                    && !found.contains(&presence.address)
                {
                    found.push(presence.address);
                }
            }
        }
        found
    }

    /// The name of the container that has `address` on one of the asker's networks.
    pub fn reverse(&self, asker: &str, address: Ipv4Addr) -> Option<String> {
        let tables = self.tables.read().expect("dns lock");
        let scope = tables.scopes.get(asker)?;
        scope.networks.iter().find_map(|network_id| {
            let (network_name, presences) = tables.networks.get(network_id)?;
            presences
                .iter()
                .find(|p| p.address == address)
                .and_then(|p| p.names.first())
                .map(|name| format!("{name}.{network_name}"))
        })
    }

    fn upstream(&self, asker: &str) -> (Vec<SocketAddr>, bool) {
        let tables = self.tables.read().expect("dns lock");
        tables
            .scopes
            .get(asker)
            .map(|s| (s.upstream.clone(), s.no_forward))
            .unwrap_or_default()
    }

    /// Answers one DNS message from `asker`.
    pub fn answer(&self, asker: &str, request: &[u8]) -> Answer {
        let Ok(query) = Message::from_vec(request) else {
            // Unparseable: FORMERR with the id, if there is one.
            let id = request
                .get(..2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .unwrap_or(0);
            let reply = Message::error_msg(id, OpCode::Query, ResponseCode::FormErr);
            return Answer::Reply(reply.to_vec().unwrap_or_default());
        };
        let mut reply = Message::response(query.metadata.id, query.metadata.op_code);
        reply.metadata.recursion_desired = query.metadata.recursion_desired;
        reply.metadata.recursion_available = true;
        reply.add_queries(query.queries.clone());
        let Some(question) = query.queries.first() else {
            reply.metadata.response_code = ResponseCode::FormErr;
            return Answer::Reply(reply.to_vec().unwrap_or_default());
        };
        if query.metadata.message_type != MessageType::Query
            || query.metadata.op_code != OpCode::Query
        {
            reply.metadata.response_code = ResponseCode::NotImp;
            return Answer::Reply(reply.to_vec().unwrap_or_default());
        }
        let name = question.name().to_ascii();
        let local = match question.query_type() {
            RecordType::A | RecordType::AAAA | RecordType::ANY => {
                let mut addresses = self.lookup(asker, &name);
                if addresses.is_empty() {
                    None
                } else {
                    addresses.shuffle(&mut rand::rng());
                    if question.query_type() != RecordType::AAAA {
                        for address in addresses {
                            reply.add_answer(Record::from_rdata(
                                question.name().clone(),
                                TTL,
                                RData::A(A(address)),
                            ));
                        }
                    }
                    // AAAA of a known name: no IPv6 address, and no forwarding either.
                    Some(())
                }
            }
            RecordType::PTR => reverse_address(&name)
                .and_then(|address| self.reverse(asker, address))
                .and_then(|target| Name::from_ascii(format!("{target}.")).ok())
                .map(|target| {
                    reply.add_answer(Record::from_rdata(
                        question.name().clone(),
                        TTL,
                        RData::PTR(PTR(target)),
                    ));
                }),
            _ => None,
        };
        if local.is_some() {
            reply.metadata.authoritative = true;
            return Answer::Reply(reply.to_vec().unwrap_or_default());
        }
        let (upstream, no_forward) = self.upstream(asker);
        if no_forward || upstream.is_empty() {
            reply.metadata.response_code = ResponseCode::ServFail;
            return Answer::Reply(reply.to_vec().unwrap_or_default());
        }
        Answer::Forward(upstream)
    }
}

/// 4.3.2.1.in-addr.arpa -> 1.2.3.4.
fn reverse_address(name: &str) -> Option<Ipv4Addr> {
    let stem = normalize(name);
    let stem = stem.strip_suffix(".in-addr.arpa")?;
    let octets: Vec<u8> = stem
        .split('.')
        .rev()
        .map(|o| o.parse().ok())
        .collect::<Option<_>>()?;
    (octets.len() == 4).then(|| Ipv4Addr::new(octets[0], octets[1], octets[2], octets[3]))
}

/// The sockets of one container's server, created inside its namespace.
pub struct Sockets {
    pub udp: OwnedFd,
    pub tcp: OwnedFd,
}

/// Creates the server's sockets in the current thread's namespace (call it on a namespace
/// thread, once its loopback is up: see [`crate::netns::loopback_up`]).
pub fn bind_sockets() -> crate::error::Result<Sockets> {
    use nix::sys::socket::{
        AddressFamily, Backlog, SockFlag, SockType, SockaddrIn, bind, listen, setsockopt, socket,
        sockopt,
    };
    let address = SockaddrIn::from(std::net::SocketAddrV4::new(ADDRESS, 53));
    let flags = SockFlag::SOCK_CLOEXEC | SockFlag::SOCK_NONBLOCK;
    let udp = socket(AddressFamily::Inet, SockType::Datagram, flags, None)?;
    bind(std::os::fd::AsRawFd::as_raw_fd(&udp), &address)?;
    let tcp = socket(AddressFamily::Inet, SockType::Stream, flags, None)?;
    setsockopt(&tcp, sockopt::ReuseAddr, &true)?;
    bind(std::os::fd::AsRawFd::as_raw_fd(&tcp), &address)?;
    listen(&tcp, Backlog::new(64).expect("backlog"))?;
    Ok(Sockets { udp, tcp })
}

/// Serves one container's sockets until the returned handle is dropped... or aborted.
pub fn serve(
    registry: Arc<Registry>,
    container: String,
    sockets: Sockets,
) -> std::io::Result<Server> {
    let udp = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(sockets.udp))?;
    let tcp = tokio::net::TcpListener::from_std(std::net::TcpListener::from(sockets.tcp))?;
    let udp = Arc::new(udp);
    let udp_task = {
        let registry = registry.clone();
        let container = container.clone();
        tokio::spawn(async move {
            let mut buffer = vec![0u8; 4096];
            loop {
                let Ok((length, peer)) = udp.recv_from(&mut buffer).await else {
                    continue;
                };
                let request = buffer[..length].to_vec();
                let registry = registry.clone();
                let container = container.clone();
                let udp = udp.clone();
                tokio::spawn(async move {
                    if let Some(reply) = respond(&registry, &container, &request, false).await {
                        let _ = udp.send_to(&reply, peer).await;
                    }
                });
            }
        })
    };
    let tcp_task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = tcp.accept().await else {
                continue;
            };
            let registry = registry.clone();
            let container = container.clone();
            tokio::spawn(async move {
                // RFC 1035 4.2.2: each message is preceded by its two-byte length.
                loop {
                    let Ok(length) = stream.read_u16().await else {
                        return;
                    };
                    let mut request = vec![0u8; usize::from(length)];
                    if stream.read_exact(&mut request).await.is_err() {
                        return;
                    }
                    let Some(reply) = respond(&registry, &container, &request, true).await else {
                        return;
                    };
                    let Ok(length) = u16::try_from(reply.len()) else {
                        return;
                    };
                    if stream.write_u16(length).await.is_err()
                        || stream.write_all(&reply).await.is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    Ok(Server {
        tasks: vec![udp_task, tcp_task],
    })
}

/// A running server: dropping it stops serving (the sockets close with the tasks).
pub struct Server {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

async fn respond(
    registry: &Registry,
    container: &str,
    request: &[u8],
    tcp: bool,
) -> Option<Vec<u8>> {
    match registry.answer(container, request) {
        Answer::Reply(reply) => Some(reply),
        Answer::Forward(upstream) => {
            for server in upstream {
                let outcome = if tcp {
                    forward_tcp(server, request).await
                } else {
                    forward_udp(server, request).await
                };
                if let Ok(reply) = outcome {
                    return Some(reply);
                }
            }
            let id = request
                .get(..2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .unwrap_or(0);
            Message::error_msg(id, OpCode::Query, ResponseCode::ServFail)
                .to_vec()
                .ok()
        }
    }
}

const FORWARD_TIMEOUT: Duration = Duration::from_secs(3);

async fn forward_udp(server: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    let local: SocketAddr = if server.is_ipv4() {
        "0.0.0.0:0".parse().expect("address")
    } else {
        "[::]:0".parse().expect("address")
    };
    let socket = tokio::net::UdpSocket::bind(local).await?;
    socket.connect(server).await?;
    socket.send(request).await?;
    let mut buffer = vec![0u8; 4096];
    let length = tokio::time::timeout(FORWARD_TIMEOUT, socket.recv(&mut buffer))
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    buffer.truncate(length);
    Ok(buffer)
}

async fn forward_tcp(server: SocketAddr, request: &[u8]) -> std::io::Result<Vec<u8>> {
    tokio::time::timeout(FORWARD_TIMEOUT, async {
        let mut stream = tokio::net::TcpStream::connect(server).await?;
        let length = u16::try_from(request.len())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        stream.write_u16(length).await?;
        stream.write_all(request).await?;
        let length = stream.read_u16().await?;
        let mut reply = vec![0u8; usize::from(length)];
        stream.read_exact(&mut reply).await?;
        Ok(reply)
    })
    .await
    .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_proto::op::Query;

    fn question(name: &str, kind: RecordType) -> Vec<u8> {
        let mut message = Message::query();
        message.metadata.id = 4242;
        message.add_query(Query::query(Name::from_ascii(name).unwrap(), kind));
        message.to_vec().unwrap()
    }

    fn addresses(answer: Answer) -> Vec<Ipv4Addr> {
        let Answer::Reply(bytes) = answer else {
            panic!("forwarded: {answer:?}");
        };
        let reply = Message::from_vec(&bytes).unwrap();
        assert_eq!(reply.metadata.id, 4242);
        reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::A(a) => Some(a.0),
                _ => None,
            })
            .collect()
    }

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, last)
    }

    fn names(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    fn registry() -> Arc<Registry> {
        let registry = Registry::new();
        registry.attach(
            "c1",
            "n1",
            "front",
            &names(&["web", "www", "aaaaaaaaaaaa"]),
            ip(2),
        );
        registry.attach("c2", "n1", "front", &names(&["client"]), ip(3));
        registry.attach("c3", "n1", "front", &names(&["other", "www"]), ip(4));
        registry.attach("c4", "n2", "back", &names(&["db"]), ip(5));
        registry.set_upstream("c2", vec!["127.0.0.53:53".parse().unwrap()], false);
        registry
    }

    #[test]
    fn names_aliases_and_short_ids_resolve_on_shared_networks_only() {
        let registry = registry();
        assert_eq!(
            addresses(registry.answer("c2", &question("web", RecordType::A))),
            vec![ip(2)]
        );
        assert_eq!(
            addresses(registry.answer("c2", &question("WEB.", RecordType::A))),
            vec![ip(2)]
        );
        assert_eq!(
            addresses(registry.answer("c2", &question("aaaaaaaaaaaa", RecordType::A))),
            vec![ip(2)]
        );
        assert_eq!(
            addresses(registry.answer("c2", &question("web.front", RecordType::A))),
            vec![ip(2)]
        );
        // db is on another network: unknown here, so the question goes upstream.
        assert_eq!(
            registry.answer("c2", &question("db", RecordType::A)),
            Answer::Forward(vec!["127.0.0.53:53".parse().unwrap()])
        );
        // c4 has no upstream: SERVFAIL.
        let Answer::Reply(bytes) = registry.answer("c4", &question("web", RecordType::A)) else {
            panic!()
        };
        assert_eq!(
            Message::from_vec(&bytes).unwrap().metadata.response_code,
            ResponseCode::ServFail
        );
    }

    #[test]
    fn an_alias_of_two_containers_answers_both_in_varying_order() {
        let registry = registry();
        let mut orders = std::collections::HashSet::new();
        for _ in 0..64 {
            let mut got = addresses(registry.answer("c2", &question("www", RecordType::A)));
            orders.insert(got.clone());
            got.sort();
            assert_eq!(got, vec![ip(2), ip(4)]);
        }
        assert_eq!(orders.len(), 2, "round robin");
    }

    #[test]
    fn aaaa_of_a_known_name_is_empty_and_ptr_names_the_container() {
        let registry = registry();
        assert!(addresses(registry.answer("c2", &question("web", RecordType::AAAA))).is_empty());
        let Answer::Reply(bytes) =
            registry.answer("c2", &question("2.0.0.10.in-addr.arpa", RecordType::PTR))
        else {
            panic!()
        };
        let reply = Message::from_vec(&bytes).unwrap();
        match &reply.answers[0].data {
            RData::PTR(name) => assert_eq!(name.0.to_ascii(), "web.front."),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn detach_and_remove_forget_names() {
        let registry = registry();
        registry.detach("c1", "n1");
        assert!(registry.lookup("c2", "web").is_empty());
        assert_eq!(registry.lookup("c2", "www"), vec![ip(4)]);
        registry.remove("c3");
        assert!(registry.lookup("c2", "www").is_empty());
        assert!(registry.lookup("c3", "client").is_empty());
    }

    #[test]
    fn garbage_gets_formerr() {
        let registry = registry();
        let Answer::Reply(bytes) = registry.answer("c2", &[0x12, 0x34, 0xff]) else {
            panic!()
        };
        assert_eq!(&bytes[..2], &[0x12, 0x34]);
        assert_eq!(
            reverse_address("4.3.2.1.in-addr.arpa."),
            Some(Ipv4Addr::new(1, 2, 3, 4))
        );
        assert_eq!(reverse_address("example.com"), None);
    }
}
