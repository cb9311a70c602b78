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
}
