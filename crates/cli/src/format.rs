//! Row models of docker's tables (ps, images, history) as JSON objects with docker's field
//! names, their column titles, and the output of `--format` / table rendering.

use std::collections::HashMap;

use client::models::{ContainerSummary, ImageHistoryResponseItem, ImageSummary};
use serde_json::{Map, Value, json};

use crate::tabwriter;
use crate::template::{Template, TemplateError, go_quote, prepare_format, render_header};
use crate::units::{ago, human_size, human_size4};

/// Default `ps` format.
pub const PS_FORMAT: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";
/// Default `images` format.
pub const IMAGES_FORMAT: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
/// Default `images --digests` format.
pub const IMAGES_DIGESTS_FORMAT: &str =
    "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}";
/// Default `history` format.
pub const HISTORY_FORMAT: &str =
    "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}";

/// Column titles of the ps row model.
pub fn ps_headers() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("ID", "CONTAINER ID"),
        ("Image", "IMAGE"),
        ("Command", "COMMAND"),
        ("CreatedAt", "CREATED AT"),
        ("RunningFor", "CREATED"),
        ("Ports", "PORTS"),
        ("State", "STATE"),
        ("Status", "STATUS"),
        ("Size", "SIZE"),
        ("Names", "NAMES"),
        ("Labels", "LABELS"),
        ("Mounts", "MOUNTS"),
        ("LocalVolumes", "LOCAL VOLUMES"),
        ("Networks", "NETWORKS"),
        ("Platform", "PLATFORM"),
    ])
}

/// Column titles of the images row model.
pub fn image_headers() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("ID", "IMAGE ID"),
        ("Repository", "REPOSITORY"),
        ("Tag", "TAG"),
        ("Digest", "DIGEST"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("Size", "SIZE"),
        ("Containers", "CONTAINERS"),
        ("VirtualSize", "SIZE"),
        ("SharedSize", "SHARED SIZE"),
        ("UniqueSize", "UNIQUE SIZE"),
    ])
}

/// Column titles of the history row model.
pub fn history_headers() -> HashMap<&'static str, &'static str> {
    HashMap::from([
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ])
}

/// Docker's short ID: the part after `algo:`, 12 characters.
pub fn truncate_id(id: &str) -> String {
    let id = id.split_once(':').map(|(_, h)| h).unwrap_or(id);
    id.chars().take(12).collect()
}

/// Shortens to `max` characters, the last one replaced by "…" (docker's `Ellipsis`).
pub fn ellipsis(s: &str, max: usize) -> String {
    let n = s.chars().count();
    if n <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// A unix time as Go's `time.Time.String()` prints it in local time:
/// "2026-11-23 11:53:06 +0000 UTC".
pub fn go_time_string(unix: i64) -> String {
    use chrono::{Local, TimeZone};
    match Local.timestamp_opt(unix, 0).single() {
        Some(t) => {
            let offset = t.format("%z").to_string();
            let zone = if offset == "+0000" {
                "UTC".to_string()
            } else {
                offset.clone()
            };
            format!("{} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
        }
        None => unix.to_string(),
    }
}

/// A unix time as Go's RFC 3339 layout in local time ("2026-11-23T11:53:06Z").
pub fn rfc3339_local(unix: i64) -> String {
    use chrono::{Local, TimeZone};
    match Local.timestamp_opt(unix, 0).single() {
        Some(t) => {
            let s = t.format("%Y-%m-%dT%H:%M:%S%:z").to_string();
            match s.strip_suffix("+00:00") {
                Some(base) => format!("{base}Z"),
                None => s,
            }
        }
        None => unix.to_string(),
    }
}

/// Now as fractional unix seconds.
pub fn now_unix() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// A published or exposed port as the PORTS column needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortEntry {
    /// Host address ("" when not published).
    pub ip: String,
    /// Port inside the container.
    pub private: u16,
    /// Port on the host (0 when not published).
    pub public: u16,
    /// "tcp", "udp" or "sctp".
    pub proto: String,
}

/// The PORTS column (docker's DisplayablePorts): consecutive ports of the same address and
/// protocol are grouped into ranges ("0.0.0.0:80-81->80-81/tcp", "53/udp"), mappings to
/// another host port are listed after them ("[::]:8080->80/tcp").
pub fn displayable_ports(ports: &[PortEntry]) -> String {
    let mut ports = ports.to_vec();
    ports.sort_by(|a, b| {
        (a.private, &a.ip, a.public, &a.proto).cmp(&(b.private, &b.ip, b.public, &b.proto))
    });
    // Groups in order of first appearance: key (ip, proto) -> (first, last).
    let mut groups: Vec<((String, String), (u16, u16))> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    let form = |(ip, proto): &(String, String), first: u16, last: u16| {
        let mut range = first.to_string();
        if first != last {
            range = format!("{range}-{last}");
        }
        if ip.is_empty() {
            format!("{range}/{proto}")
        } else {
            format!("{ip}:{range}->{range}/{proto}")
        }
    };
    for p in &ports {
        if !p.ip.is_empty() && p.public != p.private {
            let host = if p.ip.contains(':') {
                format!("[{}]:{}", p.ip, p.public)
            } else {
                format!("{}:{}", p.ip, p.public)
            };
            host_mappings.push(format!("{host}->{}/{}", p.private, p.proto));
            continue;
        }
        let key = (p.ip.clone(), p.proto.clone());
        match groups.iter_mut().find(|(k, _)| *k == key) {
            None => groups.push((key, (p.private, p.private))),
            Some((_, range)) if p.private == range.1.wrapping_add(1) => range.1 = p.private,
            Some((k, range)) => {
                result.push(form(k, range.0, range.1));
                *range = (p.private, p.private);
            }
        }
    }
    for (k, (first, last)) in &groups {
        result.push(form(k, *first, *last));
    }
    result.extend(host_mappings);
    result.join(", ")
}

fn ports_text(c: &ContainerSummary) -> String {
    let entries: Vec<PortEntry> = c
        .ports
        .iter()
        .flatten()
        .map(|p| PortEntry {
            ip: p.ip.clone().unwrap_or_default(),
            private: p.private_port,
            public: p.public_port.unwrap_or(0),
            proto: p.typ.map(|t| t.to_string()).unwrap_or_else(|| "tcp".into()),
        })
        .collect();
    displayable_ports(&entries)
}

/// The ps row model of one container (docker's ContainerContext fields).
pub fn container_row(c: &ContainerSummary, trunc: bool, now: f64) -> Value {
    let id = c.id.clone().unwrap_or_default();
    let image = c.image.clone().unwrap_or_default();
    let image_id = c.image_id.clone().unwrap_or_default();
    let image = if image.is_empty() {
        "<no image>".to_string()
    } else if trunc {
        if truncate_id(&image_id) == truncate_id(&image) {
            truncate_id(&image)
        } else {
            // Digests are dropped from the name unless --no-trunc.
            image.split('@').next().unwrap_or(&image).to_string()
        }
    } else {
        image
    };
    let command = c.command.clone().unwrap_or_default();
    let command = go_quote(&if trunc {
        ellipsis(&command, 20)
    } else {
        command
    });
    let names: Vec<String> = c
        .names
        .iter()
        .flatten()
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    let names = if trunc {
        // Links look like "other/alias": show only the container's own name.
        names
            .iter()
            .find(|n| !n.contains('/'))
            .cloned()
            .unwrap_or_default()
    } else {
        names.join(",")
    };
    let created = c.created.unwrap_or(0);
    let mut labels: Vec<String> = c
        .labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    labels.sort();
    let mounts: Vec<String> = c
        .mounts
        .iter()
        .flatten()
        .map(|m| {
            let name = m
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .or_else(|| m.source.clone())
                .unwrap_or_default();
            if trunc { ellipsis(&name, 15) } else { name }
        })
        .collect();
    let local_volumes = c
        .mounts
        .iter()
        .flatten()
        .filter(|m| m.driver.as_deref() == Some("local"))
        .count();
    let mut networks: Vec<String> = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let srw = human_size(c.size_rw.unwrap_or(0) as f64);
    let size = match c.size_root_fs {
        Some(v) if v > 0 => format!("{srw} (virtual {})", human_size(v as f64)),
        _ => srw,
    };
    json!({
        "ID": if trunc { truncate_id(&id) } else { id },
        "Image": image,
        "Command": command,
        "CreatedAt": go_time_string(created),
        "RunningFor": ago(created, now),
        "Ports": ports_text(c),
        "State": c.state.map(|s| s.to_string()).unwrap_or_default(),
        "Status": c.status.clone().unwrap_or_default(),
        "Size": size,
        "Names": names,
        "Labels": labels.join(","),
        "Mounts": mounts.join(","),
        "LocalVolumes": local_volumes.to_string(),
        "Networks": networks.join(","),
    })
}

/// Splits "name:tag" (the colon after the last slash).
fn split_tag(reference: &str) -> (String, String) {
    let slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[slash..].rfind(':') {
        Some(i) => (
            reference[..slash + i].to_string(),
            reference[slash + i + 1..].to_string(),
        ),
        None => (reference.to_string(), String::new()),
    }
}

/// The short form users type: "docker.io/library/busybox" is "busybox".
pub fn familiar_name(name: &str) -> String {
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    name.strip_prefix("library/").unwrap_or(name).to_string()
}

/// The rows of `images` for one image: one per repository:tag, with digests when asked
/// (docker's imageFormat algorithm), `<none>` for dangling images.
pub fn image_rows(img: &ImageSummary, trunc: bool, digests: bool, now: f64) -> Vec<Value> {
    let mut rows: Vec<(String, String, String)> = Vec::new();
    let tags: Vec<&String> = img
        .repo_tags
        .iter()
        .filter(|t| t.as_str() != "<none>:<none>")
        .collect();
    let digest_refs: Vec<&String> = img
        .repo_digests
        .iter()
        .filter(|d| d.as_str() != "<none>@<none>")
        .collect();
    if tags.is_empty() && digest_refs.is_empty() {
        rows.push(("<none>".into(), "<none>".into(), "<none>".into()));
    } else {
        let mut repo_tags: Vec<(String, Vec<String>)> = Vec::new();
        for t in tags {
            let (repo, tag) = split_tag(t);
            let repo = familiar_name(&repo);
            match repo_tags.iter_mut().find(|(r, _)| *r == repo) {
                Some((_, v)) => v.push(tag),
                None => repo_tags.push((repo, vec![tag])),
            }
        }
        let mut repo_digests: Vec<(String, Vec<String>)> = Vec::new();
        for d in digest_refs {
            if let Some((repo, dg)) = d.split_once('@') {
                let repo = familiar_name(repo);
                match repo_digests.iter_mut().find(|(r, _)| *r == repo) {
                    Some((_, v)) => v.push(dg.to_string()),
                    None => repo_digests.push((repo, vec![dg.to_string()])),
                }
            }
        }
        for (repo, tags) in &repo_tags {
            let pos = repo_digests.iter().position(|(r, _)| r == repo);
            let ds = pos.map(|p| repo_digests.remove(p).1).unwrap_or_default();
            for tag in tags {
                if !digests || ds.is_empty() {
                    rows.push((repo.clone(), tag.clone(), "<none>".into()));
                } else {
                    for d in &ds {
                        rows.push((repo.clone(), tag.clone(), d.clone()));
                    }
                }
            }
        }
        for (repo, ds) in repo_digests {
            if digests {
                for d in ds {
                    rows.push((repo.clone(), "<none>".into(), d));
                }
            } else {
                rows.push((repo, "<none>".into(), "<none>".into()));
            }
        }
    }
    let na = |v: i64, f: &dyn Fn(i64) -> String| {
        if v < 0 { "N/A".to_string() } else { f(v) }
    };
    rows.into_iter()
        .map(|(repo, tag, digest)| {
            json!({
                "ID": if trunc { truncate_id(&img.id) } else { img.id.clone() },
                "Repository": repo,
                "Tag": tag,
                "Digest": digest,
                "CreatedSince": if img.created > 0 { ago(img.created, now) } else { "N/A".into() },
                "CreatedAt": go_time_string(img.created),
                "Size": human_size(img.size as f64),
                "Containers": na(img.containers, &|v| v.to_string()),
                "VirtualSize": human_size4(img.size as f64),
                // go-units HumanSize (4 digits) for these two, as docker's image context.
                "SharedSize": na(img.shared_size, &|v| human_size4(v as f64)),
                "UniqueSize": na(img.shared_size, &|v| human_size4((img.size - v) as f64)),
            })
        })
        .collect()
}

/// The history row model of one layer.
pub fn history_row(h: &ImageHistoryResponseItem, trunc: bool, human: bool, now: f64) -> Value {
    let id = if h.id.starts_with("<missing>") || !trunc {
        h.id.clone()
    } else {
        truncate_id(&h.id)
    };
    let created_by = h.created_by.replace('\t', " ");
    json!({
        "ID": id,
        "CreatedSince": ago(h.created, now),
        "CreatedAt": rfc3339_local(h.created),
        "CreatedBy": if trunc { ellipsis(&created_by, 45) } else { created_by },
        "Size": if human { human_size(h.size as f64) } else { h.size.to_string() },
        "Comment": h.comment,
    })
}

/// Renders rows with a `--format` (or default) format: `table` formats get a header and
/// column alignment; `json` alone prints each row's JSON.
pub fn render(
    format: &str,
    rows: &[Value],
    headers: &HashMap<&str, &str>,
    row_model: bool,
) -> Result<String, TemplateError> {
    let format = if format == "json" {
        "{{json .}}"
    } else {
        format
    };
    let (table, body) = prepare_format(format);
    let tmpl = Template::parse(&body)?.with_html_escape(row_model);
    let mut out = String::new();
    if table {
        out.push_str(&render_header(&tmpl, headers)?);
        out.push('\n');
    }
    for row in rows {
        out.push_str(&tmpl.execute(row)?);
        out.push('\n');
    }
    if table {
        Ok(tabwriter::TABLE.format(&out))
    } else {
        Ok(out)
    }
}

/// Re-indents a JSON document with 4 spaces as Go's `json.Indent` does, keeping the text of
/// strings and numbers (and key order) exactly as the daemon sent them.
pub fn json_indent(raw: &[u8]) -> String {
    let s = String::from_utf8_lossy(raw);
    let mut out = String::with_capacity(s.len() * 2);
    let mut depth = 0usize;
    let mut chars = s.chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        for _ in 0..depth {
            out.push_str("    ");
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                out.push('"');
                while let Some(c) = chars.next() {
                    out.push(c);
                    if c == '\\' {
                        if let Some(n) = chars.next() {
                            out.push(n);
                        }
                    } else if c == '"' {
                        break;
                    }
                }
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                if chars.peek() == Some(&close) {
                    chars.next();
                    out.push(c);
                    out.push(close);
                } else {
                    out.push(c);
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(',');
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

/// `[` raw elements `]`, indented: docker's inspect output.
pub fn inspect_output(raws: &[bytes::Bytes]) -> String {
    if raws.is_empty() {
        return "[]".into();
    }
    let mut joined = Vec::new();
    joined.push(b'[');
    for (i, r) in raws.iter().enumerate() {
        if i > 0 {
            joined.push(b',');
        }
        joined.extend_from_slice(r.trim_ascii());
    }
    joined.push(b']');
    json_indent(&joined)
}

/// Builds a JSON object (for tests and callers composing row models).
pub fn object(pairs: &[(&str, Value)]) -> Value {
    Value::Object(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect::<Map<_, _>>(),
    )
}
