//! Debian's docker-compose (1.29, python) against berthd: the three-service app of
//! tests/compose (a one-shot job filling a named volume, busybox httpd serving it, a client
//! fetching the page from `web` by service name), `ps`, `logs`, and `down -v` leaving no
//! container, network or volume behind.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Daemon, Run, wait_until};

fn compose(daemon: &Daemon, project: &str, args: &[&str]) -> Run {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/compose/docker-compose.yml");
    let output = Command::new("docker-compose")
        .env("DOCKER_HOST", daemon.host())
        .env("COMPOSE_INTERACTIVE_NO_CLI", "1")
        .arg("-f")
        .arg(&file)
        .args(["-p", project])
        .args(args)
        .output()
        .expect("run docker-compose (Debian's docker-compose package)");
    Run {
        what: format!("docker-compose {}", args.join(" ")),
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[test]
fn compose_app_with_a_named_volume_up_ps_logs_down() {
    let daemon = Daemon::start();
    daemon.import_busybox();
    let project = format!("berthc{}", daemon.net.index);
    compose(&daemon, &project, &["up", "-d"]).ok();
    // The client fetched the page the job wrote into the volume, through `web`'s name.
    let client = format!("{project}_client_1");
    assert!(
        wait_until(Duration::from_secs(60), || {
            daemon
                .docker(&["inspect", "-f", "{{.State.Status}}", &client])
                .out()
                == "exited"
        }),
        "{}",
        compose(&daemon, &project, &["logs"]).stdout
    );
    let exit = daemon
        .docker(&["inspect", "-f", "{{.State.ExitCode}}", &client])
        .ok()
        .out();
    let logs = compose(&daemon, &project, &["logs", "--no-color", "client"]);
    assert_eq!(exit, "0", "{}", logs.stdout);
    assert!(
        logs.ok().stdout.contains("hello-from-a-named-volume"),
        "{}",
        logs.stdout
    );
    let ps = compose(&daemon, &project, &["ps"]);
    let text = ps.ok().stdout.clone();
    assert!(text.contains(&format!("{project}_web_1")), "{text}");
    assert!(text.contains("Up"), "{text}");
    assert!(text.contains("Exit 0"), "{text}");
    let seed = daemon
        .docker(&[
            "inspect",
            "-f",
            "{{.State.ExitCode}}",
            &format!("{project}_seed_1"),
        ])
        .ok()
        .out();
    assert_eq!(seed, "0");
    // What compose made: its network with the service aliases, its volume.
    let networks = daemon
        .docker(&["network", "ls", "--format", "{{.Name}}"])
        .ok()
        .stdout
        .clone();
    assert!(
        networks.contains(&format!("{project}_default")),
        "{networks}"
    );
    let volumes = daemon
        .docker(&["volume", "ls", "--format", "{{.Name}}"])
        .ok()
        .stdout
        .clone();
    assert!(volumes.contains(&format!("{project}_content")), "{volumes}");

    compose(&daemon, &project, &["down", "-v"]).ok();
    assert_eq!(daemon.docker(&["ps", "-aq"]).ok().out(), "");
    let networks = daemon
        .docker(&["network", "ls", "--filter", "type=custom", "-q"])
        .ok()
        .out();
    assert_eq!(networks, "");
    assert_eq!(daemon.docker(&["volume", "ls", "-q"]).ok().out(), "");
}
