//! Exec endpoints: `POST /containers/{id}/exec`, `POST /exec/{id}/start|resize`,
//! `GET /exec/{id}/json` (Docker Engine API, "Exec").

use crate::models::{ExecConfig, ExecInspectResponse, ExecStartConfig, IdResponse};
use crate::{Client, Hijacked, Result, json_body};

impl Client {
    /// `POST /containers/{id}/exec`: creates an exec instance, returns its ID.
    pub async fn exec_create(&self, container: &str, config: &ExecConfig) -> Result<String> {
        let r: IdResponse = self
            .post_json(&format!("/containers/{container}/exec"), &[], config)
            .await?;
        Ok(r.id)
    }

    /// `POST /exec/{id}/start` with `Detach: false`, hijacked: the process's stdio (raw with a
    /// TTY, multiplexed frames without). `console_size` is `[height, width]`.
    pub async fn exec_start_attached(
        &self,
        id: &str,
        tty: bool,
        console_size: Option<[u16; 2]>,
    ) -> Result<Hijacked> {
        let body = ExecStartConfig {
            detach: Some(false),
            tty: Some(tty),
            console_size: console_size.map(|[h, w]| vec![h as usize, w as usize]),
        };
        self.hijack_with(
            &format!("/exec/{id}/start"),
            &[],
            json_body(&body)?,
            Some("application/json"),
        )
        .await
    }

    /// `POST /exec/{id}/start` with `Detach: true`: starts the process and returns.
    pub async fn exec_start_detached(&self, id: &str, tty: bool) -> Result<()> {
        let body = ExecStartConfig {
            detach: Some(true),
            tty: Some(tty),
            console_size: None,
        };
        let resp = self
            .call(
                hyper::Method::POST,
                &format!("/exec/{id}/start"),
                &[],
                json_body(&body)?,
                Some("application/json"),
            )
            .await?;
        http_body_util::BodyExt::collect(resp.into_body()).await?;
        Ok(())
    }

    /// `GET /exec/{id}/json`.
    pub async fn exec_inspect(&self, id: &str) -> Result<ExecInspectResponse> {
        self.get_json(&format!("/exec/{id}/json"), &[]).await
    }

    /// `POST /exec/{id}/resize?h=&w=`.
    pub async fn exec_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let q = [("h", height.to_string()), ("w", width.to_string())];
        self.post_empty(&format!("/exec/{id}/resize"), &q).await
    }
}
