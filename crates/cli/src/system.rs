//! System commands (events, info, version) and the terminal helpers of `run -it`.

use std::io::IsTerminal;

use chrono::{Local, TimeZone};
use clap::Args;
use client::Client;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::app::{CmdResult, Failure, describe, parse_filters};
use crate::tabwriter::TabWriter;
use crate::template::{Template, go_print, prepare_format};
use crate::units::bytes_size;

/// `--format` of info and version.
#[derive(Debug, Clone, Args)]
pub struct FormatArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

/// `events`.
#[derive(Debug, Clone, Args)]
pub struct EventsArgs {
    /// Show all events created since timestamp
    #[arg(long)]
    pub since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    pub until: Option<String>,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long)]
    pub filter: Vec<String>,
    /// Format output using a Go template
    #[arg(long)]
    pub format: Option<String>,
}

/// The default line of `events` (docker's printOutput): local time with nanoseconds, type,
/// action, actor ID and the sorted attributes.
pub fn event_line(ev: &Value) -> String {
    let nanos = ev["timeNano"]
        .as_i64()
        .unwrap_or_else(|| ev["time"].as_i64().unwrap_or(0) * 1_000_000_000);
    let t = Local.timestamp_nanos(nanos);
    let mut zone = t.format("%:z").to_string();
    if zone == "+00:00" {
        zone = "Z".into();
    }
    let mut line = format!(
        "{}{} {} {} {}",
        t.format("%Y-%m-%dT%H:%M:%S%.9f"),
        zone,
        ev["Type"].as_str().unwrap_or_default(),
        ev["Action"].as_str().unwrap_or_default(),
        ev["Actor"]["ID"].as_str().unwrap_or_default()
    );
    if let Some(attrs) = ev["Actor"]["Attributes"].as_object()
        && !attrs.is_empty()
    {
        let mut kv: Vec<String> = attrs
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
            .collect();
        kv.sort();
        line.push_str(&format!(" ({})", kv.join(", ")));
    }
    line
}

/// `events`: one line per event until `--until` or interruption.
pub async fn events(c: &Client, a: EventsArgs) -> CmdResult {
    let now = crate::format::now_unix();
    let since = a
        .since
        .as_deref()
        .map(|s| crate::options::timestamp(s, now));
    let until = a
        .until
        .as_deref()
        .map(|s| crate::options::timestamp(s, now));
    let template = match a.format.as_deref() {
        Some(f) if !f.is_empty() => {
            let f = if f == "json" { "{{json .}}" } else { f };
            Some(Template::parse(&prepare_format(f).1)?)
        }
        _ => None,
    };
    let body = c
        .events(
            since.as_deref(),
            until.as_deref(),
            &parse_filters(&a.filter)?,
        )
        .await?;
    let mut lines = BufReader::new(body).lines();
    while let Some(line) = lines.next_line().await? {
        let Ok(ev) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        match &template {
            Some(t) => println!("{}", t.execute(&ev)?),
            None => println!("{}", event_line(&ev)),
        }
    }
    Ok(0)
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        other => go_print(other),
    }
}

/// `info`.
pub async fn info(c: &Client, a: FormatArgs) -> CmdResult {
    let info = c.info().await?;
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let f = if f == "json" { "{{json .}}" } else { f };
        let t = Template::parse(&prepare_format(f).1)?;
        println!(
            "{}",
            t.execute(&json!({"ClientInfo": {"Debug": false}, "ServerInfo": info.clone()}))
                .or_else(|_| t.execute(&info))?
        );
        return Ok(0);
    }
    let mut out = String::new();
    out.push_str("Client:\n Version:    ");
    out.push_str(env!("CARGO_PKG_VERSION"));
    out.push_str("\n Context:    default\n Debug Mode: false\n\nServer:\n");
    let line = |out: &mut String, indent: &str, k: &str, v: String| {
        out.push_str(&format!("{indent}{k}: {v}\n"));
    };
    line(&mut out, " ", "Containers", s(&info["Containers"]));
    line(&mut out, "  ", "Running", s(&info["ContainersRunning"]));
    line(&mut out, "  ", "Paused", s(&info["ContainersPaused"]));
    line(&mut out, "  ", "Stopped", s(&info["ContainersStopped"]));
    line(&mut out, " ", "Images", s(&info["Images"]));
    line(&mut out, " ", "Server Version", s(&info["ServerVersion"]));
    line(&mut out, " ", "Storage Driver", s(&info["Driver"]));
    if let Some(status) = info["DriverStatus"].as_array() {
        for pair in status {
            if let Some([k, v]) = pair.as_array().map(|a| a.as_slice()) {
                line(&mut out, "  ", &s(k), s(v));
            }
        }
    }
    line(&mut out, " ", "Logging Driver", s(&info["LoggingDriver"]));
    line(&mut out, " ", "Cgroup Driver", s(&info["CgroupDriver"]));
    line(&mut out, " ", "Cgroup Version", s(&info["CgroupVersion"]));
    if let Some(plugins) = info["Plugins"].as_object() {
        out.push_str(" Plugins:\n");
        for kind in ["Volume", "Network", "Authorization", "Log"] {
            if let Some(list) = plugins.get(kind).and_then(|l| l.as_array()) {
                let names: Vec<String> = list.iter().map(s).collect();
                line(&mut out, "  ", kind, names.join(" "));
            }
        }
    }
    if let Some(state) = info["Swarm"]["LocalNodeState"].as_str() {
        line(&mut out, " ", "Swarm", state.to_string());
    }
    if let Some(runtimes) = info["Runtimes"].as_object() {
        let mut names: Vec<&String> = runtimes.keys().collect();
        names.sort();
        let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        line(&mut out, " ", "Runtimes", names.join(" "));
    }
    line(&mut out, " ", "Default Runtime", s(&info["DefaultRuntime"]));
    line(&mut out, " ", "Init Binary", s(&info["InitBinary"]));
    for (label, key) in [
        ("containerd version", "ContainerdCommit"),
        ("runc version", "RuncCommit"),
        ("init version", "InitCommit"),
    ] {
        if info[key].is_object() {
            line(&mut out, " ", label, s(&info[key]["ID"]));
        }
    }
    if let Some(opts) = info["SecurityOptions"].as_array()
        && !opts.is_empty()
    {
        // Each option is "name=seccomp,profile=default": the name, then its settings.
        out.push_str(" Security Options:\n");
        for o in opts {
            let text = s(o);
            for part in text.split(',') {
                match part.split_once('=') {
                    Some(("name", name)) => out.push_str(&format!("  {name}\n")),
                    Some((k, v)) => {
                        let mut k = k.to_string();
                        if let Some(first) = k.get_mut(0..1) {
                            first.make_ascii_uppercase();
                        }
                        out.push_str(&format!("   {k}: {v}\n"));
                    }
                    None => out.push_str(&format!("  {part}\n")),
                }
            }
        }
    }
    line(&mut out, " ", "Kernel Version", s(&info["KernelVersion"]));
    line(
        &mut out,
        " ",
        "Operating System",
        s(&info["OperatingSystem"]),
    );
    line(&mut out, " ", "OSType", s(&info["OSType"]));
    line(&mut out, " ", "Architecture", s(&info["Architecture"]));
    line(&mut out, " ", "CPUs", s(&info["NCPU"]));
    line(
        &mut out,
        " ",
        "Total Memory",
        bytes_size(info["MemTotal"].as_f64().unwrap_or(0.0)),
    );
    line(&mut out, " ", "Name", s(&info["Name"]));
    line(&mut out, " ", "ID", s(&info["ID"]));
    line(&mut out, " ", "Docker Root Dir", s(&info["DockerRootDir"]));
    line(&mut out, " ", "Debug Mode", s(&info["Debug"]));
    line(&mut out, " ", "Experimental", s(&info["ExperimentalBuild"]));
    if let Some(cidrs) = info["RegistryConfig"]["InsecureRegistryCIDRs"].as_array()
        && !cidrs.is_empty()
    {
        out.push_str(" Insecure Registries:\n");
        for c in cidrs {
            out.push_str(&format!("  {}\n", s(c)));
        }
    }
    line(
        &mut out,
        " ",
        "Live Restore Enabled",
        s(&info["LiveRestoreEnabled"]),
    );
    out.push('\n');
    print!("{out}");
    if let Some(warnings) = info["Warnings"].as_array() {
        for w in warnings {
            eprintln!("{}", s(w));
        }
    }
    Ok(0)
}

/// `version`: the Client section always; the Server section when the daemon answers.
pub async fn version(host: &crate::app::Endpoint, a: FormatArgs) -> CmdResult {
    let mut client = host.client()?;
    let negotiated = client.negotiate().await;
    let server = match negotiated {
        Ok(_) => Some(client.version().await),
        Err(e) => Some(Err(e)),
    };
    let (server, server_err) = match server {
        Some(Ok(v)) => (Some(v), None),
        Some(Err(e)) => (None, Some(e)),
        None => (None, None),
    };
    let api = client.api_version().to_string();
    let client_info = json!({
        "Version": env!("CARGO_PKG_VERSION"),
        "ApiVersion": api,
        "DefaultAPIVersion": client::API_VERSION,
        "Os": std::env::consts::OS,
        "Arch": go_arch(),
        "Context": "default",
    });
    if let Some(f) = a.format.as_deref().filter(|f| !f.is_empty()) {
        let f = if f == "json" { "{{json .}}" } else { f };
        let t = Template::parse(&prepare_format(f).1)?;
        let data = json!({"Client": client_info, "Server": server.clone().unwrap_or(Value::Null)});
        println!("{}", t.execute(&data)?);
    } else {
        let mut text = String::from("Client:\n");
        text.push_str(&format!(" Version:\t{}\n", env!("CARGO_PKG_VERSION")));
        let downgraded = if api != client::API_VERSION {
            format!(" (downgraded from {})", client::API_VERSION)
        } else {
            String::new()
        };
        text.push_str(&format!(" API version:\t{api}{downgraded}\n"));
        text.push_str(&format!(
            " OS/Arch:\t{}/{}\n",
            std::env::consts::OS,
            go_arch()
        ));
        text.push_str(" Context:\tdefault\n");
        if let Some(v) = &server {
            text.push('\n');
            text.push_str(&server_section(v));
        }
        print!(
            "{}",
            TabWriter {
                min_width: 20,
                padding: 1
            }
            .format(&text)
        );
    }
    if let Some(e) = server_err {
        return Err(Failure::new(describe(&e)));
    }
    Ok(0)
}

/// An RFC 3339 build time in Go's `time.ANSIC` layout, local time ("Thu May  7 21:09:36 2026"),
/// as docker version prints it.
fn ansic(t: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(t) => t
            .with_timezone(&Local)
            .format("%a %b %e %H:%M:%S %Y")
            .to_string(),
        Err(_) => t.to_string(),
    }
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn server_section(v: &Value) -> String {
    let mut text = String::from("Server:");
    if let Some(name) = v["Platform"]["Name"].as_str().filter(|n| !n.is_empty()) {
        text.push(' ');
        text.push_str(name);
    }
    text.push('\n');
    let empty = Vec::new();
    let components = v["Components"].as_array().unwrap_or(&empty);
    if components.is_empty() {
        text.push_str(" Engine:\n");
        text.push_str(&format!("  Version:\t{}\n", s(&v["Version"])));
        text.push_str(&format!(
            "  API version:\t{} (minimum version {})\n",
            s(&v["ApiVersion"]),
            s(&v["MinAPIVersion"])
        ));
        text.push_str(&format!("  OS/Arch:\t{}/{}\n", s(&v["Os"]), s(&v["Arch"])));
    }
    for comp in components {
        let name = s(&comp["Name"]);
        text.push_str(&format!(" {name}:\n"));
        text.push_str(&format!("  Version:\t{}\n", s(&comp["Version"])));
        let details = &comp["Details"];
        if name == "Engine" {
            text.push_str(&format!(
                "  API version:\t{} (minimum version {})\n",
                s(&details["ApiVersion"]),
                s(&details["MinAPIVersion"])
            ));
            if !details["GoVersion"].is_null() {
                text.push_str(&format!("  Go version:\t{}\n", s(&details["GoVersion"])));
            }
            text.push_str(&format!("  Git commit:\t{}\n", s(&details["GitCommit"])));
            text.push_str(&format!("  Built:\t{}\n", ansic(&s(&details["BuildTime"]))));
            text.push_str(&format!(
                "  OS/Arch:\t{}/{}\n",
                s(&details["Os"]),
                s(&details["Arch"])
            ));
            text.push_str(&format!(
                "  Experimental:\t{}\n",
                s(&details["Experimental"])
            ));
        } else if let Some(d) = details.as_object() {
            let mut keys: Vec<&String> = d.keys().collect();
            keys.sort();
            for k in keys {
                text.push_str(&format!("  {k}:\t{}\n", s(&d[k.as_str()])));
            }
        }
    }
    text
}

nix::ioctl_read_bad!(tiocgwinsz, nix::libc::TIOCGWINSZ, nix::libc::winsize);

/// Rows and columns of the terminal on stdout, if it is one (TIOCGWINSZ, tty_ioctl(4)).
pub fn terminal_size() -> Option<(u16, u16)> {
    use std::os::fd::AsRawFd;
    let stdout = std::io::stdout();
    if !stdout.is_terminal() {
        return None;
    }
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one `winsize` through the pointer, which points to a live,
    // properly aligned local; the descriptor is our stdout, open for the whole call.
    let r = unsafe { tiocgwinsz(stdout.as_raw_fd(), &mut ws) };
    match r {
        Ok(_) if ws.ws_row > 0 => Some((ws.ws_row, ws.ws_col)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_line_has_sorted_attributes() {
        let ev = json!({"Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"name":"x","image":"busybox"}},"timeNano":0});
        let line = event_line(&ev);
        assert!(
            line.ends_with("container start abc (image=busybox, name=x)"),
            "{line}"
        );
    }
}
