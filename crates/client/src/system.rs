//! System endpoints: `/version`, `/info`, `/events`.

use hyper::Method;

use crate::{BodyReader, Client, Filters, Result, body_reader, empty_body, encode_filters};

impl Client {
    /// `GET /version`, as a JSON value (the CLI prints fields and formats it).
    pub async fn version(&self) -> Result<serde_json::Value> {
        self.get_json("/version", &[]).await
    }

    /// `GET /info`, as a JSON value: the model has many enums that older daemons fill
    /// differently, so it is kept untyped.
    pub async fn info(&self) -> Result<serde_json::Value> {
        self.get_json("/info", &[]).await
    }

    /// `GET /events`: a stream of JSON messages, one per line.
    pub async fn events(
        &self,
        since: Option<&str>,
        until: Option<&str>,
        filters: &Filters,
    ) -> Result<BodyReader> {
        let mut q = Vec::new();
        if let Some(s) = since {
            q.push(("since", s.to_string()));
        }
        if let Some(u) = until {
            q.push(("until", u.to_string()));
        }
        if !filters.is_empty() {
            q.push(("filters", encode_filters(filters)));
        }
        let resp = self
            .call(Method::GET, "/events", &q, empty_body(), None)
            .await?;
        Ok(body_reader(resp))
    }

    /// `GET /system/df`: disk usage of images, containers, volumes and the build cache, as
    /// JSON (kept untyped: older daemons leave fields out).
    pub async fn system_df(&self) -> Result<serde_json::Value> {
        self.get_json("/system/df", &[]).await
    }

    /// `POST /{kind}/prune` for `kind` in containers, images, networks, volumes, build:
    /// the daemon's report as JSON.
    pub async fn prune(&self, kind: &str, filters: &Filters) -> Result<serde_json::Value> {
        let mut q = Vec::new();
        if !filters.is_empty() {
            q.push(("filters", encode_filters(filters)));
        }
        let resp = self
            .call(
                Method::POST,
                &format!("/{kind}/prune"),
                &q,
                empty_body(),
                None,
            )
            .await?;
        crate::decode(resp).await
    }
}
