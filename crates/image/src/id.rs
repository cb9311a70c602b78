//! Image ids: `sha256:` + the sha256 of the image config bytes exactly as stored (OCI image
//! spec, config.md, "ImageID").

use std::fmt;
use std::str::FromStr;

use types::{Algorithm, Digest, DigestError};

/// The content-addressed id of an image: the digest of its config blob.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct ImageId(Digest);

impl ImageId {
    /// The id of the image whose config blob has this digest.
    pub fn from_digest(digest: Digest) -> Self {
        Self(digest)
    }

    /// The config blob's digest.
    pub fn digest(&self) -> &Digest {
        &self.0
    }

    /// The hex part, without `sha256:`.
    pub fn hex(&self) -> &str {
        self.0.encoded()
    }

    /// The first 12 hex characters, as `docker images` prints ids (stringid.TruncateID).
    pub fn short(&self) -> &str {
        &self.0.encoded()[..12]
    }
}

impl fmt::Display for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ImageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageId({})", self.0)
    }
}

/// Accepts `sha256:<64 hex>` or the bare 64 hex characters.
impl FromStr for ImageId {
    type Err = DigestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Digest::parse(s).map(Self)
        } else {
            Digest::from_parts(Algorithm::Sha256, s).map(Self)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_print() {
        let hex = "ab".repeat(32);
        let a: ImageId = hex.parse().unwrap();
        let b: ImageId = format!("sha256:{hex}").parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), format!("sha256:{hex}"));
        assert_eq!(a.short(), "abababababab");
        assert!("abc".parse::<ImageId>().is_err());
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            format!("\"sha256:{hex}\"")
        );
    }
}
