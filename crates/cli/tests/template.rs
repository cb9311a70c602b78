//! The `--format` template engine: the subset of Go's text/template docker users rely on.

use berth_cli::template::{Template, go_quote, prepare_format, to_json};
use serde_json::{Value, json};

fn run(t: &str, v: &Value) -> String {
    Template::parse(t)
        .unwrap_or_else(|e| panic!("parse {t:?}: {e}"))
        .execute(v)
        .unwrap_or_else(|e| panic!("execute {t:?}: {e}"))
}

fn container() -> Value {
    json!({
        "Id": "4a9b54fd6ece",
        "Name": "/web",
        "State": {"Status": "running", "Pid": 1234, "Running": true, "ExitCode": 0},
        "Config": {
            "Cmd": ["sh", "-c", "echo <hi> & bye"],
            "Env": ["A=1", "PATH=/bin"],
            "Labels": {"b": "2", "a": "1"},
            "Entrypoint": null
        },
        "HostConfig": {"Memory": 67108864, "NanoCpus": 500000000u64}
    })
}

#[test]
fn fields_nested_and_case_insensitive_fallback() {
    let c = container();
    assert_eq!(run("{{.State.Status}}", &c), "running");
    assert_eq!(run("{{.State.Pid}}", &c), "1234");
    assert_eq!(run("{{.Id}} {{.ID}}", &c), "4a9b54fd6ece 4a9b54fd6ece");
    assert_eq!(run("{{.HostConfig.Memory}}", &c), "67108864");
    assert_eq!(run("{{.Nope}}", &c), "<no value>");
    assert_eq!(run("{{.Nope.Deeper}}", &c), "<no value>");
}

#[test]
fn go_value_printing() {
    let c = container();
    assert_eq!(run("{{.Config.Cmd}}", &c), "[sh -c echo <hi> & bye]");
    assert_eq!(run("{{.Config.Labels}}", &c), "map[a:1 b:2]");
    assert_eq!(run("{{.State.Running}}", &c), "true");
}

#[test]
fn json_function() {
    let c = container();
    assert_eq!(
        run("{{json .Config.Cmd}}", &c),
        r#"["sh","-c","echo <hi> & bye"]"#
    );
    assert_eq!(run("{{json .State.Pid}}", &c), "1234");
    assert_eq!(run("{{json .Config.Entrypoint}}", &c), "null");
    // Whole object: keys sorted as Go marshals maps.
    assert_eq!(run("{{json .Config.Labels}}", &c), r#"{"a":"1","b":"2"}"#);
    let row = json!({"Digest": "<none>"});
    let t = Template::parse("{{json .}}")
        .unwrap()
        .with_html_escape(true);
    assert_eq!(t.execute(&row).unwrap(), r#"{"Digest":"\u003cnone\u003e"}"#);
    assert_eq!(to_json(&json!("a&b"), false), r#""a&b""#);
}

#[test]
fn control_structures() {
    let c = container();
    assert_eq!(
        run("{{range .Config.Env}}[{{.}}]{{end}}", &c),
        "[A=1][PATH=/bin]"
    );
    assert_eq!(
        run(
            "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
            &c
        ),
        "a=1;b=2;"
    );
    assert_eq!(run("{{if .State.Running}}up{{else}}down{{end}}", &c), "up");
    assert_eq!(
        run(
            "{{if eq .State.Status \"exited\"}}x{{else if eq .State.Status \"running\"}}r{{else}}?{{end}}",
            &c
        ),
        "r"
    );
    assert_eq!(run("{{with .State}}{{.Pid}}{{end}}", &c), "1234");
    assert_eq!(
        run("{{range .Config.Entrypoint}}x{{else}}none{{end}}", &c),
        "none"
    );
    assert_eq!(run("{{$n := .Name}}{{$n}}", &c), "/web");
}

#[test]
fn functions() {
    let c = container();
    assert_eq!(run("{{join .Config.Env \",\"}}", &c), "A=1,PATH=/bin");
    assert_eq!(run("{{index .Config.Labels \"b\"}}", &c), "2");
    assert_eq!(run("{{index .Config.Cmd 1}}", &c), "-c");
    assert_eq!(run("{{len .Config.Env}}", &c), "2");
    assert_eq!(run("{{upper .State.Status}}", &c), "RUNNING");
    assert_eq!(run("{{.State.Status | upper}}", &c), "RUNNING");
    assert_eq!(
        run("{{lower \"ABC\"}} {{title \"hello world\"}}", &c),
        "abc Hello World"
    );
    assert_eq!(
        run("{{printf \"%s-%d\" .Name .State.Pid}}", &c),
        "/web-1234"
    );
    assert_eq!(run("{{println .Name}}", &c), "/web\n");
    assert_eq!(run("{{split \"a:b\" \":\"}}", &c), "[a b]");
    assert_eq!(run("{{truncate .Id 4}}", &c), "4a9b");
    assert_eq!(run("{{pad \"x\" 1 2}}|", &c), " x  |");
    assert_eq!(run("{{not .State.Running}}", &c), "false");
    assert_eq!(
        run(
            "{{if and .State.Running (eq .State.ExitCode 0)}}ok{{end}}",
            &c
        ),
        "ok"
    );
    assert_eq!(run("{{(index .Config.Cmd 0)}}", &c), "sh");
}

#[test]
fn trim_markers_and_literals() {
    let v = json!({});
    assert_eq!(run("a {{- \"b\" -}} c", &v), "abc");
    assert_eq!(run("{{`raw\\t`}}", &v), "raw\\t");
    assert_eq!(run("{{/* comment */}}x", &v), "x");
}

#[test]
fn errors() {
    assert!(Template::parse("{{.A").is_err());
    assert!(Template::parse("{{if .A}}x").is_err());
    assert!(Template::parse("{{end}}").is_err());
    let t = Template::parse("{{nosuchfunc .A}}").unwrap();
    assert!(t.execute(&json!({})).is_err());
}

#[test]
fn table_prefix_and_escapes() {
    assert_eq!(
        prepare_format("table {{.ID}}\\t{{.Names}}"),
        (true, "{{.ID}}\t{{.Names}}".to_string())
    );
    assert_eq!(prepare_format("{{.ID}}"), (false, "{{.ID}}".to_string()));
}

#[test]
fn quoting_like_strconv() {
    assert_eq!(go_quote("echo hi"), "\"echo hi\"");
    assert_eq!(go_quote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
    assert_eq!(go_quote("ec…"), "\"ec…\"");
}
