//! Storage drivers with the real docker CLI: overlay2 by default, and the copy fallback
//! (`vfs`) chosen by itself when the data root is on a file system where overlay cannot work
//! (here ext4 without d_type, loop-mounted by the test), with `info`, container and image
//! sizes on both.

mod common;

use std::path::Path;
use std::process::Command;

use common::Daemon;

fn run(program: &str, args: &[&str]) {
    let status = Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(status.success(), "{program} {args:?}");
}

/// The data root on a loop-mounted ext4 without the `filetype` feature (no d_type). The
/// mount uses a loop device with autoclear: unmounting it (the daemon's drop does) frees it.
fn data_root_without_d_type(dir: &Path) {
    let image = dir.join("data.img");
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    run("truncate", &["-s", "512M", &image.display().to_string()]);
    run(
        "mkfs.ext4",
        &["-q", "-F", "-O", "^filetype", &image.display().to_string()],
    );
    run(
        "mount",
        &[
            "-o",
            "loop",
            &image.display().to_string(),
            &data.display().to_string(),
        ],
    );
}

fn storage_checks(d: &Daemon, driver: &str) {
    d.import_busybox();
    assert_eq!(
        d.docker(&["info", "--format", "{{.Driver}}"]).ok().out(),
        driver
    );
    let status = d
        .docker(&["info", "--format", "{{json .DriverStatus}}"])
        .ok()
        .out();
    if driver == "overlay2" {
        assert!(
            status.contains("[\"Backing Filesystem\",\"extfs\"]"),
            "{status}"
        );
        assert!(
            status.contains("[\"Supports d_type\",\"true\"]"),
            "{status}"
        );
    } else {
        assert_eq!(status, "[]");
    }
    assert!(
        d.docker(&["info"])
            .ok()
            .out()
            .contains(&format!("Storage Driver: {driver}")),
        "info shows the driver"
    );
    // Containers run, see their image and keep their changes apart.
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "echo changed > /etc/motd; cat /etc/motd; ls /bin/busybox"
        ])
        .ok()
        .out(),
        "changed\n/bin/busybox"
    );
    assert_eq!(
        d.docker(&[
            "run",
            "--rm",
            "busybox",
            "sh",
            "-c",
            "cat /etc/motd 2>/dev/null || echo pristine"
        ])
        .ok()
        .out(),
        "pristine"
    );
    // Sizes: the container's own bytes, and its image's.
    d.docker(&[
        "run",
        "-d",
        "--name",
        "sized",
        "busybox",
        "sh",
        "-c",
        "head -c 300000 /dev/zero > /big; rm /bin/ls; sleep 300",
    ])
    .ok();
    assert!(common::wait_until(
        std::time::Duration::from_secs(10),
        || { d.docker(&["exec", "sized", "test", "-f", "/big"]).code == 0 }
    ));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let size = d
        .docker(&[
            "ps",
            "--size",
            "--format",
            "{{.Size}}",
            "--filter",
            "name=sized",
        ])
        .ok()
        .out();
    assert!(size.starts_with("300kB (virtual "), "{size}");
    let image_size = d
        .docker(&[
            "image",
            "inspect",
            "--format",
            "{{.Size}} {{.GraphDriver.Name}}",
            "busybox",
        ])
        .ok()
        .out();
    let (bytes, name) = image_size.split_once(' ').unwrap();
    assert!(bytes.parse::<u64>().unwrap() > 500_000, "{image_size}");
    assert_eq!(name, driver);
    let inspect = d
        .docker(&[
            "inspect",
            "--format",
            "{{.Driver}} {{.GraphDriver.Name}} {{.SizeRw}}",
            "-s",
            "sized",
        ])
        .ok()
        .out();
    assert_eq!(inspect, format!("{driver} {driver} 300000"));
    if driver == "overlay2" {
        let merged = d
            .docker(&[
                "inspect",
                "--format",
                "{{.GraphDriver.Data.MergedDir}}",
                "sized",
            ])
            .ok()
            .out();
        assert!(Path::new(&merged).join("big").is_file(), "{merged}");
    }
    let df = d
        .docker(&["system", "df", "--format", "{{.Type}} {{.Size}}"])
        .ok()
        .out();
    assert!(df.lines().any(|l| l == "Containers 300kB"), "{df}");
    // Volumes work on that root too.
    d.docker(&[
        "run",
        "--rm",
        "-v",
        "v1:/v",
        "busybox",
        "sh",
        "-c",
        "echo kept > /v/f",
    ])
    .ok();
    assert_eq!(
        d.docker(&["run", "--rm", "-v", "v1:/v", "busybox", "cat", "/v/f"])
            .ok()
            .out(),
        "kept"
    );
    d.docker(&["rm", "-f", "sized"]).ok();
}

#[test]
fn overlay2_is_the_default() {
    let d = Daemon::start();
    storage_checks(&d, "overlay2");
}

#[test]
fn copy_fallback_where_overlay_cannot_work() {
    let d = Daemon::start_with_setup(data_root_without_d_type);
    storage_checks(&d, "vfs");
    // The store keeps its driver across restarts.
    let mut d = d;
    d.restart();
    assert_eq!(
        d.docker(&["info", "--format", "{{.Driver}}"]).ok().out(),
        "vfs"
    );
    assert_eq!(
        d.docker(&["run", "--rm", "busybox", "echo", "again"])
            .ok()
            .out(),
        "again"
    );
}
