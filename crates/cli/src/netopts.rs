//! The network options of `run` and `create` (`-p`, `-P`, `--expose`, `--ip`,
//! `--mac-address`, `--network-alias`, `--add-host`, `--dns*`, `--domainname`) and how they
//! land in the create body, as the docker CLI puts them there (ports as docker's
//! `nat.ParsePortSpec`).

use std::collections::HashMap;

use clap::Args;
use client::models::{
    ContainerCreateBody, EndpointIpamConfig, EndpointSettings, NetworkingConfig, PortBinding,
};

/// The flags.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkFlags {
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    pub ip: Option<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    pub mac_address: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias")]
    pub network_alias: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    pub add_host: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    pub dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt")]
    pub dns_option: Vec<String>,
    /// Container NIS domain name
    #[arg(long)]
    pub domainname: Option<String>,
}

/// One parsed `-p`: container port (with protocol) and its binding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMapping {
    pub container: String,
    pub host_ip: String,
    pub host_port: String,
}

fn parse_range(text: &str) -> Result<(u16, u16), String> {
    let bad = || format!("invalid range format for --publish: {text}");
    match text.split_once('-') {
        Some((low, high)) => {
            let low: u16 = low.parse().map_err(|_| bad())?;
            let high: u16 = high.parse().map_err(|_| bad())?;
            if high < low {
                return Err(bad());
            }
            Ok((low, high))
        }
        None => {
            let port: u16 = text
                .parse()
                .map_err(|_| format!("invalid containerPort: {text}"))?;
            Ok((port, port))
        }
    }
}

/// Parses `[ip:][hostPort:]containerPort[/proto]` (an IPv6 address in brackets).
pub fn parse_publish(spec: &str) -> Result<Vec<PortMapping>, String> {
    let (rest, proto) = match spec.rsplit_once('/') {
        Some((rest, proto)) => (rest, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_string()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    // The IP may hold colons (IPv6) inside brackets: split off the last two fields.
    let (ip, host, container) = match rest.rsplit_once(':') {
        None => ("", "", rest),
        Some((head, container)) => match head.rsplit_once(':') {
            None => ("", head, container),
            Some((ip, host)) => (ip, host, container),
        },
    };
    let ip = ip.trim_start_matches('[').trim_end_matches(']');
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {spec}<empty>"));
    }
    let (low, high) = parse_range(container)?;
    let host_range = if host.is_empty() {
        None
    } else {
        Some(parse_range(host)?)
    };
    let count = high - low;
    let mut out = Vec::new();
    for offset in 0..=count {
        let host_port = match host_range {
            None => String::new(),
            // A host range for one container port: the daemon picks one of them.
            Some((h_low, h_high)) if count == 0 && h_high != h_low => format!("{h_low}-{h_high}"),
            Some((h_low, h_high)) => {
                if h_high - h_low != count {
                    return Err(format!(
                        "invalid ranges specified for container and host Ports: {container} and {host}"
                    ));
                }
                (h_low + offset).to_string()
            }
        };
        out.push(PortMapping {
            container: format!("{}/{proto}", low + offset),
            host_ip: ip.to_string(),
            host_port,
        });
    }
    Ok(out)
}

/// `--expose 80`, `--expose 8000-8010/udp`.
fn parse_expose(spec: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = spec.split_once('/').unwrap_or((spec, "tcp"));
    let (low, high) = parse_range(ports)?;
    Ok((low..=high).map(|p| format!("{p}/{proto}")).collect())
}

impl NetworkFlags {
    /// Puts the flags into the create body; `network` is `--network` (or docker's "default").
    pub fn apply(&self, body: &mut ContainerCreateBody, network: &str) -> Result<(), String> {
        let mut exposed: Vec<String> = body.exposed_ports.clone().unwrap_or_default();
        let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
        for spec in &self.publish {
            for mapping in parse_publish(spec)? {
                if !exposed.contains(&mapping.container) {
                    exposed.push(mapping.container.clone());
                }
                bindings
                    .entry(mapping.container.clone())
                    .or_insert(None)
                    .get_or_insert_with(Vec::new)
                    .push(PortBinding {
                        host_ip: Some(mapping.host_ip),
                        host_port: Some(mapping.host_port),
                    });
            }
        }
        for spec in &self.expose {
            for port in parse_expose(spec)? {
                if !exposed.contains(&port) {
                    exposed.push(port);
                }
            }
        }
        if !exposed.is_empty() {
            body.exposed_ports = Some(exposed);
        }
        if self.domainname.is_some() {
            body.domainname = self.domainname.clone();
        }
        let host_config = body.host_config.get_or_insert_with(Default::default);
        if !bindings.is_empty() {
            host_config.port_bindings = Some(bindings);
        }
        if self.publish_all {
            host_config.publish_all_ports = Some(true);
        }
        let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        host_config.extra_hosts = some(&self.add_host);
        host_config.dns = some(&self.dns);
        host_config.dns_search = some(&self.dns_search);
        host_config.dns_options = some(&self.dns_option);
        if self.ip.is_some() || self.mac_address.is_some() || !self.network_alias.is_empty() {
            let settings = EndpointSettings {
                ipam_config: self.ip.clone().map(|ip| EndpointIpamConfig {
                    ipv4_address: Some(ip),
                    ..Default::default()
                }),
                mac_address: self.mac_address.clone(),
                aliases: some(&self.network_alias),
                ..Default::default()
            };
            body.networking_config = Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(network.to_string(), settings)])),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(container: &str, ip: &str, host: &str) -> PortMapping {
        PortMapping {
            container: container.into(),
            host_ip: ip.into(),
            host_port: host.into(),
        }
    }

    #[test]
    fn publish_specs_parse_as_dockers() {
        assert_eq!(
            parse_publish("80").unwrap(),
            vec![mapping("80/tcp", "", "")]
        );
        assert_eq!(
            parse_publish("8080:80").unwrap(),
            vec![mapping("80/tcp", "", "8080")]
        );
        assert_eq!(
            parse_publish("127.0.0.1:8080:80/udp").unwrap(),
            vec![mapping("80/udp", "127.0.0.1", "8080")]
        );
        assert_eq!(
            parse_publish("127.0.0.1::80").unwrap(),
            vec![mapping("80/tcp", "127.0.0.1", "")]
        );
        assert_eq!(
            parse_publish("[::1]:8080:80").unwrap(),
            vec![mapping("80/tcp", "::1", "8080")]
        );
        assert_eq!(
            parse_publish("8000-8001:80-81").unwrap(),
            vec![mapping("80/tcp", "", "8000"), mapping("81/tcp", "", "8001")]
        );
        assert_eq!(
            parse_publish("8000-8010:80").unwrap(),
            vec![mapping("80/tcp", "", "8000-8010")]
        );
        assert!(parse_publish("8000-8001:80-82").is_err());
        assert!(parse_publish("nope:8080:80").is_err());
        assert!(parse_publish("80/icmp").is_err());
        assert!(parse_publish("x").is_err());
    }

    #[test]
    fn flags_land_in_the_body() {
        let flags = NetworkFlags {
            publish: vec!["127.0.0.1:8080:80".into(), "9090:80".into()],
            publish_all: true,
            expose: vec!["53/udp".into()],
            ip: Some("10.1.0.9".into()),
            network_alias: vec!["web".into()],
            add_host: vec!["db:10.0.0.5".into()],
            dns: vec!["10.0.0.53".into()],
            ..Default::default()
        };
        let mut body = ContainerCreateBody::default();
        flags.apply(&mut body, "front").unwrap();
        let exposed = body.exposed_ports.clone().unwrap();
        assert!(exposed.contains(&"80/tcp".into()) && exposed.contains(&"53/udp".into()));
        let host = body.host_config.clone().unwrap();
        let bound = host.port_bindings.unwrap()["80/tcp"].clone().unwrap();
        assert_eq!(bound.len(), 2);
        assert_eq!(host.publish_all_ports, Some(true));
        assert_eq!(host.extra_hosts, Some(vec!["db:10.0.0.5".into()]));
        let endpoints = body.networking_config.unwrap().endpoints_config.unwrap();
        let front = &endpoints["front"];
        assert_eq!(front.aliases, Some(vec!["web".into()]));
        assert_eq!(
            front.ipam_config.as_ref().unwrap().ipv4_address.as_deref(),
            Some("10.1.0.9")
        );
    }
}
