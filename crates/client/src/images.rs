//! Image endpoints (`/images/...`).

use bytes::Bytes;
use hyper::Method;

use crate::models::{
    ImageDeleteResponseItem, ImageHistoryResponseItem, ImagePruneResponse, ImageSummary,
};
use crate::{
    BodyReader, Client, Filters, RequestBody, Result, body_reader, decode, empty_body,
    encode_filters,
};

impl Client {
    /// `GET /images/json`.
    pub async fn image_list(
        &self,
        all: bool,
        digests: bool,
        filters: &Filters,
    ) -> Result<Vec<ImageSummary>> {
        let mut q = vec![("all", if all { "1" } else { "0" }.to_string())];
        if digests {
            q.push(("digests", "1".into()));
        }
        if !filters.is_empty() {
            q.push(("filters", encode_filters(filters)));
        }
        self.get_json("/images/json", &q).await
    }

    /// `GET /images/{name}/json`, raw.
    pub async fn image_inspect_raw(&self, name: &str) -> Result<Bytes> {
        self.get_bytes(&format!("/images/{name}/json"), &[]).await
    }

    /// `DELETE /images/{name}?force=&noprune=`.
    pub async fn image_remove(
        &self,
        name: &str,
        force: bool,
        no_prune: bool,
    ) -> Result<Vec<ImageDeleteResponseItem>> {
        let q = [
            ("force", if force { "1" } else { "0" }.to_string()),
            ("noprune", if no_prune { "1" } else { "0" }.to_string()),
        ];
        let resp = self
            .call(
                Method::DELETE,
                &format!("/images/{name}"),
                &q,
                empty_body(),
                None,
            )
            .await?;
        decode(resp).await
    }

    /// `POST /images/{name}/tag?repo=&tag=`.
    pub async fn image_tag(&self, name: &str, repo: &str, tag: &str) -> Result<()> {
        let mut q = vec![("repo", repo.to_string())];
        if !tag.is_empty() {
            q.push(("tag", tag.to_string()));
        }
        self.post_empty(&format!("/images/{name}/tag"), &q).await
    }

    /// `GET /images/{name}/history`.
    pub async fn image_history(&self, name: &str) -> Result<Vec<ImageHistoryResponseItem>> {
        self.get_json(&format!("/images/{name}/history"), &[]).await
    }

    /// `POST /images/create?fromSrc=-` with a tar body (import). Returns the progress stream
    /// (JSON messages; the last `status` is the new image ID).
    pub async fn image_import(
        &self,
        body: RequestBody,
        repo: Option<&str>,
        tag: Option<&str>,
        changes: &[String],
        message: Option<&str>,
    ) -> Result<BodyReader> {
        let mut q = vec![("fromSrc", "-".to_string())];
        if let Some(r) = repo {
            q.push(("repo", r.to_string()));
        }
        if let Some(t) = tag {
            q.push(("tag", t.to_string()));
        }
        if let Some(m) = message {
            q.push(("message", m.to_string()));
        }
        for c in changes {
            q.push(("changes", c.clone()));
        }
        let resp = self
            .call(
                Method::POST,
                "/images/create",
                &q,
                body,
                Some("application/x-tar"),
            )
            .await?;
        Ok(body_reader(resp))
    }

    /// `POST /images/create?fromImage=&tag=` (pull). Returns the progress stream.
    pub async fn image_pull(&self, image: &str, tag: Option<&str>) -> Result<BodyReader> {
        let mut q = vec![("fromImage", image.to_string())];
        if let Some(t) = tag {
            q.push(("tag", t.to_string()));
        }
        let resp = self
            .call(Method::POST, "/images/create", &q, empty_body(), None)
            .await?;
        Ok(body_reader(resp))
    }

    /// `POST /images/load?quiet=` with a tar body. Returns the progress stream.
    pub async fn image_load(&self, body: RequestBody, quiet: bool) -> Result<BodyReader> {
        let q = [("quiet", if quiet { "1" } else { "0" }.to_string())];
        let resp = self
            .call(
                Method::POST,
                "/images/load",
                &q,
                body,
                Some("application/x-tar"),
            )
            .await?;
        Ok(body_reader(resp))
    }

    /// `GET /images/get?names=..`: a tar stream in docker save format.
    pub async fn image_save(&self, names: &[String]) -> Result<BodyReader> {
        let q: Vec<_> = names.iter().map(|n| ("names", n.clone())).collect();
        let resp = self
            .call(Method::GET, "/images/get", &q, empty_body(), None)
            .await?;
        Ok(body_reader(resp))
    }

    /// `POST /images/prune`.
    pub async fn image_prune(&self, filters: &Filters) -> Result<ImagePruneResponse> {
        let mut q = Vec::new();
        if !filters.is_empty() {
            q.push(("filters", encode_filters(filters)));
        }
        let resp = self
            .call(Method::POST, "/images/prune", &q, empty_body(), None)
            .await?;
        decode(resp).await
    }
}
