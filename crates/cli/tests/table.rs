//! Table output as docker prints it: durations, sizes, truncation, column alignment.

use std::time::Duration;

use berth_cli::format::{
    self, IMAGES_FORMAT, PS_FORMAT, container_row, ellipsis, image_headers, image_rows,
    json_indent, ps_headers, truncate_id,
};
use berth_cli::tabwriter::TabWriter;
use berth_cli::units::{ago, bytes_size, human_duration, human_size, human_size4};
use client::models::{ContainerSummary, ContainerSummaryStateEnum, ImageSummary};

#[test]
fn durations_like_go_units() {
    let d = |s| human_duration(Duration::from_secs(s));
    assert_eq!(
        human_duration(Duration::from_millis(300)),
        "Less than a second"
    );
    assert_eq!(d(1), "1 second");
    assert_eq!(d(2), "2 seconds");
    assert_eq!(d(59), "59 seconds");
    assert_eq!(d(60), "About a minute");
    assert_eq!(d(119), "About a minute");
    assert_eq!(d(120), "2 minutes");
    assert_eq!(d(59 * 60), "59 minutes");
    assert_eq!(d(3600), "About an hour");
    assert_eq!(d(2 * 3600), "2 hours");
    assert_eq!(d(47 * 3600), "47 hours");
    assert_eq!(d(48 * 3600), "2 days");
    assert_eq!(d(14 * 24 * 3600), "2 weeks");
    assert_eq!(d(60 * 24 * 3600), "2 months");
    assert_eq!(d(2 * 365 * 24 * 3600), "2 years");
    assert_eq!(ago(100, 220.0), "2 minutes ago");
    assert_eq!(ago(100, 170.0), "About a minute ago");
}

#[test]
fn sizes_like_go_units() {
    assert_eq!(human_size(0.0), "0B");
    assert_eq!(human_size(999.0), "999B");
    assert_eq!(human_size(1000.0), "1kB");
    assert_eq!(human_size(4_260_000.0), "4.26MB");
    assert_eq!(human_size(1_984_241.0), "1.98MB");
    assert_eq!(human_size4(1_984_241.0), "1.984MB");
    assert_eq!(human_size(1_500_000_000.0), "1.5GB");
    assert_eq!(bytes_size(4_125_000_000.0), "3.842GiB");
    assert_eq!(bytes_size(1024.0), "1KiB");
}

#[test]
fn ids_and_ellipsis() {
    assert_eq!(
        truncate_id("sha256:f4eac6f81082468dc80b8a946d27fa53d47748c70ab3e899e3c62a6dfe3f9d62"),
        "f4eac6f81082"
    );
    assert_eq!(truncate_id("4a9b54fd6ece0123"), "4a9b54fd6ece");
    assert_eq!(
        ellipsis("sh -c 'echo out; echo err'", 20),
        "sh -c 'echo out; ec…"
    );
    assert_eq!(ellipsis("echo hi", 20), "echo hi");
}

fn summary(now: i64) -> ContainerSummary {
    ContainerSummary {
        id: Some("4a9b54fd6ece468dc80b8a946d27fa53d47748c70ab3e899e3c62a6dfe3f9d62".into()),
        names: Some(vec!["/t1".into()]),
        image: Some("busybox".into()),
        image_id: Some("sha256:f4eac6f81082".into()),
        command: Some("sh -c 'echo out; echo err >&2; exit 3'".into()),
        created: Some(now - 150),
        state: Some(ContainerSummaryStateEnum::EXITED),
        status: Some("Exited (3) 2 minutes ago".into()),
        size_rw: Some(0),
        size_root_fs: Some(1_984_241),
        ..Default::default()
    }
}

#[test]
fn ps_row_and_table() {
    let now = 1_800_000_000;
    let row = container_row(&summary(now), true, now as f64);
    assert_eq!(row["ID"], "4a9b54fd6ece");
    assert_eq!(row["Command"], "\"sh -c 'echo out; ec…\"");
    assert_eq!(row["RunningFor"], "2 minutes ago");
    assert_eq!(row["Names"], "t1");
    assert_eq!(row["Size"], "0B (virtual 1.98MB)");
    let out = format::render(PS_FORMAT, &[row], &ps_headers(), true).unwrap();
    let expected = "\
CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS                     PORTS     NAMES
4a9b54fd6ece   busybox   \"sh -c 'echo out; ec…\"   2 minutes ago   Exited (3) 2 minutes ago             t1
";
    assert_eq!(out, expected);
    let untrunc = container_row(&summary(now), false, now as f64);
    assert_eq!(
        untrunc["Command"],
        "\"sh -c 'echo out; echo err >&2; exit 3'\""
    );
    assert_eq!(untrunc["ID"].as_str().unwrap().len(), 64);
}

#[test]
fn custom_formats() {
    let now = 1_800_000_000;
    let row = container_row(&summary(now), true, now as f64);
    let out = format::render(
        "{{.Names}}: {{.Status}}",
        std::slice::from_ref(&row),
        &ps_headers(),
        true,
    )
    .unwrap();
    assert_eq!(out, "t1: Exited (3) 2 minutes ago\n");
    let out = format::render("table {{.Names}}\\t{{.State}}", &[row], &ps_headers(), true).unwrap();
    assert_eq!(out, "NAMES     STATE\nt1        exited\n");
}

#[test]
fn image_rows_per_tag_and_dangling() {
    let now = 1_800_000_000;
    let img = ImageSummary {
        id: "sha256:f4eac6f81082468dc80b8a946d27fa53d47748c70ab3e899e3c62a6dfe3f9d62".into(),
        repo_tags: vec![
            "busybox:latest".into(),
            "docker.io/library/busybox:1".into(),
        ],
        created: now - 600,
        size: 1_984_241,
        shared_size: -1,
        containers: -1,
        ..Default::default()
    };
    let rows = image_rows(&img, true, false, now as f64);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1]["Tag"], "1");
    assert_eq!(rows[1]["Repository"], "busybox");
    let out = format::render(IMAGES_FORMAT, &rows[..1], &image_headers(), true).unwrap();
    assert_eq!(
        out,
        "REPOSITORY   TAG       IMAGE ID       CREATED          SIZE\n\
         busybox      latest    f4eac6f81082   10 minutes ago   1.98MB\n"
    );
    let dangling = ImageSummary {
        id: "sha256:abc".into(),
        ..Default::default()
    };
    let rows = image_rows(&dangling, true, false, now as f64);
    assert_eq!(
        (rows[0]["Repository"].as_str(), rows[0]["Tag"].as_str()),
        (Some("<none>"), Some("<none>"))
    );
    let digested = ImageSummary {
        id: "sha256:abc".into(),
        repo_tags: vec!["a:1".into()],
        repo_digests: vec!["a@sha256:0123".into()],
        ..Default::default()
    };
    assert_eq!(
        image_rows(&digested, true, true, 0.0)[0]["Digest"],
        "sha256:0123"
    );
    assert_eq!(
        image_rows(&digested, true, false, 0.0)[0]["Digest"],
        "<none>"
    );
}

#[test]
fn tabwriter_like_go() {
    let tw = TabWriter {
        min_width: 20,
        padding: 1,
    };
    assert_eq!(
        tw.format("Client:\n Version:\t1\n API version:\t1.41\n\nServer:\n  Version:\t2\n"),
        "Client:\n Version:           1\n API version:       1.41\n\nServer:\n  Version:          2\n"
    );
}

#[test]
fn inspect_json_indent() {
    let raw = br#"{"Id":"x","Args":[],"Config":{"Env":["A=1"],"Labels":{}},"S":"a\"b:{"}"#;
    assert_eq!(
        json_indent(raw),
        "{\n    \"Id\": \"x\",\n    \"Args\": [],\n    \"Config\": {\n        \"Env\": [\n            \"A=1\"\n        ],\n        \"Labels\": {}\n    },\n    \"S\": \"a\\\"b:{\"\n}"
    );
    assert_eq!(format::inspect_output(&[]), "[]");
}

#[test]
fn ports_column_groups_ranges() {
    use berth_cli::format::{PortEntry, displayable_ports};
    let p = |ip: &str, private, public, proto: &str| PortEntry {
        ip: ip.into(),
        private,
        public,
        proto: proto.into(),
    };
    assert_eq!(displayable_ports(&[]), "");
    assert_eq!(displayable_ports(&[p("", 80, 0, "tcp")]), "80/tcp");
    assert_eq!(
        displayable_ports(&[p("0.0.0.0", 81, 81, "tcp"), p("0.0.0.0", 80, 80, "tcp")]),
        "0.0.0.0:80-81->80-81/tcp"
    );
    assert_eq!(
        displayable_ports(&[
            p("0.0.0.0", 80, 8080, "tcp"),
            p("::", 80, 8080, "tcp"),
            p("", 53, 0, "udp"),
        ]),
        "53/udp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
    );
    assert_eq!(
        displayable_ports(&[p("", 1, 0, "tcp"), p("", 3, 0, "tcp")]),
        "1/tcp, 3/tcp"
    );
}
