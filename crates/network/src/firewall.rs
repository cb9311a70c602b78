//! NAT, port publishing and isolation in Berth's own nftables table, described as typed
//! nftables JSON (the `nftables` crate) and applied atomically by `nft -j -f -`.
//!
//! The rules of the table never change with containers or networks; what changes are the
//! elements of its sets and maps, so adding or removing a network or a published port needs no
//! rule handle, and a daemon restarting after a crash rebuilds the whole table from its state in
//! one transaction ([`Firewall::rebuild`]): nothing duplicated, nothing stale, and no moment
//! without the rules (published ports keep working across `kill -9` of the daemon).
//!
//! ```text
//! table ip <name>
//!   set bridges   ifname            every bridge of the daemon
//!   set same      ifname . ifname   (b, b) for every bridge b: traffic that stays on one bridge
//!   set noicc     ifname . ifname   (b, b) for bridges with inter-container traffic off
//!   set internal  ifname            --internal bridges: no way out
//!   set masq      ipv4_addr (intervals)  subnets whose traffic out is masqueraded
//!   set subnets   ipv4_addr (intervals)  every bridge's subnet (hairpin)
//!   map addr_any / port_any   proto . port -> container address / port   (-p PORT:PORT)
//!   map addr_host / port_host host ip . proto . port -> ...                 (-p IP:PORT:PORT)
//!   chain prerouting (nat, dstnat)  fib daddr type local -> publish
//!   chain output     (nat, -100)    fib daddr type local -> publish   (the host itself, loopback too)
//!   chain publish    dnat through the maps
//!   chain postrouting (nat, srcnat) loopback sources to a bridge, hairpin, egress: masquerade
//!   chain forward    (filter)       isolation of bridges from each other, icc, internal
//!   chain guard      (filter, raw)  nothing from a bridge to 127.0.0.0/8 (route_localnet is on)
//! ```
//!
//! Loopback publishing is kernel-only (no userland proxy): the output hook DNATs
//! 127.0.0.1:PORT, `route_localnet` on the bridge lets the packet leave with a loopback source,
//! and postrouting masquerades it behind the bridge address.

use std::borrow::Cow;
use std::collections::HashSet;
use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use nftables::batch::Batch;
use nftables::expr::{
    CT, Expression, Fib, FibFlag, FibResult, Meta, MetaKey, NamedExpression, Payload, PayloadField,
    Prefix,
};
use nftables::schema::{
    Chain, Element, NfCmd, NfListObject, Nftables, Rule, Set, SetFlag, SetType, SetTypeValue, Table,
};
use nftables::stmt::{JumpTarget, Match, NAT, NATFamily, Operator, Statement};
use nftables::types::{NfChainPolicy, NfChainType, NfFamily, NfHook};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A transport protocol of a published port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
            Self::Sctp => "sctp",
        }
    }
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "tcp" | "" => Some(Self::Tcp),
            "udp" => Some(Self::Udp),
            "sctp" => Some(Self::Sctp),
            _ => None,
        }
    }
}

/// One published port: host (address, port) forwarded to the container's (address, port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PortForward {
    pub protocol: Protocol,
    /// None: every address of the host (0.0.0.0).
    pub host_ip: Option<Ipv4Addr>,
    pub host_port: u16,
    pub container_ip: Ipv4Addr,
    pub container_port: u16,
}

/// What the table knows of one bridge network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgePolicy {
    pub bridge: String,
    pub subnet: Ipv4Net,
    /// `--internal`: no traffic leaves the bridge (and none is masqueraded).
    pub internal: bool,
    /// `com.docker.network.bridge.enable_icc`: containers of the bridge may talk to each other.
    pub icc: bool,
    /// `com.docker.network.bridge.enable_ip_masquerade`.
    pub masquerade: bool,
}

/// The daemon's table.
#[derive(Debug, Clone)]
pub struct Firewall {
    table: String,
}

const FAMILY: NfFamily = NfFamily::IP;

fn s(text: &str) -> Expression<'static> {
    Expression::String(Cow::Owned(text.to_string()))
}
fn n(number: u32) -> Expression<'static> {
    Expression::Number(number)
}
fn concat(items: Vec<Expression<'static>>) -> Expression<'static> {
    Expression::Named(NamedExpression::Concat(items))
}
fn meta(key: MetaKey) -> Expression<'static> {
    Expression::Named(NamedExpression::Meta(Meta { key }))
}
fn field(protocol: &str, name: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Payload(Payload::PayloadField(
        PayloadField {
            protocol: Cow::Owned(protocol.to_string()),
            field: Cow::Owned(name.to_string()),
        },
    )))
}
fn matches(
    left: Expression<'static>,
    op: Operator,
    right: Expression<'static>,
) -> Statement<'static> {
    Statement::Match(Match { left, right, op })
}
fn prefix(net: Ipv4Net) -> Expression<'static> {
    Expression::Named(NamedExpression::Prefix(Prefix {
        addr: Box::new(s(&net.network().to_string())),
        len: u32::from(net.prefix_len()),
    }))
}
fn fib_daddr_local() -> Statement<'static> {
    matches(
        Expression::Named(NamedExpression::Fib(Fib {
            result: FibResult::Type,
            flags: HashSet::from([FibFlag::Daddr]),
        })),
        Operator::EQ,
        s("local"),
    )
}
fn pair(bridge: &str) -> Expression<'static> {
    concat(vec![s(bridge), s(bridge)])
}
fn ifpair() -> Expression<'static> {
    concat(vec![meta(MetaKey::Iifname), meta(MetaKey::Oifname)])
}
fn port_key(host_ip: Option<Ipv4Addr>, forward: &PortForward) -> Expression<'static> {
    let mut items = Vec::new();
    if let Some(ip) = host_ip {
        items.push(s(&ip.to_string()));
    }
    items.push(s(forward.protocol.as_str()));
    items.push(n(u32::from(forward.host_port)));
    concat(items)
}
/// The key of a packet for the port maps: [daddr .] l4proto . dport.
fn packet_key(with_address: bool) -> Expression<'static> {
    let mut items = Vec::new();
    if with_address {
        items.push(field("ip", "daddr"));
    }
    items.push(meta(MetaKey::L4proto));
    items.push(field("th", "dport"));
    concat(items)
}
fn map_lookup(key: Expression<'static>, map: &str) -> Expression<'static> {
    Expression::Named(NamedExpression::Map(Box::new(nftables::expr::Map {
        key,
        data: s(&format!("@{map}")),
    })))
}

impl Firewall {
    pub fn new(table: impl Into<String>) -> Self {
        Self {
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    fn set(
        &self,
        name: &str,
        kind: SetTypeValue<'static>,
        interval: bool,
    ) -> NfListObject<'static> {
        NfListObject::Set(Box::new(Set {
            family: FAMILY,
            table: Cow::Owned(self.table.clone()),
            name: Cow::Owned(name.to_string()),
            set_type: kind,
            flags: interval.then(|| HashSet::from([SetFlag::Interval])),
            ..Default::default()
        }))
    }

    fn map(&self, name: &str, key: &[SetType], value: SetType) -> NfListObject<'static> {
        NfListObject::Map(Box::new(nftables::schema::Map {
            family: FAMILY,
            table: Cow::Owned(self.table.clone()),
            name: Cow::Owned(name.to_string()),
            set_type: SetTypeValue::Concatenated(Cow::Owned(key.to_vec())),
            map: SetTypeValue::Single(value),
            ..Default::default()
        }))
    }

    fn chain(&self, name: &str, base: Option<(NfChainType, NfHook, i32)>) -> NfListObject<'static> {
        let mut chain = Chain {
            family: FAMILY,
            table: Cow::Owned(self.table.clone()),
            name: Cow::Owned(name.to_string()),
            ..Default::default()
        };
        if let Some((kind, hook, priority)) = base {
            chain._type = Some(kind);
            chain.hook = Some(hook);
            chain.prio = Some(priority);
            chain.policy = Some(NfChainPolicy::Accept);
        }
        NfListObject::Chain(chain)
    }

    fn rule(&self, chain: &str, statements: Vec<Statement<'static>>) -> NfListObject<'static> {
        NfListObject::Rule(Rule {
            family: FAMILY,
            table: Cow::Owned(self.table.clone()),
            chain: Cow::Owned(chain.to_string()),
            expr: Cow::Owned(statements),
            ..Default::default()
        })
    }

    fn element(&self, set: &str, items: Vec<Expression<'static>>) -> NfListObject<'static> {
        NfListObject::Element(Element {
            family: FAMILY,
            table: Cow::Owned(self.table.clone()),
            name: Cow::Owned(set.to_string()),
            elem: Cow::Owned(items),
        })
    }

    fn table_object(&self) -> NfListObject<'static> {
        NfListObject::Table(Table {
            family: FAMILY,
            name: Cow::Owned(self.table.clone()),
            handle: None,
        })
    }

    /// The whole table, replacing whatever a previous run left: one atomic transaction.
    pub fn rebuild(&self, bridges: &[BridgePolicy], ports: &[PortForward]) -> Nftables<'static> {
        let mut batch = Batch::new();
        // `add` of an existing table is no error, so the delete that follows always succeeds.
        batch.add(self.table_object());
        batch.delete(self.table_object());
        batch.add(self.table_object());
        use SetType::*;
        batch.add(self.set("bridges", SetTypeValue::Single(Ifname), false));
        batch.add(self.set("internal", SetTypeValue::Single(Ifname), false));
        batch.add(self.set(
            "same",
            SetTypeValue::Concatenated(Cow::Owned(vec![Ifname, Ifname])),
            false,
        ));
        batch.add(self.set(
            "noicc",
            SetTypeValue::Concatenated(Cow::Owned(vec![Ifname, Ifname])),
            false,
        ));
        batch.add(self.set("masq", SetTypeValue::Single(Ipv4Addr), true));
        batch.add(self.set("subnets", SetTypeValue::Single(Ipv4Addr), true));
        batch.add(self.map("addr_any", &[InetProto, InetService], Ipv4Addr));
        batch.add(self.map("port_any", &[InetProto, InetService], InetService));
        batch.add(self.map("addr_host", &[Ipv4Addr, InetProto, InetService], Ipv4Addr));
        batch.add(self.map(
            "port_host",
            &[Ipv4Addr, InetProto, InetService],
            InetService,
        ));

        batch.add(self.chain("publish", None));
        batch.add(self.chain(
            "prerouting",
            Some((NfChainType::NAT, NfHook::Prerouting, -100)),
        ));
        batch.add(self.chain("output", Some((NfChainType::NAT, NfHook::Output, -100))));
        batch.add(self.chain(
            "postrouting",
            Some((NfChainType::NAT, NfHook::Postrouting, 100)),
        ));
        batch.add(self.chain("forward", Some((NfChainType::Filter, NfHook::Forward, 0))));
        batch.add(self.chain(
            "guard",
            Some((NfChainType::Filter, NfHook::Prerouting, -300)),
        ));

        for with_address in [true, false] {
            let (addr_map, port_map) = if with_address {
                ("addr_host", "port_host")
            } else {
                ("addr_any", "port_any")
            };
            batch.add(self.rule(
                "publish",
                vec![Statement::DNAT(Some(NAT {
                    addr: Some(map_lookup(packet_key(with_address), addr_map)),
                    family: Some(NATFamily::IP),
                    port: Some(map_lookup(packet_key(with_address), port_map)),
                    flags: None,
                }))],
            ));
        }
        let jump = |target: &str| {
            Statement::Jump(JumpTarget {
                target: Cow::Owned(target.to_string()),
            })
        };
        batch.add(self.rule("prerouting", vec![fib_daddr_local(), jump("publish")]));
        batch.add(self.rule("output", vec![fib_daddr_local(), jump("publish")]));

        // A loopback source (127.0.0.1:PORT published) leaves behind the bridge's address.
        batch.add(self.rule(
            "postrouting",
            vec![
                matches(meta(MetaKey::Oifname), Operator::EQ, s("@bridges")),
                matches(
                    field("ip", "saddr"),
                    Operator::EQ,
                    prefix("127.0.0.0/8".parse().expect("loopback")),
                ),
                Statement::Masquerade(None),
            ],
        ));
        // Hairpin: a container reaching a published port of a bridge through the host (its own
        // port too): the answer must come back through the NAT. Bridged packets under
        // br_netfilter have no input interface here, so the source subnet says it.
        batch.add(self.rule(
            "postrouting",
            vec![
                matches(
                    Expression::Named(NamedExpression::CT(CT {
                        key: Cow::Borrowed("status"),
                        family: None,
                        dir: None,
                    })),
                    Operator::IN,
                    s("dnat"),
                ),
                matches(field("ip", "saddr"), Operator::EQ, s("@subnets")),
                matches(meta(MetaKey::Oifname), Operator::EQ, s("@bridges")),
                Statement::Masquerade(None),
            ],
        ));
        // Egress of a bridge's subnet to anywhere but a bridge.
        batch.add(self.rule(
            "postrouting",
            vec![
                matches(field("ip", "saddr"), Operator::EQ, s("@masq")),
                matches(meta(MetaKey::Oifname), Operator::NEQ, s("@bridges")),
                Statement::Masquerade(None),
            ],
        ));

        let drop = || Statement::Drop(None);
        // Networks are isolated from each other.
        batch.add(self.rule(
            "forward",
            vec![
                matches(meta(MetaKey::Iifname), Operator::EQ, s("@bridges")),
                matches(meta(MetaKey::Oifname), Operator::EQ, s("@bridges")),
                matches(ifpair(), Operator::NEQ, s("@same")),
                drop(),
            ],
        ));
        batch.add(self.rule(
            "forward",
            vec![matches(ifpair(), Operator::EQ, s("@noicc")), drop()],
        ));
        for direction in [MetaKey::Iifname, MetaKey::Oifname] {
            batch.add(self.rule(
                "forward",
                vec![
                    matches(meta(direction), Operator::EQ, s("@internal")),
                    matches(ifpair(), Operator::NEQ, s("@same")),
                    drop(),
                ],
            ));
        }
        batch.add(self.rule(
            "guard",
            vec![
                matches(meta(MetaKey::Iifname), Operator::EQ, s("@bridges")),
                matches(
                    field("ip", "daddr"),
                    Operator::EQ,
                    prefix("127.0.0.0/8".parse().expect("loopback")),
                ),
                drop(),
            ],
        ));

        for bridge in bridges {
            for object in self.bridge_elements(bridge) {
                batch.add(object);
            }
        }
        for object in self.port_elements(ports, false) {
            batch.add(object);
        }
        batch.to_nftables()
    }

    fn bridge_elements(&self, bridge: &BridgePolicy) -> Vec<NfListObject<'static>> {
        let name = bridge.bridge.as_str();
        let mut out = vec![
            self.element("bridges", vec![s(name)]),
            self.element("same", vec![pair(name)]),
            self.element("subnets", vec![prefix(bridge.subnet)]),
        ];
        if !bridge.icc {
            out.push(self.element("noicc", vec![pair(name)]));
        }
        if bridge.internal {
            out.push(self.element("internal", vec![s(name)]));
        } else if bridge.masquerade {
            out.push(self.element("masq", vec![prefix(bridge.subnet)]));
        }
        out
    }

    /// Adds a bridge network's elements.
    pub fn add_bridge(&self, bridge: &BridgePolicy) -> Nftables<'static> {
        let mut batch = Batch::new();
        for object in self.bridge_elements(bridge) {
            batch.add(object);
        }
        batch.to_nftables()
    }

    /// Removes a bridge network's elements.
    pub fn remove_bridge(&self, bridge: &BridgePolicy) -> Nftables<'static> {
        let mut batch = Batch::new();
        for object in self.bridge_elements(bridge) {
            batch.delete(object);
        }
        batch.to_nftables()
    }

    /// The map elements of published ports: for an add, key and value; for a delete, keys.
    fn port_elements(&self, ports: &[PortForward], keys_only: bool) -> Vec<NfListObject<'static>> {
        let mut out = Vec::new();
        for forward in ports {
            let (addr_map, port_map) = match forward.host_ip {
                Some(_) => ("addr_host", "port_host"),
                None => ("addr_any", "port_any"),
            };
            let key = port_key(forward.host_ip, forward);
            let (address, port) = if keys_only {
                (key.clone(), key)
            } else {
                (
                    Expression::List(vec![key.clone(), s(&forward.container_ip.to_string())]),
                    Expression::List(vec![key, n(u32::from(forward.container_port))]),
                )
            };
            out.push(self.element(addr_map, vec![address]));
            out.push(self.element(port_map, vec![port]));
        }
        out
    }

    /// Publishes ports.
    pub fn add_ports(&self, ports: &[PortForward]) -> Nftables<'static> {
        let mut batch = Batch::new();
        for object in self.port_elements(ports, false) {
            batch.add(object);
        }
        batch.to_nftables()
    }

    /// Withdraws published ports.
    pub fn remove_ports(&self, ports: &[PortForward]) -> Nftables<'static> {
        let mut batch = Batch::new();
        for object in self.port_elements(ports, true) {
            batch.delete(object);
        }
        batch.to_nftables()
    }

    /// Deletes the table (the daemon's networking is turned off, or a test daemon ends).
    pub fn delete(&self) -> Nftables<'static> {
        let mut batch = Batch::new();
        batch.add(self.table_object());
        batch.delete(self.table_object());
        batch.to_nftables()
    }

    /// The comment that tags this daemon's rules in tables it does not own.
    pub fn tag(&self) -> String {
        format!("berth:{}", self.table)
    }

    /// Accept rules for the bridges in iptables-nft's `ip filter FORWARD` chain (whose policy
    /// dockerd sets to DROP: every base chain on a hook must accept for a packet to pass), given
    /// that chain's current listing: this daemon's old rules (by tag) are deleted, fresh ones
    /// inserted. None when the chain does not exist.
    pub fn forward_accepts(
        &self,
        listing: &Nftables<'_>,
        bridges: &[String],
    ) -> Option<Nftables<'static>> {
        let tag = self.tag();
        let mut exists = false;
        let mut batch = Batch::new();
        for object in listing.objects.iter() {
            let nftables::schema::NfObject::ListObject(object) = object else {
                continue;
            };
            match object {
                NfListObject::Chain(chain)
                    if chain.table == "filter" && chain.name == "FORWARD" =>
                {
                    exists = true;
                }
                NfListObject::Rule(rule)
                    if rule.table == "filter"
                        && rule.chain == "FORWARD"
                        && rule.comment.as_deref() == Some(tag.as_str()) =>
                {
                    if let Some(handle) = rule.handle {
                        batch.delete(NfListObject::Rule(Rule {
                            family: FAMILY,
                            table: Cow::Borrowed("filter"),
                            chain: Cow::Borrowed("FORWARD"),
                            expr: Cow::Owned(vec![]),
                            handle: Some(handle),
                            index: None,
                            comment: None,
                        }));
                    }
                }
                _ => {}
            }
        }
        if !exists {
            return None;
        }
        for bridge in bridges {
            for direction in [MetaKey::Iifname, MetaKey::Oifname] {
                batch.add_cmd(NfCmd::Insert(NfListObject::Rule(Rule {
                    family: FAMILY,
                    table: Cow::Borrowed("filter"),
                    chain: Cow::Borrowed("FORWARD"),
                    expr: Cow::Owned(vec![
                        matches(meta(direction), Operator::EQ, s(bridge)),
                        Statement::Accept(None),
                    ]),
                    handle: None,
                    index: None,
                    comment: Some(Cow::Owned(tag.clone())),
                })));
            }
        }
        Some(batch.to_nftables())
    }
}

/// Applies a batch with `nft -j -f -` (a blocking process; run it off the async workers).
/// nft's complaint, if any, becomes the error's message.
pub fn apply(batch: &Nftables<'_>) -> Result<()> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let payload = serde_json::to_vec(batch).map_err(|e| Error::internal(e.to_string()))?;
    let mut child = Command::new("nft")
        .args(["-j", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::new(
                    types::ErrorKind::Unsupported,
                    "nft not found: install the nftables package",
                )
            } else {
                Error::internal(format!("run nft: {e}"))
            }
        })?;
    // Dropping stdin after the write closes it: nft reads to its end.
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(&payload)
        .map_err(|e| Error::internal(format!("write to nft: {e}")))?;
    let output = child
        .wait_with_output()
        .map_err(|e| Error::internal(format!("wait for nft: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let message = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| l.trim_start_matches("internal:0:0-0: "))
        .collect::<Vec<_>>()
        .join("; ");
    Err(Error::internal(format!("nft: {message}")))
}

/// Lists iptables-nft's `ip filter FORWARD` chain; None when there is none.
pub fn list_forward_chain() -> Option<Nftables<'static>> {
    nftables::helper::get_current_ruleset_with_args(
        nftables::helper::DEFAULT_NFT,
        &["list", "chain", "ip", "filter", "FORWARD"],
    )
    .ok()
}

/// Whether a table of this name exists.
pub fn table_exists(name: &str) -> bool {
    nftables::helper::get_current_ruleset_with_args(
        nftables::helper::DEFAULT_NFT,
        &["list", "table", "ip", name],
    )
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forward(host_ip: Option<&str>, host_port: u16, protocol: Protocol) -> PortForward {
        PortForward {
            protocol,
            host_ip: host_ip.map(|ip| ip.parse().unwrap()),
            host_port,
            container_ip: "10.1.0.2".parse().unwrap(),
            container_port: 80,
        }
    }

    fn json(batch: &Nftables<'_>) -> serde_json::Value {
        serde_json::to_value(batch).unwrap()
    }

    /// The `elem` of every command `verb` (add/delete) on set or map `name`.
    fn elements(value: &serde_json::Value, verb: &str, name: &str) -> Vec<serde_json::Value> {
        value["nftables"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|c| c.get(verb)?.get("element"))
            .filter(|e| e["name"] == name)
            .flat_map(|e| e["elem"].as_array().unwrap().clone())
            .collect()
    }

    #[test]
    fn rebuild_replaces_the_table_in_one_transaction() {
        let firewall = Firewall::new("berth-t1");
        let bridges = [BridgePolicy {
            bridge: "berth0".into(),
            subnet: "172.17.0.0/16".parse().unwrap(),
            internal: false,
            icc: true,
            masquerade: true,
        }];
        let value = json(&firewall.rebuild(&bridges, &[forward(None, 8081, Protocol::Tcp)]));
        let commands = value["nftables"].as_array().unwrap();
        let table = serde_json::json!({"table": {"family": "ip", "name": "berth-t1"}});
        assert_eq!(commands[0]["add"], table);
        assert_eq!(commands[1]["delete"], table);
        assert_eq!(commands[2]["add"], table);
        use serde_json::json;
        assert_eq!(
            elements(&value, "add", "masq"),
            vec![json!({"prefix": {"addr": "172.17.0.0", "len": 16}})]
        );
        assert_eq!(
            elements(&value, "add", "same"),
            vec![json!({"concat": ["berth0", "berth0"]})]
        );
        assert!(elements(&value, "add", "noicc").is_empty());
        assert!(elements(&value, "add", "internal").is_empty());
        assert_eq!(
            elements(&value, "add", "addr_any"),
            vec![json!([{"concat": ["tcp", 8081]}, "10.1.0.2"])]
        );
        assert_eq!(
            elements(&value, "add", "port_any"),
            vec![json!([{"concat": ["tcp", 8081]}, 80])]
        );
        // Every rule is in one of the table's chains.
        let chains: Vec<&str> = commands
            .iter()
            .filter_map(|c| c["add"].get("rule"))
            .map(|r| r["chain"].as_str().unwrap())
            .collect();
        assert_eq!(chains.iter().filter(|c| **c == "publish").count(), 2);
        assert_eq!(chains.iter().filter(|c| **c == "forward").count(), 4);
    }

    #[test]
    fn internal_and_icc_off_bridges() {
        let firewall = Firewall::new("t");
        let bridge = BridgePolicy {
            bridge: "br-1".into(),
            subnet: "10.9.0.0/24".parse().unwrap(),
            internal: true,
            icc: false,
            masquerade: true,
        };
        let value = json(&firewall.add_bridge(&bridge));
        assert_eq!(
            elements(&value, "add", "internal"),
            vec![serde_json::json!("br-1")]
        );
        assert_eq!(elements(&value, "add", "noicc").len(), 1);
        assert!(
            elements(&value, "add", "masq").is_empty(),
            "internal networks are not masqueraded"
        );
        let removal = json(&firewall.remove_bridge(&bridge));
        assert!(
            removal["nftables"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c.get("delete").is_some())
        );
        assert_eq!(
            elements(&removal, "delete", "bridges"),
            vec![serde_json::json!("br-1")]
        );
    }

    #[test]
    fn ports_bound_to_an_address_use_the_host_maps_and_deletes_name_keys_only() {
        use serde_json::json;
        let firewall = Firewall::new("t");
        let ports = [
            forward(Some("127.0.0.1"), 8080, Protocol::Tcp),
            forward(None, 5353, Protocol::Udp),
        ];
        let value = json(&firewall.add_ports(&ports));
        assert_eq!(
            elements(&value, "add", "addr_host"),
            vec![json!([{"concat": ["127.0.0.1", "tcp", 8080]}, "10.1.0.2"])]
        );
        assert_eq!(
            elements(&value, "add", "port_any"),
            vec![json!([{"concat": ["udp", 5353]}, 80])]
        );
        let removal = json(&firewall.remove_ports(&ports));
        assert_eq!(
            elements(&removal, "delete", "addr_host"),
            vec![json!({"concat": ["127.0.0.1", "tcp", 8080]})]
        );
        assert!(!removal.to_string().contains("10.1.0.2"));
    }

    #[test]
    fn forward_accepts_replace_only_this_daemons_rules() {
        let firewall = Firewall::new("berth");
        let listing: Nftables = serde_json::from_value(serde_json::json!({"nftables": [
            {"metainfo": {"version": "1.0.6", "release_name": "x", "json_schema_version": 1}},
            {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 1,
                       "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
            {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 7,
                      "comment": "berth:berth", "expr": [{"accept": null}]}},
            {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 8,
                      "comment": "berth:other", "expr": [{"accept": null}]}},
        ]}))
        .unwrap();
        let batch = firewall
            .forward_accepts(&listing, &["berth0".to_string()])
            .unwrap();
        let value = json(&batch);
        let commands = value["nftables"].as_array().unwrap();
        assert_eq!(commands.len(), 3);
        assert_eq!(commands[0]["delete"]["rule"]["handle"], 7);
        assert_eq!(commands[1]["insert"]["rule"]["comment"], "berth:berth");
        let empty: Nftables = serde_json::from_value(serde_json::json!({"nftables": []})).unwrap();
        assert!(firewall.forward_accepts(&empty, &[]).is_none());
    }

    #[test]
    fn protocols() {
        assert_eq!(Protocol::parse("UDP"), Some(Protocol::Udp));
        assert_eq!(Protocol::parse(""), Some(Protocol::Tcp));
        assert_eq!(Protocol::parse("icmp"), None);
    }
}
