//! Image references (`[domain/]path[:tag][@digest]`), parsed and normalised the way Docker does
//! it (distribution/reference: `Parse`, `ParseNormalizedNamed`, `TagNameOnly`,
//! `FamiliarString`).
//!
//! Grammar (from distribution/reference's `reference.go` documentation):
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain '/'] remote-name
//! domain           := host [':' port-number]
//! host             := domain-name | '[' IPv6address ']'
//! domain-name      := domain-component ['.' domain-component]*
//! domain-component := /([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])/
//! port-number      := /[0-9]+/
//! remote-name      := path-component ['/' path-component]*
//! path-component   := alpha-numeric [separator alpha-numeric]*
//! alpha-numeric    := /[a-z0-9]+/
//! separator        := /[_.]|__|[-]+/
//! tag              := /[\w][\w.-]{0,127}/
//! digest           := algorithm ":" /[0-9a-fA-F]{32,}/   (then validated as a `Digest`)
//! identifier       := /[a-f0-9]{64}/
//! ```
//!
//! Normalisation (`ParseNormalizedNamed`): the first `/`-separated component is a registry host
//! when it contains `.` or `:`, is `localhost`, or contains an uppercase letter; otherwise the
//! host is `docker.io`. `index.docker.io` is rewritten to `docker.io`, and a single-component
//! Docker Hub name gets the `library/` prefix. Docker's CLI then adds the tag `latest` when the
//! reference has neither tag nor digest (`TagNameOnly`); `Reference::parse_normalized` does too.
//!
//! The matcher below is hand-written rather than regex-based; it accepts exactly the language
//! of distribution/reference's anchored regular expressions, including which component is
//! taken as the domain (the optional domain group is tried first, as in Go's leftmost-first
//! matching).

use std::fmt;
use std::str::FromStr;

use crate::{Digest, DigestError, ErrorKind};

/// Docker Hub's canonical registry host.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's legacy host, normalised to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// Namespace of Docker Hub's official images.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag implied when a reference names neither tag nor digest.
pub const DEFAULT_TAG: &str = "latest";
/// Longest allowed repository name (domain and path), in bytes.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a string is not a valid image reference. Messages are Docker's, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// The string does not match the reference grammar.
    #[error("invalid reference format")]
    InvalidFormat,
    /// The string would match if it were lowercase.
    #[error("repository name must be lowercase")]
    NameContainsUppercase,
    /// The repository part (after the domain, before the tag) has uppercase letters.
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    RepositoryNotLowercase(String),
    /// Empty input.
    #[error("repository name must have at least one component")]
    NameEmpty,
    /// The name is longer than [`NAME_TOTAL_LENGTH_MAX`].
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    /// A bare 64-hex string is an image id, never a name.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    ImageId(String),
    /// The digest part is syntactically present but not a valid digest.
    #[error(transparent)]
    Digest(#[from] DigestError),
}

impl ReferenceError {
    /// The shared error kind of this error.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }
}

/// A normalised image reference: always has a domain and a path, and a tag, a digest or both.
///
/// Invariants (established by [`Reference::parse_normalized`]): `domain` is a valid
/// `domain[:port]`, `path` a valid remote name, `tag` matches the tag grammar, and at least one
/// of `tag` and `digest` is present.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference as the docker CLI does (`ParseNormalizedNamed` + `TagNameOnly`):
    /// `busybox` becomes `docker.io/library/busybox:latest`.
    pub fn parse_normalized(s: &str) -> Result<Self, ReferenceError> {
        if is_identifier(s) {
            return Err(ReferenceError::ImageId(s.to_owned()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote_name = remainder
            .split_once(':')
            .map_or(remainder.as_str(), |(r, _)| r);
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError::RepositoryNotLowercase(
                remote_name.to_owned(),
            ));
        }
        let joined = format!("{domain}/{remainder}");
        let parsed = parse(&joined)?;
        let mut reference = Reference {
            domain: parsed.domain.to_owned(),
            path: parsed.path.to_owned(),
            tag: parsed.tag.map(str::to_owned),
            digest: parsed.digest,
        };
        if reference.tag.is_none() && reference.digest.is_none() {
            reference.tag = Some(DEFAULT_TAG.to_owned());
        }
        Ok(reference)
    }

    /// The registry host, with port if any: `docker.io`, `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path within the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The tag, if any (`latest` is filled in when neither tag nor digest was given).
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The repository name as docker prints it: Docker Hub's domain dropped, and `library/`
    /// dropped for official images (`busybox`, `user/app`, `localhost:5000/app`).
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_owned(),
                _ => self.path.clone(),
            }
        } else {
            self.name()
        }
    }

    /// The whole reference as docker prints it: `busybox:latest`, `user/app@sha256:...`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        self.push_tag_and_digest(&mut s);
        s
    }

    /// This reference with its tag replaced (the digest is kept).
    pub fn with_tag(&self, tag: &str) -> Result<Self, ReferenceError> {
        if !is_tag(tag) {
            return Err(ReferenceError::InvalidFormat);
        }
        Ok(Self {
            tag: Some(tag.to_owned()),
            ..self.clone()
        })
    }

    fn push_tag_and_digest(&self, s: &mut String) {
        if let Some(tag) = &self.tag {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(&digest.to_string());
        }
    }
}

/// The full normalised form: `docker.io/library/busybox:latest`.
impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.name();
        self.push_tag_and_digest(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse_normalized(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse_normalized(&s).map_err(serde::de::Error::custom)
    }
}

/// A reference as matched by the grammar, before normalisation (distribution's `Parse`).
#[derive(Debug, PartialEq)]
struct Parsed<'a> {
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<Digest>,
}

/// Matched but not yet validated pieces of a reference.
struct Matched<'a> {
    name: &'a str,
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// distribution/reference `Parse`: grammar match, then name length, then digest validation.
fn parse(s: &str) -> Result<Parsed<'_>, ReferenceError> {
    let Some(m) = match_reference(s) else {
        if s.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        if match_reference(&s.to_lowercase()).is_some() {
            return Err(ReferenceError::NameContainsUppercase);
        }
        return Err(ReferenceError::InvalidFormat);
    };
    if m.name.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong);
    }
    let digest = m.digest.map(Digest::parse).transpose()?;
    Ok(Parsed {
        domain: m.domain,
        path: m.path,
        tag: m.tag,
        digest,
    })
}

/// Matches the anchored reference grammar; `None` if `s` is not in the language.
fn match_reference(s: &str) -> Option<Matched<'_>> {
    // Neither name nor tag nor digest can contain '@', so the first '@' separates the digest.
    let (name_tag, digest) = match s.split_once('@') {
        Some((nt, d)) => {
            if !is_reference_digest(d) {
                return None;
            }
            (nt, Some(d))
        }
        None => (s, None),
    };
    // A ':' after the last '/' cannot be part of a name (ports and IPv6 hosts are always
    // followed by '/'), so it must start the tag.
    let last_slash = name_tag.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match name_tag[last_slash..].find(':') {
        Some(i) => {
            let (name, tag) = name_tag.split_at(last_slash + i);
            let tag = &tag[1..];
            if !is_tag(tag) {
                return None;
            }
            (name, Some(tag))
        }
        None => (name_tag, None),
    };
    // The optional domain group is tried first; without it the whole name must be a path.
    let (domain, path) = match name.split_once('/') {
        Some((first, rest)) if is_domain_and_port(first) && is_remote_name(rest) => (first, rest),
        _ if is_remote_name(name) => ("", name),
        _ => return None,
    };
    Some(Matched {
        name,
        domain,
        path,
        tag,
        digest,
    })
}

/// `[a-f0-9]{64}`: an image id.
fn is_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// `domain-component`: alphanumerics, with inner (not leading or trailing) hyphens.
fn is_domain_component(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

/// `host [':' port]`, where host is a dotted domain name or a bracketed IPv6 address.
fn is_domain_and_port(s: &str) -> bool {
    let (host_ok, rest) = if let Some(inner) = s.strip_prefix('[') {
        let Some(end) = inner.find(']') else {
            return false;
        };
        let addr = &inner[..end];
        let ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        (ok, &inner[end + 1..])
    } else {
        let end = s.find(':').unwrap_or(s.len());
        (s[..end].split('.').all(is_domain_component), &s[end..])
    };
    host_ok
        && (rest.is_empty()
            || rest
                .strip_prefix(':')
                .is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
}

/// `path-component ['/' path-component]*`.
fn is_remote_name(s: &str) -> bool {
    s.split('/').all(is_path_component)
}

/// `[a-z0-9]+ (separator [a-z0-9]+)*` with separator `[_.]|__|[-]+`.
fn is_path_component(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut i = 0;
    loop {
        let start = i;
        while i < b.len() && alnum(b[i]) {
            i += 1;
        }
        if i == start {
            return false;
        }
        if i == b.len() {
            return true;
        }
        match b[i] {
            b'.' => i += 1,
            b'_' => i += if b.get(i + 1) == Some(&b'_') { 2 } else { 1 },
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
    }
}

/// `[\w][\w.-]{0,127}`.
fn is_tag(s: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b[1..].iter().all(|&c| word(c) || c == b'.' || c == b'-')
}

/// The reference grammar's digest: `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[[:xdigit:]]{32,}`.
fn is_reference_digest(s: &str) -> bool {
    let Some((alg, hex)) = s.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|c| {
        let b = c.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// distribution/reference `splitDockerDomain`.
fn split_docker_domain(name: &str) -> (String, String) {
    let (mut domain, mut remainder) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.to_lowercase() != first =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
    };
    if domain == LEGACY_DEFAULT_DOMAIN {
        domain = DEFAULT_DOMAIN.to_owned();
    }
    if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
        remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
    }
    (domain, remainder)
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:7cc4b5aefd1d0cadf8d97d4350462ba51c694ebca145b08d7d41b41acc8db5aa";

    /// (input, full normalised string, familiar string, domain, path, tag)
    #[test]
    #[allow(clippy::type_complexity)]
    fn normalized_table() {
        let cases: Vec<(String, String, String, &str, &str, Option<&str>)> = vec![
            (
                "busybox".into(),
                "docker.io/library/busybox:latest".into(),
                "busybox:latest".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
            ),
            (
                "busybox:1.36".into(),
                "docker.io/library/busybox:1.36".into(),
                "busybox:1.36".into(),
                "docker.io",
                "library/busybox",
                Some("1.36"),
            ),
            (
                "library/busybox".into(),
                "docker.io/library/busybox:latest".into(),
                "busybox:latest".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
            ),
            (
                "docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
                "busybox:latest".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
            ),
            (
                "index.docker.io/busybox".into(),
                "docker.io/library/busybox:latest".into(),
                "busybox:latest".into(),
                "docker.io",
                "library/busybox",
                Some("latest"),
            ),
            (
                "index.docker.io/docker/docker".into(),
                "docker.io/docker/docker:latest".into(),
                "docker/docker:latest".into(),
                "docker.io",
                "docker/docker",
                Some("latest"),
            ),
            (
                "docker/docker".into(),
                "docker.io/docker/docker:latest".into(),
                "docker/docker:latest".into(),
                "docker.io",
                "docker/docker",
                Some("latest"),
            ),
            (
                "docker.io/library/a/b".into(),
                "docker.io/library/a/b:latest".into(),
                "library/a/b:latest".into(),
                "docker.io",
                "library/a/b",
                Some("latest"),
            ),
            (
                "foo/bar/baz:v1".into(),
                "docker.io/foo/bar/baz:v1".into(),
                "foo/bar/baz:v1".into(),
                "docker.io",
                "foo/bar/baz",
                Some("v1"),
            ),
            (
                "localhost/foo".into(),
                "localhost/foo:latest".into(),
                "localhost/foo:latest".into(),
                "localhost",
                "foo",
                Some("latest"),
            ),
            (
                "localhost:5000/foo:bar".into(),
                "localhost:5000/foo:bar".into(),
                "localhost:5000/foo:bar".into(),
                "localhost:5000",
                "foo",
                Some("bar"),
            ),
            (
                "localhost:5000".into(),
                "docker.io/library/localhost:5000".into(),
                "localhost:5000".into(),
                "docker.io",
                "library/localhost",
                Some("5000"),
            ),
            (
                "127.0.0.1:5000/library/debian".into(),
                "127.0.0.1:5000/library/debian:latest".into(),
                "127.0.0.1:5000/library/debian:latest".into(),
                "127.0.0.1:5000",
                "library/debian",
                Some("latest"),
            ),
            (
                "192.168.0.1/debian".into(),
                "192.168.0.1/debian:latest".into(),
                "192.168.0.1/debian:latest".into(),
                "192.168.0.1",
                "debian",
                Some("latest"),
            ),
            (
                "[::1]:5000/foo".into(),
                "[::1]:5000/foo:latest".into(),
                "[::1]:5000/foo:latest".into(),
                "[::1]:5000",
                "foo",
                Some("latest"),
            ),
            (
                "[fe80::1]/foo:t".into(),
                "[fe80::1]/foo:t".into(),
                "[fe80::1]/foo:t".into(),
                "[fe80::1]",
                "foo",
                Some("t"),
            ),
            (
                "quay.io/coreos/etcd:v3.5.0-rc.1".into(),
                "quay.io/coreos/etcd:v3.5.0-rc.1".into(),
                "quay.io/coreos/etcd:v3.5.0-rc.1".into(),
                "quay.io",
                "coreos/etcd",
                Some("v3.5.0-rc.1"),
            ),
            (
                "my-registry.example.com:443/a.b_c__d---e/f".into(),
                "my-registry.example.com:443/a.b_c__d---e/f:latest".into(),
                "my-registry.example.com:443/a.b_c__d---e/f:latest".into(),
                "my-registry.example.com:443",
                "a.b_c__d---e/f",
                Some("latest"),
            ),
            (
                "Uppercase/lowercase".into(),
                "Uppercase/lowercase:latest".into(),
                "Uppercase/lowercase:latest".into(),
                "Uppercase",
                "lowercase",
                Some("latest"),
            ),
            (
                "foo:_Tag.-x".into(),
                "docker.io/library/foo:_Tag.-x".into(),
                "foo:_Tag.-x".into(),
                "docker.io",
                "library/foo",
                Some("_Tag.-x"),
            ),
            (
                format!("busybox@{D}"),
                format!("docker.io/library/busybox@{D}"),
                format!("busybox@{D}"),
                "docker.io",
                "library/busybox",
                None,
            ),
            (
                format!("busybox:1@{D}"),
                format!("docker.io/library/busybox:1@{D}"),
                format!("busybox:1@{D}"),
                "docker.io",
                "library/busybox",
                Some("1"),
            ),
            (
                format!("localhost:5000/x/y:z@{D}"),
                format!("localhost:5000/x/y:z@{D}"),
                format!("localhost:5000/x/y:z@{D}"),
                "localhost:5000",
                "x/y",
                Some("z"),
            ),
        ];
        for (input, full, familiar, domain, path, tag) in cases {
            let r = Reference::parse_normalized(&input)
                .unwrap_or_else(|e| panic!("{input:?} failed: {e}"));
            assert_eq!(r.to_string(), full, "full form of {input:?}");
            assert_eq!(r.familiar(), familiar, "familiar form of {input:?}");
            assert_eq!(r.domain(), domain, "domain of {input:?}");
            assert_eq!(r.path(), path, "path of {input:?}");
            assert_eq!(r.tag(), tag, "tag of {input:?}");
            assert_eq!(
                r.digest().is_some(),
                input.contains('@'),
                "digest of {input:?}"
            );
            // The normalised form parses back to itself.
            assert_eq!(
                Reference::parse_normalized(&full).unwrap(),
                r,
                "reparse of {full:?}"
            );
        }
    }

    #[test]
    fn error_table() {
        use ReferenceError::*;
        let id = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
        let long = format!("{}/{}", "a".repeat(128), "b".repeat(128));
        let cases: Vec<(String, ReferenceError, &str)> = vec![
            ("".into(), InvalidFormat, "invalid reference format"),
            (
                "Busybox".into(),
                RepositoryNotLowercase("library/Busybox".into()),
                "invalid reference format: repository name (library/Busybox) must be lowercase",
            ),
            (
                "docker/Docker".into(),
                RepositoryNotLowercase("docker/Docker".into()),
                "invalid reference format: repository name (docker/Docker) must be lowercase",
            ),
            (
                "localhost:5000/Foo:bar".into(),
                RepositoryNotLowercase("Foo".into()),
                "invalid reference format: repository name (Foo) must be lowercase",
            ),
            (
                id.into(),
                ImageId(id.into()),
                "invalid repository name (1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a), cannot specify 64-byte hexadecimal strings",
            ),
            ("-docker".into(), InvalidFormat, "invalid reference format"),
            ("docker-".into(), InvalidFormat, "invalid reference format"),
            (
                "-docker/docker".into(),
                InvalidFormat,
                "invalid reference format",
            ),
            (
                "docker///docker".into(),
                InvalidFormat,
                "invalid reference format",
            ),
            (
                "docker.io/docker//docker".into(),
                InvalidFormat,
                "invalid reference format",
            ),
            ("a..b".into(), InvalidFormat, "invalid reference format"),
            ("a___b".into(), InvalidFormat, "invalid reference format"),
            ("a-_b".into(), InvalidFormat, "invalid reference format"),
            ("foo/".into(), InvalidFormat, "invalid reference format"),
            ("docker:".into(), InvalidFormat, "invalid reference format"),
            (
                "docker:latest:".into(),
                InvalidFormat,
                "invalid reference format",
            ),
            (
                "docker:-tag".into(),
                InvalidFormat,
                "invalid reference format",
            ),
            (
                format!("docker:{}", "t".repeat(129)),
                InvalidFormat,
                "invalid reference format",
            ),
            (
                "https://github.com/docker/docker".into(),
                InvalidFormat,
                "invalid reference format",
            ),
            ("foo@bar".into(), InvalidFormat, "invalid reference format"),
            (
                "foo@sha256:abc".into(),
                InvalidFormat,
                "invalid reference format",
            ),
            (
                format!("foo@{D}@{D}"),
                InvalidFormat,
                "invalid reference format",
            ),
            ("foo bar".into(), InvalidFormat, "invalid reference format"),
            (
                "localhost:port/foo".into(),
                InvalidFormat,
                "invalid reference format",
            ),
            (
                "-host.com/foo".into(),
                InvalidFormat,
                "invalid reference format",
            ),
            (
                format!("foo@sha256:{}", "a".repeat(63)),
                Digest(DigestError::InvalidLength),
                "invalid checksum digest length",
            ),
            (
                format!("foo@sha256:{}", "A".repeat(64)),
                Digest(DigestError::InvalidFormat),
                "invalid checksum digest format",
            ),
            (
                format!("foo@md5:{}", "a".repeat(32)),
                Digest(DigestError::Unsupported),
                "unsupported digest algorithm",
            ),
            (
                long,
                NameTooLong,
                "repository name must not be more than 255 characters",
            ),
        ];
        for (input, want, message) in cases {
            let err = Reference::parse_normalized(&input).expect_err(&input);
            assert_eq!(err, want, "error for {input:?}");
            assert_eq!(err.to_string(), message, "message for {input:?}");
            assert_eq!(err.kind(), ErrorKind::InvalidArgument);
        }
    }

    #[test]
    fn name_length_counts_domain_and_path() {
        // docker.io/ (10) + a/ (2) + 243 = 255: accepted; one more is rejected.
        let ok = format!("a/{}", "b".repeat(243));
        assert!(Reference::parse_normalized(&ok).is_ok());
        let too_long = format!("a/{}", "b".repeat(244));
        assert_eq!(
            Reference::parse_normalized(&too_long),
            Err(ReferenceError::NameTooLong)
        );
    }

    #[test]
    fn raw_parse_distinguishes_uppercase() {
        // Parse (not normalised) reports uppercase separately from bad syntax.
        assert_eq!(
            parse("docker.io/Foo").unwrap_err(),
            ReferenceError::NameContainsUppercase
        );
        assert_eq!(parse("").unwrap_err(), ReferenceError::NameEmpty);
        // Without a valid domain the whole name is a path, as with Go's regexp backtracking.
        let p = parse("a_b.c/foo").unwrap();
        assert_eq!((p.domain, p.path), ("", "a_b.c/foo"));
        let p = parse("host.com/foo:tag").unwrap();
        assert_eq!((p.domain, p.path, p.tag), ("host.com", "foo", Some("tag")));
    }

    #[test]
    fn with_tag_and_familiar_name() {
        let r = Reference::parse_normalized("localhost:5000/app").unwrap();
        assert_eq!(r.familiar_name(), "localhost:5000/app");
        assert_eq!(r.name(), "localhost:5000/app");
        let t = r.with_tag("v2").unwrap();
        assert_eq!(t.to_string(), "localhost:5000/app:v2");
        assert_eq!(r.with_tag("-bad"), Err(ReferenceError::InvalidFormat));
        let lib = Reference::parse_normalized("library/alpine").unwrap();
        assert_eq!(lib.familiar_name(), "alpine");
    }

    #[test]
    fn serde_uses_full_form() {
        let r: Reference = "busybox".parse().unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"docker.io/library/busybox:latest\"");
        let back: Reference = serde_json::from_str("\"busybox\"").unwrap();
        assert_eq!(back, r);
        assert!(serde_json::from_str::<Reference>("\"Busybox\"").is_err());
    }
}
