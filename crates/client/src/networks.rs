//! Network endpoints (`/networks/...`).

use bytes::Bytes;
use hyper::Method;

use crate::models::{
    NetworkConnectRequest, NetworkCreateRequest, NetworkCreateResponse, NetworkDisconnectRequest,
    NetworkPruneResponse, NetworkSummary,
};
use http_body_util::BodyExt;

use crate::{Client, Filters, Result, empty_body, encode_filters, json_body};

impl Client {
    /// `GET /networks`.
    pub async fn network_list(&self, filters: &Filters) -> Result<Vec<NetworkSummary>> {
        let mut q = Vec::new();
        if !filters.is_empty() {
            q.push(("filters", encode_filters(filters)));
        }
        self.get_json("/networks", &q).await
    }

    /// `GET /networks/{id}`, raw (for inspect's exact output).
    pub async fn network_inspect_raw(&self, name: &str) -> Result<Bytes> {
        self.get_bytes(&format!("/networks/{name}"), &[]).await
    }

    /// `POST /networks/create`.
    pub async fn network_create(
        &self,
        body: &NetworkCreateRequest,
    ) -> Result<NetworkCreateResponse> {
        self.post_json("/networks/create", &[], body).await
    }

    /// `DELETE /networks/{id}`.
    pub async fn network_remove(&self, name: &str) -> Result<()> {
        let resp = self
            .call(
                Method::DELETE,
                &format!("/networks/{name}"),
                &[],
                empty_body(),
                None,
            )
            .await?;
        resp.into_body().collect().await?;
        Ok(())
    }

    /// `POST /networks/prune`.
    pub async fn network_prune(&self, filters: &Filters) -> Result<NetworkPruneResponse> {
        let mut q = Vec::new();
        if !filters.is_empty() {
            q.push(("filters", encode_filters(filters)));
        }
        let resp = self
            .call(Method::POST, "/networks/prune", &q, empty_body(), None)
            .await?;
        crate::decode(resp).await
    }

    /// `POST /networks/{id}/connect`.
    pub async fn network_connect(&self, name: &str, body: &NetworkConnectRequest) -> Result<()> {
        let resp = self
            .call(
                Method::POST,
                &format!("/networks/{name}/connect"),
                &[],
                json_body(body)?,
                Some("application/json"),
            )
            .await?;
        resp.into_body().collect().await?;
        Ok(())
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn network_disconnect(
        &self,
        name: &str,
        body: &NetworkDisconnectRequest,
    ) -> Result<()> {
        let resp = self
            .call(
                Method::POST,
                &format!("/networks/{name}/disconnect"),
                &[],
                json_body(body)?,
                Some("application/json"),
            )
            .await?;
        resp.into_body().collect().await?;
        Ok(())
    }
}
