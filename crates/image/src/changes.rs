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
