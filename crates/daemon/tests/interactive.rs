//! Issue 5, interactive: the real docker CLI (28.x) against berthd under a real pseudo-terminal
//! (not a pipe): `run -it`, `attach`, `exec -it`, resize, detach keys, exit codes; exec options;
//! early output never lost; Docker-style errors for bad input.

mod common;

use std::time::Duration;

use common::terminal::{Terminal, websocket_echo};
use common::{Daemon, http, wait_until};

fn inspect(daemon: &Daemon, format: &str, name: &str) -> String {
    daemon.docker(&["inspect", "-f", format, name]).ok().out()
}

#[test]
fn run_it_types_resizes_detaches_reattaches_and_exits_with_a_code() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let mut terminal = Terminal::spawn(
        &daemon,
        &["run", "-it", "--name", "it", "busybox", "sh"],
        24,
        80,
    );
    terminal.expect(0, "# ");
    terminal.run("echo hi-$((1+2))", "hi-3");
    terminal.run("stty size", "24 80");
    terminal.resize(40, 100);
    // The CLI forwards the new size on SIGWINCH; the shell sees it at its next command.
    let mut seen = false;
    for _ in 0..50 {
        let mark = terminal.mark();
        terminal.send(b"stty size\r");
        std::thread::sleep(Duration::from_millis(200));
        if terminal.since(mark).contains("40 100") {
            seen = true;
            break;
        }
    }
    assert!(seen, "resize not seen: {:?}", terminal.text());
    // ctrl-p ctrl-q: the CLI leaves, the container runs on.
    terminal.send(b"\x10\x11");
    assert_eq!(terminal.wait(), 0, "{:?}", terminal.text());
    assert_eq!(inspect(&daemon, "{{.State.Running}}", "it"), "true");
    // Again with docker attach, then exit with a code.
    let mut again = Terminal::spawn(&daemon, &["attach", "it"], 30, 90);
    std::thread::sleep(Duration::from_millis(300));
    again.run("echo back-$((2+2))", "back-4");
    again.run("stty size", "30 90");
    again.send(b"exit 3\r");
    assert_eq!(again.wait(), 3, "{:?}", again.text());
    assert_eq!(inspect(&daemon, "{{.State.ExitCode}}", "it"), "3");
    daemon.docker(&["rm", "it"]).ok();
}

#[test]
fn run_it_with_custom_detach_keys() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let mut terminal = Terminal::spawn(
        &daemon,
        &[
            "run",
            "-it",
            "--detach-keys",
            "ctrl-a,x",
            "--name",
            "keys",
            "busybox",
            "sh",
        ],
        24,
        80,
    );
    terminal.expect(0, "# ");
    // The default keys are plain input now.
    terminal.run("echo ok-$((5+5))", "ok-10");
    terminal.send(b"\x01x");
    assert_eq!(terminal.wait(), 0, "{:?}", terminal.text());
    assert_eq!(inspect(&daemon, "{{.State.Running}}", "keys"), "true");
    daemon.docker(&["rm", "-f", "keys"]).ok();
}

#[test]
fn exec_it_types_resizes_and_exits_with_a_code() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon
        .docker(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"])
        .ok();
    let mut terminal = Terminal::spawn(&daemon, &["exec", "-it", "box", "sh"], 24, 80);
    terminal.expect(0, "# ");
    terminal.run("echo hi-$((1+2))", "hi-3");
    terminal.run("stty size", "24 80");
    terminal.resize(33, 111);
    let mut seen = false;
    for _ in 0..50 {
        let mark = terminal.mark();
        terminal.send(b"stty size\r");
        std::thread::sleep(Duration::from_millis(200));
        if terminal.since(mark).contains("33 111") {
            seen = true;
            break;
        }
    }
    assert!(seen, "resize not seen: {:?}", terminal.text());
    terminal.run("echo $TERM", "xterm");
    terminal.send(b"exit 5\r");
    assert_eq!(terminal.wait(), 5, "{:?}", terminal.text());
    // Detach from an exec: the session ends, the process runs on. (The docker CLI reports
    // the detach of an exec as the error "read escape sequence", exit code 1, against dockerd
    // too: only `run` and `attach` treat it as success.)
    let mut detached = Terminal::spawn(&daemon, &["exec", "-it", "box", "sh"], 24, 80);
    detached.expect(0, "# ");
    detached.run("sleep 1000 &", "# ");
    detached.send(b"\x10\x11");
    detached.wait();
    detached.expect(0, "read escape sequence");
    let ps = daemon.docker(&["exec", "box", "ps"]);
    assert!(ps.ok().stdout.contains("sleep 1000"), "{}", ps.stdout);
    assert_eq!(inspect(&daemon, "{{.State.Running}}", "box"), "true");
    daemon.docker(&["rm", "-f", "box"]).ok();
}

#[test]
fn exec_user_workdir_env_exit_codes_and_detached() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon
        .docker(&[
            "run",
            "-d",
            "--name",
            "box",
            "-e",
            "FROM_RUN=r",
            "-w",
            "/etc",
            "busybox",
            "sleep",
            "1000",
        ])
        .ok();
    let run = daemon.docker(&["exec", "box", "sh", "-c", "id -u; pwd; echo $FROM_RUN"]);
    assert_eq!(run.ok().stdout, "0\n/etc\nr\n");
    let user = daemon.docker(&["exec", "-u", "nobody", "box", "id", "-u"]);
    assert_eq!(user.ok().out(), "65534");
    let user = daemon.docker(&["exec", "-u", "1234:5678", "box", "id"]);
    assert!(
        user.ok().stdout.contains("uid=1234 gid=5678"),
        "{}",
        user.stdout
    );
    let workdir = daemon.docker(&["exec", "-w", "/tmp", "box", "pwd"]);
    assert_eq!(workdir.ok().out(), "/tmp");
    let env = daemon.docker(&[
        "exec",
        "-e",
        "FOO=bar",
        "-e",
        "FROM_RUN=e",
        "box",
        "sh",
        "-c",
        "echo $FOO $FROM_RUN $HOME",
    ]);
    assert_eq!(env.ok().out(), "bar e /root");
    let stderr = daemon.docker(&["exec", "box", "sh", "-c", "echo out; echo err >&2"]);
    assert_eq!(stderr.ok().stdout, "out\n");
    assert_eq!(stderr.stderr, "err\n");
    // Exit codes as docker reports them.
    assert_eq!(daemon.docker(&["exec", "box", "false"]).code, 1);
    assert_eq!(
        daemon.docker(&["exec", "box", "sh", "-c", "exit 42"]).code,
        42
    );
    let missing = daemon.docker(&["exec", "box", "no-such-program"]);
    // dockerd records 126 for any exec that cannot start, a missing program included.
    assert_eq!(missing.code, 126, "{} {}", missing.stdout, missing.stderr);
    assert!(
        (missing.stdout.clone() + &missing.stderr).contains("no-such-program"),
        "{} {}",
        missing.stdout,
        missing.stderr
    );
    let not_executable = daemon.docker(&["exec", "box", "/etc/passwd"]);
    assert_eq!(
        not_executable.code, 126,
        "{} {}",
        not_executable.stdout, not_executable.stderr
    );
    // exec -d: the command runs on its own; exec with piped stdin.
    daemon
        .docker(&[
            "exec",
            "-d",
            "box",
            "sh",
            "-c",
            "sleep 0.2; echo done > /tmp/detached",
        ])
        .ok();
    assert!(wait_until(Duration::from_secs(10), || daemon
        .docker(&["exec", "box", "cat", "/tmp/detached"])
        .stdout
        == "done\n"));
    let input = daemon.dir.path().join("input.txt");
    std::fs::write(&input, "line one\nline two\n").unwrap();
    let cat = daemon.docker_with_stdin(&["exec", "-i", "box", "cat"], Some(&input));
    assert_eq!(cat.ok().stdout, "line one\nline two\n");
    // ExecIDs lists a running exec; the exec's inspect has its exit code.
    daemon.docker(&["exec", "-d", "box", "sleep", "30"]).ok();
    let ids = inspect(&daemon, "{{len .ExecIDs}}", "box");
    assert_eq!(ids, "1");
    daemon.docker(&["rm", "-f", "box"]).ok();
}

#[test]
fn run_rm_echo_never_loses_early_output() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    for i in 0..200 {
        let run = daemon.docker(&["run", "--rm", "busybox", "echo", "x"]);
        assert_eq!(run.stdout, "x\n", "run {i}: {} {}", run.stdout, run.stderr);
        assert_eq!(run.code, 0, "run {i}: {}", run.stderr);
    }
    assert_eq!(daemon.docker(&["ps", "-aq"]).ok().out(), "");
}

#[test]
fn run_i_echoes_piped_stdin_and_start_a_replays() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let input = daemon.dir.path().join("input.txt");
    let text: String = (0..2000).map(|i| format!("line {i}\n")).collect();
    std::fs::write(&input, &text).unwrap();
    let cat = daemon.docker_with_stdin(&["run", "-i", "--rm", "busybox", "cat"], Some(&input));
    assert_eq!(cat.ok().stdout, text);
    // start -a attaches before the start: the output of an exited container's second run.
    daemon
        .docker(&[
            "create",
            "--name",
            "again",
            "busybox",
            "sh",
            "-c",
            "echo run; exit 7",
        ])
        .ok();
    let first = daemon.docker(&["start", "-a", "again"]);
    assert_eq!(
        (first.code, first.stdout.as_str()),
        (7, "run\n"),
        "{}",
        first.stderr
    );
    let second = daemon.docker(&["start", "-a", "again"]);
    assert_eq!(
        (second.code, second.stdout.as_str()),
        (7, "run\n"),
        "{}",
        second.stderr
    );
    daemon.docker(&["rm", "again"]).ok();
}

#[test]
fn bad_input_gets_docker_errors_and_the_daemon_keeps_serving() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let id = daemon
        .docker(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"])
        .ok()
        .out();
    // Resize of an exec without a TTY.
    let (status, body) = http(
        &daemon,
        "POST",
        "/v1.47/containers/box/exec",
        Some(r#"{"Cmd":["sleep","5"]}"#),
    );
    assert_eq!(status, 201, "{body}");
    let exec: serde_json::Value = serde_json::from_str(&body).unwrap();
    let exec_id = exec["Id"].as_str().unwrap().to_string();
    let (status, body) = http(
        &daemon,
        "POST",
        &format!("/v1.47/exec/{exec_id}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = http(
        &daemon,
        "POST",
        &format!("/v1.47/exec/{exec_id}/resize?h=10&w=10"),
        None,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("TTY"), "{body}");
    // Starting it again: 409.
    let (status, body) = http(
        &daemon,
        "POST",
        &format!("/v1.47/exec/{exec_id}/start"),
        Some(r#"{"Detach":true}"#),
    );
    assert_eq!(status, 409, "{body}");
    // A bad size, a container resize without a TTY.
    let (status, body) = http(
        &daemon,
        "POST",
        "/v1.47/containers/box/resize?h=x&w=1",
        None,
    );
    assert_eq!(status, 400);
    assert!(
        body.contains(r#"strconv.Atoi: parsing \"x\": invalid syntax"#),
        "{body}"
    );
    let (status, body) = http(
        &daemon,
        "POST",
        "/v1.47/containers/box/resize?h=10&w=10",
        None,
    );
    assert_eq!(status, 400, "{body}");
    // Unknown exec ids.
    for (method, path) in [
        ("GET", "/v1.47/exec/nope/json"),
        ("POST", "/v1.47/exec/nope/start"),
        ("POST", "/v1.47/exec/nope/resize?h=1&w=1"),
    ] {
        let (status, body) = http(&daemon, method, path, Some("{}"));
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert!(body.contains("No such exec instance: nope"), "{body}");
    }
    // Exec without a command; bad detach keys.
    let (status, body) = http(
        &daemon,
        "POST",
        "/v1.47/containers/box/exec",
        Some(r#"{"Cmd":[]}"#),
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = http(
        &daemon,
        "POST",
        "/v1.47/containers/box/attach?stream=1&stdout=1&detachKeys=ctrl-%C3%A9",
        None,
    );
    assert_eq!(status, 400, "{body}");
    // Exec in a paused container: dockerd's 409 and message.
    daemon.docker(&["pause", "box"]).ok();
    let (status, body) = http(
        &daemon,
        "POST",
        "/v1.47/containers/box/exec",
        Some(r#"{"Cmd":["true"]}"#),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains("Container box is paused, unpause the container before exec"),
        "{body}"
    );
    daemon.docker(&["unpause", "box"]).ok();
    // Exec in a stopped container: dockerd's 409 and message.
    daemon.docker(&["stop", "-t", "0", "box"]).ok();
    let (status, body) = http(
        &daemon,
        "POST",
        "/v1.47/containers/box/exec",
        Some(r#"{"Cmd":["true"]}"#),
    );
    assert_eq!(status, 409, "{body}");
    assert!(
        body.contains(&format!("container {id} is not running")),
        "{body}"
    );
    let cli = daemon.docker(&["exec", "box", "true"]);
    assert_ne!(cli.code, 0);
    assert!(cli.stderr.contains("is not running"), "{}", cli.stderr);
    // The exec of a removed container is gone too.
    daemon.docker(&["rm", "box"]).ok();
    let (status, _) = http(&daemon, "GET", &format!("/v1.47/exec/{exec_id}/json"), None);
    assert_eq!(status, 404);
    // Still serving.
    daemon.docker(&["version"]).ok();
    let run = daemon.docker(&["run", "--rm", "busybox", "echo", "alive"]);
    assert_eq!(run.ok().out(), "alive");
}

#[test]
fn exec_privileged_has_every_capability() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon
        .docker(&["run", "-d", "--name", "box", "busybox", "sleep", "1000"])
        .ok();
    // Every capability the daemon holds (the test runs as the same root as berthd; this
    // host's root may lack some, e.g. CAP_SYS_RESOURCE in a sandboxed VM).
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let all = status
        .lines()
        .find_map(|l| l.strip_prefix("CapBnd:"))
        .unwrap()
        .trim()
        .to_string();
    let all = all.as_str();
    let caps = daemon.docker(&["exec", "box", "grep", "CapEff", "/proc/self/status"]);
    assert!(!caps.ok().stdout.contains(all), "{}", caps.stdout);
    let caps = daemon.docker(&[
        "exec",
        "--privileged",
        "box",
        "grep",
        "CapEff",
        "/proc/self/status",
    ]);
    assert!(caps.ok().stdout.contains(all), "{}", caps.stdout);
    daemon.docker(&["rm", "-f", "box"]).ok();
}

/// Reads one websocket frame (RFC 6455 section 5.2) sent by the server: (opcode, payload).
#[test]
fn websocket_attach_carries_stdin_and_raw_output() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    daemon
        .docker(&["run", "-d", "-i", "--name", "cat", "busybox", "cat"])
        .ok();
    let mut stream = std::os::unix::net::UnixStream::connect(&daemon.socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    websocket_echo(&mut stream, "cat", b"hello websocket\n");
    drop(stream);
    assert_eq!(inspect(&daemon, "{{.State.Running}}", "cat"), "true");
    daemon.docker(&["rm", "-f", "cat"]).ok();
}
