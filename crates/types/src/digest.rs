//! Content digests: `algorithm:hex`, as defined by the OCI image spec ("Digests", descriptor.md)
//! and go-digest, the library Docker and containerd use.
//!
//! Only the registered algorithms Berth supports are accepted (`sha256`, `sha512`), and the
//! encoded part must be lowercase hex of exactly the algorithm's output length: the spec
//! says registered algorithms use lowercase hex (`[a-f0-9]{64}` for sha256,
//! `[a-f0-9]{128}` for sha512). Computing digests is left to the `content` crate (this crate
//! does no I/O and pulls in no hash implementation).

use std::fmt;
use std::str::FromStr;

use crate::ErrorKind;

/// A digest algorithm registered by the OCI image spec that Berth supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, 32 bytes, 64 hex characters. The canonical algorithm.
    Sha256,
    /// SHA-512, 64 bytes, 128 hex characters.
    Sha512,
}

impl Algorithm {
    /// The name used in the `algorithm:` prefix.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha256 => "sha256",
            Self::Sha512 => "sha512",
        }
    }

    /// Length in hex characters of an encoded digest of this algorithm.
    pub fn hex_len(self) -> usize {
        match self {
            Self::Sha256 => 64,
            Self::Sha512 => 128,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "sha256" => Some(Self::Sha256),
            "sha512" => Some(Self::Sha512),
            _ => None,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a valid digest. Messages follow go-digest's, which Docker prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// Not of the form `algorithm:encoded`, or the encoded part is not lowercase hex.
    #[error("invalid checksum digest format")]
    InvalidFormat,
    /// The encoded part has the wrong length for the algorithm.
    #[error("invalid checksum digest length")]
    InvalidLength,
    /// Well-formed, but the algorithm is not one we support.
    #[error("unsupported digest algorithm")]
    Unsupported,
}

impl DigestError {
    /// The shared error kind of this error.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// A validated content digest such as `sha256:e3b0c442...b855`.
///
/// Invariant: the algorithm is supported and `encoded` is lowercase hex of exactly
/// `algorithm.hex_len()` characters. Ordering is by algorithm, then encoded hex.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    encoded: String,
}

impl Digest {
    /// Parses `algorithm:hex`, following go-digest's `Digest.Validate` order of checks.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        let Some((alg, encoded)) = s.split_once(':') else {
            return Err(DigestError::InvalidFormat);
        };
        if alg.is_empty() || encoded.is_empty() {
            return Err(DigestError::InvalidFormat);
        }
        let Some(algorithm) = Algorithm::from_name(alg) else {
            // go-digest: an unknown algorithm is "unsupported" only when the whole string is
            // otherwise a well-formed digest; else it is a format error.
            return Err(if is_well_formed_unknown(alg, encoded) {
                DigestError::Unsupported
            } else {
                DigestError::InvalidFormat
            });
        };
        Self::from_parts(algorithm, encoded)
    }

    /// Builds a digest from an algorithm and its encoded (hex) part, validating the hex.
    pub fn from_parts(algorithm: Algorithm, encoded: &str) -> Result<Self, DigestError> {
        if encoded.len() != algorithm.hex_len() {
            return Err(DigestError::InvalidLength);
        }
        if !encoded
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(DigestError::InvalidFormat);
        }
        Ok(Self {
            algorithm,
            encoded: encoded.to_owned(),
        })
    }

    /// Builds a digest from raw hash output bytes (e.g. the result of a SHA-256 hasher).
    pub fn from_bytes(algorithm: Algorithm, bytes: &[u8]) -> Result<Self, DigestError> {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut encoded = String::with_capacity(bytes.len() * 2);
        for b in bytes {
            encoded.push(HEX[usize::from(b >> 4)] as char);
            encoded.push(HEX[usize::from(b & 0x0f)] as char);
        }
        Self::from_parts(algorithm, &encoded)
    }

    /// The algorithm part.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The encoded (lowercase hex) part, without the `algorithm:` prefix.
    pub fn encoded(&self) -> &str {
        &self.encoded
    }
}

/// go-digest's DigestRegexp: `[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+`.
fn is_well_formed_unknown(alg: &str, encoded: &str) -> bool {
    let alg_ok = alg.split(['.', '+', '_', '-']).all(|c| {
        !c.is_empty()
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    });
    let enc_ok = encoded
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'=' | b'_' | b'-'));
    alg_ok && enc_ok
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.encoded)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl FromStr for Digest {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str =
        "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    #[allow(clippy::type_complexity)]
    fn parse_table() {
        let sha512 = format!("sha512:{}", "ab".repeat(64));
        let cases: Vec<(&str, Result<(Algorithm, usize), DigestError>)> = vec![
            (EMPTY_SHA256, Ok((Algorithm::Sha256, 64))),
            (&sha512, Ok((Algorithm::Sha512, 128))),
            ("", Err(DigestError::InvalidFormat)),
            ("sha256", Err(DigestError::InvalidFormat)),
            ("sha256:", Err(DigestError::InvalidFormat)),
            (":abcd", Err(DigestError::InvalidFormat)),
            ("sha256:abcd", Err(DigestError::InvalidLength)),
            (
                "sha256:E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
                Err(DigestError::InvalidFormat),
            ),
            (
                "sha256:g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
                Err(DigestError::InvalidFormat),
            ),
            (
                "md5:d41d8cd98f00b204e9800998ecf8427e",
                Err(DigestError::Unsupported),
            ),
            ("sha384:abc", Err(DigestError::Unsupported)),
            ("SHA256:abc", Err(DigestError::InvalidFormat)),
            ("sha256:abc:def", Err(DigestError::InvalidLength)),
        ];
        for (input, want) in cases {
            let got = Digest::parse(input).map(|d| (d.algorithm(), d.encoded().len()));
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn display_round_trips() {
        let d: Digest = EMPTY_SHA256.parse().unwrap();
        assert_eq!(d.to_string(), EMPTY_SHA256);
        assert_eq!(d.algorithm().as_str(), "sha256");
        assert_eq!(
            d.encoded(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(format!("{d:?}"), format!("Digest({EMPTY_SHA256})"));
    }

    #[test]
    fn from_bytes_hex_encodes() {
        let d = Digest::from_bytes(Algorithm::Sha256, &[0xab; 32]).unwrap();
        assert_eq!(d.encoded(), "ab".repeat(32));
        assert_eq!(
            Digest::from_bytes(Algorithm::Sha256, &[0; 31]),
            Err(DigestError::InvalidLength)
        );
    }

    #[test]
    fn serde_as_string() {
        let d: Digest = EMPTY_SHA256.parse().unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{EMPTY_SHA256}\""));
        let back: Digest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, d);
        let bad = serde_json::from_str::<Digest>("\"sha256:xyz\"").unwrap_err();
        assert!(
            bad.to_string().contains("invalid checksum digest length"),
            "{bad}"
        );
    }
}
