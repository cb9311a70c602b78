//! The client against a scripted daemon on a unix socket and on loopback TCP: version
//! negotiation, error mapping, JSON decoding, and the hijacked attach stream.

use client::stream::{StreamKind, demux_copy, encode_frame};
use client::{Client, Error};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

/// Reads one request head (and body by Content-Length); returns the request line.
async fn read_request<S: tokio::io::AsyncRead + Unpin>(s: &mut BufReader<S>) -> String {
    let mut first = String::new();
    s.read_line(&mut first).await.unwrap();
    let mut len = 0usize;
    loop {
        let mut line = String::new();
        s.read_line(&mut line).await.unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    s.read_exact(&mut body).await.unwrap();
    first.trim_end().to_string()
}

/// Serves one scripted answer per connection, recording the request lines.
async fn serve<L, S>(accept: L, answers: Vec<Vec<u8>>) -> tokio::task::JoinHandle<Vec<String>>
where
    L: FnMut() -> std::pin::Pin<Box<dyn std::future::Future<Output = S> + Send>> + Send + 'static,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let mut accept = accept;
    tokio::spawn(async move {
        let mut seen = Vec::new();
        for answer in answers {
            let stream = accept().await;
            let mut r = BufReader::new(stream);
            seen.push(read_request(&mut r).await);
            r.get_mut().write_all(&answer).await.unwrap();
            r.get_mut().shutdown().await.ok();
        }
        seen
    })
}

fn http(status: &str, headers: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "current_thread")]
async fn unix_negotiation_errors_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let listener = std::sync::Arc::new(listener);
    let answers = vec![
        http("200 OK", "API-Version: 1.41\r\nOSType: linux\r\n", "OK"),
        http(
            "404 Not Found",
            "Content-Type: application/json\r\n",
            r#"{"message":"No such container: nope"}"#,
        ),
        http(
            "201 Created",
            "Content-Type: application/json\r\n",
            r#"{"Id":"abc","Warnings":[]}"#,
        ),
    ];
    let l = listener.clone();
    let server = serve(
        move || {
            let l = l.clone();
            Box::pin(async move { l.accept().await.unwrap().0 })
        },
        answers,
    )
    .await;
    let mut c = Client::new(&format!("unix://{}", path.display())).unwrap();
    let ping = c.negotiate().await.unwrap();
    assert_eq!(ping.api_version.as_deref(), Some("1.41"));
    assert_eq!(c.api_version(), "1.41");
    match c.container_start("nope").await {
        Err(Error::Daemon { status, message }) => {
            assert_eq!(status, 404);
            assert_eq!(message, "No such container: nope");
        }
        other => panic!("{other:?}"),
    }
    let body = client::models::ContainerCreateBody {
        image: Some("busybox".into()),
        ..Default::default()
    };
    let created = c.container_create(Some("web"), &body).await.unwrap();
    assert_eq!(created.id, "abc");
    let seen = server.await.unwrap();
    assert_eq!(
        seen,
        [
            "GET /_ping HTTP/1.1",
            "POST /v1.41/containers/nope/start HTTP/1.1",
            "POST /v1.41/containers/create?name=web HTTP/1.1",
        ]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn tcp_hijack_reads_frames() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut upgrade = b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.raw-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".to_vec();
    upgrade.extend(encode_frame(StreamKind::Stdout, b"hello\n"));
    upgrade.extend(encode_frame(StreamKind::Stderr, b"oops\n"));
    let listener = std::sync::Arc::new(listener);
    let l = listener.clone();
    let server = serve(
        move || {
            let l = l.clone();
            Box::pin(async move { l.accept().await.unwrap().0 })
        },
        vec![upgrade],
    )
    .await;
    let c = Client::new(&format!("tcp://{addr}")).unwrap();
    let stream = c.container_attach("abc", false).await.unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    demux_copy(stream, &mut out, &mut err).await.unwrap();
    assert_eq!(out, b"hello\n");
    assert_eq!(err, b"oops\n");
    let seen = server.await.unwrap();
    assert_eq!(
        seen,
        ["POST /v1.47/containers/abc/attach?stream=1&stdin=0&stdout=1&stderr=1 HTTP/1.1"]
    );
}

#[tokio::test(flavor = "current_thread")]
async fn unreachable_socket_is_a_connect_error() {
    let c = Client::new("unix:///nonexistent/berth-test.sock").unwrap();
    match c.ping().await {
        Err(Error::Connect { host, .. }) => assert_eq!(host, "unix:///nonexistent/berth-test.sock"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn exec_hijack_and_archive_stat() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mut upgrade = b"HTTP/1.1 101 UPGRADED\r\nContent-Type: application/vnd.docker.multiplexed-stream\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n\r\n".to_vec();
    upgrade.extend(encode_frame(StreamKind::Stdout, b"from exec\n"));
    // {"name":"etc","size":4096,"mode":2147484141,"mtime":"2024-01-01T00:00:00Z","linkTarget":""}
    let stat = "eyJuYW1lIjoiZXRjIiwic2l6ZSI6NDA5NiwibW9kZSI6MjE0NzQ4NDE0MSwibXRpbWUiOiIyMDI0LTAxLTAxVDAwOjAwOjAwWiIsImxpbmtUYXJnZXQiOiIifQ==";
    let answers = vec![
        http(
            "201 Created",
            "Content-Type: application/json\r\n",
            r#"{"Id":"e1"}"#,
        ),
        upgrade,
        http(
            "200 OK",
            "Content-Type: application/json\r\n",
            r#"{"ID":"e1","Running":false,"ExitCode":3}"#,
        ),
        format!(
            "HTTP/1.1 200 OK\r\nX-Docker-Container-Path-Stat: {stat}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_bytes(),
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_vec(),
    ];
    let listener = std::sync::Arc::new(listener);
    let l = listener.clone();
    let server = serve(
        move || {
            let l = l.clone();
            Box::pin(async move { l.accept().await.unwrap().0 })
        },
        answers,
    )
    .await;
    let c = Client::new(&format!("tcp://{addr}")).unwrap();
    let config = client::models::ExecConfig {
        cmd: Some(vec!["true".into()]),
        ..Default::default()
    };
    assert_eq!(c.exec_create("c1", &config).await.unwrap(), "e1");
    let stream = c.exec_start_attached("e1", false, None).await.unwrap();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    demux_copy(stream, &mut out, &mut err).await.unwrap();
    assert_eq!(out, b"from exec\n");
    assert_eq!(c.exec_inspect("e1").await.unwrap().exit_code, Some(3));
    let s = c.container_stat_path("c1", "/etc").await.unwrap();
    assert!(s.is_dir());
    assert_eq!((s.name.as_str(), s.mode & 0o777), ("etc", 0o755));
    match c.container_stat_path("c1", "/nope").await {
        Err(Error::Daemon {
            status: 404,
            message,
        }) => {
            assert_eq!(message, "Could not find the file /nope in container c1")
        }
        other => panic!("{other:?}"),
    }
    let seen = server.await.unwrap();
    assert_eq!(
        seen,
        [
            "POST /v1.47/containers/c1/exec HTTP/1.1",
            "POST /v1.47/exec/e1/start HTTP/1.1",
            "GET /v1.47/exec/e1/json HTTP/1.1",
            "HEAD /v1.47/containers/c1/archive?path=%2Fetc HTTP/1.1",
            "HEAD /v1.47/containers/c1/archive?path=%2Fnope HTTP/1.1",
        ]
    );
}
