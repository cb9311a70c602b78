//! Volume endpoints: `/volumes`, `/volumes/create`, `/volumes/{name}`, `/volumes/prune`.

use bytes::Bytes;
use hyper::Method;
use serde_json::Value;

use crate::{Client, Filters, Result, empty_body, encode_filters};

/// A path segment with the characters that would change the path escaped (`/`, `%`, `?`,
/// `#`), so that a bad name reaches the daemon, which answers for it.
fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '/' => out.push_str("%2F"),
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3F"),
            '#' => out.push_str("%23"),
            ' ' => out.push_str("%20"),
            c => out.push(c),
        }
    }
    out
}

impl Client {
    /// `POST /volumes/create` with `{"Name", "Driver", "DriverOpts", "Labels"}`: the volume.
    pub async fn volume_create(&self, body: &Value) -> Result<Value> {
        self.post_json("/volumes/create", &[], body).await
    }

    /// `GET /volumes?filters=`: `{"Volumes": [...], "Warnings": [...]}`.
    pub async fn volume_list(&self, filters: &Filters) -> Result<Value> {
        let mut q = Vec::new();
        if !filters.is_empty() {
            q.push(("filters", encode_filters(filters)));
        }
        self.get_json("/volumes", &q).await
    }

    /// `GET /volumes/{name}`, the raw JSON document.
    pub async fn volume_inspect_raw(&self, name: &str) -> Result<Bytes> {
        self.get_bytes(&format!("/volumes/{}", segment(name)), &[])
            .await
    }

    /// `DELETE /volumes/{name}?force=`.
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let resp = self
            .call(
                Method::DELETE,
                &format!("/volumes/{}", segment(name)),
                &[("force", if force { "1" } else { "0" }.to_string())],
                empty_body(),
                None,
            )
            .await?;
        drop(resp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_stay_one_segment() {
        assert_eq!(segment("data"), "data");
        assert_eq!(segment("a/b"), "a%2Fb");
        assert_eq!(segment("../x?y#%"), "..%2Fx%3Fy%23%25");
    }
}
