//! The plugin protocol client against small plugins written here: a real HTTP server on a
//! unix socket per test (threads over std's UnixListener), answering as a volume plugin,
//! or misbehaving (hanging, garbage, HTTP errors). No root needed.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use volume::plugin::{Address, PluginClient, PluginConfig, Plugins};
use volume::{CreateRequest, Error, VolumeStore};

/// What a test plugin answers to one call: status and body.
type Answer = Box<dyn Fn(&str, &Value) -> Option<(u16, String)> + Send + Sync>;

/// Serves `answer` on `socket` until the test ends; records the calls. `None` from the
/// answer means: never answer (a hung plugin).
fn serve(socket: &Path, answer: Answer) -> Arc<Mutex<Vec<(String, Value)>>> {
    let listener = UnixListener::bind(socket).unwrap();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let answer = Arc::new(answer);
    let recorded = calls.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let answer = answer.clone();
            let recorded = recorded.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                reader.read_line(&mut first).unwrap();
                let path = first
                    .split(' ')
                    .nth(1)
                    .unwrap_or("/")
                    .trim_start_matches('/');
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("content-length")
                    {
                        length = v.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                recorded
                    .lock()
                    .unwrap()
                    .push((path.to_string(), request.clone()));
                match answer(path, &request) {
                    Some((status, body)) => {
                        let mut stream = stream;
                        let _ = write!(
                            stream,
                            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    None => std::thread::sleep(Duration::from_secs(3600)),
                }
            });
        }
    });
    calls
}

/// A working plugin keeping volumes under `base`.
fn volume_plugin(base: &Path) -> Answer {
    let base = base.to_path_buf();
    let volumes: Mutex<HashMap<String, Value>> = Mutex::new(HashMap::new());
    Box::new(move |method, request| {
        let name = request["Name"].as_str().unwrap_or_default().to_string();
        let path = base.join(&name).display().to_string();
        let ok = |v: Value| Some((200, v.to_string()));
        match method {
            "Plugin.Activate" => ok(json!({"Implements": ["VolumeDriver"]})),
            "VolumeDriver.Capabilities" => ok(json!({"Capabilities": {"Scope": "global"}})),
            "VolumeDriver.Create" => {
                volumes
                    .lock()
                    .unwrap()
                    .insert(name, request["Opts"].clone());
                ok(json!({"Err": ""}))
            }
            "VolumeDriver.Remove" => {
                volumes.lock().unwrap().remove(&name);
                ok(json!({"Err": ""}))
            }
            "VolumeDriver.Mount" | "VolumeDriver.Path" => ok(json!({"Mountpoint": path})),
            "VolumeDriver.Unmount" => ok(json!({})),
            "VolumeDriver.Get" => match volumes.lock().unwrap().get(&name) {
                Some(opts) => ok(
                    json!({"Volume": {"Name": name, "Mountpoint": path, "Status": {"opts": opts}}}),
                ),
                None => ok(json!({"Err": format!("no volume {name}")})),
            },
            "VolumeDriver.List" => ok(
                json!({"Volumes": volumes.lock().unwrap().keys().map(|n| json!({"Name": n})).collect::<Vec<_>>()}),
            ),
            _ => Some((404, "404 page not found".into())),
        }
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn the_protocol_with_a_working_plugin() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("good.sock");
    let calls = serve(&socket, volume_plugin(&dir.path().join("base")));
    let config = PluginConfig {
        dirs: vec![dir.path().to_path_buf()],
        timeout: Duration::from_secs(2),
    };
    runtime().block_on(async {
        let store = VolumeStore::open(&dir.path().join("volumes"), config).unwrap();
        let (record, created) = store
            .create(CreateRequest {
                name: "pv".into(),
                driver: "good".into(),
                options: HashMap::from([("size".into(), "1g".into())]),
                reference: Some("c1".into()),
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(created);
        assert_eq!(record.scope, "global", "from Capabilities");
        assert_eq!(
            record.mountpoint,
            dir.path().join("base/pv").display().to_string()
        );
        let view = store.inspect("pv").await.unwrap();
        assert_eq!(view.status.unwrap()["opts"], json!({"size": "1g"}));
        let path = store.mount("pv", "c1").await.unwrap();
        assert_eq!(path, dir.path().join("base/pv").display().to_string());
        store.unmount("pv", "c1").await.unwrap();
        store.release("pv", "c1");
        store.remove("pv", false).await.unwrap();
        assert!(store.get("pv").is_err());
    });
    let calls = calls.lock().unwrap().clone();
    let methods: Vec<&str> = calls.iter().map(|(m, _)| m.as_str()).collect();
    assert_eq!(
        methods,
        [
            "Plugin.Activate",
            "VolumeDriver.Capabilities",
            "VolumeDriver.Create",
            "VolumeDriver.Path",
            "VolumeDriver.Get",
            "VolumeDriver.Mount",
            "VolumeDriver.Unmount",
            "VolumeDriver.Remove"
        ]
    );
    assert_eq!(calls[2].1, json!({"Name": "pv", "Opts": {"size": "1g"}}));
    assert_eq!(calls[5].1, json!({"Name": "pv", "ID": "c1"}));
}

#[test]
fn misbehaving_plugins_fail_with_clear_errors_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let hang = dir.path().join("hang.sock");
    serve(&hang, Box::new(|_, _| None));
    let garbage = dir.path().join("garbage.sock");
    serve(
        &garbage,
        Box::new(|_, _| Some((200, "<html>nope</html>".into()))),
    );
    let broken = dir.path().join("broken.sock");
    serve(
        &broken,
        Box::new(|method, _| match method {
            "Plugin.Activate" => Some((200, json!({"Implements": ["VolumeDriver"]}).to_string())),
            "VolumeDriver.Create" => Some((500, json!({"Err": "disk on fire"}).to_string())),
            "VolumeDriver.Mount" => Some((200, json!({"Mountpoint": "relative"}).to_string())),
            _ => Some((500, "plain text failure".into())),
        }),
    );
    let notvolume = dir.path().join("authz.sock");
    serve(
        &notvolume,
        Box::new(|_, _| Some((200, json!({"Implements": ["authz"]}).to_string()))),
    );
    runtime().block_on(async {
        let timeout = Duration::from_millis(500);
        let client = |socket: &Path, name: &str| {
            PluginClient::new(name, Address::Unix(socket.to_path_buf()), timeout)
        };
        let started = Instant::now();
        let error = client(&hang, "hang").activate().await.unwrap_err();
        assert_eq!(
            error,
            "Plugin.Activate: plugin \"hang\" did not answer within 0.5s"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        let error = client(&garbage, "garbage").activate().await.unwrap_err();
        assert!(
            error.starts_with("Plugin.Activate: invalid answer from plugin \"garbage\": "),
            "{error}"
        );
        let error = client(&notvolume, "authz").activate().await.unwrap_err();
        assert_eq!(error, "plugin \"authz\" does not implement VolumeDriver");
        let broken = client(&broken, "broken");
        broken.activate().await.unwrap();
        assert_eq!(
            broken.create("v", &HashMap::new()).await.unwrap_err(),
            "VolumeDriver.Create: disk on fire"
        );
        assert_eq!(
            broken.remove("v").await.unwrap_err(),
            "VolumeDriver.Remove: plain text failure"
        );
        assert_eq!(
            broken.mount("v", "id").await.unwrap_err(),
            "VolumeDriver.Mount: the plugin answered no absolute Mountpoint"
        );
        let gone = client(&dir.path().join("absent.sock"), "absent");
        assert!(gone.activate().await.unwrap_err().contains("dial "));
        // Through the registry: lookup errors name the volume and the operation.
        let plugins = Plugins::new(PluginConfig {
            dirs: vec![dir.path().to_path_buf()],
            timeout,
        });
        match plugins.get("nothere", "create", "v").await {
            Err(Error::PluginNotFound { .. }) => {}
            other => panic!("{other:?}"),
        }
        let error = plugins.get("hang", "create", "v").await.unwrap_err();
        assert_eq!(
            error.to_string(),
            "create v: error looking up volume plugin hang: Plugin.Activate: plugin \"hang\" did not answer within 0.5s"
        );
        assert_eq!(error.kind(), types::ErrorKind::Internal);
    });
}
