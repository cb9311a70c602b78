//! The real docker CLI (28.x) against berthd for issue 7, storage: named and anonymous
//! volumes, binds, `--mount`, tmpfs, `--volumes-from`, copy-up, `volume
//! create/ls/inspect/rm/prune`, `system df -v`, volume plugins, bind propagation, subpaths,
//! and their bad input (dockerd's statuses and messages, nothing half-made left).

mod common;

use std::path::Path;

use common::{Daemon, http};

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text:?}"))
}

fn message(body: &str) -> String {
    json(body)["message"]
        .as_str()
        .unwrap_or_else(|| panic!("no message in {body:?}"))
        .to_string()
}

/// The volume directories under the daemon's data root (the `_metadata` records aside).
fn volume_dirs(daemon: &Daemon) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(daemon.data_root().join("volumes"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "_metadata")
        .collect();
    names.sort();
    names
}

fn volume_records(daemon: &Daemon) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(daemon.data_root().join("volumes/_metadata"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Mount points of this daemon's tempdir now.
fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|m| m.starts_with(&prefix))
        .map(str::to_string)
        .collect()
}

fn volume_names(daemon: &Daemon, filters: &[&str]) -> Vec<String> {
    let mut args = vec!["volume", "ls", "-q"];
    for filter in filters {
        args.extend(["--filter", filter]);
    }
    let out = daemon.docker(&args).ok().out();
    let mut names: Vec<String> = out.lines().map(str::to_string).collect();
    names.sort();
    names
}

#[test]
fn volume_create_ls_inspect_rm() {
    let d = Daemon::start();
    assert_eq!(d.docker(&["volume", "create", "data"]).ok().out(), "data");
    let inspect = json(&d.docker(&["volume", "inspect", "data"]).ok().stdout);
    let volume = &inspect[0];
    assert_eq!(volume["Name"], "data");
    assert_eq!(volume["Driver"], "local");
    assert_eq!(volume["Scope"], "local");
    assert_eq!(volume["Labels"], serde_json::Value::Null);
    assert_eq!(volume["Options"], serde_json::Value::Null);
    let mountpoint = d.data_root().join("volumes/data/_data");
    assert_eq!(volume["Mountpoint"], mountpoint.display().to_string());
    assert!(mountpoint.is_dir());
    let created = volume["CreatedAt"].as_str().unwrap();
    // RFC 3339 to the second, as dockerd: 2026-01-02T03:04:05Z.
    assert!(
        created.len() == 20 && created.as_bytes()[10] == b'T' && created.ends_with('Z'),
        "{created}"
    );
    // The keys dockerd answers, in its order.
    let keys: Vec<&String> = volume.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "CreatedAt",
            "Driver",
            "Labels",
            "Mountpoint",
            "Name",
            "Options",
            "Scope"
        ]
    );

    d.docker(&[
        "volume",
        "create",
        "--label",
        "tier=db",
        "--label",
        "x",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=2m",
        "labelled",
    ])
    .ok();
    let labelled = json(&d.docker(&["volume", "inspect", "labelled"]).ok().stdout);
    assert_eq!(
        labelled[0]["Labels"],
        serde_json::json!({"tier": "db", "x": ""})
    );
    assert_eq!(
        labelled[0]["Options"],
        serde_json::json!({"device": "tmpfs", "o": "size=2m", "type": "tmpfs"})
    );
    // Creating an existing volume answers it again.
    assert_eq!(d.docker(&["volume", "create", "data"]).ok().out(), "data");

    let table = d.docker(&["volume", "ls"]).ok().out();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["DRIVER", "VOLUME", "NAME"]
    );
    assert_eq!(lines.len(), 3, "{table}");
    let row = d
        .docker(&[
            "volume",
            "ls",
            "--format",
            "{{.Name}} {{.Driver}} {{.Labels}}",
            "-f",
            "label=tier=db",
        ])
        .ok()
        .out();
    // The docker CLI joins the labels in its map's (random) order.
    let (head, labels) = row.rsplit_once(' ').unwrap();
    assert_eq!(head, "labelled local");
    let mut labels: Vec<&str> = labels.split(',').collect();
    labels.sort();
    assert_eq!(labels, ["tier=db", "x="]);
    assert_eq!(volume_names(&d, &["name=dat"]), ["data"]);
    assert_eq!(volume_names(&d, &["driver=local"]), ["data", "labelled"]);
    assert_eq!(volume_names(&d, &["dangling=true"]), ["data", "labelled"]);
    assert_eq!(volume_names(&d, &["label=x"]), ["labelled"]);
    let bad = d.docker(&["volume", "ls", "-f", "bogus=1"]);
    assert_ne!(bad.code, 0);
    assert!(
        bad.stderr.contains("Invalid filter 'bogus'"),
        "{}",
        bad.stderr
    );

    assert_eq!(
        d.docker(&["volume", "rm", "data", "labelled"]).ok().out(),
        "data\nlabelled"
    );
    assert!(!mountpoint.exists());
    assert_eq!(volume_dirs(&d), Vec::<String>::new());
    assert_eq!(volume_records(&d), Vec::<String>::new());
    let missing = d.docker(&["volume", "rm", "data"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("get data: no such volume"),
        "{}",
        missing.stderr
    );
    d.docker(&["volume", "rm", "-f", "data"]).ok();
    let missing = d.docker(&["volume", "inspect", "data"]);
    assert_eq!(missing.code, 1);
    assert!(
        missing.stderr.contains("no such volume"),
        "{}",
        missing.stderr
    );
}

#[test]
fn bad_volume_names_leave_nothing() {
    let d = Daemon::start();
    for (name, expected) in [
        (
            "a/b",
            "\"a/b\" includes invalid characters for a local volume name",
        ),
        (
            "..",
            "\"..\" includes invalid characters for a local volume name",
        ),
        ("../escape", "includes invalid characters"),
        ("x", "volume name is too short"),
    ] {
        let (status, body) = http(
            &d,
            "POST",
            "/v1.47/volumes/create",
            Some(&serde_json::json!({ "Name": name }).to_string()),
        );
        assert_eq!(status, 400, "{name}: {body}");
        let text = message(&body);
        assert!(text.starts_with(&format!("create {name}: ")), "{text}");
        assert!(text.contains(expected), "{name}: {text}");
        let cli = d.docker(&["volume", "create", name]);
        assert_eq!(cli.code, 1, "{name}");
        assert!(cli.stderr.contains(expected), "{}", cli.stderr);
    }
    // A container naming such a volume is refused too, and not created.
    d.import_busybox();
    let run = d.docker(&["run", "--rm", "-v", "a/b:/x", "busybox", "true"]);
    assert_eq!(run.code, 125);
    assert!(
        run.stderr.contains("includes invalid characters"),
        "{}",
        run.stderr
    );
    assert_eq!(volume_dirs(&d), Vec::<String>::new());
    assert_eq!(volume_records(&d), Vec::<String>::new());
    assert!(!d.data_root().parent().unwrap().join("escape").exists());
    assert_eq!(d.docker(&["ps", "-aq"]).ok().out(), "");
    // Bad driver options, and an unknown driver.
    let bad = d.docker(&["volume", "create", "-o", "foo=bar", "opts"]);
    assert!(
        bad.stderr.contains("create opts: invalid option: \"foo\""),
        "{}",
        bad.stderr
    );
    let bad = d.docker(&["volume", "create", "-o", "type=nfs", "opts"]);
    assert!(
        bad.stderr
            .contains("create opts: missing required option: \"device\""),
        "{}",
        bad.stderr
    );
    let (status, body) = http(
        &d,
        "POST",
        "/v1.47/volumes/create",
        Some(r#"{"Name": "opts", "Driver": "nope-not-a-plugin"}"#),
    );
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        message(&body),
        "create opts: error looking up volume plugin nope-not-a-plugin: plugin \"nope-not-a-plugin\" not found"
    );
    assert_eq!(volume_dirs(&d), Vec::<String>::new());
    assert_eq!(volume_records(&d), Vec::<String>::new());
}

#[test]
fn named_volume_data_outlives_containers_and_is_shared() {
    let d = Daemon::start();
    d.import_busybox();
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "shared:/data",
        "busybox",
        "sh",
        "-c",
        "echo first > /data/f",
    ])
    .ok();
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "-v",
            "shared:/data",
            "busybox",
            "cat",
            "/data/f"
        ])
        .ok()
        .out(),
        "first"
    );
    // The named volume was not removed by --rm.
    assert_eq!(volume_names(&d, &[]), ["shared"]);
    // Two running containers see each other's writes.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "writer",
        "-v",
        "shared:/w",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "reader",
        "-v",
        "shared:/r",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    d.docker(&["exec", "writer", "sh", "-c", "echo live > /w/live"])
        .ok();
    assert_eq!(
        d.docker(&["exec", "reader", "cat", "/r/live"]).ok().out(),
        "live"
    );
    // In use: 409 with the ids, with and without force; the data stays.
    let writer = d.docker(&["inspect", "-f", "{{.Id}}", "writer"]).ok().out();
    let reader = d.docker(&["inspect", "-f", "{{.Id}}", "reader"]).ok().out();
    let (status, body) = http(&d, "DELETE", "/v1.47/volumes/shared", None);
    assert_eq!(status, 409, "{body}");
    let text = message(&body);
    assert!(
        text.starts_with("remove shared: volume is in use - ["),
        "{text}"
    );
    assert!(text.contains(&writer) && text.contains(&reader), "{text}");
    for args in [
        &["volume", "rm", "shared"][..],
        &["volume", "rm", "-f", "shared"][..],
    ] {
        let refused = d.docker(args);
        assert_eq!(refused.code, 1);
        assert!(
            refused.stderr.contains("volume is in use"),
            "{}",
            refused.stderr
        );
    }
    assert!(d.data_root().join("volumes/shared/_data/live").is_file());
    // A stopped container still holds its volume, as in dockerd.
    d.docker(&["rm", "-f", "writer"]).ok();
    d.docker(&["stop", "-t", "0", "reader"]).ok();
    let refused = d.docker(&["volume", "rm", "shared"]);
    assert!(refused.stderr.contains(&reader), "{}", refused.stderr);
    // `ps --filter volume=` finds it by name and by destination.
    assert_eq!(
        d.docker(&[
            "ps",
            "-a",
            "--filter",
            "volume=shared",
            "--format",
            "{{.Names}}"
        ])
        .ok()
        .out(),
        "reader"
    );
    assert_eq!(
        d.docker(&[
            "ps",
            "-a",
            "--filter",
            "volume=/r",
            "--format",
            "{{.Names}}"
        ])
        .ok()
        .out(),
        "reader"
    );
    // rm -v never removes a named volume.
    d.docker(&["rm", "-v", "reader"]).ok();
    assert_eq!(volume_names(&d, &[]), ["shared"]);
    d.docker(&["volume", "rm", "shared"]).ok();
    assert_eq!(volume_dirs(&d), Vec::<String>::new());
}

#[test]
fn read_only_volumes_and_binds_reject_writes() {
    let d = Daemon::start();
    d.import_busybox();
    let host = d.dir.path().join("ro-bind");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("seen"), "from host\n").unwrap();
    let bind = format!("{}:/h:ro", host.display());
    let run = d.docker(&[
        "run",
        "--rm",
        "-v",
        "rovol:/v:ro",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "cat /h/seen; touch /v/x || echo volume-refused; touch /h/x || echo bind-refused",
    ]);
    run.ok();
    assert_eq!(run.out(), "from host\nvolume-refused\nbind-refused");
    assert!(
        run.stderr.contains("Read-only file system"),
        "{}",
        run.stderr
    );
    assert!(!host.join("x").exists());
    let mount = d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=rovol,dst=/v,readonly",
        "busybox",
        "touch",
        "/v/y",
    ]);
    assert_eq!(mount.code, 1);
    assert!(
        mount.stderr.contains("Read-only file system"),
        "{}",
        mount.stderr
    );
}

#[test]
fn anonymous_volumes_go_with_rm_v_and_auto_remove_but_named_ones_stay() {
    let d = Daemon::start();
    d.import_busybox();
    // --rm: the anonymous volume goes, the named one stays.
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "/anon",
        "-v",
        "keep:/keep",
        "busybox",
        "sh",
        "-c",
        "echo x > /anon/f",
    ])
    .ok();
    assert_eq!(volume_names(&d, &[]), ["keep"]);
    // Without -v, rm keeps both kinds.
    d.docker(&[
        "create",
        "--name",
        "c1",
        "-v",
        "/anon",
        "-v",
        "keep:/keep",
        "busybox",
        "true",
    ])
    .ok();
    let inspect = json(&d.docker(&["inspect", "c1"]).ok().stdout);
    let mounts = inspect[0]["Mounts"].as_array().unwrap().clone();
    let anonymous = mounts
        .iter()
        .find(|m| m["Destination"] == "/anon")
        .expect("anonymous mount");
    let anonymous_name = anonymous["Name"].as_str().unwrap().to_string();
    assert_eq!(anonymous_name.len(), 64);
    assert_eq!(anonymous["Mode"], "");
    assert_eq!(anonymous["RW"], true);
    let named = mounts.iter().find(|m| m["Destination"] == "/keep").unwrap();
    assert_eq!(named["Name"], "keep");
    assert_eq!(named["Mode"], "z");
    // The anonymous volume carries dockerd's label.
    let labels = json(
        &d.docker(&["volume", "inspect", &anonymous_name])
            .ok()
            .stdout,
    )[0]["Labels"]
        .clone();
    assert_eq!(
        labels,
        serde_json::json!({"com.docker.volume.anonymous": ""})
    );
    d.docker(&["rm", "c1"]).ok();
    assert_eq!(volume_names(&d, &[]), {
        let mut v = vec![anonymous_name.clone(), "keep".to_string()];
        v.sort();
        v
    });
    // rm -v: the anonymous one goes.
    d.docker(&[
        "create",
        "--name",
        "c2",
        "-v",
        "/anon2",
        "-v",
        "keep:/keep",
        "busybox",
        "true",
    ])
    .ok();
    d.docker(&["rm", "-v", "c2"]).ok();
    let mut expected = vec![anonymous_name.clone(), "keep".to_string()];
    expected.sort();
    assert_eq!(volume_names(&d, &[]), expected);
    // --mount without a source is anonymous too.
    d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,dst=/m",
        "busybox",
        "true",
    ])
    .ok();
    assert_eq!(volume_names(&d, &[]), expected);
    // rm -v of a container whose anonymous volume another container uses keeps it.
    d.docker(&[
        "create",
        "--name",
        "owner",
        "-v",
        "/shared-anon",
        "busybox",
        "true",
    ])
    .ok();
    d.docker(&[
        "create",
        "--name",
        "borrower",
        "--volumes-from",
        "owner",
        "busybox",
        "true",
    ])
    .ok();
    d.docker(&["rm", "-v", "owner"]).ok();
    assert_eq!(volume_names(&d, &["dangling=false"]).len(), 1);
    d.docker(&["rm", "-v", "borrower"]).ok();
    assert_eq!(volume_names(&d, &[]), expected);
}

#[test]
fn volumes_from_gives_the_same_mounts() {
    let d = Daemon::start();
    d.import_busybox();
    let host = d.dir.path().join("vf-bind");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("{}:/h", host.display());
    d.docker(&[
        "create",
        "--name",
        "source",
        "-v",
        "vfdata:/data",
        "-v",
        &bind,
        "-v",
        "/anon",
        "busybox",
        "true",
    ])
    .ok();
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "vfdata:/data",
        "busybox",
        "sh",
        "-c",
        "echo shared > /data/f",
    ])
    .ok();
    let out = d
        .docker(&[
            "run",
            "--rm",
            "--volumes-from",
            "source",
            "busybox",
            "sh",
            "-c",
            "cat /data/f; echo b > /h/from-borrower; echo a > /anon/a && echo wrote",
        ])
        .ok()
        .out();
    assert_eq!(out, "shared\nwrote");
    assert!(host.join("from-borrower").is_file());
    // :ro makes every borrowed mount read-only.
    d.docker(&[
        "create",
        "--name",
        "ro-borrower",
        "--volumes-from",
        "source:ro",
        "busybox",
        "true",
    ])
    .ok();
    let source: Vec<serde_json::Value> =
        json(&d.docker(&["inspect", "source"]).ok().stdout)[0]["Mounts"]
            .as_array()
            .unwrap()
            .clone();
    let borrowed: Vec<serde_json::Value> = json(&d.docker(&["inspect", "ro-borrower"]).ok().stdout)
        [0]["Mounts"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(source.len(), 3);
    assert_eq!(borrowed.len(), 3);
    for mount in &source {
        let twin = borrowed
            .iter()
            .find(|m| m["Destination"] == mount["Destination"])
            .expect("same destination");
        assert_eq!(twin["Source"], mount["Source"]);
        assert_eq!(twin["Type"], mount["Type"]);
        assert_eq!(twin["RW"], false);
        assert_eq!(twin["Mode"], "");
    }
    let refused = d.docker(&[
        "run",
        "--rm",
        "--volumes-from",
        "source:ro",
        "busybox",
        "touch",
        "/data/x",
    ]);
    assert_eq!(refused.code, 1);
    assert!(
        refused.stderr.contains("Read-only file system"),
        "{}",
        refused.stderr
    );
    // A missing container, a bad mode.
    let missing = d.docker(&["create", "--volumes-from", "nope", "busybox", "true"]);
    assert!(
        missing.stderr.contains("No such container: nope"),
        "{}",
        missing.stderr
    );
    let bad = d.docker(&["create", "--volumes-from", "source:bad", "busybox", "true"]);
    assert!(bad.stderr.contains("invalid mode: bad"), "{}", bad.stderr);
    assert_eq!(
        d.docker(&["ps", "-aq"]).ok().out().lines().count(),
        2,
        "no container was made by the refused creates"
    );
}

#[test]
fn binds_mounts_and_their_bad_input() {
    let d = Daemon::start();
    d.import_busybox();
    // -v creates a missing host directory.
    let created = d.dir.path().join("made/by/v");
    let bind = format!("{}:/m", created.display());
    d.docker(&[
        "run",
        "--rm",
        "-v",
        &bind,
        "busybox",
        "sh",
        "-c",
        "echo in > /m/f",
    ])
    .ok();
    assert_eq!(std::fs::read_to_string(created.join("f")).unwrap(), "in\n");
    // --mount refuses a missing source, and makes no container.
    let missing = d.dir.path().join("missing");
    let spec = format!("type=bind,source={},target=/x", missing.display());
    let refused = d.docker(&["run", "--rm", "--mount", &spec, "busybox", "true"]);
    assert_eq!(refused.code, 125);
    assert!(
        refused.stderr.contains(&format!(
            "invalid mount config for type \"bind\": bind source path does not exist: {}",
            missing.display()
        )),
        "{}",
        refused.stderr
    );
    assert!(!missing.exists());
    // Unknown --mount keys are refused by the docker CLI before any request.
    let unknown = d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=bind,src=/tmp,dst=/x,foo=bar",
        "busybox",
        "true",
    ]);
    assert_eq!(unknown.code, 125);
    assert!(
        unknown.stderr.contains("unexpected key 'foo'"),
        "{}",
        unknown.stderr
    );
    // The daemon's own checks, through the API.
    for (host_config, status, expected) in [
        (
            serde_json::json!({"Binds": ["/tmp:relative"]}),
            400,
            "invalid volume specification: '/tmp:relative': invalid mount config for type \"bind\": invalid mount path: 'relative' mount path must be absolute",
        ),
        (
            serde_json::json!({"Binds": ["aa:/x", "bb:/x"]}),
            400,
            "Duplicate mount point: /x",
        ),
        (
            serde_json::json!({"Binds": ["v:/x:bogus"]}),
            400,
            "invalid mode: bogus",
        ),
        (
            serde_json::json!({"Mounts": [{"Type": "tmpfs", "Source": "/tmp", "Target": "/x"}]}),
            400,
            "invalid mount config for type \"tmpfs\": field Source must not be specified",
        ),
        (
            serde_json::json!({"Mounts": [{"Type": "bind", "Target": "/x"}]}),
            400,
            "invalid mount config for type \"bind\": field Source must not be empty",
        ),
        (
            serde_json::json!({"Binds": ["okvol:/a"], "Mounts": [{"Type": "bind", "Source": missing.display().to_string(), "Target": "/b"}]}),
            400,
            "bind source path does not exist",
        ),
    ] {
        let body =
            serde_json::json!({"Image": "busybox", "Cmd": ["true"], "HostConfig": host_config});
        let (got, answer) = http(
            &d,
            "POST",
            "/v1.47/containers/create",
            Some(&body.to_string()),
        );
        assert_eq!(got, status, "{body}: {answer}");
        let text = message(&answer);
        assert!(text.contains(expected), "{text}");
    }
    assert_eq!(d.docker(&["ps", "-aq"]).ok().out(), "");
    // Nothing half-made: the volumes named by refused creates were removed again.
    assert_eq!(volume_names(&d, &[]), Vec::<String>::new());
    assert_eq!(volume_dirs(&d), Vec::<String>::new());
    // --mount with every kind and key.
    let source = d.dir.path().join("mount-src");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::write(source.join("f"), "bound\n").unwrap();
    let bind = format!(
        "type=bind,src={},dst=/b,readonly,bind-propagation=rprivate",
        source.display()
    );
    let out = d
        .docker(&[
            "run", "--rm", "--mount", &bind, "--mount",
            "type=volume,src=mvol,dst=/v,volume-nocopy,volume-opt=type=tmpfs,volume-opt=device=tmpfs",
            "--mount", "type=tmpfs,dst=/t,tmpfs-size=1m,tmpfs-mode=1770", "busybox", "sh", "-c",
            "cat /b/f; grep -E ' /(v|t) ' /proc/mounts | cut -d' ' -f2,3,4; stat -c %a /t",
        ])
        .ok()
        .out();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bound");
    assert!(lines.iter().any(|l| l.starts_with("/v tmpfs")), "{out}");
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("/t tmpfs") && l.contains("size=1024k")),
        "{out}"
    );
    assert_eq!(*lines.last().unwrap(), "1770");
    let options = json(&d.docker(&["volume", "inspect", "mvol"]).ok().stdout)[0]["Options"].clone();
    assert_eq!(
        options,
        serde_json::json!({"type": "tmpfs", "device": "tmpfs"})
    );
    assert!(
        mounts_under(d.dir.path()).is_empty(),
        "{:?}",
        mounts_under(d.dir.path())
    );
}

#[test]
fn inspect_mounts_as_dockerd_fills_them() {
    let d = Daemon::start();
    d.import_busybox();
    let host = d.dir.path().join("ins-bind");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("{}:/h:ro", host.display());
    let mount = format!(
        "type=bind,src={},dst=/h2,bind-propagation=rslave",
        d.dir.path().display()
    );
    d.docker(&[
        "create",
        "--name",
        "ins",
        "-v",
        "named:/n",
        "-v",
        &bind,
        "--mount",
        &mount,
        "--mount",
        "type=tmpfs,dst=/t",
        "--tmpfs",
        "/not-listed",
        "busybox",
        "true",
    ])
    .ok();
    let mounts = json(
        &d.docker(&["inspect", "-f", "{{json .Mounts}}", "ins"])
            .ok()
            .stdout,
    );
    let by_destination = |destination: &str| {
        mounts
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["Destination"] == destination)
            .unwrap_or_else(|| panic!("no {destination} in {mounts}"))
            .clone()
    };
    assert_eq!(
        by_destination("/n"),
        serde_json::json!({
            "Type": "volume", "Name": "named",
            "Source": d.data_root().join("volumes/named/_data").display().to_string(),
            "Destination": "/n", "Driver": "local", "Mode": "z", "RW": true, "Propagation": ""
        })
    );
    assert_eq!(
        by_destination("/h"),
        serde_json::json!({
            "Type": "bind", "Source": host.display().to_string(), "Destination": "/h",
            "Mode": "ro", "RW": false, "Propagation": "rprivate"
        })
    );
    assert_eq!(by_destination("/h2")["Propagation"], "rslave");
    assert_eq!(
        by_destination("/t"),
        serde_json::json!({
            "Type": "tmpfs", "Source": "", "Destination": "/t", "Mode": "", "RW": true,
            "Propagation": ""
        })
    );
    // --tmpfs lives in HostConfig.Tmpfs, not in Mounts (as in dockerd).
    assert_eq!(mounts.as_array().unwrap().len(), 4);
    // The bind of a parent of the data root defaults to rslave.
    let parent = format!("{}:/p", d.dir.path().display());
    d.docker(&["create", "--name", "par", "-v", &parent, "busybox", "true"])
        .ok();
    let mounts = json(
        &d.docker(&["inspect", "-f", "{{json .Mounts}}", "par"])
            .ok()
            .stdout,
    );
    assert_eq!(mounts[0]["Propagation"], "rslave");
    d.docker(&["start", "-a", "par"]).ok();
}

#[test]
fn tmpfs_is_memory_backed_and_gone_after_stop() {
    let d = Daemon::start();
    d.import_busybox();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "tm",
        "--tmpfs",
        "/scratch:size=2m,mode=700",
        "--mount",
        "type=tmpfs,dst=/m",
        "busybox",
        "sleep",
        "300",
    ])
    .ok();
    // tmpfs's magic number (linux/magic.h TMPFS_MAGIC).
    assert_eq!(
        d.docker(&["exec", "tm", "stat", "-f", "-c", "%t", "/scratch"])
            .ok()
            .out(),
        "1021994"
    );
    assert_eq!(
        d.docker(&["exec", "tm", "stat", "-f", "-c", "%t", "/m"])
            .ok()
            .out(),
        "1021994"
    );
    assert_eq!(
        d.docker(&["exec", "tm", "stat", "-c", "%a", "/scratch"])
            .ok()
            .out(),
        "700"
    );
    d.docker(&[
        "exec",
        "tm",
        "sh",
        "-c",
        "echo kept-in-memory > /scratch/f; echo m > /m/f",
    ])
    .ok();
    assert_eq!(
        d.docker(&["exec", "tm", "cat", "/scratch/f"]).ok().out(),
        "kept-in-memory"
    );
    // 2m is the limit.
    let full = d.docker(&[
        "exec",
        "tm",
        "dd",
        "if=/dev/zero",
        "of=/scratch/big",
        "bs=1M",
        "count=3",
    ]);
    assert_ne!(full.code, 0);
    assert!(
        full.stderr.contains("No space left on device"),
        "{}",
        full.stderr
    );
    d.docker(&["stop", "-t", "0", "tm"]).ok();
    d.docker(&["start", "tm"]).ok();
    assert_eq!(
        d.docker(&["exec", "tm", "ls", "-A", "/scratch", "/m"])
            .ok()
            .out(),
        "/m:\n\n/scratch:"
    );
    // The content never reached the container's writable layer on disk.
    let found = std::process::Command::new("grep")
        .args(["-r", "-l", "kept-in-memory"])
        .arg(d.data_root())
        .output()
        .unwrap();
    assert!(
        found.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&found.stdout)
    );
}

#[test]
fn image_content_is_copied_up_into_new_volumes() {
    let d = Daemon::start();
    d.import_busybox();
    // busybox's /etc has passwd and group: they appear in a new volume, with their modes.
    let listing = d
        .docker(&["run", "--rm", "-v", "etcvol:/etc", "busybox", "ls", "/etc"])
        .ok()
        .out();
    assert!(listing.lines().any(|l| l == "passwd"), "{listing}");
    let on_disk = d.data_root().join("volumes/etcvol/_data/passwd");
    assert!(on_disk.is_file());
    // Only into an empty volume: later content is kept.
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "etcvol:/etc",
        "busybox",
        "sh",
        "-c",
        "echo mine > /etc/passwd",
    ])
    .ok();
    d.docker(&["run", "--rm", "-v", "etcvol:/etc", "busybox", "true"])
        .ok();
    assert_eq!(std::fs::read_to_string(&on_disk).unwrap(), "mine\n");
    // nocopy, and --mount volume-nocopy, leave it empty.
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "-v",
            "empty1:/etc:nocopy",
            "busybox",
            "ls",
            "-A",
            "/etc"
        ])
        .ok()
        .out(),
        ""
    );
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=empty2,dst=/etc,volume-nocopy",
            "busybox",
            "ls",
            "-A",
            "/etc"
        ])
        .ok()
        .out(),
        ""
    );
    // Anonymous volumes get the copy too; a bind never does.
    assert!(
        d.docker(&["run", "--rm", "-v", "/etc", "busybox", "ls", "/etc"])
            .ok()
            .out()
            .contains("passwd")
    );
    let host = d.dir.path().join("bind-etc");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("{}:/etc", host.display());
    d.docker(&["run", "--rm", "-v", &bind, "busybox", "true"])
        .ok();
    assert_eq!(std::fs::read_dir(&host).unwrap().count(), 0);
}

#[test]
fn volume_prune_and_system_df() {
    let d = Daemon::start();
    d.import_busybox();
    d.docker(&["volume", "create", "named-unused"]).ok();
    d.docker(&["volume", "create", "--label", "keep=yes", "named-kept"])
        .ok();
    d.docker(&[
        "create",
        "--name",
        "user",
        "-v",
        "named-used:/u",
        "-v",
        "/anon-used",
        "busybox",
        "true",
    ])
    .ok();
    d.docker(&[
        "create",
        "--name",
        "gone",
        "-v",
        "/anon-unused",
        "busybox",
        "true",
    ])
    .ok();
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "named-unused:/x",
        "busybox",
        "sh",
        "-c",
        "head -c 5000 /dev/zero > /x/f",
    ])
    .ok();
    d.docker(&["rm", "gone"]).ok();
    let all_before = volume_names(&d, &[]);
    assert_eq!(all_before.len(), 5, "{all_before:?}");
    // system df -v: sizes and links.
    let df = d.docker(&["system", "df", "-v"]).ok().out();
    let section = df.split("Local Volumes space usage:").nth(1).unwrap();
    let row = |name: &str| {
        section
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no {name} in {df}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<String>>()
    };
    assert_eq!(row("named-unused"), ["named-unused", "0", "5kB"]);
    assert_eq!(row("named-used"), ["named-used", "1", "0B"]);
    let summary = d
        .docker(&[
            "system",
            "df",
            "--format",
            "{{.Type}} {{.TotalCount}} {{.Active}}",
        ])
        .ok()
        .out();
    assert!(
        summary.lines().any(|l| l == "Local Volumes 5 2"),
        "{summary}"
    );
    let (_, raw) = http(&d, "GET", "/v1.47/system/df", None);
    let volumes = json(&raw)["Volumes"].clone();
    let used = volumes
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["Name"] == "named-used")
        .unwrap();
    assert_eq!(
        used["UsageData"],
        serde_json::json!({"RefCount": 1, "Size": 0})
    );
    // Default prune: unused anonymous volumes only (API >= 1.42).
    let out = d.docker(&["volume", "prune", "-f"]).ok().out();
    assert!(out.starts_with("Deleted Volumes:\n"), "{out}");
    assert_eq!(volume_names(&d, &[]).len(), 4);
    // --all takes unused named ones too, except those the label filter keeps.
    let out = d
        .docker(&["volume", "prune", "-f", "--all", "--filter", "label!=keep"])
        .ok()
        .out();
    assert!(out.contains("named-unused"), "{out}");
    assert!(out.contains("Total reclaimed space: 5kB"), "{out}");
    let mut left = volume_names(&d, &[]);
    left.retain(|n| n.len() != 64);
    assert_eq!(left, ["named-kept", "named-used"]);
    // API 1.41 prunes named volumes without `all`.
    let (status, body) = http(&d, "POST", "/v1.41/volumes/prune", None);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body)["VolumesDeleted"],
        serde_json::json!(["named-kept"])
    );
    let (status, body) = http(
        &d,
        "POST",
        "/v1.47/volumes/prune?filters=%7B%22name%22%3A%5B%22x%22%5D%7D",
        None,
    );
    assert_eq!(status, 400);
    assert_eq!(message(&body), "Invalid filter 'name'");
    // In use: nothing to prune.
    let (_, body) = http(
        &d,
        "POST",
        "/v1.47/volumes/prune?filters=%7B%22all%22%3A%5B%22true%22%5D%7D",
        None,
    );
    assert_eq!(json(&body)["VolumesDeleted"], serde_json::Value::Null);
    assert_eq!(volume_names(&d, &[]).len(), 2);
    d.docker(&["rm", "-v", "user"]).ok();
    assert_eq!(volume_names(&d, &[]), ["named-used"]);
}

/// A volume plugin speaking Docker's protocol, written for these tests: a threaded HTTP
/// server on a unix socket that keeps its volumes as directories under a base directory and
/// logs every call (one JSON line per call) for the test to check. `MODE` makes it misbehave:
/// `hang` never answers, `garbage` answers what is not JSON, `hang-create` activates but
/// never answers Create.
const PLUGIN: &str = r#"
import json, os, socketserver, sys, threading, time
from http.server import BaseHTTPRequestHandler

SOCKET, BASE, LOG, MODE = sys.argv[1:5]
volumes = {}
lock = threading.Lock()

def log(entry):
    with lock, open(LOG, "a") as f:
        f.write(json.dumps(entry) + "\n")

class Handler(BaseHTTPRequestHandler):
    def address_string(self):
        return "plugin"

    def log_message(self, *args):
        pass

    def answer(self, body, status=200):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.docker.plugins.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        request = json.loads(raw) if raw.strip() else None
        method = self.path.lstrip("/")
        log({"method": method, "request": request})
        if MODE == "hang" or (MODE == "hang-create" and method == "VolumeDriver.Create"):
            time.sleep(3600)
        if MODE == "garbage":
            return self.answer(b"<html>this is not json</html>")
        if method == "Plugin.Activate":
            return self.answer({"Implements": ["VolumeDriver"]})
        if method == "VolumeDriver.Capabilities":
            return self.answer({"Capabilities": {"Scope": "local"}})
        name = (request or {}).get("Name", "")
        path = os.path.join(BASE, name)
        if method == "VolumeDriver.Create":
            if (request.get("Opts") or {}).get("fail"):
                return self.answer({"Err": "testplugin refuses: " + request["Opts"]["fail"]})
            os.makedirs(path, exist_ok=True)
            volumes[name] = request.get("Opts") or {}
            return self.answer({"Err": ""})
        if name not in volumes and method not in ("VolumeDriver.List",):
            return self.answer({"Err": "no such volume " + name})
        if method == "VolumeDriver.Remove":
            del volumes[name]
            os.rmdir(path) if not os.listdir(path) else None
            return self.answer({"Err": ""})
        if method in ("VolumeDriver.Mount", "VolumeDriver.Path"):
            return self.answer({"Mountpoint": path, "Err": ""})
        if method == "VolumeDriver.Unmount":
            return self.answer({"Err": ""})
        if method == "VolumeDriver.Get":
            return self.answer({"Volume": {"Name": name, "Mountpoint": path,
                                           "Status": {"opts": volumes[name]}}, "Err": ""})
        if method == "VolumeDriver.List":
            return self.answer({"Volumes": [{"Name": n, "Mountpoint": os.path.join(BASE, n)}
                                            for n in volumes], "Err": ""})
        return self.answer({"Err": "unknown method " + method}, 404)

class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

if os.path.exists(SOCKET):
    os.unlink(SOCKET)
Server(SOCKET, Handler).serve_forever()
"#;

/// A running test plugin; killed (and its socket removed) on drop.
struct Plugin {
    child: std::process::Child,
    socket: std::path::PathBuf,
    log: std::path::PathBuf,
    base: std::path::PathBuf,
}

impl Plugin {
    /// Starts plugin `name` in `mode` with its socket in `dir` (the daemon's plugin dir).
    fn start(dir: &Path, name: &str, mode: &str) -> Plugin {
        let script = dir.join(format!("{name}.py"));
        std::fs::write(&script, PLUGIN).unwrap();
        let socket = dir.join(format!("{name}.sock"));
        let log = dir.join(format!("{name}.log"));
        let base = dir.join(format!("{name}-volumes"));
        std::fs::create_dir_all(&base).unwrap();
        let child = std::process::Command::new("python3")
            .arg(&script)
            .arg(&socket)
            .arg(&base)
            .arg(&log)
            .arg(mode)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("python3");
        assert!(
            common::wait_until(std::time::Duration::from_secs(10), || socket.exists()),
            "plugin {name} did not listen"
        );
        Plugin {
            child,
            socket,
            log,
            base,
        }
    }

    /// The calls made so far: (method, request).
    fn calls(&self) -> Vec<(String, serde_json::Value)> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| {
                let v = json(l);
                (
                    v["method"].as_str().unwrap().to_string(),
                    v["request"].clone(),
                )
            })
            .collect()
    }

    fn methods(&self) -> Vec<String> {
        self.calls().into_iter().map(|(m, _)| m).collect()
    }
}

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// A daemon looking for plugins in `plugins` only, with a 2 s deadline per call.
fn daemon_with_plugins(plugins: &Path) -> Daemon {
    Daemon::start_with_config(
        &serde_json::json!({
            "plugin-dirs": [plugins.display().to_string()],
            "plugin-timeout": 2,
        })
        .to_string(),
    )
}

#[test]
fn a_plugin_serves_volumes_end_to_end() {
    let plugins = tempfile::Builder::new()
        .prefix("berth-plugins-")
        .tempdir()
        .unwrap();
    let plugin = Plugin::start(plugins.path(), "testplugin", "serve");
    let d = daemon_with_plugins(plugins.path());
    d.import_busybox();
    assert_eq!(
        d.docker(&[
            "volume",
            "create",
            "-d",
            "testplugin",
            "-o",
            "speed=fast",
            "pv1"
        ])
        .ok()
        .out(),
        "pv1"
    );
    let methods = plugin.methods();
    assert_eq!(methods[0], "Plugin.Activate");
    let create = plugin
        .calls()
        .into_iter()
        .find(|(m, _)| m == "VolumeDriver.Create")
        .unwrap();
    assert_eq!(
        create.1,
        serde_json::json!({"Name": "pv1", "Opts": {"speed": "fast"}})
    );
    // Listed and inspected, with the plugin's mount point and status.
    assert_eq!(
        d.docker(&["volume", "ls", "--format", "{{.Driver}} {{.Name}}"])
            .ok()
            .out(),
        "testplugin pv1"
    );
    let inspect = json(&d.docker(&["volume", "inspect", "pv1"]).ok().stdout)[0].clone();
    assert_eq!(inspect["Driver"], "testplugin");
    assert_eq!(
        inspect["Mountpoint"],
        plugin.base.join("pv1").display().to_string()
    );
    assert_eq!(
        inspect["Status"],
        serde_json::json!({"opts": {"speed": "fast"}})
    );
    assert_eq!(inspect["Scope"], "local");
    assert_eq!(inspect["Options"], serde_json::json!({"speed": "fast"}));
    // Containers write through the plugin's mount point and read it back.
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "pv1:/data",
        "busybox",
        "sh",
        "-c",
        "echo via-plugin > /data/f",
    ])
    .ok();
    assert_eq!(
        std::fs::read_to_string(plugin.base.join("pv1/f")).unwrap(),
        "via-plugin\n"
    );
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "-v",
            "pv1:/data:ro",
            "busybox",
            "cat",
            "/data/f"
        ])
        .ok()
        .out(),
        "via-plugin"
    );
    // Every Mount was matched by an Unmount with the same ID.
    let calls = plugin.calls();
    let ids = |method: &str| -> Vec<String> {
        let mut ids: Vec<String> = calls
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, r)| r["ID"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        ids
    };
    assert_eq!(ids("VolumeDriver.Mount").len(), 2);
    assert_eq!(ids("VolumeDriver.Mount"), ids("VolumeDriver.Unmount"));
    // --volume-driver and --mount volume-driver create through the plugin too.
    d.docker(&[
        "run",
        "--rm",
        "--volume-driver",
        "testplugin",
        "-v",
        "pv2:/d",
        "busybox",
        "true",
    ])
    .ok();
    d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=pv3,dst=/d,volume-driver=testplugin,volume-opt=size=1",
        "busybox",
        "true",
    ])
    .ok();
    assert_eq!(
        d.docker(&["volume", "ls", "-q", "--filter", "driver=testplugin"])
            .ok()
            .out(),
        "pv1\npv2\npv3"
    );
    // The plugin's own refusal is the error, and nothing is recorded.
    let refused = d.docker(&[
        "volume",
        "create",
        "-d",
        "testplugin",
        "-o",
        "fail=no-room",
        "pv4",
    ]);
    assert_eq!(refused.code, 1);
    assert!(
        refused
            .stderr
            .contains("create pv4: testplugin refuses: no-room"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        d.docker(&["volume", "ls", "-q"]).ok().out().lines().count(),
        3
    );
    // In use protection holds for plugin volumes; rm asks the plugin to remove.
    d.docker(&[
        "create", "--name", "holder", "-v", "pv2:/d", "busybox", "true",
    ])
    .ok();
    let busy = d.docker(&["volume", "rm", "pv2"]);
    assert!(busy.stderr.contains("volume is in use"), "{}", busy.stderr);
    d.docker(&["rm", "holder"]).ok();
    d.docker(&["volume", "rm", "pv1", "pv2", "pv3"]).ok();
    assert!(
        plugin
            .methods()
            .iter()
            .filter(|m| *m == "VolumeDriver.Remove")
            .count()
            == 3
    );
    assert_eq!(d.docker(&["volume", "ls", "-q"]).ok().out(), "");
    // A spec file names a plugin by its socket's URL.
    std::fs::write(
        plugins.path().join("specplugin.spec"),
        format!("unix://{}\n", plugin.socket.display()),
    )
    .unwrap();
    d.docker(&["volume", "create", "-d", "specplugin", "sv"])
        .ok();
    assert_eq!(
        d.docker(&["volume", "inspect", "-f", "{{.Driver}}", "sv"])
            .ok()
            .out(),
        "specplugin"
    );
    d.docker(&["volume", "rm", "sv"]).ok();
    // The records survive a daemon restart, and the plugin is found again.
    d.docker(&["volume", "create", "-d", "testplugin", "kept"])
        .ok();
    // The same name with another driver is a conflict (the docker CLI asks for `local`).
    let conflict = d.docker(&["volume", "create", "kept"]);
    assert!(
        conflict.stderr.contains(
            "create kept: driver 'testplugin' already has volume 'kept': volume name must be unique"
        ),
        "{}",
        conflict.stderr
    );
    let mut d = d;
    d.restart();
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "-v",
            "kept:/k",
            "busybox",
            "sh",
            "-c",
            "echo again > /k/f; cat /k/f"
        ])
        .ok()
        .out(),
        "again"
    );
    d.docker(&["volume", "rm", "kept"]).ok();
}

#[test]
fn a_plugin_that_hangs_or_answers_garbage_fails_cleanly() {
    let plugins = tempfile::Builder::new()
        .prefix("berth-plugins-")
        .tempdir()
        .unwrap();
    let _hang = Plugin::start(plugins.path(), "hangplugin", "hang");
    let _garbage = Plugin::start(plugins.path(), "garbageplugin", "garbage");
    let _slow_create = Plugin::start(plugins.path(), "slowcreate", "hang-create");
    let d = daemon_with_plugins(plugins.path());
    d.import_busybox();
    for (plugin, expected) in [
        (
            "hangplugin",
            "create hv: error looking up volume plugin hangplugin: Plugin.Activate: plugin \"hangplugin\" did not answer within 2s",
        ),
        (
            "garbageplugin",
            "create hv: error looking up volume plugin garbageplugin: Plugin.Activate: invalid answer from plugin \"garbageplugin\"",
        ),
        (
            "slowcreate",
            "create hv: VolumeDriver.Create: plugin \"slowcreate\" did not answer within 2s",
        ),
    ] {
        let started = std::time::Instant::now();
        let failed = d.docker(&["volume", "create", "-d", plugin, "hv"]);
        assert_eq!(failed.code, 1, "{plugin}");
        assert!(
            failed.stderr.contains(expected),
            "{plugin}: {}",
            failed.stderr
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        // The daemon keeps serving, and nothing was recorded.
        assert_eq!(d.docker(&["volume", "ls", "-q"]).ok().out(), "");
        d.docker(&["version"]).ok();
        // A container naming such a volume is not created either.
        let run = d.docker(&[
            "create",
            "--volume-driver",
            plugin,
            "-v",
            "hv2:/x",
            "busybox",
            "true",
        ]);
        assert_ne!(run.code, 0, "{plugin}");
        assert_eq!(d.docker(&["ps", "-aq"]).ok().out(), "");
    }
    // Meanwhile other requests were answered: a hanging plugin holds no lock of others.
    let hang_started = std::time::Instant::now();
    let slow = std::thread::spawn({
        let socket = d.socket.clone();
        move || {
            let mut stream = std::os::unix::net::UnixStream::connect(socket).unwrap();
            std::io::Write::write_all(
                &mut stream,
                b"POST /v1.47/volumes/create HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n{\"Name\":\"hv3\",\"Driver\":\"hangplugin\"}    ",
            )
            .unwrap();
            let mut answer = String::new();
            let _ = std::io::Read::read_to_string(&mut stream, &mut answer);
            answer
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(d.docker(&["volume", "create", "quick"]).ok().out(), "quick");
    assert!(hang_started.elapsed() < std::time::Duration::from_millis(1900));
    let answer = slow.join().unwrap();
    assert!(answer.starts_with("HTTP/1.0 500"), "{answer}");
    assert_eq!(d.docker(&["volume", "ls", "-q"]).ok().out(), "quick");
    assert_eq!(volume_dirs(&d), ["quick"]);
}

/// Detaches a host mount made by a test, also when it fails.
struct HostMount(std::path::PathBuf);

impl Drop for HostMount {
    fn drop(&mut self) {
        let path = std::ffi::CString::new(self.0.display().to_string()).unwrap();
        // SAFETY: umount2 with a NUL-terminated path.
        unsafe { libc::umount2(path.as_ptr(), libc::MNT_DETACH) };
    }
}

fn mount(args: &[&str]) {
    let status = std::process::Command::new("mount")
        .args(args)
        .status()
        .unwrap();
    assert!(status.success(), "mount {args:?}");
}

#[test]
fn a_host_mount_under_an_rshared_bind_appears_inside() {
    let d = Daemon::start();
    d.import_busybox();
    let source = d.dir.path().join("shared-src");
    std::fs::create_dir_all(source.join("later")).unwrap();
    let source_text = source.display().to_string();
    // rshared needs a shared source mount, as dockerd checks.
    let bind = format!("{source_text}:/shared:rshared");
    let refused = d.docker(&["run", "--rm", "-v", &bind, "busybox", "true"]);
    assert_eq!(refused.code, 125);
    assert!(
        refused.stderr.contains(&format!(
            "path {source_text} is mounted on / but it is not a shared mount"
        )),
        "{}",
        refused.stderr
    );
    mount(&["--bind", &source_text, &source_text]);
    let _source = HostMount(source.clone());
    mount(&["--make-shared", &source_text]);
    d.docker(&[
        "run", "-d", "--name", "prop", "-v", &bind, "busybox", "sleep", "300",
    ])
    .ok();
    assert_eq!(
        d.docker(&[
            "inspect",
            "-f",
            "{{range .Mounts}}{{.Propagation}}{{end}}",
            "prop"
        ])
        .ok()
        .out(),
        "rshared"
    );
    // Mounted on the host after the start.
    let later = source.join("later");
    mount(&[
        "-t",
        "tmpfs",
        "-o",
        "size=1m",
        "tmpfs",
        &later.display().to_string(),
    ]);
    let _later = HostMount(later.clone());
    std::fs::write(later.join("f"), "mounted later\n").unwrap();
    assert_eq!(
        d.docker(&["exec", "prop", "cat", "/shared/later/f"])
            .ok()
            .out(),
        "mounted later"
    );
    // Inside, the bind is a peer of the host mount, not a slave.
    let table = d
        .docker(&["exec", "prop", "grep", " /shared ", "/proc/self/mountinfo"])
        .ok()
        .out();
    assert!(
        table.contains("shared:") && !table.contains("master:"),
        "{table}"
    );
    // rprivate (the default) does not see later host mounts.
    let private = format!("{source_text}:/private");
    d.docker(&[
        "run", "-d", "--name", "priv", "-v", &private, "busybox", "sleep", "300",
    ])
    .ok();
    let later2 = source.join("later2");
    std::fs::create_dir_all(&later2).unwrap();
    mount(&[
        "-t",
        "tmpfs",
        "-o",
        "size=1m",
        "tmpfs",
        &later2.display().to_string(),
    ]);
    let _later2 = HostMount(later2.clone());
    std::fs::write(later2.join("g"), "x").unwrap();
    let missing = d.docker(&["exec", "priv", "cat", "/private/later2/g"]);
    assert_ne!(missing.code, 0);
    d.docker(&["rm", "-f", "prop", "priv"]).ok();
}

#[test]
fn a_subpath_must_stay_inside_its_volume() {
    let d = Daemon::start();
    d.import_busybox();
    d.docker(&[
        "run", "--rm", "-v", "subvol:/v", "busybox", "sh", "-c",
        "mkdir -p /v/app/conf && echo inside > /v/app/conf/f && ln -s /etc /v/abs && ln -s ../../.. /v/app/up && ln -s app/conf /v/rel",
    ])
    .ok();
    // A subpath, and one through a symlink that stays inside.
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=subvol,dst=/c,volume-subpath=app/conf",
            "busybox",
            "cat",
            "/c/f"
        ])
        .ok()
        .out(),
        "inside"
    );
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "--mount",
            "type=volume,src=subvol,dst=/c,volume-subpath=rel,readonly",
            "busybox",
            "cat",
            "/c/f"
        ])
        .ok()
        .out(),
        "inside"
    );
    let mountpoint = d.data_root().join("volumes/subvol/_data");
    for escaping in ["abs", "app/up", "abs/passwd"] {
        let spec = format!("type=volume,src=subvol,dst=/c,volume-subpath={escaping}");
        let refused = d.docker(&[
            "run",
            "--name",
            "escaper",
            "--mount",
            &spec,
            "busybox",
            "cat",
            "/c/passwd",
        ]);
        assert_ne!(refused.code, 0, "{escaping}");
        assert!(
            refused.stderr.contains(&format!(
                "error while mounting volume '{}': \"{escaping}\" escapes the path",
                mountpoint.display()
            )),
            "{escaping}: {}",
            refused.stderr
        );
        assert!(
            !refused.stdout.contains("root:"),
            "{escaping} leaked the host's passwd"
        );
        // The container was created but not started; nothing stays mounted for it.
        assert_eq!(
            d.docker(&["inspect", "-f", "{{.State.Status}}", "escaper"])
                .ok()
                .out(),
            "created"
        );
        d.docker(&["rm", "escaper"]).ok();
        assert!(
            mounts_under(d.dir.path()).is_empty(),
            "{:?}",
            mounts_under(d.dir.path())
        );
    }
    // Lexically escaping subpaths are refused at create.
    let refused = d.docker(&[
        "create",
        "--mount",
        "type=volume,src=subvol,dst=/c,volume-subpath=../x",
        "busybox",
        "true",
    ]);
    assert!(
        refused
            .stderr
            .contains("subpath must be a relative path within the volume"),
        "{}",
        refused.stderr
    );
    let missing = d.docker(&[
        "run",
        "--rm",
        "--mount",
        "type=volume,src=subvol,dst=/c,volume-subpath=nope",
        "busybox",
        "true",
    ]);
    assert!(
        missing.stderr.contains("cannot access path"),
        "{}",
        missing.stderr
    );
    assert_eq!(d.docker(&["ps", "-aq"]).ok().out(), "");
    assert!(mounts_under(d.dir.path()).is_empty());
}

#[test]
fn an_options_volume_is_mounted_while_used_and_survives_a_daemon_kill() {
    let mut d = Daemon::start();
    d.import_busybox();
    d.docker(&[
        "volume",
        "create",
        "-o",
        "type=tmpfs",
        "-o",
        "device=tmpfs",
        "-o",
        "o=size=4m",
        "mem",
    ])
    .ok();
    let data = d.data_root().join("volumes/mem/_data");
    let data_text = data.display().to_string();
    assert!(
        !mounts_under(d.dir.path()).contains(&data_text),
        "not mounted before use"
    );
    d.docker(&[
        "run", "-d", "--name", "m1", "-v", "mem:/m", "busybox", "sleep", "300",
    ])
    .ok();
    d.docker(&[
        "run", "-d", "--name", "m2", "-v", "mem:/m", "busybox", "sleep", "300",
    ])
    .ok();
    d.docker(&["exec", "m1", "sh", "-c", "echo shared-tmpfs > /m/f"])
        .ok();
    // One tmpfs for both users, on the host's _data.
    assert_eq!(
        d.docker(&["exec", "m2", "cat", "/m/f"]).ok().out(),
        "shared-tmpfs"
    );
    assert_eq!(
        std::fs::read_to_string(data.join("f")).unwrap(),
        "shared-tmpfs\n"
    );
    let count = |d: &Daemon| {
        mounts_under(d.dir.path())
            .iter()
            .filter(|m| **m == data_text)
            .count()
    };
    assert_eq!(count(&d), 1);
    // Volume events, as dockerd emits them (the history is the daemon's memory).
    let volume_events = |d: &Daemon| {
        // The docker CLI sends `--until 0s` as whole seconds: let this second pass.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        d.docker(&[
            "events",
            "--since",
            "0",
            "--until",
            "0s",
            "--filter",
            "type=volume",
            "--format",
            "{{.Action}} {{.Actor.ID}}",
        ])
        .ok()
        .out()
    };
    let events = volume_events(&d);
    for expected in ["create mem", "mount mem"] {
        assert!(
            events.lines().any(|l| l == expected),
            "{expected}: {events}"
        );
    }
    // kill -9 of the daemon: the containers and the mount stay; the new daemon keeps it.
    d.restart();
    assert_eq!(count(&d), 1);
    assert_eq!(
        d.docker(&["exec", "m2", "cat", "/m/f"]).ok().out(),
        "shared-tmpfs"
    );
    d.docker(&["rm", "-f", "m1"]).ok();
    assert_eq!(count(&d), 1, "still used by m2");
    d.docker(&["stop", "-t", "0", "m2"]).ok();
    assert!(
        common::wait_until(std::time::Duration::from_secs(5), || count(&d) == 0),
        "unmounted with its last user"
    );
    d.docker(&["rm", "m2"]).ok();
    d.docker(&["volume", "rm", "mem"]).ok();
    let events = volume_events(&d);
    for expected in ["unmount mem", "destroy mem"] {
        assert!(
            events.lines().any(|l| l == expected),
            "{expected}: {events}"
        );
    }
}

#[test]
fn docker_cp_reads_and_writes_through_volumes_and_binds() {
    let d = Daemon::start();
    d.import_busybox();
    let host = d.dir.path().join("cp-bind");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("from-bind"), "bind content\n").unwrap();
    let bind = format!("{}:/b", host.display());
    let ro_bind = format!("{}:/robind:ro", host.display());
    let local = d.dir.path().join("upload");
    std::fs::write(&local, "uploaded\n").unwrap();
    let local_text = local.display().to_string();
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "cpvol:/data",
        "busybox",
        "mkdir",
        "/data/inner",
    ])
    .ok();
    d.docker(&[
        "run",
        "-d",
        "--name",
        "cpv",
        "-v",
        "cpvol:/data",
        "-v",
        &bind,
        "-v",
        &ro_bind,
        "--mount",
        "type=volume,src=cpvol,dst=/sub,volume-subpath=inner",
        "busybox",
        "sh",
        "-c",
        "echo in-volume > /data/f; echo nested > /data/inner/n; sleep 300",
    ])
    .ok();
    assert!(common::wait_until(
        std::time::Duration::from_secs(10),
        || {
            d.docker(&["exec", "cpv", "test", "-f", "/data/inner/n"])
                .code
                == 0
        }
    ));
    // Running: out of a volume, a bind, and into both.
    let out = d.dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    let out_text = out.display().to_string();
    d.docker(&["cp", "cpv:/data/f", &out_text]).ok();
    assert_eq!(
        std::fs::read_to_string(out.join("f")).unwrap(),
        "in-volume\n"
    );
    d.docker(&["cp", "cpv:/b/from-bind", &out_text]).ok();
    assert_eq!(
        std::fs::read_to_string(out.join("from-bind")).unwrap(),
        "bind content\n"
    );
    d.docker(&["cp", &local_text, "cpv:/data/"]).ok();
    assert_eq!(
        d.docker(&["exec", "cpv", "cat", "/data/upload"]).ok().out(),
        "uploaded"
    );
    d.docker(&["cp", &local_text, "cpv:/b/"]).ok();
    assert_eq!(
        std::fs::read_to_string(host.join("upload")).unwrap(),
        "uploaded\n"
    );
    // A subpath shows its directory only.
    d.docker(&["cp", "cpv:/sub/n", &out_text]).ok();
    assert_eq!(std::fs::read_to_string(out.join("n")).unwrap(), "nested\n");
    // A read-only mount refuses uploads, with dockerd's message.
    let refused = d.docker(&["cp", &local_text, "cpv:/robind/"]);
    assert_ne!(refused.code, 0);
    assert!(
        refused
            .stderr
            .contains("mounted volume is marked read-only"),
        "{}",
        refused.stderr
    );
    // Stopped: the same paths still reach the volume.
    d.docker(&["stop", "-t", "0", "cpv"]).ok();
    d.docker(&["cp", "cpv:/data/upload", &format!("{out_text}/again")])
        .ok();
    assert_eq!(
        std::fs::read_to_string(out.join("again")).unwrap(),
        "uploaded\n"
    );
    // The view's mounts never reached the host.
    let leaked: Vec<String> = mounts_under(d.dir.path())
        .into_iter()
        .filter(|m| m.ends_with("/data") || m.ends_with("/b") || m.ends_with("/sub"))
        .collect();
    assert!(leaked.is_empty(), "{leaked:?}");
    // export and diff see the root file system only, as in Docker.
    let changes = d.docker(&["diff", "cpv"]).ok().out();
    assert!(!changes.contains("/data/upload"), "{changes}");
}

#[test]
fn an_image_volume_gets_an_anonymous_volume_with_the_image_content() {
    let d = Daemon::start();
    d.import_busybox();
    // An image with `VOLUME /vol` and content there.
    d.docker(&[
        "run",
        "--name",
        "maker",
        "busybox",
        "sh",
        "-c",
        "mkdir /vol && echo from-image > /vol/seed",
    ])
    .ok();
    d.docker(&["commit", "--change", "VOLUME /vol", "maker", "withvol:1"])
        .ok();
    d.docker(&["rm", "maker"]).ok();
    assert_eq!(
        d.docker(&[
            "image",
            "inspect",
            "-f",
            "{{json .Config.Volumes}}",
            "withvol:1"
        ])
        .ok()
        .out(),
        "{\"/vol\":{}}"
    );
    d.docker(&["create", "--name", "user", "withvol:1", "cat", "/vol/seed"])
        .ok();
    let mounts = json(
        &d.docker(&["inspect", "-f", "{{json .Mounts}}", "user"])
            .ok()
            .stdout,
    );
    assert_eq!(mounts.as_array().unwrap().len(), 1, "{mounts}");
    let name = mounts[0]["Name"].as_str().unwrap().to_string();
    assert_eq!(name.len(), 64);
    assert_eq!(mounts[0]["Destination"], "/vol");
    assert_eq!(mounts[0]["Mode"], "");
    // Copied up at create.
    assert_eq!(
        std::fs::read_to_string(d.data_root().join("volumes").join(&name).join("_data/seed"))
            .unwrap(),
        "from-image\n"
    );
    assert_eq!(d.docker(&["start", "-a", "user"]).ok().out(), "from-image");
    // A named volume or a bind at the same destination replaces it.
    let host = d.dir.path().join("vol-bind");
    std::fs::create_dir_all(&host).unwrap();
    let bind = format!("{}:/vol", host.display());
    d.docker(&["create", "--name", "bound", "-v", &bind, "withvol:1"])
        .ok();
    let mounts = json(
        &d.docker(&["inspect", "-f", "{{json .Mounts}}", "bound"])
            .ok()
            .stdout,
    );
    assert_eq!(mounts.as_array().unwrap().len(), 1);
    assert_eq!(mounts[0]["Type"], "bind");
    // rm -v takes the anonymous volume; --rm too.
    d.docker(&["rm", "-v", "user", "bound"]).ok();
    assert_eq!(volume_names(&d, &[]), Vec::<String>::new());
    d.docker(&["run", "--rm", "withvol:1", "true"]).ok();
    assert_eq!(volume_names(&d, &[]), Vec::<String>::new());
}

#[test]
fn bind_nonrecursive_leaves_out_the_submounts_of_its_source() {
    let d = Daemon::start();
    d.import_busybox();
    let source = d.dir.path().join("recursive-src");
    std::fs::create_dir_all(source.join("sub")).unwrap();
    mount(&[
        "-t",
        "tmpfs",
        "-o",
        "size=1m",
        "tmpfs",
        &source.join("sub").display().to_string(),
    ]);
    let _sub = HostMount(source.join("sub"));
    std::fs::write(source.join("sub/f"), "in the submount").unwrap();
    let recursive = format!("type=bind,src={},dst=/s", source.display());
    let plain = format!("{recursive},bind-nonrecursive");
    assert_eq!(
        d.docker(&[
            "run", "--rm", "--mount", &recursive, "busybox", "cat", "/s/sub/f"
        ])
        .ok()
        .out(),
        "in the submount"
    );
    assert_eq!(
        d.docker(&[
            "run", "--rm", "--mount", &plain, "busybox", "ls", "-A", "/s/sub"
        ])
        .ok()
        .out(),
        ""
    );
}
