//! Filesystem endpoints of a container: `HEAD|GET|PUT /containers/{id}/archive`,
//! `GET /containers/{id}/export`, `GET /containers/{id}/changes` (Docker Engine API,
//! "Get information about files in a container", "Get an archive of a filesystem resource",
//! "Extract an archive of files or folders to a directory", "Export a container",
//! "Get changes on a container's filesystem").

use hyper::Method;
use hyper::body::Incoming;
use serde::Deserialize;

use crate::{BodyReader, Client, Error, RequestBody, Result, body_reader, empty_body};

/// The header in which the daemon describes the path of an archive request: base64 (standard
/// alphabet) of a JSON [`PathStat`].
pub const PATH_STAT_HEADER: &str = "x-docker-container-path-stat";

/// Go's `os.FileMode` bit of a directory (the daemon sends Go file modes).
pub const MODE_DIR: u32 = 1 << 31;
/// Go's `os.FileMode` bit of a symbolic link.
pub const MODE_SYMLINK: u32 = 1 << 27;

/// What the daemon says about a path inside a container (`container.PathStat`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct PathStat {
    /// Base name of the path.
    #[serde(default)]
    pub name: String,
    /// Size in bytes.
    #[serde(default)]
    pub size: i64,
    /// Go `os.FileMode`: permission bits plus type bits ([`MODE_DIR`], [`MODE_SYMLINK`]).
    #[serde(default)]
    pub mode: u32,
    /// Modification time, RFC 3339.
    #[serde(default)]
    pub mtime: String,
    /// For a symbolic link, the absolute path it resolves to inside the container.
    #[serde(default, rename = "linkTarget")]
    pub link_target: String,
}

impl PathStat {
    /// Is the path a directory?
    pub fn is_dir(&self) -> bool {
        self.mode & MODE_DIR != 0
    }

    /// Is the path a symbolic link?
    pub fn is_symlink(&self) -> bool {
        self.mode & MODE_SYMLINK != 0
    }
}

/// Decodes standard base64 (RFC 4648 section 4), padding optional; None if malformed.
pub fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn value(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        } as u32)
    }
    let bytes: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    let data = match bytes.iter().position(|&b| b == b'=') {
        Some(i) if bytes[i..].iter().all(|&b| b == b'=') => &bytes[..i],
        Some(_) => return None,
        None => &bytes[..],
    };
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    for chunk in data.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= value(c)? << (18 - 6 * i);
        }
        let n = chunk.len() - 1;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    Some(out)
}

/// Decodes the [`PATH_STAT_HEADER`] of a response.
pub fn path_stat_of(resp: &hyper::Response<Incoming>) -> Result<PathStat> {
    let bad = || Error::Daemon {
        status: 500,
        message: "unable to decode container path stat header".into(),
    };
    let value = resp
        .headers()
        .get(PATH_STAT_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(bad)?;
    let json = base64_decode(value).ok_or_else(bad)?;
    serde_json::from_slice(&json).map_err(|_| bad())
}

impl Client {
    /// `HEAD /containers/{id}/archive?path=`: the stat of a path (a HEAD answer has no body, so
    /// a 404 carries no message: the caller words it).
    pub async fn container_stat_path(&self, id: &str, path: &str) -> Result<PathStat> {
        let uri = self.uri(
            &format!("/containers/{id}/archive"),
            &[("path", path.to_string())],
        );
        let resp = self.send(Method::HEAD, &uri, empty_body(), None).await?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let message = match status {
                404 => format!("Could not find the file {path} in container {id}"),
                _ => resp
                    .status()
                    .canonical_reason()
                    .unwrap_or("unknown error")
                    .to_string(),
            };
            return Err(Error::Daemon { status, message });
        }
        path_stat_of(&resp)
    }

    /// `GET /containers/{id}/archive?path=`: a tar stream of the path and its stat.
    pub async fn container_archive_get(
        &self,
        id: &str,
        path: &str,
    ) -> Result<(PathStat, BodyReader)> {
        let resp = self
            .call(
                Method::GET,
                &format!("/containers/{id}/archive"),
                &[("path", path.to_string())],
                empty_body(),
                None,
            )
            .await?;
        let stat = path_stat_of(&resp)?;
        Ok((stat, body_reader(resp)))
    }

    /// `PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=&copyUIDGID=`: extracts the
    /// tar `body` into the directory `path`.
    pub async fn container_archive_put(
        &self,
        id: &str,
        path: &str,
        body: RequestBody,
        no_overwrite_dir_non_dir: bool,
        copy_uid_gid: bool,
    ) -> Result<()> {
        let mut q = vec![("path", path.to_string())];
        if no_overwrite_dir_non_dir {
            q.push(("noOverwriteDirNonDir", "true".into()));
        }
        if copy_uid_gid {
            q.push(("copyUIDGID", "true".into()));
        }
        let resp = self
            .call(
                Method::PUT,
                &format!("/containers/{id}/archive"),
                &q,
                body,
                Some("application/x-tar"),
            )
            .await?;
        http_body_util::BodyExt::collect(resp.into_body()).await?;
        Ok(())
    }

    /// `GET /containers/{id}/export`: a tar of the container's root filesystem.
    pub async fn container_export(&self, id: &str) -> Result<BodyReader> {
        let resp = self
            .call(
                Method::GET,
                &format!("/containers/{id}/export"),
                &[],
                empty_body(),
                None,
            )
            .await?;
        Ok(body_reader(resp))
    }

    /// `GET /containers/{id}/changes`: `[{"Path": .., "Kind": 0 modified | 1 added |
    /// 2 deleted}]` (null when nothing changed, as dockerd answers).
    pub async fn container_changes(&self, id: &str) -> Result<Vec<serde_json::Value>> {
        let v: Option<Vec<serde_json::Value>> = self
            .get_json(&format!("/containers/{id}/changes"), &[])
            .await?;
        Ok(v.unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_known_vectors() {
        // RFC 4648 section 10 test vectors.
        for (plain, enc) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_decode(enc).unwrap(), plain.as_bytes(), "{enc}");
        }
        assert_eq!(base64_decode("Zm9vYg").unwrap(), b"foob");
        assert!(base64_decode("Zm9v!").is_none());
        assert!(base64_decode("Z=m9").is_none());
    }

    #[test]
    fn path_stat_decodes_go_modes() {
        let s: PathStat = serde_json::from_str(
            r#"{"name":"etc","size":4096,"mode":2147484141,"mtime":"2024-01-01T00:00:00Z","linkTarget":""}"#,
        )
        .unwrap();
        assert!(s.is_dir() && !s.is_symlink());
        assert_eq!(s.mode & 0o777, 0o755);
    }
}
