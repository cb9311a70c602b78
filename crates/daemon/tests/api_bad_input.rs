//! Bad input to berthd, spoken as raw HTTP/1.1 on its unix socket: every refusal must be
//! dockerd's answer (a JSON body `{"message": "..."}` with the status dockerd uses: 400 for
//! malformed or invalid parameters, 404 for what does not exist, 409 for conflicts), and a
//! hostile or broken layer tar given to `POST /images/create?fromSrc=-` must be refused (or,
//! for an absolute entry name, contained in the layer as Docker does) without writing outside
//! the daemon's data root, without leaving a half-made image or blob, and without taking the
//! daemon down.
//!
//! The statuses follow the Engine API reference (docs.docker.com/reference/api/engine,
//! "Errors": 400 bad parameter, 404 no such object, 409 conflict, 500 server error) and
//! dockerd's errdefs mapping (invalid parameter -> 400, not found -> 404, conflict -> 409).

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Daemon, wait_until};

// ---------------------------------------------------------------------------------------------
// A minimal HTTP/1.1 client on the unix socket.
// ---------------------------------------------------------------------------------------------

/// An HTTP answer.
struct Reply {
    what: String,
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    /// A header's value (names compare case-insensitively, RFC 9110 section 5.1).
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{}: body is not JSON ({e}): {:?}", self.what, self.text()))
    }

    /// Asserts dockerd's error shape: the status, a JSON content type and a JSON object whose
    /// only member is a non-empty string `message`. Returns the message.
    #[track_caller]
    fn error(&self, status: u16) -> String {
        assert_eq!(
            self.status,
            status,
            "{}: expected {status}, got {} {:?}",
            self.what,
            self.status,
            self.text()
        );
        let content_type = self.header("Content-Type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "{}: content type {content_type:?}",
            self.what
        );
        let value = self.json();
        let object = value
            .as_object()
            .unwrap_or_else(|| panic!("{}: not an object: {value}", self.what));
        assert_eq!(
            object.keys().collect::<Vec<_>>(),
            vec!["message"],
            "{}: {value}",
            self.what
        );
        let message = object["message"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: message is not a string: {value}", self.what));
        assert!(!message.is_empty(), "{}: empty message", self.what);
        message.to_string()
    }

    /// Asserts a 4xx error in dockerd's shape (any 4xx status). Returns the message.
    #[track_caller]
    fn client_error(&self) -> String {
        assert!(
            (400..500).contains(&self.status),
            "{}: expected a 4xx, got {} {:?}",
            self.what,
            self.status,
            self.text()
        );
        self.error(self.status)
    }

    #[track_caller]
    fn ok(&self) -> &Self {
        assert!(
            (200..300).contains(&self.status),
            "{}: expected a 2xx, got {} {:?}",
            self.what,
            self.status,
            self.text()
        );
        self
    }
}

/// A connection to the daemon's socket with generous timeouts.
fn connect(socket: &Path, what: &str) -> UnixStream {
    let stream = UnixStream::connect(socket).unwrap_or_else(|e| panic!("{what}: connect: {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    stream
        .set_write_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    stream
}

/// The request line and the headers every request carries, without the final empty line.
fn head(method: &str, path: &str, content_type: Option<&str>) -> String {
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: berth-e2e\r\nConnection: close\r\n"
    );
    if let Some(content_type) = content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head
}

/// Reads the whole answer (the server closes the connection: `Connection: close`).
fn read_reply(mut stream: UnixStream, what: String, head_only: bool) -> Reply {
    let mut raw = Vec::new();
    if let Err(e) = stream.read_to_end(&mut raw) {
        // A reset after a complete answer is fine; an empty answer is not.
        assert!(!raw.is_empty(), "{what}: read: {e}");
    }
    parse_response(what, head_only, &raw)
}

/// Sends one request (with `Connection: close` and a `Content-Length`) and reads the whole
/// answer.
fn request(
    socket: &Path,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    body: &[u8],
) -> Reply {
    let what = format!("{method} {path}");
    let mut stream = connect(socket, &what);
    let mut head = head(method, path, content_type);
    if (method != "GET" && method != "HEAD") || !body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream
        .write_all(head.as_bytes())
        .unwrap_or_else(|e| panic!("{what}: write: {e}"));
    // The server may answer (and close) before it read the whole body; what it answered is
    // what counts.
    let _ = stream.write_all(body);
    let _ = stream.flush();
    read_reply(stream, what, method == "HEAD")
}

/// Sends one request whose body goes as `Transfer-Encoding: chunked` (RFC 9112 section 7.1),
/// one chunk per element of `chunks`, as the docker CLI streams `docker import -`.
fn request_chunked(
    socket: &Path,
    method: &str,
    path: &str,
    content_type: Option<&str>,
    chunks: &[&[u8]],
) -> Reply {
    let what = format!("{method} {path} (chunked)");
    let mut stream = connect(socket, &what);
    let mut head = head(method, path, content_type);
    head.push_str("Transfer-Encoding: chunked\r\n\r\n");
    let mut wire = head.into_bytes();
    for chunk in chunks.iter().filter(|c| !c.is_empty()) {
        wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    let _ = stream.write_all(&wire);
    let _ = stream.flush();
    read_reply(stream, what, false)
}

fn parse_response(what: String, head_only: bool, raw: &[u8]) -> Reply {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("{what}: no end of headers in {:?}", lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    assert!(
        version.starts_with("HTTP/1."),
        "{what}: status line {status_line:?}"
    );
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("{what}: status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let rest = &raw[end + 4..];
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    // RFC 9112 section 6.3: no body for HEAD, 1xx, 204 and 304; chunked wins over a length.
    let body = if head_only || status == 204 || status == 304 || status < 200 {
        Vec::new()
    } else if find("Transfer-Encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        dechunk(&what, rest)
    } else if let Some(length) = find("Content-Length") {
        let length: usize = length
            .parse()
            .unwrap_or_else(|_| panic!("{what}: bad Content-Length {length:?}"));
        assert!(
            rest.len() >= length,
            "{what}: body shorter ({}) than Content-Length {length}",
            rest.len()
        );
        rest[..length].to_vec()
    } else {
        rest.to_vec()
    };
    Reply {
        what,
        status,
        headers,
        body,
    }
}

/// Decodes a chunked body (RFC 9112 section 7.1): hex size (with optional extensions), CRLF,
/// data, CRLF, ..., a zero-size chunk, optional trailers.
fn dechunk(what: &str, mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .unwrap_or_else(|| panic!("{what}: unterminated chunk size in {:?}", lossy(rest)));
        let line = String::from_utf8_lossy(&rest[..line_end]).into_owned();
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .unwrap_or_else(|_| panic!("{what}: bad chunk size {line:?}"));
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        assert!(rest.len() >= size + 2, "{what}: truncated chunk");
        body.extend_from_slice(&rest[..size]);
        assert_eq!(
            &rest[size..size + 2],
            b"\r\n",
            "{what}: chunk not ended by CRLF"
        );
        rest = &rest[size + 2..];
    }
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(2000)]).into_owned()
}

fn get(daemon: &Daemon, path: &str) -> Reply {
    request(&daemon.socket, "GET", path, None, b"")
}

fn post(daemon: &Daemon, path: &str) -> Reply {
    request(&daemon.socket, "POST", path, None, b"")
}

fn post_json(daemon: &Daemon, path: &str, body: &str) -> Reply {
    request(
        &daemon.socket,
        "POST",
        path,
        Some("application/json"),
        body.as_bytes(),
    )
}

fn delete(daemon: &Daemon, path: &str) -> Reply {
    request(&daemon.socket, "DELETE", path, None, b"")
}

/// `/_ping` still answers `OK`.
#[track_caller]
fn assert_alive(daemon: &Daemon) {
    let ping = get(daemon, "/_ping");
    assert_eq!(
        (ping.status, ping.text().as_str()),
        (200, "OK"),
        "daemon log:\n{}",
        daemon.log()
    );
}

/// A name no other test run uses, for paths on the host.
fn unique(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos();
    format!("berth-e2e-{tag}-{}-{nanos}", std::process::id())
}

/// Removes host paths a failed containment check may have created.
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            match std::fs::symlink_metadata(path) {
                Ok(meta) if meta.is_dir() => {
                    let _ = std::fs::remove_dir_all(path);
                }
                Ok(_) => {
                    let _ = std::fs::remove_file(path);
                }
                Err(_) => {}
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------------

#[test]
fn create_with_malformed_json_is_400() {
    let daemon = Daemon::start();
    for body in [
        "{",
        "{\"Image\": \"busybox\",}",
        "[1, 2",
        "not json at all",
        "{\"Image\": \"busybox\"} trailing",
    ] {
        let reply = post_json(&daemon, "/containers/create", body);
        reply.error(400);
    }
    // Nothing was created.
    let list = get(&daemon, "/containers/json?all=1");
    assert_eq!(list.ok().json(), serde_json::json!([]));
    assert_alive(&daemon);
}

#[test]
fn create_with_wrong_field_types_is_400() {
    let daemon = Daemon::start();
    for body in [
        r#"{"Image": "busybox", "Cmd": 5}"#,
        r#"{"Image": 7}"#,
        r#"{"Image": "busybox", "Env": "A=1"}"#,
        r#"{"Image": "busybox", "Tty": "yes"}"#,
        r#"{"Image": "busybox", "HostConfig": {"Memory": "lots"}}"#,
        r#"{"Image": "busybox", "HostConfig": {"CpuShares": [1]}}"#,
        r#"{"Image": "busybox", "HostConfig": "none"}"#,
    ] {
        let reply = post_json(&daemon, "/containers/create", body);
        let message = reply.error(400);
        assert!(!message.contains("No such image"), "{body}: {message}");
    }
    let list = get(&daemon, "/containers/json?all=1");
    assert_eq!(list.ok().json(), serde_json::json!([]));
    assert_alive(&daemon);
}

#[test]
fn create_with_invalid_name_is_400() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    // dockerd: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]+ (a leading '/' is dropped).
    for name in [
        "bad%21name",
        "-leading-dash",
        ".dot",
        "a%2Fb",
        "with%20space",
    ] {
        let reply = post_json(
            &daemon,
            &format!("/containers/create?name={name}"),
            r#"{"Image": "busybox", "Cmd": ["true"]}"#,
        );
        let message = reply.error(400);
        assert!(
            message.to_lowercase().contains("invalid container name"),
            "{name}: {message}"
        );
    }
    let list = get(&daemon, "/containers/json?all=1");
    assert_eq!(list.ok().json(), serde_json::json!([]));
}

#[test]
fn create_with_missing_image_is_404() {
    let daemon = Daemon::start();
    let reply = post_json(
        &daemon,
        "/containers/create",
        r#"{"Image": "nope:1", "Cmd": ["true"]}"#,
    );
    let message = reply.error(404);
    assert!(message.contains("No such image"), "{message}");
    assert!(message.contains("nope:1"), "{message}");
    assert_alive(&daemon);
}

#[test]
fn missing_objects_and_unknown_paths_are_404() {
    let daemon = Daemon::start();
    let message = get(&daemon, "/containers/nope/json").error(404);
    assert!(message.contains("No such container: nope"), "{message}");
    let message = get(&daemon, "/images/nope/json").error(404);
    assert!(message.contains("No such image: nope"), "{message}");
    post(&daemon, "/containers/nope/start").error(404);
    post(&daemon, "/containers/nope/stop").error(404);
    post(&daemon, "/containers/nope/kill").error(404);
    post(&daemon, "/containers/nope/wait").error(404);
    delete(&daemon, "/containers/nope").error(404);
    get(&daemon, "/containers/nope/logs?stdout=1").error(404);
    delete(&daemon, "/images/nope").error(404);
    get(&daemon, "/images/nope/history").error(404);
    post(&daemon, "/images/nope/tag?repo=x&tag=y").error(404);
    for path in [
        "/nope",
        "/v1.47/nope",
        "/containers/abc/bogus-action",
        "/images/json/extra/bogus",
        "/",
    ] {
        let message = get(&daemon, path).error(404);
        assert!(message.contains("page not found"), "{path}: {message}");
    }
    // A wrong method on a known path is not a crash either.
    request(&daemon.socket, "PATCH", "/containers/json", None, b"").client_error();
    assert_alive(&daemon);
}

#[test]
fn bad_filters_are_400() {
    let daemon = Daemon::start();
    for path in [
        "/containers/json?filters=nope",
        "/containers/json?filters=%7B%22name%22%3A",
        "/containers/json?filters=%5B1%2C2%5D",
        "/containers/json?filters=%7B%22name%22%3A5%7D",
        "/images/json?filters=%7Bbad",
        "/containers/prune?filters=nope",
        "/images/prune?filters=nope",
    ] {
        let method = if path.contains("prune") {
            "POST"
        } else {
            "GET"
        };
        request(&daemon.socket, method, path, None, b"").error(400);
    }
    // Other malformed query values.
    get(&daemon, "/containers/json?limit=many").error(400);
    assert_alive(&daemon);
}

/// A busybox container running `sleep`, created and started through the API.
fn running_container(daemon: &Daemon, name: &str) -> String {
    let reply = post_json(
        daemon,
        &format!("/containers/create?name={name}"),
        r#"{"Image": "busybox", "Cmd": ["sleep", "300"]}"#,
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let id = reply.json()["Id"].as_str().expect("Id").to_string();
    let start = post(daemon, &format!("/containers/{id}/start"));
    assert_eq!(start.status, 204, "{}", start.text());
    id
}

#[test]
fn conflicts_are_409() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let id = running_container(&daemon, "busy");

    // Removing a running container without force.
    let message = delete(&daemon, &format!("/containers/{id}")).error(409);
    assert!(
        message.to_lowercase().contains("running") || message.to_lowercase().contains("stop"),
        "{message}"
    );
    let state = get(&daemon, "/containers/busy/json").ok().json();
    assert_eq!(state["State"]["Running"], true, "{state}");

    // The same name again.
    let message = post_json(
        &daemon,
        "/containers/create?name=busy",
        r#"{"Image": "busybox", "Cmd": ["true"]}"#,
    )
    .error(409);
    assert!(message.contains("already in use"), "{message}");
    // Also with the leading slash docker puts on names.
    post_json(
        &daemon,
        "/containers/create?name=%2Fbusy",
        r#"{"Image": "busybox", "Cmd": ["true"]}"#,
    )
    .error(409);
    let all = get(&daemon, "/containers/json?all=1").ok().json();
    assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");

    // Forced removal works.
    let reply = delete(&daemon, &format!("/containers/{id}?force=1"));
    assert_eq!(reply.status, 204, "{}", reply.text());
    get(&daemon, &format!("/containers/{id}/json")).error(404);
}

#[test]
fn unknown_wait_condition_is_400() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let reply = post_json(
        &daemon,
        "/containers/create?name=waiter",
        r#"{"Image": "busybox", "Cmd": ["true"]}"#,
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    for condition in ["bogus", "NOT-RUNNING", "exited"] {
        let message = post(
            &daemon,
            &format!("/containers/waiter/wait?condition={condition}"),
        )
        .error(400);
        assert!(message.contains(condition), "{condition}: {message}");
    }
    // The known ones are accepted: a created container is not running, so this returns.
    let reply = post(&daemon, "/containers/waiter/wait?condition=not-running");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.json()["StatusCode"], 0, "{}", reply.text());
}

#[test]
fn create_with_invalid_settings_is_400() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    for (body, expect) in [
        // dockerd: an unknown restart policy is an invalid parameter.
        (
            r#"{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"RestartPolicy": {"Name": "bogus"}}}"#,
            "",
        ),
        // daemon_unix.go verifyPlatformContainerResources: below linuxMinMemory (6 MiB).
        (
            r#"{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Memory": 1024}}"#,
            "Minimum memory limit allowed is 6MB",
        ),
        // The imported busybox has no Cmd, so a config without one has nothing to run.
        (r#"{"Image": "busybox"}"#, "no command specified"),
        (r#"{"Cmd": ["true"]}"#, ""),
        ("{}", ""),
    ] {
        let message = post_json(&daemon, "/containers/create", body).error(400);
        assert!(message.contains(expect), "{body}: {message}");
    }
    let list = get(&daemon, "/containers/json?all=1");
    assert_eq!(list.ok().json(), serde_json::json!([]));
}

#[test]
fn create_with_negative_memory_or_relative_bind_target_is_400() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    for (body, expect) in [
        // `resources.Memory != 0 && resources.Memory < linuxMinMemory` also holds for -5.
        (
            r#"{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Memory": -5}}"#,
            "Minimum memory limit allowed is 6MB",
        ),
        // A bind's container path must be absolute (volume/mounts validation).
        (
            r#"{"Image": "busybox", "Cmd": ["true"], "HostConfig": {"Binds": ["/tmp:relative"]}}"#,
            "absolute",
        ),
    ] {
        let message = post_json(&daemon, "/containers/create", body).error(400);
        assert!(message.contains(expect), "{body}: {message}");
    }
    let list = get(&daemon, "/containers/json?all=1");
    assert_eq!(list.ok().json(), serde_json::json!([]));
}

#[test]
fn create_requires_a_json_content_type() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let body = br#"{"Image": "busybox", "Cmd": ["true"]}"#;
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let reply = request(
            &daemon.socket,
            "POST",
            "/containers/create",
            content_type,
            body,
        );
        let message = reply.error(400);
        assert!(message.contains("application/json"), "{message}");
    }
    let list = get(&daemon, "/containers/json?all=1");
    assert_eq!(list.ok().json(), serde_json::json!([]));
    // A parameter on the type is fine (mime.ParseMediaType).
    let reply = request(
        &daemon.socket,
        "POST",
        "/containers/create",
        Some("application/json; charset=utf-8"),
        body,
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
}

#[test]
fn kill_with_unknown_signal_name_is_400() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let id = running_container(&daemon, "target");
    for path in [
        format!("/containers/{id}/kill?signal=BOGUS"),
        format!("/containers/{id}/kill?signal=SIGNOPE"),
        format!("/containers/{id}/stop?signal=BOGUS&t=1"),
    ] {
        post(&daemon, &path).error(400);
    }
    // Still running: a refused signal did nothing.
    let state = get(&daemon, "/containers/target/json").ok().json();
    assert_eq!(state["State"]["Running"], true, "{state}");
    post(&daemon, "/containers/target/stop?t=abc").error(400);
}

#[test]
fn kill_signal_is_validated_before_the_container_state() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let id = running_container(&daemon, "target");
    // daemon/kill.go: signal.ParseSignal, then ValidSignalForPlatform ("the linux daemon does
    // not support signal 999"), both errdefs.InvalidParameter, before GetContainer.
    let message = post(&daemon, &format!("/containers/{id}/kill?signal=999")).error(400);
    assert!(message.contains("999"), "{message}");
    let reply = post_json(
        &daemon,
        "/containers/create?name=stopped",
        r#"{"Image": "busybox", "Cmd": ["true"]}"#,
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    post(&daemon, "/containers/stopped/kill?signal=BOGUS").error(400);
    post(&daemon, "/containers/stopped/kill?signal=999").error(400);
}

#[test]
fn path_traversal_in_ids_and_names_finds_nothing() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let reply = post_json(
        &daemon,
        "/containers/create?name=keep",
        r#"{"Image": "busybox", "Cmd": ["true"]}"#,
    );
    assert_eq!(reply.status, 201, "{}", reply.text());
    let before = listing(&daemon.data_root());
    // Encoded slashes and dots reach the engine as one id; none of them may name a file.
    for id in [
        "%2E%2E",
        "..%2F..%2Fdata",
        "..%2Fcontainers",
        "%2E",
        "%2Fetc%2Fpasswd",
    ] {
        get(&daemon, &format!("/containers/{id}/json")).error(404);
        delete(&daemon, &format!("/containers/{id}?force=1&v=1")).error(404);
    }
    for name in ["..%2F..%2Fimage", "%2E%2E", "..%2Frepositories.json"] {
        get(&daemon, &format!("/images/{name}/json")).client_error();
        delete(&daemon, &format!("/images/{name}?force=1")).client_error();
    }
    assert_eq!(
        listing(&daemon.data_root()),
        before,
        "the data root changed"
    );
    get(&daemon, "/containers/keep/json").ok();
    get(&daemon, "/images/busybox/json").ok();
}

// ---------------------------------------------------------------------------------------------
// Image tags
// ---------------------------------------------------------------------------------------------

#[test]
fn invalid_tag_references_are_400() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    for query in [
        "repo=UPPER&tag=x",
        "repo=Busybox",
        "repo=ok&tag=bad%20tag",
        "repo=ok&tag=bad%21",
        "repo=ok&tag=.dot",
        "repo=ok&tag=-dash",
        &format!("repo=ok&tag={}", "t".repeat(129)),
        "repo=a%2F%2Fb",
        "repo=ok%3A",
        "repo=",
    ] {
        let reply = post(&daemon, &format!("/images/busybox/tag?{query}"));
        reply.error(400);
    }
    // A digest is not a tag target either (dockerd: "refusing to create a tag with a digest
    // reference").
    post(
        &daemon,
        &format!("/images/busybox/tag?repo=ok%40sha256%3A{}", "a".repeat(64)),
    )
    .error(400);
    // Only busybox remains, with its one tag.
    let images = get(&daemon, "/images/json").ok().json();
    let tags: Vec<String> = images
        .as_array()
        .expect("list")
        .iter()
        .flat_map(|i| i["RepoTags"].as_array().cloned().unwrap_or_default())
        .filter_map(|t| t.as_str().map(str::to_string))
        .collect();
    assert_eq!(tags, vec!["busybox:latest"], "{images}");
    // A good one works.
    let reply = post(&daemon, "/images/busybox/tag?repo=ok&tag=v1");
    assert_eq!(reply.status, 201, "{}", reply.text());
}

// ---------------------------------------------------------------------------------------------
// Versions and ping
// ---------------------------------------------------------------------------------------------

#[test]
fn versioned_paths_ping_and_too_new_versions() {
    let daemon = Daemon::start();
    let ping = get(&daemon, "/v1.41/_ping");
    assert_eq!((ping.status, ping.text().as_str()), (200, "OK"));
    let version = get(&daemon, "/v1.47/version");
    let value = version.ok().json();
    assert_eq!(value["ApiVersion"], "1.47", "{value}");
    assert!(value["Version"].is_string(), "{value}");
    assert_eq!(value["Os"], "linux", "{value}");
    // Unversioned too.
    get(&daemon, "/version").ok();

    let message = get(&daemon, "/v1.99/version").error(400);
    assert!(message.contains("too new"), "{message}");
    assert!(message.contains("1.47"), "{message}");
    let message = get(&daemon, "/v1.12/version").error(400);
    assert!(message.contains("too old"), "{message}");
    // A version prefix on a missing path is still a 404, on a known one still works.
    get(&daemon, "/v1.44/containers/nope/json").error(404);
    get(&daemon, "/v1.44/containers/json").ok();

    // HEAD /_ping: the CLI negotiates the version from these headers, without a body.
    let head = request(&daemon.socket, "HEAD", "/_ping", None, b"");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Api-Version"), Some("1.47"));
    assert_eq!(head.header("Ostype"), Some("linux"));
    assert!(head.body.is_empty());
    // Errors carry the version headers as well.
    let error = get(&daemon, "/nope");
    assert_eq!(error.header("Api-Version"), Some("1.47"));
}

// ---------------------------------------------------------------------------------------------
// Hostile and broken layer tars for `POST /images/create?fromSrc=-`
// ---------------------------------------------------------------------------------------------

/// A ustar header for `name` of `kind`, with the name and link name written byte by byte
/// (`Header::set_path` rightly refuses `..` and absolute names, which these tests need).
fn header(name: &str, kind: tar::EntryType, size: u64, link: Option<&str>) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(if kind == tar::EntryType::Directory {
        0o755
    } else {
        0o644
    });
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    let old = header.as_old_mut();
    assert!(name.len() <= old.name.len());
    old.name = [0; 100];
    old.name[..name.len()].copy_from_slice(name.as_bytes());
    if let Some(link) = link {
        assert!(link.len() <= old.linkname.len());
        old.linkname = [0; 100];
        old.linkname[..link.len()].copy_from_slice(link.as_bytes());
    }
    header.set_cksum();
    header
}

/// Appends an entry: its header block and its data padded to 512 bytes.
fn entry(tar: &mut Vec<u8>, header: &tar::Header, data: &[u8]) {
    tar.extend_from_slice(header.as_bytes());
    tar.extend_from_slice(data);
    let pad = (512 - data.len() % 512) % 512;
    tar.extend(std::iter::repeat_n(0u8, pad));
}

fn file(tar: &mut Vec<u8>, name: &str, data: &[u8]) {
    entry(
        tar,
        &header(name, tar::EntryType::Regular, data.len() as u64, None),
        data,
    );
}

fn dir(tar: &mut Vec<u8>, name: &str) {
    entry(tar, &header(name, tar::EntryType::Directory, 0, None), b"");
}

/// The two zero blocks that end an archive.
fn finish(mut tar: Vec<u8>) -> Vec<u8> {
    tar.extend(std::iter::repeat_n(0u8, 1024));
    tar
}

/// A small valid layer, so the store has an image (and its directories) before a bad import.
fn good_layer() -> Vec<u8> {
    let mut tar = Vec::new();
    dir(&mut tar, "etc/");
    file(&mut tar, "etc/hostname", b"good\n");
    file(&mut tar, "hello.txt", b"hello\n");
    finish(tar)
}

/// Every path under `root` (relative, with a trailing `/` for directories), not following
/// symlinks.
fn listing(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let relative = path
                .strip_prefix(root)
                .expect("under root")
                .display()
                .to_string();
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.is_dir() => {
                    out.push(format!("{relative}/"));
                    walk(root, &path, out);
                }
                _ => out.push(relative),
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

fn image_ids(daemon: &Daemon) -> Vec<String> {
    let list = get(daemon, "/images/json?all=1").ok().json();
    let mut ids: Vec<String> = list
        .as_array()
        .expect("image list")
        .iter()
        .filter_map(|i| i["Id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

fn import(daemon: &Daemon, repo: &str, tag: &str, tar: &[u8]) -> Reply {
    request(
        &daemon.socket,
        "POST",
        &format!("/images/create?fromSrc=-&repo={repo}&tag={tag}"),
        Some("application/x-tar"),
        tar,
    )
}

/// The store as a bad import found it.
struct Before {
    images: Vec<String>,
    files: Vec<String>,
}

/// A daemon with one good image imported, and the state before the bad import.
fn daemon_with_good_image() -> (Daemon, Before) {
    let daemon = Daemon::start();
    let reply = import(&daemon, "good", "1", &good_layer());
    reply.ok();
    let status = reply.text();
    assert!(status.contains("sha256:"), "{status}");
    let before = Before {
        images: image_ids(&daemon),
        files: listing(&daemon.data_root().join("image")),
    };
    assert_eq!(before.images.len(), 1, "{:?}", before.images);
    (daemon, before)
}

/// The bad import left no image, no blob, no snapshot and no scratch file behind, and the
/// daemon still serves.
#[track_caller]
fn assert_nothing_left(daemon: &Daemon, before: &Before) {
    assert_alive(daemon);
    assert_eq!(image_ids(daemon), before.images, "a new image appeared");
    let after = listing(&daemon.data_root().join("image"));
    let added: Vec<&String> = after.iter().filter(|p| !before.files.contains(p)).collect();
    let removed: Vec<&String> = before.files.iter().filter(|p| !after.contains(p)).collect();
    assert!(
        added.is_empty() && removed.is_empty(),
        "the data root changed:\nadded: {added:#?}\nremoved: {removed:#?}"
    );
    // The good image is intact and usable.
    get(daemon, "/images/good:1/json").ok();
}

/// Imports `tar` as `bad:1` and expects a 4xx in dockerd's shape with nothing left behind.
#[track_caller]
fn assert_refused(daemon: &Daemon, before: &Before, tar: &[u8]) -> String {
    let message = import(daemon, "bad", "1", tar).client_error();
    get(daemon, "/images/bad:1/json").error(404);
    assert_nothing_left(daemon, before);
    message
}

#[test]
fn import_refuses_parent_dir_entry() {
    let (daemon, before) = daemon_with_good_image();
    // `../evil` from the layer root would land next to the snapshot directory; deeper
    // climbs would reach the host's / (CVE-2018-15664 class, "Zip Slip").
    let name = unique("dotdot");
    let mut tar = Vec::new();
    file(&mut tar, "ok.txt", b"fine\n");
    file(&mut tar, "../evil", b"evil\n");
    file(
        &mut tar,
        &format!("a/../../../../../../../../tmp/{name}"),
        b"evil\n",
    );
    let host = PathBuf::from("/tmp").join(&name);
    let _cleanup = RemoveOnDrop(vec![host.clone()]);
    assert_refused(&daemon, &before, &finish(tar));
    assert!(!host.exists(), "{} was written on the host", host.display());
    // `../evil` relative to any directory of the data root.
    let evil: Vec<String> = listing(daemon.dir.path())
        .into_iter()
        .filter(|p| p.ends_with("evil"))
        .collect();
    assert!(evil.is_empty(), "{evil:?}");
}

#[test]
fn import_contains_absolute_entry() {
    let (daemon, before) = daemon_with_good_image();
    // Docker takes an absolute name relative to the layer root (pkg/archive: "Not the root
    // directory, ensure that the parent directory exists" after cleaning), so the import
    // may succeed, but the file must be inside the layer, never on the host.
    let name = unique("abs");
    let host = PathBuf::from("/").join(&name);
    let _cleanup = RemoveOnDrop(vec![host.clone()]);
    let mut tar = Vec::new();
    file(&mut tar, &format!("/{name}"), b"evil\n");
    let reply = import(&daemon, "abs", "1", &finish(tar));
    assert!(!host.exists(), "{} was written on the host", host.display());
    assert_alive(&daemon);
    if (200..300).contains(&reply.status) {
        // Contained: one new image, whose snapshot holds the file at its root.
        let images = image_ids(&daemon);
        assert_eq!(images.len(), before.images.len() + 1, "{images:?}");
        get(&daemon, "/images/abs:1/json").ok();
        let inside: Vec<String> = listing(&daemon.data_root().join("image"))
            .into_iter()
            .filter(|p| p.ends_with(&name))
            .collect();
        assert_eq!(inside.len(), 1, "{inside:?}");
        // And it is not anywhere else outside the data root of the daemon.
        let outside: Vec<String> = listing(daemon.dir.path())
            .into_iter()
            .filter(|p| p.ends_with(&name) && !p.starts_with("data/image/"))
            .collect();
        assert!(outside.is_empty(), "{outside:?}");
    } else {
        reply.client_error();
        assert_nothing_left(&daemon, &before);
    }
}

#[test]
fn import_refuses_hard_link_to_host_file() {
    let (daemon, before) = daemon_with_good_image();
    // A hard link to /etc/passwd: if the target were resolved on the host, the layer (and
    // anything later written through it) would share the host's inode. The layer has no
    // etc/passwd, so the link names nothing inside it.
    let mut tar = Vec::new();
    dir(&mut tar, "etc/");
    entry(
        &mut tar,
        &header("passwd-link", tar::EntryType::Link, 0, Some("/etc/passwd")),
        b"",
    );
    entry(
        &mut tar,
        &header(
            "passwd-link2",
            tar::EntryType::Link,
            0,
            Some("../../../../etc/passwd"),
        ),
        b"",
    );
    let passwd_before = std::fs::metadata("/etc/passwd").expect("passwd");
    assert_refused(&daemon, &before, &finish(tar));
    let passwd_after = std::fs::metadata("/etc/passwd").expect("passwd");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        passwd_before.nlink(),
        passwd_after.nlink(),
        "/etc/passwd got a new link"
    );
}

#[test]
fn import_refuses_hard_link_escape_alone() {
    let (daemon, before) = daemon_with_good_image();
    // Only the absolute hard link (Docker: the link target is joined to the layer root;
    // with nothing there, the layer is refused).
    let mut tar = Vec::new();
    entry(
        &mut tar,
        &header("passwd-link", tar::EntryType::Link, 0, Some("/etc/passwd")),
        b"",
    );
    assert_refused(&daemon, &before, &finish(tar));
}

#[test]
fn import_does_not_write_through_symlink() {
    let (daemon, before) = daemon_with_good_image();
    // `link -> /tmp/<dir>` then `link/evil`: following the symlink on the host would write
    // /tmp/<dir>/evil (CVE-2018-15664 / CVE-2019-14271 class). The directory exists on the
    // host so that a naive extractor would succeed.
    let host_dir = tempfile::Builder::new()
        .prefix(&unique("symlink"))
        .tempdir_in("/tmp")
        .expect("host dir");
    let target = host_dir.path().display().to_string();
    let mut tar = Vec::new();
    entry(
        &mut tar,
        &header("link", tar::EntryType::Symlink, 0, Some(&target)),
        b"",
    );
    file(&mut tar, "link/evil", b"evil\n");
    let reply = import(&daemon, "bad", "1", &finish(tar));
    let evil = host_dir.path().join("evil");
    assert!(!evil.exists(), "{} was written on the host", evil.display());
    assert_eq!(
        std::fs::read_dir(host_dir.path())
            .expect("host dir")
            .count(),
        0,
        "something was written into {target}"
    );
    reply.client_error();
    get(&daemon, "/images/bad:1/json").error(404);
    assert_nothing_left(&daemon, &before);
}

#[test]
fn import_refuses_relative_symlink_escape() {
    let (daemon, before) = daemon_with_good_image();
    // The same with a relative link that climbs out of the layer.
    let host_dir = tempfile::Builder::new()
        .prefix(&unique("relsymlink"))
        .tempdir_in("/tmp")
        .expect("host dir");
    let target = format!("../../../../../../../../../..{}", host_dir.path().display());
    let mut tar = Vec::new();
    dir(&mut tar, "d/");
    entry(
        &mut tar,
        &header("d/link", tar::EntryType::Symlink, 0, Some(&target)),
        b"",
    );
    file(&mut tar, "d/link/evil", b"evil\n");
    let reply = import(&daemon, "bad", "1", &finish(tar));
    assert_eq!(
        std::fs::read_dir(host_dir.path())
            .expect("host dir")
            .count(),
        0,
        "something was written into {}",
        host_dir.path().display()
    );
    reply.client_error();
    assert_nothing_left(&daemon, &before);
}

#[test]
fn import_refuses_truncated_tar() {
    let (daemon, before) = daemon_with_good_image();
    // A header announcing 4096 bytes followed by 100: the archive ends inside the data.
    let mut tar = Vec::new();
    file(&mut tar, "first.txt", b"complete\n");
    tar.extend_from_slice(header("cut.bin", tar::EntryType::Regular, 4096, None).as_bytes());
    tar.extend(std::iter::repeat_n(b'x', 100));
    assert_refused(&daemon, &before, &tar);
}

#[test]
fn import_refuses_tar_cut_inside_a_header() {
    let (daemon, before) = daemon_with_good_image();
    // The archive ends in the middle of a header block.
    let mut tar = Vec::new();
    file(&mut tar, "first.txt", b"complete\n");
    tar.extend_from_slice(
        &header("second.txt", tar::EntryType::Regular, 5, None).as_bytes()[..300],
    );
    assert_refused(&daemon, &before, &tar);
}

#[test]
fn import_refuses_garbage_size_field() {
    let (daemon, before) = daemon_with_good_image();
    let mut tar = Vec::new();
    file(&mut tar, "first.txt", b"complete\n");
    let mut bad = header("garbage.bin", tar::EntryType::Regular, 5, None);
    bad.as_old_mut().size = *b"zz!!garbage\0";
    bad.set_cksum();
    entry(&mut tar, &bad, b"12345");
    assert_refused(&daemon, &before, &finish(tar));
}

#[test]
fn import_refuses_bad_checksum() {
    let (daemon, before) = daemon_with_good_image();
    let mut tar = Vec::new();
    file(&mut tar, "first.txt", b"complete\n");
    let mut bad = header("bad-sum.txt", tar::EntryType::Regular, 5, None);
    bad.as_old_mut().cksum = *b"0000001\0";
    entry(&mut tar, &bad, b"12345");
    assert_refused(&daemon, &before, &finish(tar));
}

#[test]
fn import_refuses_oversized_size() {
    let (daemon, before) = daemon_with_good_image();
    // A header claiming 64 GiB (octal 01000000000000 is the 12-byte field's maximum, 8 GiB;
    // GNU's base-256 form carries larger sizes) with a few bytes after it: the daemon must
    // not try to allocate or wait for it.
    let mut tar = Vec::new();
    file(&mut tar, "first.txt", b"complete\n");
    let mut huge = header("huge.bin", tar::EntryType::Regular, 0, None);
    let size = &mut huge.as_old_mut().size;
    *size = [0; 12];
    size[0] = 0x80; // base-256 marker
    let value: u64 = 64 << 30;
    size[4..].copy_from_slice(&value.to_be_bytes());
    huge.set_cksum();
    tar.extend_from_slice(huge.as_bytes());
    tar.extend(std::iter::repeat_n(b'y', 2048));
    assert_refused(&daemon, &before, &tar);
}

#[test]
fn import_refuses_oversized_long_name_header() {
    let (daemon, before) = daemon_with_good_image();
    // A GNU long-name extension header ('L') announcing a 1 GiB name: an extractor that reads
    // the name into memory before checking it could be made to allocate without bound; the
    // archive then ends.
    let mut tar = Vec::new();
    file(&mut tar, "first.txt", b"complete\n");
    let mut long = tar::Header::new_gnu();
    long.set_entry_type(tar::EntryType::GNULongName);
    {
        let name = b"././@LongLink";
        let old = long.as_old_mut();
        old.name = [0; 100];
        old.name[..name.len()].copy_from_slice(name);
    }
    long.set_mode(0o644);
    long.set_mtime(0);
    long.set_size(1 << 30);
    long.set_cksum();
    tar.extend_from_slice(long.as_bytes());
    tar.extend(std::iter::repeat_n(b'n', 4096));
    assert_refused(&daemon, &before, &tar);
}

#[test]
fn import_refuses_garbage_stream() {
    let (daemon, before) = daemon_with_good_image();
    // Not a tar (nor gzip/zstd/xz/bzip2) at all.
    let garbage: Vec<u8> = (0..4096u32).map(|i| (i * 7 + 3) as u8).collect();
    assert_refused(&daemon, &before, &garbage);
    // A gzip magic followed by junk.
    let mut gzip = vec![0x1f, 0x8b, 0x08, 0x00];
    gzip.extend(std::iter::repeat_n(0xAB, 600));
    assert_refused(&daemon, &before, &gzip);
}

#[test]
fn daemon_serves_after_all_bad_imports() {
    // All of the above in a row on one daemon, then a good import: no state carried over
    // from a refusal breaks the next import.
    let (daemon, before) = daemon_with_good_image();
    let mut bad = Vec::new();
    let mut tar = Vec::new();
    file(&mut tar, "../evil", b"x");
    bad.push(finish(tar));
    let mut tar = Vec::new();
    entry(
        &mut tar,
        &header("l", tar::EntryType::Link, 0, Some("/etc/passwd")),
        b"",
    );
    bad.push(finish(tar));
    let mut tar = Vec::new();
    tar.extend_from_slice(header("cut", tar::EntryType::Regular, 4096, None).as_bytes());
    tar.extend_from_slice(b"short");
    bad.push(tar);
    for tar in &bad {
        import(&daemon, "bad", "1", tar).client_error();
        assert_nothing_left(&daemon, &before);
    }
    let mut tar = Vec::new();
    file(&mut tar, "second.txt", b"second\n");
    import(&daemon, "good", "2", &finish(tar)).ok();
    assert_eq!(image_ids(&daemon).len(), 2);
}

#[test]
fn chunked_import_bodies_are_read_and_checked() {
    // The docker CLI streams `docker import -` with `Transfer-Encoding: chunked`.
    let (daemon, before) = daemon_with_good_image();
    let mut tar = Vec::new();
    file(&mut tar, "ok.txt", b"fine\n");
    file(&mut tar, "../evil", b"evil\n");
    let tar = finish(tar);
    let chunks: Vec<&[u8]> = tar.chunks(700).collect();
    request_chunked(
        &daemon.socket,
        "POST",
        "/images/create?fromSrc=-&repo=bad&tag=1",
        Some("application/x-tar"),
        &chunks,
    )
    .client_error();
    assert_nothing_left(&daemon, &before);
    // A good layer the same way is imported.
    let mut tar = Vec::new();
    file(&mut tar, "chunked.txt", b"chunked\n");
    let tar = finish(tar);
    let chunks: Vec<&[u8]> = tar.chunks(333).collect();
    let reply = request_chunked(
        &daemon.socket,
        "POST",
        "/images/create?fromSrc=-&repo=chunked&tag=1",
        Some("application/x-tar"),
        &chunks,
    );
    reply.ok();
    get(&daemon, "/images/chunked:1/json").ok();
}

#[test]
fn abandoned_import_upload_leaves_nothing() {
    // The client announces 1 MiB, sends 10 KiB of a valid layer and goes away.
    let (daemon, before) = daemon_with_good_image();
    let mut tar = Vec::new();
    file(&mut tar, "big.bin", &vec![b'z'; 900 * 1024]);
    let tar = finish(tar);
    let path = "/images/create?fromSrc=-&repo=bad&tag=1";
    let mut stream = connect(&daemon.socket, path);
    let mut wire = head("POST", path, Some("application/x-tar"));
    wire.push_str(&format!("Content-Length: {}\r\n\r\n", 1024 * 1024));
    stream.write_all(wire.as_bytes()).expect("write");
    stream.write_all(&tar[..10 * 1024]).expect("write");
    stream.flush().expect("flush");
    drop(stream);
    // The daemon notices the end of the connection on its own time.
    let settled = wait_until(Duration::from_secs(10), || {
        listing(&daemon.data_root().join("image")) == before.files
    });
    assert!(settled, "the data root did not settle back");
    assert_nothing_left(&daemon, &before);
    get(&daemon, "/images/bad:1/json").error(404);
}

#[test]
fn import_with_invalid_reference_or_source_is_400() {
    let (daemon, before) = daemon_with_good_image();
    for query in [
        "fromSrc=-&repo=UPPER&tag=1",
        "fromSrc=-&repo=ok&tag=bad%21",
        "fromSrc=-&repo=ok&changes=BOGUS%20instruction",
        "fromSrc=nope",
        "",
    ] {
        let reply = request(
            &daemon.socket,
            "POST",
            &format!("/images/create?{query}"),
            Some("application/x-tar"),
            &good_layer(),
        );
        reply.client_error();
        assert_nothing_left(&daemon, &before);
    }
}
