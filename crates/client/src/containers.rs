//! Container endpoints (`/containers/...`).

use bytes::Bytes;
use hyper::Method;
use hyper::body::Incoming;

use crate::models::{
    ContainerCreateBody, ContainerCreateResponse, ContainerPruneResponse, ContainerSummary,
    ContainerTopResponse, ContainerUpdateBody, ContainerUpdateResponse, ContainerWaitResponse,
    IdResponse,
};
use crate::{
    BodyReader, Client, Filters, Hijacked, Result, body_reader, decode, empty_body, encode_filters,
};

/// Options of `GET /containers/json`.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Include stopped containers.
    pub all: bool,
    /// Only the N most recently created (`-n`, `-l` is 1).
    pub limit: Option<i64>,
    /// Compute SizeRw and SizeRootFs.
    pub size: bool,
    /// Filters (`name`, `status`, `label`, `id`, `ancestor`, ...).
    pub filters: Filters,
}

/// Options of `GET /containers/{id}/logs`.
#[derive(Debug, Clone, Default)]
pub struct LogsOptions {
    /// Keep the stream open for new output.
    pub follow: bool,
    /// Prefix each line with its RFC 3339 timestamp.
    pub timestamps: bool,
    /// Only output after this time (unix seconds, possibly fractional, as the daemon takes it).
    pub since: Option<String>,
    /// Only output before this time.
    pub until: Option<String>,
    /// Number of lines from the end, or "all".
    pub tail: Option<String>,
}

/// Query of `POST /containers/{id}/attach`.
#[derive(Debug, Clone, Default)]
pub struct AttachOptions {
    /// Stream output as it comes (as opposed to only the logs).
    pub stream: bool,
    /// Send our stdin to the container.
    pub stdin: bool,
    /// Receive the container's stdout.
    pub stdout: bool,
    /// Receive the container's stderr.
    pub stderr: bool,
    /// Replay the logs first.
    pub logs: bool,
    /// Override of the key sequence for detaching (docker's `--detach-keys`).
    pub detach_keys: Option<String>,
}

/// Query of `POST /commit`.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// Container name or ID.
    pub container: String,
    /// Repository of the new image.
    pub repo: Option<String>,
    /// Tag of the new image.
    pub tag: Option<String>,
    /// Commit message.
    pub comment: Option<String>,
    /// Author.
    pub author: Option<String>,
    /// Pause the container during the commit.
    pub pause: bool,
    /// Dockerfile instructions applied to the image config (`--change`).
    pub changes: Vec<String>,
}

/// The waiting side of `POST /containers/{id}/wait`: the request has been accepted (dockerd
/// sends the status line before the container exits), the answer comes with the exit.
pub struct WaitHandle {
    resp: hyper::Response<Incoming>,
}

impl WaitHandle {
    /// Blocks until the container has reached the condition; returns the exit status.
    pub async fn result(self) -> Result<ContainerWaitResponse> {
        decode(self.resp).await
    }
}

fn flag(b: bool) -> String {
    if b { "1".into() } else { "0".into() }
}

impl Client {
    /// `POST /containers/create`.
    pub async fn container_create(
        &self,
        name: Option<&str>,
        body: &ContainerCreateBody,
    ) -> Result<ContainerCreateResponse> {
        let mut q = Vec::new();
        if let Some(n) = name {
            q.push(("name", n.to_string()));
        }
        self.post_json("/containers/create", &q, body).await
    }

    /// `POST /containers/{id}/start`.
    pub async fn container_start(&self, id: &str) -> Result<()> {
        self.post_empty(&format!("/containers/{id}/start"), &[])
            .await
    }

    /// `POST /containers/{id}/stop?t=`.
    pub async fn container_stop(&self, id: &str, timeout: Option<i64>) -> Result<()> {
        let q: Vec<_> = timeout.map(|t| ("t", t.to_string())).into_iter().collect();
        self.post_empty(&format!("/containers/{id}/stop"), &q).await
    }

    /// `POST /containers/{id}/restart?t=`.
    pub async fn container_restart(&self, id: &str, timeout: Option<i64>) -> Result<()> {
        let q: Vec<_> = timeout.map(|t| ("t", t.to_string())).into_iter().collect();
        self.post_empty(&format!("/containers/{id}/restart"), &q)
            .await
    }

    /// `POST /containers/{id}/kill?signal=`.
    pub async fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<()> {
        let q: Vec<_> = signal
            .map(|s| ("signal", s.to_string()))
            .into_iter()
            .collect();
        self.post_empty(&format!("/containers/{id}/kill"), &q).await
    }

    /// `DELETE /containers/{id}?force=&v=`.
    pub async fn container_remove(&self, id: &str, force: bool, volumes: bool) -> Result<()> {
        let q = [("force", flag(force)), ("v", flag(volumes))];
        let resp = self
            .call(
                Method::DELETE,
                &format!("/containers/{id}"),
                &q,
                empty_body(),
                None,
            )
            .await?;
        drop(resp);
        Ok(())
    }

    /// `GET /containers/json`.
    pub async fn container_list(&self, opts: &ListOptions) -> Result<Vec<ContainerSummary>> {
        let mut q = vec![("all", flag(opts.all)), ("size", flag(opts.size))];
        if let Some(n) = opts.limit {
            q.push(("limit", n.to_string()));
        }
        if !opts.filters.is_empty() {
            q.push(("filters", encode_filters(&opts.filters)));
        }
        self.get_json("/containers/json", &q).await
    }

    /// `GET /containers/{id}/json`, the raw JSON document (for printing as the daemon sent it).
    pub async fn container_inspect_raw(&self, id: &str, size: bool) -> Result<Bytes> {
        let q: Vec<_> = if size {
            vec![("size", "1".to_string())]
        } else {
            vec![]
        };
        self.get_bytes(&format!("/containers/{id}/json"), &q).await
    }

    /// `GET /containers/{id}/json`, decoded to a JSON value.
    pub async fn container_inspect(&self, id: &str) -> Result<serde_json::Value> {
        self.get_json(&format!("/containers/{id}/json"), &[]).await
    }

    /// `POST /containers/{id}/wait?condition=` (not-running, next-exit, removed). Returns
    /// once the daemon has accepted the request, see [`WaitHandle`].
    pub async fn container_wait(&self, id: &str, condition: Option<&str>) -> Result<WaitHandle> {
        let q: Vec<_> = condition
            .map(|c| ("condition", c.to_string()))
            .into_iter()
            .collect();
        let resp = self
            .call(
                Method::POST,
                &format!("/containers/{id}/wait"),
                &q,
                empty_body(),
                None,
            )
            .await?;
        Ok(WaitHandle { resp })
    }

    /// `GET /containers/{id}/logs`: the stream (multiplexed unless the container has a TTY).
    pub async fn container_logs(&self, id: &str, opts: &LogsOptions) -> Result<BodyReader> {
        let mut q = vec![
            ("stdout", "1".to_string()),
            ("stderr", "1".to_string()),
            ("follow", flag(opts.follow)),
            ("timestamps", flag(opts.timestamps)),
        ];
        if let Some(s) = &opts.since {
            q.push(("since", s.clone()));
        }
        if let Some(s) = &opts.until {
            q.push(("until", s.clone()));
        }
        q.push(("tail", opts.tail.clone().unwrap_or_else(|| "all".into())));
        let resp = self
            .call(
                Method::GET,
                &format!("/containers/{id}/logs"),
                &q,
                empty_body(),
                None,
            )
            .await?;
        Ok(body_reader(resp))
    }

    /// `POST /containers/{id}/attach?stream=1&stdout=1&stderr=1[&stdin=1]`, hijacked.
    pub async fn container_attach(&self, id: &str, stdin: bool) -> Result<Hijacked> {
        let q = [
            ("stream", "1".to_string()),
            ("stdin", flag(stdin)),
            ("stdout", "1".to_string()),
            ("stderr", "1".to_string()),
        ];
        self.hijack(&format!("/containers/{id}/attach"), &q).await
    }

    /// `POST /containers/{id}/attach` with every option of docker's `attach`, hijacked.
    pub async fn container_attach_with(&self, id: &str, o: &AttachOptions) -> Result<Hijacked> {
        let mut q = vec![
            ("stream", flag(o.stream)),
            ("stdin", flag(o.stdin)),
            ("stdout", flag(o.stdout)),
            ("stderr", flag(o.stderr)),
        ];
        if o.logs {
            q.push(("logs", "1".into()));
        }
        if let Some(k) = &o.detach_keys {
            q.push(("detachKeys", k.clone()));
        }
        self.hijack(&format!("/containers/{id}/attach"), &q).await
    }

    /// `GET /containers/{id}/stats?stream=&one-shot=`: one JSON document per line
    /// (`stream=false`: exactly one, after the daemon has taken two samples for the CPU delta).
    pub async fn container_stats(&self, id: &str, stream: bool) -> Result<BodyReader> {
        let q = [("stream", flag(stream))];
        let resp = self
            .call(
                Method::GET,
                &format!("/containers/{id}/stats"),
                &q,
                empty_body(),
                None,
            )
            .await?;
        Ok(body_reader(resp))
    }

    /// `GET /containers/{id}/top?ps_args=`.
    pub async fn container_top(
        &self,
        id: &str,
        ps_args: Option<&str>,
    ) -> Result<ContainerTopResponse> {
        let q: Vec<_> = ps_args
            .map(|a| ("ps_args", a.to_string()))
            .into_iter()
            .collect();
        self.get_json(&format!("/containers/{id}/top"), &q).await
    }

    /// `POST /containers/{id}/pause` (freezes every process of the container).
    pub async fn container_pause(&self, id: &str) -> Result<()> {
        self.post_empty(&format!("/containers/{id}/pause"), &[])
            .await
    }

    /// `POST /containers/{id}/unpause`.
    pub async fn container_unpause(&self, id: &str) -> Result<()> {
        self.post_empty(&format!("/containers/{id}/unpause"), &[])
            .await
    }

    /// `POST /containers/{id}/rename?name=`.
    pub async fn container_rename(&self, id: &str, name: &str) -> Result<()> {
        self.post_empty(
            &format!("/containers/{id}/rename"),
            &[("name", name.to_string())],
        )
        .await
    }

    /// `POST /containers/{id}/update`: new resource limits and restart policy of a container
    /// (running or not). Returns the daemon's warnings.
    pub async fn container_update(
        &self,
        id: &str,
        body: &ContainerUpdateBody,
    ) -> Result<Vec<String>> {
        let r: ContainerUpdateResponse = self
            .post_json(&format!("/containers/{id}/update"), &[], body)
            .await?;
        Ok(r.warnings.unwrap_or_default())
    }

    /// `POST /commit?container=..`: a new image from the container's changes. Returns the
    /// image ID.
    pub async fn container_commit(&self, o: &CommitOptions) -> Result<String> {
        let mut q = vec![("container", o.container.clone()), ("pause", flag(o.pause))];
        if let Some(r) = &o.repo {
            q.push(("repo", r.clone()));
        }
        if let Some(t) = &o.tag {
            q.push(("tag", t.clone()));
        }
        if let Some(m) = &o.comment {
            q.push(("comment", m.clone()));
        }
        if let Some(a) = &o.author {
            q.push(("author", a.clone()));
        }
        for c in &o.changes {
            q.push(("changes", c.clone()));
        }
        let r: IdResponse = self
            .post_json("/commit", &q, &serde_json::json!({}))
            .await?;
        Ok(r.id)
    }

    /// `POST /containers/{id}/resize?h=&w=`.
    pub async fn container_resize(&self, id: &str, height: u16, width: u16) -> Result<()> {
        let q = [("h", height.to_string()), ("w", width.to_string())];
        self.post_empty(&format!("/containers/{id}/resize"), &q)
            .await
    }

    /// `POST /containers/prune`.
    pub async fn container_prune(&self, filters: &Filters) -> Result<ContainerPruneResponse> {
        let mut q = Vec::new();
        if !filters.is_empty() {
            q.push(("filters", encode_filters(filters)));
        }
        let resp = self
            .call(Method::POST, "/containers/prune", &q, empty_body(), None)
            .await?;
        decode(resp).await
    }
}
