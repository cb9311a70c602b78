//! `--change` instructions of `docker import` (and later `docker commit`): a subset of
//! Dockerfile instructions applied to an image config. Docker accepts exactly CMD, ENTRYPOINT,
//! ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME and WORKDIR
//! (builder/dockerfile `validCommitCommands`); forms follow the Dockerfile reference:
//! a JSON array is the exec form, anything else the shell form (`/bin/sh -c <text>`).

use std::collections::BTreeMap;

use crate::config::ContainerConfig;
use crate::error::{Error, Result};

/// The shell of the shell form on Linux (Dockerfile reference, "Shell and exec form").
const DEFAULT_SHELL: [&str; 2] = ["/bin/sh", "-c"];

/// Applies `changes` in order to `config`.
pub fn apply_changes(config: &mut ContainerConfig, changes: &[String]) -> Result<()> {
    let mut cmd_set = false;
    for change in changes {
        let line = change.trim();
        if line.is_empty() {
            continue;
        }
        let (keyword, rest) = match line.split_once(char::is_whitespace) {
            Some((k, r)) => (k, r.trim()),
            None => (line, ""),
        };
        let upper = keyword.to_ascii_uppercase();
        // Docker expands `$VAR` from the config's environment in the arguments of these
        // instructions (builder/dockerfile `replaceEnvAllowed`), not in commands.
        let expanded;
        let rest = if matches!(
            upper.as_str(),
            "ENV" | "LABEL" | "EXPOSE" | "USER" | "VOLUME" | "WORKDIR" | "STOPSIGNAL"
        ) {
            expanded = expand_env(rest, config.env.as_deref().unwrap_or_default());
            expanded.as_str()
        } else {
            rest
        };
        match upper.as_str() {
            "CMD" => {
                config.cmd = Some(command_form(config, rest));
                cmd_set = true;
            }
            "ENTRYPOINT" => {
                config.entrypoint = Some(command_form(config, rest));
                // Docker: an ENTRYPOINT resets an inherited CMD unless CMD was set in the same
                // build (dispatchers.go, `dispatchEntrypoint`).
                if !cmd_set {
                    config.cmd = None;
                }
            }
            "ENV" => {
                let pairs = name_values("ENV", rest)?;
                let env = config.env.get_or_insert_with(Vec::new);
                for (k, v) in pairs {
                    env.retain(|e| e.split_once('=').map_or(e.as_str(), |(n, _)| n) != k);
                    env.push(format!("{k}={v}"));
                }
            }
            "LABEL" => {
                let pairs = name_values("LABEL", rest)?;
                let labels = config.labels.get_or_insert_with(BTreeMap::new);
                labels.extend(pairs);
            }
            "EXPOSE" => {
                if rest.is_empty() {
                    return Err(at_least_one("EXPOSE"));
                }
                let ports = config.exposed_ports.get_or_insert_with(BTreeMap::new);
                for spec in rest.split_whitespace() {
                    for port in expand_port(spec)? {
                        ports.insert(port, serde_json::json!({}));
                    }
                }
            }
            "USER" => {
                if rest.is_empty() {
                    return Err(exactly_one("USER"));
                }
                config.user = Some(rest.to_owned());
            }
            "VOLUME" => {
                let list = match json_array(rest) {
                    Some(v) => v,
                    None => rest.split_whitespace().map(str::to_owned).collect(),
                };
                if list.is_empty() {
                    return Err(at_least_one("VOLUME"));
                }
                let volumes = config.volumes.get_or_insert_with(BTreeMap::new);
                for v in list {
                    if v.trim().is_empty() {
                        return Err(Error::InvalidChange(
                            "VOLUME specified can not be an empty string".into(),
                        ));
                    }
                    volumes.insert(v, serde_json::json!({}));
                }
            }
            "WORKDIR" => {
                if rest.is_empty() {
                    return Err(exactly_one("WORKDIR"));
                }
                let base = config.working_dir.as_deref().unwrap_or("/");
                let joined = if rest.starts_with('/') {
                    rest.to_owned()
                } else {
                    format!("{base}/{rest}")
                };
                config.working_dir = Some(clean_path(&joined));
            }
            "STOPSIGNAL" => {
                if rest.is_empty() || rest.contains(char::is_whitespace) {
                    return Err(exactly_one("STOPSIGNAL"));
                }
                if !is_signal(rest) {
                    return Err(Error::InvalidChange(format!("Invalid signal: {rest}")));
                }
                config.stop_signal = Some(rest.to_owned());
            }
            "HEALTHCHECK" => {
                config.healthcheck = Some(parse_healthcheck(rest)?);
            }
            "ONBUILD" => {
                let (trigger, trigger_rest) = match rest.split_once(char::is_whitespace) {
                    Some((k, r)) => (k.to_ascii_uppercase(), r.trim()),
                    None => (rest.to_ascii_uppercase(), ""),
                };
                match trigger.as_str() {
                    "" => return Err(at_least_one("ONBUILD")),
                    "ONBUILD" => {
                        return Err(Error::InvalidChange(
                            "Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into(),
                        ));
                    }
                    "MAINTAINER" | "FROM" => {
                        return Err(Error::InvalidChange(format!(
                            "{trigger} isn't allowed as an ONBUILD trigger"
                        )));
                    }
                    _ => {}
                }
                let text = if trigger_rest.is_empty() {
                    trigger
                } else {
                    format!("{trigger} {trigger_rest}")
                };
                config.on_build.get_or_insert_with(Vec::new).push(text);
            }
            _ => {
                return Err(Error::InvalidChange(format!(
                    "{upper} is not a valid change command"
                )));
            }
        }
    }
    Ok(())
}

/// Expands `$NAME`, `${NAME}`, `${NAME:-default}` and `${NAME:+alternative}` from `env`
/// (`KEY=value` strings); unset names expand to nothing. Nothing is expanded inside single
/// quotes, and `\$` stays a literal dollar (its backslash is kept for the word splitter).
fn expand_env(s: &str, env: &[String]) -> String {
    let lookup = |name: &str| -> Option<&str> {
        env.iter()
            .rev()
            .find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
    };
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut in_single = false;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '\\' if !in_single && i + 1 < chars.len() => {
                out.push(c);
                out.push(chars[i + 1]);
                i += 2;
                continue;
            }
            '\'' => in_single = !in_single,
            '$' if !in_single => {
                if chars.get(i + 1) == Some(&'{') {
                    if let Some(end) = chars[i + 2..].iter().position(|&c| c == '}') {
                        let inner: String = chars[i + 2..i + 2 + end].iter().collect();
                        let (name, modifier) = match inner.split_once(':') {
                            Some((n, m)) => (n.to_owned(), Some(m.to_owned())),
                            None => (inner.clone(), None),
                        };
                        let value = lookup(&name).filter(|v| !v.is_empty());
                        match modifier.as_deref().map(|m| m.split_at(m.len().min(1))) {
                            Some(("-", word)) => out.push_str(value.unwrap_or(word)),
                            Some(("+", word)) => {
                                if value.is_some() {
                                    out.push_str(word);
                                }
                            }
                            _ => out.push_str(lookup(&name).unwrap_or("")),
                        }
                        i += end + 3;
                        continue;
                    }
                } else {
                    let len = chars[i + 1..]
                        .iter()
                        .take_while(|c| c.is_ascii_alphanumeric() || **c == '_')
                        .count();
                    if len > 0 {
                        let name: String = chars[i + 1..i + 1 + len].iter().collect();
                        out.push_str(lookup(&name).unwrap_or(""));
                        i += len + 1;
                        continue;
                    }
                }
            }
            _ => {}
        }
        out.push(c);
        i += 1;
    }
    out
}

/// `HEALTHCHECK NONE` or `HEALTHCHECK [--interval=D] [--timeout=D] [--start-period=D]
/// [--start-interval=D] [--retries=N] CMD command` (Dockerfile reference, "HEALTHCHECK"),
/// as the config's `Healthcheck` object: `Test` is `["NONE"]`, `["CMD", args...]` (exec form)
/// or `["CMD-SHELL", "command"]`; durations are nanoseconds.
fn parse_healthcheck(rest: &str) -> Result<serde_json::Value> {
    let mut words = rest.split_whitespace().peekable();
    let mut health = serde_json::Map::new();
    while let Some(flag) = words.next_if(|w| w.starts_with("--")) {
        let (name, value) = flag[2..]
            .split_once('=')
            .ok_or_else(|| Error::InvalidChange(format!("flag {flag} needs a value")))?;
        let key = match name {
            "interval" => "Interval",
            "timeout" => "Timeout",
            "start-period" => "StartPeriod",
            "start-interval" => "StartInterval",
            "retries" => {
                let n: u64 = value.parse().map_err(|_| {
                    Error::InvalidChange(format!("invalid value for retries: {value}"))
                })?;
                health.insert("Retries".into(), n.into());
                continue;
            }
            _ => {
                return Err(Error::InvalidChange(format!("Unknown flag: {name}")));
            }
        };
        let nanos = parse_duration(value)
            .ok_or_else(|| Error::InvalidChange(format!("time: invalid duration {value:?}")))?;
        if nanos != 0 && nanos < 1_000_000 {
            return Err(Error::InvalidChange(format!(
                "{name} cannot be less than 1ms"
            )));
        }
        health.insert(key.into(), nanos.into());
    }
    let kind = words.next().map(str::to_ascii_uppercase);
    // What follows the CMD keyword, with its original spacing.
    let command = match rest.to_ascii_uppercase().find(" CMD") {
        Some(i) => rest[i + 4..].trim(),
        None => rest.strip_prefix("CMD").unwrap_or("").trim(),
    };
    let test: Vec<String> = match kind.as_deref() {
        Some("NONE") => {
            if words.next().is_some() || !health.is_empty() {
                return Err(Error::InvalidChange(
                    "HEALTHCHECK NONE takes no arguments".into(),
                ));
            }
            vec!["NONE".into()]
        }
        Some("CMD") if !command.is_empty() => match json_array(command) {
            Some(args) => std::iter::once("CMD".to_owned()).chain(args).collect(),
            None => vec!["CMD-SHELL".into(), command.to_owned()],
        },
        Some("CMD") => {
            return Err(Error::InvalidChange(
                "Missing command after HEALTHCHECK CMD".into(),
            ));
        }
        Some(other) => {
            return Err(Error::InvalidChange(format!(
                "Unknown type {other:?} in HEALTHCHECK (try CMD)"
            )));
        }
        None => return Err(at_least_one("HEALTHCHECK")),
    };
    health.insert("Test".into(), serde_json::json!(test));
    Ok(serde_json::Value::Object(health))
}

/// Go's `time.ParseDuration` for non-negative values: `300ms`, `1m30s`, `1.5h`, `0`.
fn parse_duration(s: &str) -> Option<u64> {
    if s == "0" {
        return Some(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let number: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        total += number * scale;
    }
    // Durations here are seconds to hours: f64 holds their nanoseconds exactly enough.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some(total.round() as u64)
}

fn at_least_one(instruction: &str) -> Error {
    Error::InvalidChange(format!("{instruction} requires at least one argument"))
}

fn exactly_one(instruction: &str) -> Error {
    Error::InvalidChange(format!("{instruction} requires exactly one argument"))
}

/// Exec form if `rest` is a JSON array of strings, else the shell form with the image's
/// `SHELL` (or `/bin/sh -c`).
fn command_form(config: &ContainerConfig, rest: &str) -> Vec<String> {
    if let Some(args) = json_array(rest) {
        return args;
    }
    let mut shell: Vec<String> = match &config.shell {
        Some(s) if !s.is_empty() => s.clone(),
        _ => DEFAULT_SHELL.iter().map(|s| (*s).to_owned()).collect(),
    };
    shell.push(rest.to_owned());
    shell
}

/// Parses a JSON array of strings (the exec form); `None` if `s` is not one.
fn json_array(s: &str) -> Option<Vec<String>> {
    if !s.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(s).ok()
}

/// `key=value key2="value 2"`, or the legacy single pair `key value with spaces`.
fn name_values(instruction: &str, rest: &str) -> Result<Vec<(String, String)>> {
    let words = split_words(rest);
    if words.is_empty() {
        return Err(at_least_one(instruction));
    }
    let first_has_eq = rest
        .split_whitespace()
        .next()
        .is_some_and(|w| w.contains('='));
    if !first_has_eq {
        // Legacy form: the first word is the name, the remainder of the line the value.
        let name = words[0].clone();
        let value = rest[rest.find(char::is_whitespace).unwrap_or(rest.len())..].trim();
        if value.is_empty() {
            return Err(Error::InvalidChange(format!(
                "{instruction} must have two arguments"
            )));
        }
        return Ok(vec![(name, unquote(value))]);
    }
    let mut out = Vec::new();
    for word in words {
        let Some((k, v)) = word.split_once('=') else {
            return Err(Error::InvalidChange(format!(
                "Syntax error - can't find = in {word:?}. Must be of the form: name=value"
            )));
        };
        if k.is_empty() {
            return Err(Error::InvalidChange(format!(
                "{instruction} names can not be blank"
            )));
        }
        out.push((k.to_owned(), v.to_owned()));
    }
    Ok(out)
}

/// Splits on unquoted whitespace, removing quotes and backslash escapes.
fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (Some(q), c) if c == q => quote = None,
            (Some('\''), c) => cur.push(c),
            (_, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
                in_word = true;
            }
            (_, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(cur);
    }
    out
}

fn unquote(s: &str) -> String {
    split_words(s).join(" ")
}

/// `80`, `80/udp`, `8000-8002/tcp` -> `80/tcp`, ... (Docker's nat.ParsePortSpecs expands
/// ranges; the protocol defaults to tcp and is lowercased).
fn expand_port(spec: &str) -> Result<Vec<String>> {
    let bad = || Error::InvalidChange(format!("invalid containerPort: {spec}"));
    let (ports, proto) = match spec.split_once('/') {
        Some((p, proto)) => (p, proto.to_ascii_lowercase()),
        None => (spec, "tcp".to_owned()),
    };
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(Error::InvalidChange(format!("invalid proto: {proto}")));
    }
    let (start, end) = match ports.split_once('-') {
        Some((a, b)) => (
            a.parse::<u16>().map_err(|_| bad())?,
            b.parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if end < start {
        return Err(bad());
    }
    Ok((start..=end).map(|p| format!("{p}/{proto}")).collect())
}

/// A signal number or a name with or without `SIG` (Docker's signal.ParseSignal accepts both).
fn is_signal(s: &str) -> bool {
    if let Ok(n) = s.parse::<u32>() {
        return (1..=64).contains(&n);
    }
    let name = s.strip_prefix("SIG").unwrap_or(s);
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'+' || b == b'-')
}

/// Lexical clean of an absolute path (Go's path.Clean).
fn clean_path(p: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for comp in p.split('/') {
        match comp {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    format!("/{}", out.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(changes: &[&str]) -> Result<ContainerConfig> {
        let mut c = ContainerConfig::default();
        let owned: Vec<String> = changes.iter().map(|s| (*s).to_owned()).collect();
        apply_changes(&mut c, &owned)?;
        Ok(c)
    }

    fn v(s: &[&str]) -> Option<Vec<String>> {
        Some(s.iter().map(|s| (*s).to_owned()).collect())
    }

    #[test]
    fn cmd_and_entrypoint_forms() {
        let c = apply(&[r#"CMD ["/bin/sh", "-c", "echo hi"]"#]).unwrap();
        assert_eq!(c.cmd, v(&["/bin/sh", "-c", "echo hi"]));
        let c = apply(&["cmd echo hi"]).unwrap();
        assert_eq!(c.cmd, v(&["/bin/sh", "-c", "echo hi"]));
        // Not a valid JSON array: shell form, as Docker does.
        let c = apply(&["CMD [echo, hi]"]).unwrap();
        assert_eq!(c.cmd, v(&["/bin/sh", "-c", "[echo, hi]"]));
        let c = apply(&[r#"CMD ["a"]"#, r#"ENTRYPOINT ["e"]"#]).unwrap();
        assert_eq!(c.cmd, v(&["a"]));
        assert_eq!(c.entrypoint, v(&["e"]));
        let mut c = ContainerConfig {
            cmd: v(&["inherited"]),
            ..Default::default()
        };
        apply_changes(&mut c, &["ENTRYPOINT top".to_owned()]).unwrap();
        assert_eq!(c.cmd, None);
        assert_eq!(c.entrypoint, v(&["/bin/sh", "-c", "top"]));
    }

    #[test]
    fn env_label_expose_volume_workdir_user() {
        let c = apply(&[
            "ENV A=1 B=\"two words\"",
            "ENV A=3",
            "ENV LEGACY some value",
            "LABEL com.example.a=x \"b c\"=d",
            "EXPOSE 80 53/UDP 8000-8001",
            r#"VOLUME ["/data", "/logs"]"#,
            "VOLUME /cache",
            "WORKDIR /app",
            "WORKDIR sub/../src",
            "USER nobody:nogroup",
            "STOPSIGNAL SIGKILL",
            "ONBUILD run echo hi",
        ])
        .unwrap();
        assert_eq!(c.env, v(&["B=two words", "A=3", "LEGACY=some value"]));
        let labels = c.labels.unwrap();
        assert_eq!(labels["com.example.a"], "x");
        assert_eq!(labels["b c"], "d");
        let ports: Vec<_> = c.exposed_ports.unwrap().into_keys().collect();
        assert_eq!(ports, ["53/udp", "80/tcp", "8000/tcp", "8001/tcp"]);
        let vols: Vec<_> = c.volumes.unwrap().into_keys().collect();
        assert_eq!(vols, ["/cache", "/data", "/logs"]);
        assert_eq!(c.working_dir.as_deref(), Some("/app/src"));
        assert_eq!(c.user.as_deref(), Some("nobody:nogroup"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGKILL"));
        assert_eq!(c.on_build, v(&["RUN echo hi"]));
    }

    #[test]
    fn env_expansion() {
        let c = apply(&[
            "ENV BASE=/srv APP=web",
            "WORKDIR $BASE/${APP}",
            "LABEL app=${APP} lit='$APP' esc=\\$APP def=${NOPE:-dflt} alt=${APP:+yes}",
            "CMD echo $APP",
        ])
        .unwrap();
        assert_eq!(c.working_dir.as_deref(), Some("/srv/web"));
        let labels = c.labels.unwrap();
        assert_eq!(labels["app"], "web");
        assert_eq!(labels["lit"], "$APP");
        assert_eq!(labels["esc"], "$APP");
        assert_eq!(labels["def"], "dflt");
        assert_eq!(labels["alt"], "yes");
        // Commands are left to the shell.
        assert_eq!(c.cmd, v(&["/bin/sh", "-c", "echo $APP"]));
    }

    #[test]
    fn healthcheck_forms() {
        let c = apply(&["HEALTHCHECK --interval=30s --timeout=1m30s --retries=3 CMD curl -f http://localhost/ || exit 1"]).unwrap();
        assert_eq!(
            c.healthcheck.unwrap(),
            serde_json::json!({
                "Test": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                "Interval": 30_000_000_000u64,
                "Timeout": 90_000_000_000u64,
                "Retries": 3,
            })
        );
        let c = apply(&[r#"HEALTHCHECK CMD ["/bin/check", "-q"]"#]).unwrap();
        assert_eq!(
            c.healthcheck.as_ref().unwrap()["Test"],
            serde_json::json!(["CMD", "/bin/check", "-q"])
        );
        assert!(c.to_model().healthcheck.is_some());
        let c = apply(&["HEALTHCHECK NONE"]).unwrap();
        assert_eq!(c.healthcheck.unwrap()["Test"], serde_json::json!(["NONE"]));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("1.5h"), Some(5_400_000_000_000));
        assert_eq!(parse_duration("10"), None);
        for bad in [
            "HEALTHCHECK",
            "HEALTHCHECK CMD",
            "HEALTHCHECK --bogus=1 CMD x",
            "HEALTHCHECK --interval=5 CMD x",
            "HEALTHCHECK RUN x",
        ] {
            assert!(apply(&[bad]).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors() {
        for (change, want) in [
            ("FROM busybox", "FROM is not a valid change command"),
            ("RUN true", "RUN is not a valid change command"),
            ("ENV", "ENV requires at least one argument"),
            ("ENV =x", "ENV names can not be blank"),
            ("EXPOSE abc", "invalid containerPort: abc"),
            ("EXPOSE 80/xyz", "invalid proto: xyz"),
            ("USER", "USER requires exactly one argument"),
            (
                "STOPSIGNAL sig kill",
                "STOPSIGNAL requires exactly one argument",
            ),
            ("ONBUILD ONBUILD RUN x", "Chaining ONBUILD"),
        ] {
            let err = apply(&[change]).unwrap_err().to_string();
            assert!(err.contains(want), "{change}: {err}");
        }
    }
}
