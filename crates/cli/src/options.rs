//! Parsers of option values with docker's syntax: memory sizes, ulimits, restart policies,
//! `--since`/`--until` times, `-e` variables, `--tmpfs`.

use client::models::{ResourcesUlimits, RestartPolicy, RestartPolicyNameEnum};

/// A memory size as `--memory` takes it (go-units `RAMInBytes`): a number with an optional
/// binary unit b, k, m, g, t, p (also kb/kib...), case-insensitive; "-1" for unlimited.
pub fn ram_in_bytes(s: &str) -> Result<i64, String> {
    let t = s.trim().to_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("invalid size: '{s}'"))?;
    let mult: f64 = match unit.trim() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024f64.powi(4),
        "p" | "pb" | "pib" => 1024f64.powi(5),
        _ => return Err(format!("invalid size: '{s}'")),
    };
    Ok((value * mult) as i64)
}

/// `--ulimit name=soft[:hard]` (hard defaults to soft).
pub fn ulimit(s: &str) -> Result<ResourcesUlimits, String> {
    let (name, limits) = s
        .split_once('=')
        .ok_or_else(|| format!("invalid ulimit argument: {s}"))?;
    let parse = |v: &str| {
        v.parse::<i64>()
            .map_err(|_| format!("invalid ulimit argument: {s}"))
    };
    let (soft, hard) = match limits.split_once(':') {
        Some((a, b)) => (parse(a)?, parse(b)?),
        None => (parse(limits)?, parse(limits)?),
    };
    if soft > hard && hard != -1 {
        return Err(format!(
            "ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        ));
    }
    Ok(ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// `--restart no|always|unless-stopped|on-failure[:max-retries]`.
pub fn restart_policy(s: &str) -> Result<RestartPolicy, String> {
    let (name, count) = match s.split_once(':') {
        Some((n, c)) => (
            n,
            Some(
                c.parse::<i64>()
                    .map_err(|_| format!("maximum retry count must be an integer: {c}"))?,
            ),
        ),
        None => (s, None),
    };
    let name = match name {
        "" | "no" => RestartPolicyNameEnum::NO,
        "always" => RestartPolicyNameEnum::ALWAYS,
        "unless-stopped" => RestartPolicyNameEnum::UNLESS_STOPPED,
        "on-failure" => RestartPolicyNameEnum::ON_FAILURE,
        other => return Err(format!("invalid restart policy '{other}'")),
    };
    if count.is_some() && name != RestartPolicyNameEnum::ON_FAILURE {
        return Err(format!(
            "maximum retry count cannot be used with restart policy '{s}'"
        ));
    }
    Ok(RestartPolicy {
        name: Some(name),
        maximum_retry_count: count,
    })
}

/// `-e NAME=value` as is; `-e NAME` takes the value from our environment (and is dropped when
/// unset), as docker does.
pub fn env_entry(s: &str) -> Option<String> {
    if s.contains('=') {
        Some(s.to_string())
    } else {
        std::env::var(s).ok().map(|v| format!("{s}={v}"))
    }
}

/// `--tmpfs /path[:options]`.
pub fn tmpfs(s: &str) -> (String, String) {
    match s.split_once(':') {
        Some((p, o)) => (p.to_string(), o.to_string()),
        None => (s.to_string(), String::new()),
    }
}

/// A Go duration ("1h30m", "10s", "1.5h", "300ms") in seconds.
pub fn go_duration(s: &str) -> Option<f64> {
    let mut total = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if n == 0 {
            return None;
        }
        let value: f64 = rest[..n].parse().ok()?;
        rest = &rest[n..];
        let u = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let mult = match &rest[..u] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += value * mult;
        rest = &rest[u..];
    }
    Some(total)
}

/// A `--since`/`--until` value as the daemon takes it (docker's `GetTimestamp`): a relative
/// duration becomes now minus it; RFC 3339 times and dates become unix seconds; unix
/// timestamps pass through.
pub fn timestamp(value: &str, now: f64) -> String {
    if let Some(d) = go_duration(value) {
        let t = now - d;
        return format!("{}.{:09}", t.floor() as i64, ((t - t.floor()) * 1e9) as i64);
    }
    if value.parse::<f64>().is_ok() {
        return value.to_string();
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(value) {
        return format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(value, fmt) {
            return t.and_utc().timestamp().to_string();
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(value, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return t.and_utc().timestamp().to_string();
    }
    value.to_string()
}

/// Splits `name[:tag]` into repository and tag (empty when none), the colon after the last
/// slash.
pub fn split_repo_tag(s: &str) -> (String, String) {
    let s = s.split('@').next().unwrap_or(s);
    let slash = s.rfind('/').map(|i| i + 1).unwrap_or(0);
    match s[slash..].rfind(':') {
        Some(i) => (s[..slash + i].to_string(), s[slash + i + 1..].to_string()),
        None => (s.to_string(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(ram_in_bytes("512m").unwrap(), 512 * 1024 * 1024);
        assert_eq!(ram_in_bytes("1G").unwrap(), 1 << 30);
        assert_eq!(ram_in_bytes("100").unwrap(), 100);
        assert!(ram_in_bytes("x").is_err());
    }

    #[test]
    fn ulimits_and_restart() {
        let u = ulimit("nofile=1024:2048").unwrap();
        assert_eq!((u.soft, u.hard), (Some(1024), Some(2048)));
        assert!(ulimit("nofile=3:2").is_err());
        let r = restart_policy("on-failure:3").unwrap();
        assert_eq!(r.maximum_retry_count, Some(3));
        assert!(restart_policy("always:3").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(go_duration("1h30m"), Some(5400.0));
        assert_eq!(go_duration("10s"), Some(10.0));
        assert_eq!(go_duration("abc"), None);
        assert_eq!(timestamp("10s", 100.0), "90.000000000");
        assert_eq!(timestamp("1700000000", 0.0), "1700000000");
        assert_eq!(
            split_repo_tag("localhost:5000/a/b:v1"),
            ("localhost:5000/a/b".into(), "v1".into())
        );
    }
}
