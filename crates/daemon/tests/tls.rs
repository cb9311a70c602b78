//! TLS on berthd's tcp:// hosts (dockerd's `--tls`, `--tlsverify`, `--tlscacert`, `--tlscert`,
//! `--tlskey` and daemon.json keys), driven by the real docker CLI (28.x) and by `berth`, with
//! a CA, server and client certificates made here (rcgen), and a second CA's client. Only
//! loopback is used: berthd listens on 127.0.0.1:<free port>.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::terminal::{Terminal, websocket_echo};
use common::{Daemon, Run, docker_cli, output_of, sibling_binary, wait_until};
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls;

/// The certificates of one test, as PEM files:
/// - `ca.pem`: the CA berthd trusts for clients (and the clients for berthd);
/// - `server-cert.pem`, `server-key.pem`: berthd's, for 127.0.0.1 and localhost;
/// - `misnamed-cert.pem`, `misnamed-key.pem`: berthd's too, but for `berth.invalid` only;
/// - `client/{ca,cert,key}.pem`: a client of that CA (a `DOCKER_CERT_PATH` directory);
/// - `other/{ca,cert,key}.pem`: a second CA and a client certificate it signed.
struct Pki {
    dir: tempfile::TempDir,
}

fn new_ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("self-sign the CA");
    (cert.pem(), Issuer::new(params, key))
}

fn new_leaf(
    issuer: &Issuer<'static, KeyPair>,
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let key = KeyPair::generate().expect("key");
    let sans: Vec<String> = sans.iter().map(|s| s.to_string()).collect();
    let mut params = CertificateParams::new(sans).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages.push(usage);
    let cert = params.signed_by(&key, issuer).expect("sign");
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::Builder::new()
            .prefix("berth-tls-")
            .tempdir()
            .expect("tempdir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        let (ca, issuer) = new_ca("berth test CA");
        let (server, server_key) = new_leaf(
            &issuer,
            "berthd",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (misnamed, misnamed_key) = new_leaf(
            &issuer,
            "berthd",
            &["berth.invalid"],
            ExtendedKeyUsagePurpose::ServerAuth,
        );
        let (client, client_key) =
            new_leaf(&issuer, "client", &[], ExtendedKeyUsagePurpose::ClientAuth);
        let (other_ca, other_issuer) = new_ca("another CA");
        let (other, other_key) = new_leaf(
            &other_issuer,
            "stranger",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        );
        write("ca.pem", &ca);
        write("server-cert.pem", &server);
        write("server-key.pem", &server_key);
        write("misnamed-cert.pem", &misnamed);
        write("misnamed-key.pem", &misnamed_key);
        write("client/ca.pem", &ca);
        write("client/cert.pem", &client);
        write("client/key.pem", &client_key);
        write("other/ca.pem", &other_ca);
        write("other/cert.pem", &other);
        write("other/key.pem", &other_key);
        write("garbage.pem", "this is not PEM\n");
        Pki { dir }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// berthd's flags for its own certificate (`server` or `misnamed`).
    fn server_flags(&self, which: &str) -> Vec<String> {
        vec![
            "--tlscacert".into(),
            self.path("ca.pem"),
            "--tlscert".into(),
            self.path(&format!("{which}-cert.pem")),
            "--tlskey".into(),
            self.path(&format!("{which}-key.pem")),
        ]
    }

    /// A client's flags: `--tlscacert`, `--tlscert`, `--tlskey` of directory `who`.
    fn client_flags(&self, who: &str) -> Vec<String> {
        vec![
            "--tlscacert".into(),
            self.path(&format!("{who}/ca.pem")),
            "--tlscert".into(),
            self.path(&format!("{who}/cert.pem")),
            "--tlskey".into(),
            self.path(&format!("{who}/key.pem")),
        ]
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .unwrap()
        .port()
}

/// A berthd on its unix socket and `tcp://127.0.0.1:<free port>` with `flags` (and `config`
/// as daemon.json); returns it with its tcp host.
fn start_tcp(flags: Vec<String>, config: Option<&str>) -> (Daemon, String) {
    let port = free_port();
    let host = format!("tcp://127.0.0.1:{port}");
    let mut args = vec!["-H".to_string(), host.clone()];
    args.extend(flags);
    let daemon = Daemon::start_with_args(config, &args);
    assert!(
        wait_until(Duration::from_secs(10), || TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "berthd does not listen on {host}: {}",
        daemon.log()
    );
    (daemon, host)
}

/// Runs `program` (docker or berth) with only the given daemon-selection environment (any
/// inherited DOCKER_HOST, DOCKER_TLS_VERIFY, BERTH_... removed), an empty docker config
/// directory, and `stdin`.
fn cli(
    program: &Path,
    daemon: &Daemon,
    env: &[(&str, String)],
    args: &[String],
    stdin: Option<&[u8]>,
) -> Run {
    let mut command = Command::new(program);
    for name in [
        "DOCKER_HOST",
        "DOCKER_TLS_VERIFY",
        "DOCKER_TLS",
        "DOCKER_CERT_PATH",
        "BERTH_HOST",
        "BERTH_TLS_VERIFY",
        "BERTH_TLS",
        "BERTH_CERT_PATH",
    ] {
        command.env_remove(name);
    }
    command
        .env("DOCKER_CONFIG", daemon.dir.path().join("docker-config"))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("run the CLI");
    if let Some(bytes) = stdin {
        child.stdin.take().unwrap().write_all(bytes).unwrap();
    }
    let name = program.file_name().unwrap().to_string_lossy();
    output_of(
        format!("{name} {}", args.join(" ")),
        child.wait_with_output().expect("wait for the CLI"),
    )
}

fn strings(parts: &[&[String]], tail: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = parts.iter().flat_map(|p| p.iter().cloned()).collect();
    all.extend(tail.iter().map(|s| s.to_string()));
    all
}

/// docker with `flags` (TLS flags and -H) and then `args`.
fn docker(daemon: &Daemon, flags: &[String], args: &[&str]) -> Run {
    cli(&docker_cli(), daemon, &[], &strings(&[flags], args), None)
}

fn berth(daemon: &Daemon, flags: &[String], args: &[&str]) -> Run {
    cli(
        &sibling_binary("berth"),
        daemon,
        &[],
        &strings(&[flags], args),
        None,
    )
}

#[track_caller]
fn assert_refused(run: &Run, needle: &str) {
    assert_ne!(
        run.code, 0,
        "{} should have failed: {}",
        run.what, run.stdout
    );
    assert!(
        run.stderr.contains(needle),
        "{}: {needle:?} not in {:?}",
        run.what,
        run.stderr
    );
}

fn host_flag(host: &str) -> Vec<String> {
    vec!["-H".into(), host.into()]
}

#[test]
fn docker_cli_runs_containers_over_tls_with_client_certificates() {
    let pki = Pki::new();
    let (daemon, host) = start_tcp(
        strings(&[&pki.server_flags("server")], &["--tlsverify"]),
        None,
    );
    daemon.import_busybox();
    let tls = strings(&[&["--tlsverify".into()], &pki.client_flags("client")], &[]);
    let flags = strings(&[&tls, &host_flag(&host)], &[]);

    let version = docker(&daemon, &flags, &["version"]);
    assert!(
        version.ok().stdout.contains("Client:") && version.stdout.contains("Server: Berth"),
        "{}",
        version.stdout
    );
    // A streamed upload over TLS.
    let tar = daemon.dir.path().join("busybox.tar");
    docker(
        &daemon,
        &flags,
        &["import", &tar.display().to_string(), "over-tls:v1"],
    )
    .ok();
    // Output and exit codes through the hijacked attach connection.
    let run = docker(&daemon, &flags, &["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(run.ok().stdout, "hi\n");
    let failing = docker(
        &daemon,
        &flags,
        &[
            "run",
            "--rm",
            "over-tls:v1",
            "sh",
            "-c",
            "echo out; exit 42",
        ],
    );
    assert_eq!(failing.code, 42, "{}", failing.stderr);
    assert_eq!(failing.stdout, "out\n");
    docker(
        &daemon,
        &flags,
        &["run", "-d", "--name", "box", "busybox", "sleep", "1000"],
    )
    .ok();
    let exec = docker(&daemon, &flags, &["exec", "box", "echo", "from-exec"]);
    assert_eq!(exec.ok().stdout, "from-exec\n");
    // Both directions of a hijacked exec: stdin in, output and exit code back.
    let piped = cli(
        &docker_cli(),
        &daemon,
        &[],
        &strings(&[&flags], &["exec", "-i", "box", "sh"]),
        Some(b"echo piped; exit 7\n"),
    );
    assert_eq!(piped.code, 7, "{}", piped.stderr);
    assert_eq!(piped.stdout, "piped\n");
    // localhost is in the server certificate too.
    let by_name = strings(
        &[&tls, &host_flag(&host.replace("127.0.0.1", "localhost"))],
        &[],
    );
    docker(&daemon, &by_name, &["ps"]).ok();

    // The same through the environment: DOCKER_TLS_VERIFY + DOCKER_CERT_PATH + DOCKER_HOST.
    let env = [
        ("DOCKER_TLS_VERIFY", "1".to_string()),
        ("DOCKER_CERT_PATH", pki.path("client")),
        ("DOCKER_HOST", host.clone()),
    ];
    let via_env = |args: &[&str]| cli(&docker_cli(), &daemon, &env, &strings(&[], args), None);
    assert!(via_env(&["version"]).ok().stdout.contains("Server: Berth"));
    assert_eq!(
        via_env(&["run", "--rm", "busybox", "echo", "env-hi"])
            .ok()
            .stdout,
        "env-hi\n"
    );
    assert_eq!(
        via_env(&["exec", "box", "echo", "env-exec"]).ok().stdout,
        "env-exec\n"
    );
    // Without DOCKER_TLS_VERIFY the CLI speaks plain HTTP, which the TLS port refuses.
    let plain = cli(
        &docker_cli(),
        &daemon,
        &env[1..],
        &strings(&[], &["version"]),
        None,
    );
    assert_refused(&plain, "Client sent an HTTP request to an HTTPS server");
    docker(&daemon, &flags, &["rm", "-f", "box"]).ok();
}

#[test]
fn refused_handshakes_and_silent_clients_leave_the_daemon_serving() {
    let pki = Pki::new();
    let (daemon, host) = start_tcp(
        strings(&[&pki.server_flags("server")], &["--tlsverify"]),
        None,
    );
    let address = host.trim_start_matches("tcp://").to_string();
    // Connections that never finish a handshake: silent, and stalled after one byte of a TLS
    // record. They must not hold up anyone else.
    let silent = TcpStream::connect(&address).unwrap();
    let mut stalled = TcpStream::connect(&address).unwrap();
    stalled.write_all(&[0x16]).unwrap();
    let started = Instant::now();

    let good = strings(
        &[
            &["--tlsverify".into()],
            &pki.client_flags("client"),
            &host_flag(&host),
        ],
        &[],
    );
    docker(&daemon, &good, &["version"]).ok();

    // No client certificate.
    let no_cert = strings(
        &[
            &[
                "--tlsverify".into(),
                "--tlscacert".into(),
                pki.path("client/ca.pem"),
            ],
            &host_flag(&host),
        ],
        &[],
    );
    assert_refused(
        &docker(&daemon, &no_cert, &["version"]),
        "tls: certificate required",
    );
    // A client certificate of another CA (the daemon's own certificate is trusted).
    let stranger = strings(
        &[
            &[
                "--tlsverify".into(),
                "--tlscacert".into(),
                pki.path("client/ca.pem"),
                "--tlscert".into(),
                pki.path("other/cert.pem"),
                "--tlskey".into(),
                pki.path("other/key.pem"),
            ],
            &host_flag(&host),
        ],
        &[],
    );
    assert_refused(
        &docker(&daemon, &stranger, &["version"]),
        "remote error: tls",
    );
    // The client does not trust the daemon's CA.
    let untrusting = strings(
        &[
            &["--tlsverify".into()],
            &pki.client_flags("other"),
            &host_flag(&host),
        ],
        &[],
    );
    assert_refused(
        &docker(&daemon, &untrusting, &["version"]),
        "certificate signed by unknown authority",
    );
    // Plain HTTP on the TLS port: Go's answer, which docker prints.
    assert_refused(
        &docker(&daemon, &host_flag(&host), &["version"]),
        "Client sent an HTTP request to an HTTPS server",
    );
    let mut raw = TcpStream::connect(&address).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    raw.write_all(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    raw.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.0 400 Bad Request"), "{answer:?}");
    // Neither TLS nor HTTP: dropped.
    let mut junk = TcpStream::connect(&address).unwrap();
    junk.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    junk.write_all(b"\x00\x01\x02 junk").unwrap();
    let mut rest = Vec::new();
    let _ = junk.read_to_end(&mut rest);

    // The berth CLI is refused the same ways.
    assert_refused(
        &berth(&daemon, &no_cert, &["version"]),
        "CertificateRequired",
    );
    assert_refused(&berth(&daemon, &untrusting, &["ps"]), "UnknownIssuer");
    // Still serving, over TLS and the unix socket.
    docker(&daemon, &good, &["ps"]).ok();
    berth(&daemon, &good, &["ps"]).ok();
    daemon.docker(&["ps"]).ok();
    // The handshake timeout closes the silent and the stalled connection.
    for (what, mut stream) in [("silent", silent), ("stalled", stalled)] {
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut buffer = [0u8; 64];
        let read = stream.read(&mut buffer);
        assert!(
            matches!(read, Ok(0)) || read.is_err(),
            "{what}: read {read:?}"
        );
    }
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "closed before the handshake timeout"
    );
    // (The connection closes a moment before the line is logged.)
    for line in ["TLS handshake error from 127.0.0.1", "not done after 10s"] {
        assert!(
            wait_until(Duration::from_secs(5), || daemon.log().contains(line)),
            "{line:?} not in {}",
            daemon.log()
        );
    }
    docker(&daemon, &good, &["version"]).ok();
}

#[test]
fn tls_without_verify_takes_clients_without_certificates() {
    let pki = Pki::new();
    // --tls --tlsverify=false, with a certificate that does not name 127.0.0.1.
    let (daemon, host) = start_tcp(
        strings(
            &[&pki.server_flags("misnamed")],
            &["--tls", "--tlsverify=false"],
        ),
        None,
    );
    // docker --tls: no client certificate, and the daemon's is not checked (docker reads
    // the CA file all the same).
    let tls_only = strings(
        &[
            &["--tls".into(), "--tlscacert".into(), pki.path("ca.pem")],
            &host_flag(&host),
        ],
        &[],
    );
    assert!(
        docker(&daemon, &tls_only, &["version"])
            .ok()
            .stdout
            .contains("Server: Berth")
    );
    docker(&daemon, &tls_only, &["ps"]).ok();
    berth(&daemon, &tls_only, &["ps"]).ok();
    // Without any CA file, both CLIs stop before connecting: docker reads the default
    // ca.pem even for --tls.
    let no_ca = strings(&[&host_flag(&host)], &["--tls"]);
    assert_refused(&docker(&daemon, &no_ca, &["ps"]), "ca.pem");
    assert_refused(&berth(&daemon, &no_ca, &["ps"]), "ca.pem");
    // A client certificate is fine too.
    let with_cert = strings(
        &[
            &["--tls".into()],
            &pki.client_flags("client"),
            &host_flag(&host),
        ],
        &[],
    );
    docker(&daemon, &with_cert, &["ps"]).ok();
    // Verifying clients refuse the misnamed certificate.
    let verify = strings(
        &[
            &["--tlsverify".into()],
            &pki.client_flags("client"),
            &host_flag(&host),
        ],
        &[],
    );
    assert_refused(
        &docker(&daemon, &verify, &["version"]),
        "x509: cannot validate certificate for 127.0.0.1",
    );
    assert_refused(
        &berth(&daemon, &verify, &["ps"]),
        "certificate not valid for name \"127.0.0.1\"",
    );
    assert!(
        daemon.log().contains("without --tlsverify"),
        "the daemon warns about unverified clients"
    );
}

#[test]
fn daemon_json_tls_alone_verifies_clients_as_dockerd() {
    let pki = Pki::new();
    // dockerd >= 20.10: "tls" without "tlsverify" verifies clients (tlsverify defaults to tls).
    let config = serde_json::json!({
        "tls": true,
        "tlscacert": pki.path("ca.pem"),
        "tlscert": pki.path("server-cert.pem"),
        "tlskey": pki.path("server-key.pem"),
    })
    .to_string();
    let (daemon, host) = start_tcp(Vec::new(), Some(&config));
    let no_cert = strings(
        &[
            &["--tls".into(), "--tlscacert".into(), pki.path("ca.pem")],
            &host_flag(&host),
        ],
        &[],
    );
    assert_refused(
        &docker(&daemon, &no_cert, &["version"]),
        "tls: certificate required",
    );
    let good = strings(
        &[
            &["--tlsverify".into()],
            &pki.client_flags("client"),
            &host_flag(&host),
        ],
        &[],
    );
    docker(&daemon, &good, &["ps"]).ok();
    drop(daemon);
    // "tlsverify": false in daemon.json turns verification off.
    let config = serde_json::json!({
        "tlsverify": false,
        "tlscert": pki.path("server-cert.pem"),
        "tlskey": pki.path("server-key.pem"),
    })
    .to_string();
    let (daemon, host) = start_tcp(Vec::new(), Some(&config));
    let no_cert = strings(
        &[
            &[
                "--tlsverify".into(),
                "--tlscacert".into(),
                pki.path("ca.pem"),
            ],
            &host_flag(&host),
        ],
        &[],
    );
    docker(&daemon, &no_cert, &["ps"]).ok();
}

/// Starts berthd expecting it to fail; returns its exit code and stderr.
fn berthd_fails(args: &[String], env: &[(&str, String)]) -> (i32, String, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix("berthd-tls-fail-")
        .tempdir()
        .expect("tempdir");
    let data_root = dir.path().join("data");
    let mut command = Command::new(env!("CARGO_BIN_EXE_berthd"));
    command
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .env_remove("DOCKER_CERT_PATH")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .arg("--data-root")
        .arg(&data_root)
        .arg("--exec-root")
        .arg(dir.path().join("run"))
        .arg("--config-file")
        .arg(dir.path().join("none.json"))
        .arg("-H")
        .arg(format!("tcp://127.0.0.1:{}", free_port()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("start berthd");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("berthd {args:?} did not exit");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        !data_root.exists(),
        "berthd {args:?} made its data root before failing"
    );
    (
        status.code().unwrap_or(-1),
        stderr,
        dir.path().to_path_buf(),
    )
}

#[test]
fn bad_certificate_files_stop_berthd_with_one_line() {
    let pki = Pki::new();
    let flags = |verify: &str, cert: &str, key: &str, ca: &str| -> Vec<String> {
        vec![
            verify.to_string(),
            "--tlscacert".into(),
            pki.path(ca),
            "--tlscert".into(),
            pki.path(cert),
            "--tlskey".into(),
            pki.path(key),
        ]
    };
    let cases: Vec<(Vec<String>, String)> = vec![
        (
            flags("--tlsverify", "nope.pem", "server-key.pem", "ca.pem"),
            format!(
                "could not read certificate \"{}\": No such file or directory",
                pki.path("nope.pem")
            ),
        ),
        (
            flags("--tlsverify", "garbage.pem", "server-key.pem", "ca.pem"),
            format!("could not read certificate \"{}\"", pki.path("garbage.pem")),
        ),
        (
            flags("--tlsverify", "server-cert.pem", "client", "ca.pem"),
            format!(
                "could not read key \"{}\": Is a directory",
                pki.path("client")
            ),
        ),
        (
            flags("--tlsverify", "server-cert.pem", "client/key.pem", "ca.pem"),
            format!(
                "the key \"{}\" does not match the certificate \"{}\"",
                pki.path("client/key.pem"),
                pki.path("server-cert.pem")
            ),
        ),
        (
            flags(
                "--tlsverify",
                "server-cert.pem",
                "server-key.pem",
                "nope.pem",
            ),
            format!(
                "could not read CA certificate \"{}\": No such file or directory",
                pki.path("nope.pem")
            ),
        ),
        (
            flags(
                "--tlsverify",
                "server-cert.pem",
                "server-key.pem",
                "garbage.pem",
            ),
            format!(
                "could not read CA certificate \"{}\"",
                pki.path("garbage.pem")
            ),
        ),
    ];
    for (args, expected) in cases {
        let (code, stderr, _) = berthd_fails(&args, &[]);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr:?}");
        assert!(
            stderr.starts_with("Error: invalid TLS configuration: ") && stderr.contains(&expected),
            "{args:?}: {expected:?} not in {stderr:?}"
        );
    }
    // --tls alone verifies clients, so it needs the CA: by default ca.pem in DOCKER_CERT_PATH.
    let empty = tempfile::tempdir().unwrap();
    let (code, stderr, _) = berthd_fails(
        &[
            "--tls".into(),
            "--tlscert".into(),
            pki.path("server-cert.pem"),
            "--tlskey".into(),
            pki.path("server-key.pem"),
        ],
        &[("DOCKER_CERT_PATH", empty.path().display().to_string())],
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "could not read CA certificate \"{}/ca.pem\"",
            empty.path().display()
        )),
        "{stderr}"
    );
}

#[test]
fn berth_cli_over_tls_with_flags_and_environment() {
    let pki = Pki::new();
    let (daemon, host) = start_tcp(
        strings(&[&pki.server_flags("server")], &["--tlsverify"]),
        None,
    );
    daemon.import_busybox();
    let flags = strings(
        &[
            &["--tlsverify".into()],
            &pki.client_flags("client"),
            &host_flag(&host),
        ],
        &[],
    );
    let version = berth(&daemon, &flags, &["version"]);
    assert!(
        version.ok().stdout.contains("Server:"),
        "{}",
        version.stdout
    );
    let run = berth(&daemon, &flags, &["run", "--rm", "busybox", "echo", "hi"]);
    assert_eq!(run.ok().stdout, "hi\n");
    let failing = berth(
        &daemon,
        &flags,
        &["run", "--rm", "busybox", "sh", "-c", "exit 3"],
    );
    assert_eq!(failing.code, 3, "{}", failing.stderr);
    berth(
        &daemon,
        &flags,
        &["run", "-d", "--name", "box", "busybox", "sleep", "1000"],
    )
    .ok();
    assert_eq!(
        berth(&daemon, &flags, &["exec", "box", "echo", "from-exec"])
            .ok()
            .stdout,
        "from-exec\n"
    );
    let piped = cli(
        &sibling_binary("berth"),
        &daemon,
        &[],
        &strings(&[&flags], &["exec", "-i", "box", "sh"]),
        Some(b"echo piped; exit 4\n"),
    );
    assert_eq!(piped.code, 4, "{}", piped.stderr);
    assert_eq!(piped.stdout, "piped\n");
    // Environment: DOCKER_TLS_VERIFY + DOCKER_CERT_PATH + DOCKER_HOST, and the BERTH_ ones.
    for (verify, cert_path, host_var) in [
        ("DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "DOCKER_HOST"),
        ("BERTH_TLS_VERIFY", "BERTH_CERT_PATH", "BERTH_HOST"),
    ] {
        let env = [
            (verify, "1".to_string()),
            (cert_path, pki.path("client")),
            (host_var, host.clone()),
        ];
        let run = cli(
            &sibling_binary("berth"),
            &daemon,
            &env,
            &strings(&[], &["exec", "box", "echo", verify]),
            None,
        );
        assert_eq!(run.ok().stdout, format!("{verify}\n"));
    }
    // A missing CA file stops the CLI before it connects, as docker's "Failed to initialize".
    let missing = berth(
        &daemon,
        &strings(
            &[&host_flag(&host)],
            &["--tlsverify", "--tlscacert", "/nonexistent/ca.pem"],
        ),
        &["ps"],
    );
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.starts_with(
            "Failed to initialize: could not read CA certificate \"/nonexistent/ca.pem\""
        ),
        "{}",
        missing.stderr
    );
    berth(&daemon, &flags, &["rm", "-f", "box"]).ok();
}

/// Reads one websocket frame (RFC 6455 section 5.2) from the server: (opcode, payload).
#[test]
fn terminal_and_websocket_sessions_over_tls() {
    let pki = Pki::new();
    let (daemon, host) = start_tcp(
        strings(&[&pki.server_flags("server")], &["--tlsverify"]),
        None,
    );
    daemon.import_busybox();
    let flags = strings(
        &[
            &["--tlsverify".into()],
            &pki.client_flags("client"),
            &host_flag(&host),
        ],
        &[],
    );
    // docker exec -it under a real terminal, over TLS.
    docker(
        &daemon,
        &flags,
        &["run", "-d", "-i", "--name", "box", "busybox", "cat"],
    )
    .ok();
    let args = strings(&[&flags], &["exec", "-it", "box", "sh"]);
    let mut terminal = Terminal::spawn_with_flags(&daemon, &args, 24, 80);
    terminal.expect(0, "# ");
    terminal.send(b"echo tty-$((6*7)); stty size\r");
    terminal.expect(0, "tty-42");
    terminal.expect(0, "24 80");
    terminal.send(b"exit 5\r");
    assert_eq!(terminal.wait(), 5, "{:?}", terminal.text());

    // The websocket attach (GET /containers/{id}/attach/ws) over TLS with a client
    // certificate: stdin in one masked frame, cat's raw output back.
    let file = |name: &str| pki.dir.path().join(name);
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(file("ca.pem")).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(
        vec![CertificateDer::from_pem_file(file("client/cert.pem")).unwrap()],
        PrivateKeyDer::from_pem_file(file("client/key.pem")).unwrap(),
    )
    .unwrap();
    let connection =
        rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("127.0.0.1").unwrap())
            .unwrap();
    let tcp = TcpStream::connect(host.trim_start_matches("tcp://")).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut stream = rustls::StreamOwned::new(connection, tcp);
    websocket_echo(&mut stream, "box", b"hello over tls\n");
    drop(stream);
    docker(&daemon, &flags, &["rm", "-f", "box"]).ok();
}
