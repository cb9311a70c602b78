//! Human-readable durations and sizes, with the exact wording of docker's go-units
//! (`HumanDuration`, `HumanSizeWithPrecision`, `BytesSize`), since scripts and users read them.

use std::time::Duration;

pub use types::human_duration;

/// The time since `then` (unix seconds) as docker's "CREATED" column: "2 minutes ago".
pub fn ago(then_unix: i64, now_unix_f: f64) -> String {
    let d = (now_unix_f - then_unix as f64).max(0.0);
    format!("{} ago", human_duration(Duration::from_secs_f64(d)))
}

const DECIMAL: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

fn scaled(size: f64, base: f64, units: &[&str], precision: usize) -> String {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    format!("{}{}", format_g(size, precision), units[i])
}

/// Decimal size with 3 significant digits: "4.26MB", "0B", "1kB".
pub fn human_size(bytes: f64) -> String {
    scaled(bytes, 1000.0, &DECIMAL, 3)
}

/// Decimal size with 4 significant digits (go-units `HumanSize`): "1.984MB".
pub fn human_size4(bytes: f64) -> String {
    scaled(bytes, 1000.0, &DECIMAL, 4)
}

/// Binary size with 4 significant digits (go-units `BytesSize`): "3.842GiB".
pub fn bytes_size(bytes: f64) -> String {
    scaled(bytes, 1024.0, &BINARY, 4)
}

/// Go's `%.{precision}g`: shortest of fixed and exponent notation, trailing zeros removed.
pub fn format_g(v: f64, precision: usize) -> String {
    if v == 0.0 {
        return "0".into();
    }
    let p = precision.max(1);
    let sci = format!("{:.*e}", p - 1, v);
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= p as i32 {
        let m = trim_zeros(mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (p as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g_format() {
        assert_eq!(format_g(4.26, 3), "4.26");
        assert_eq!(format_g(100.0, 3), "100");
        assert_eq!(format_g(999.9, 3), "1e+03");
        assert_eq!(format_g(1.5, 3), "1.5");
    }
}
