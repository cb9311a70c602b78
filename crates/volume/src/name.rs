//! Volume names as the local driver accepts them (moby volume/local: `[a-zA-Z0-9][a-zA-Z0-9_.-]+`).
//! A name becomes a directory under the volumes root, so `/`, `..` and a leading `.` must never
//! pass; anonymous volumes get 64 random hex digits.

use crate::error::{Error, Result};

/// The characters the error message quotes.
const ALLOWED: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

/// Checks a volume name for `op` ("create", "get"...).
pub fn validate(op: &'static str, name: &str) -> Result<()> {
    if name.len() == 1 {
        return Err(Error::InvalidName {
            op,
            name: name.to_string(),
            reason:
                "volume name is too short, names should be at least two alphanumeric characters"
                    .into(),
        });
    }
    let mut bytes = name.bytes();
    let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphanumeric());
    let rest_ok = bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if !first_ok || !rest_ok {
        return Err(Error::InvalidName {
            op,
            name: name.to_string(),
            reason: format!(
                "{name:?} includes invalid characters for a local volume name, only {ALLOWED:?} are allowed. If you intended to pass a host directory, use absolute path"
            ),
        });
    }
    Ok(())
}

/// A fresh name for an anonymous volume: 64 hex digits, as dockerd's random ids.
pub fn anonymous() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["ab", "data", "my-vol_1.2", "0a", &anonymous()] {
            assert!(validate("create", ok).is_ok(), "{ok}");
        }
        for (bad, why) in [
            ("x", "too short"),
            ("a/b", "invalid characters"),
            ("..", "invalid characters"),
            (".hidden", "invalid characters"),
            ("-x", "invalid characters"),
            ("a b", "invalid characters"),
            ("/abs", "invalid characters"),
            ("", "invalid characters"),
            ("é1", "invalid characters"),
        ] {
            let error = validate("create", bad).unwrap_err();
            assert!(error.to_string().contains(why), "{bad}: {error}");
            assert_eq!(error.kind(), types::ErrorKind::InvalidArgument);
        }
        assert_eq!(
            validate("create", "a/b").unwrap_err().to_string(),
            "create a/b: \"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
        assert_eq!(anonymous().len(), 64);
    }
}
