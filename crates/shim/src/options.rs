//! The command lines of `berth-shim start` and `berth-shim exec`, parsed by hand (no argument
//! library: the shim stays small), and built back into arguments for the engine that spawns it.
//!
//! ```text
//! berth-shim start --id ID --bundle DIR --state-dir DIR --log PATH
//!                  [--stdin] [--stdin-once] [--tty] [--hold] [--runtime PATH] [--runtime-root DIR]
//!                  [--seccomp-cache DIR]
//! berth-shim exec --id CONTAINER_ID --state-dir DIR --container-state-dir DIR --process FILE
//!                  [--stdin] [--stdin-once] [--tty] [--runtime PATH] [--runtime-root DIR]
//!                  [--seccomp-cache DIR]
//! ```

use std::ffi::OsString;
use std::path::PathBuf;

use crate::error::{Error, Result};

/// What `berth-shim start` is asked to run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StartOptions {
    /// The container id (also the runtime's id).
    pub id: String,
    /// The OCI bundle (config.json, rootfs).
    pub bundle: PathBuf,
    /// The shim's state directory (`/run/berth/shims/<id>`).
    pub state_dir: PathBuf,
    /// The json-file log.
    pub log: PathBuf,
    /// Keep a stdin pipe (or the pty) open for the container.
    pub stdin: bool,
    /// The container has a terminal (the bundle's `process.terminal` must agree).
    pub tty: bool,
    /// Docker's StdinOnce: the container's stdin closes when the last attach connection that
    /// carried stdin ends it.
    pub stdin_once: bool,
    /// Runtime `create` only; `start` waits for the `start` request (attach before start).
    pub hold: bool,
    /// An external OCI runtime binary (runc's CLI); `None` for the built-in runtime library.
    pub runtime: Option<PathBuf>,
    /// The runtime's state root; defaults to `<state-dir>/runtime`.
    pub runtime_root: Option<PathBuf>,
    /// Where the built-in runtime keeps compiled seccomp programs (shared by containers).
    pub seccomp_cache: Option<PathBuf>,
}

/// What `berth-shim exec` is asked to run: one more process in a running container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOptions {
    /// The container's id (the runtime's id).
    pub id: String,
    /// The exec shim's own state directory.
    pub state_dir: PathBuf,
    /// The container's shim state directory (its runtime state root is `<it>/runtime`).
    pub container_state_dir: PathBuf,
    /// The OCI `process` JSON of the exec'd process.
    pub process: PathBuf,
    /// Keep a stdin pipe (or the pty) for the process.
    pub stdin: bool,
    /// Close the process's stdin when the last attach that carried stdin ends it.
    pub stdin_once: bool,
    /// The process has a terminal (`process.terminal` must agree).
    pub tty: bool,
    /// An external OCI runtime binary; `None` for the built-in runtime library.
    pub runtime: Option<PathBuf>,
    /// The runtime's state root; defaults to `<container-state-dir>/runtime`.
    pub runtime_root: Option<PathBuf>,
    /// Where the built-in runtime keeps compiled seccomp programs (shared by containers).
    pub seccomp_cache: Option<PathBuf>,
}

/// One `--name value`, `--name=value` or `--flag` of a command line.
enum Arg {
    Value(String, OsString),
    Flag(String),
}

/// Splits a command line into [`Arg`]s; `takes_value` says which names take a value.
fn split_args(args: impl IntoIterator<Item = OsString>, takes_value: &[&str]) -> Result<Vec<Arg>> {
    let mut out = Vec::new();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let arg = arg
            .into_string()
            .map_err(|a| Error::InvalidArgument(format!("invalid argument {a:?}")))?;
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(OsString::from(value)))
            }
            _ => (arg, None),
        };
        if takes_value.contains(&name.as_str()) {
            let value = inline
                .or_else(|| args.next())
                .ok_or_else(|| Error::InvalidArgument(format!("{name} needs a value")))?;
            out.push(Arg::Value(name, value));
        } else if inline.is_some() {
            return Err(Error::InvalidArgument(format!("{name} takes no value")));
        } else {
            out.push(Arg::Flag(name));
        }
    }
    Ok(out)
}

fn unknown(name: &str) -> Error {
    Error::InvalidArgument(format!("unknown argument {name:?}"))
}

fn string(name: &str, value: OsString) -> Result<String> {
    value
        .into_string()
        .map_err(|_| Error::InvalidArgument(format!("invalid {name}")))
}

/// Required paths present and absolute (the shim's daemon half must not depend on the
/// caller's working directory).
fn check_paths(paths: &[(&str, Option<&PathBuf>)]) -> Result<()> {
    for (flag, path) in paths {
        let Some(path) = path else { continue };
        if path.as_os_str().is_empty() {
            return Err(Error::InvalidArgument(format!("{flag} is required")));
        }
        if !path.is_absolute() {
            return Err(Error::InvalidArgument(format!(
                "{flag} {} must be an absolute path",
                path.display()
            )));
        }
    }
    Ok(())
}

impl ExecOptions {
    /// Parses the arguments after `exec`.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self> {
        let mut options = Self::default();
        let values = [
            "--id",
            "--state-dir",
            "--container-state-dir",
            "--process",
            "--runtime",
            "--runtime-root",
            "--seccomp-cache",
        ];
        for arg in split_args(args, &values)? {
            match arg {
                Arg::Value(name, value) => match name.as_str() {
                    "--id" => options.id = string(&name, value)?,
                    "--state-dir" => options.state_dir = value.into(),
                    "--container-state-dir" => options.container_state_dir = value.into(),
                    "--process" => options.process = value.into(),
                    "--runtime" => options.runtime = Some(value.into()),
                    "--runtime-root" => options.runtime_root = Some(value.into()),
                    "--seccomp-cache" => options.seccomp_cache = Some(value.into()),
                    other => return Err(unknown(other)),
                },
                Arg::Flag(name) => match name.as_str() {
                    "--stdin" => options.stdin = true,
                    "--stdin-once" => options.stdin_once = true,
                    "--tty" => options.tty = true,
                    other => return Err(unknown(other)),
                },
            }
        }
        options.check()?;
        Ok(options)
    }

    /// Required arguments present, paths absolute.
    pub fn check(&self) -> Result<()> {
        runtime::state::validate_id(&self.id).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        check_paths(&[
            ("--state-dir", Some(&self.state_dir)),
            ("--container-state-dir", Some(&self.container_state_dir)),
            ("--process", Some(&self.process)),
            ("--runtime-root", self.runtime_root.as_ref()),
            ("--seccomp-cache", self.seccomp_cache.as_ref()),
        ])
    }

    /// The arguments of `berth-shim` for these options, `exec` first.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "exec".into(),
            "--id".into(),
            self.id.clone().into(),
            "--state-dir".into(),
            self.state_dir.clone().into(),
            "--container-state-dir".into(),
            self.container_state_dir.clone().into(),
            "--process".into(),
            self.process.clone().into(),
        ];
        for (set, flag) in [
            (self.stdin, "--stdin"),
            (self.stdin_once, "--stdin-once"),
            (self.tty, "--tty"),
        ] {
            if set {
                args.push(flag.into());
            }
        }
        if let Some(runtime) = &self.runtime {
            args.push("--runtime".into());
            args.push(runtime.clone().into());
        }
        if let Some(root) = &self.runtime_root {
            args.push("--runtime-root".into());
            args.push(root.clone().into());
        }
        if let Some(cache) = &self.seccomp_cache {
            args.push("--seccomp-cache".into());
            args.push(cache.clone().into());
        }
        args
    }

    /// The container's runtime state root.
    pub fn runtime_root(&self) -> PathBuf {
        self.runtime_root
            .clone()
            .unwrap_or_else(|| self.container_state_dir.join("runtime"))
    }
}

impl StartOptions {
    /// Parses the arguments after `start`.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self> {
        let mut options = Self::default();
        let values = [
            "--id",
            "--bundle",
            "--state-dir",
            "--log",
            "--runtime",
            "--runtime-root",
            "--seccomp-cache",
        ];
        for arg in split_args(args, &values)? {
            match arg {
                Arg::Value(name, value) => match name.as_str() {
                    "--id" => options.id = string(&name, value)?,
                    "--bundle" => options.bundle = value.into(),
                    "--state-dir" => options.state_dir = value.into(),
                    "--log" => options.log = value.into(),
                    "--runtime" => options.runtime = Some(value.into()),
                    "--runtime-root" => options.runtime_root = Some(value.into()),
                    "--seccomp-cache" => options.seccomp_cache = Some(value.into()),
                    other => return Err(unknown(other)),
                },
                Arg::Flag(name) => match name.as_str() {
                    "--stdin" => options.stdin = true,
                    "--stdin-once" => options.stdin_once = true,
                    "--tty" => options.tty = true,
                    "--hold" => options.hold = true,
                    other => return Err(unknown(other)),
                },
            }
        }
        options.check()?;
        Ok(options)
    }

    /// Required arguments present, paths absolute (the shim changes no directory, but its
    /// daemon half must not depend on the caller's).
    pub fn check(&self) -> Result<()> {
        runtime::state::validate_id(&self.id).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        check_paths(&[
            ("--bundle", Some(&self.bundle)),
            ("--state-dir", Some(&self.state_dir)),
            ("--log", Some(&self.log)),
            ("--runtime-root", self.runtime_root.as_ref()),
            ("--seccomp-cache", self.seccomp_cache.as_ref()),
        ])
    }

    /// The arguments of `berth-shim` for these options, `start` first.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "start".into(),
            "--id".into(),
            self.id.clone().into(),
            "--bundle".into(),
            self.bundle.clone().into(),
            "--state-dir".into(),
            self.state_dir.clone().into(),
            "--log".into(),
            self.log.clone().into(),
        ];
        if self.stdin {
            args.push("--stdin".into());
        }
        if self.tty {
            args.push("--tty".into());
        }
        if self.stdin_once {
            args.push("--stdin-once".into());
        }
        if self.hold {
            args.push("--hold".into());
        }
        if let Some(runtime) = &self.runtime {
            args.push("--runtime".into());
            args.push(runtime.clone().into());
        }
        if let Some(root) = &self.runtime_root {
            args.push("--runtime-root".into());
            args.push(root.clone().into());
        }
        if let Some(cache) = &self.seccomp_cache {
            args.push("--seccomp-cache".into());
            args.push(cache.clone().into());
        }
        args
    }

    /// The runtime's state root.
    pub fn runtime_root(&self) -> PathBuf {
        self.runtime_root
            .clone()
            .unwrap_or_else(|| self.state_dir.join("runtime"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<StartOptions> {
        StartOptions::parse(args.iter().map(OsString::from))
    }

    #[test]
    fn arguments_round_trip() {
        let options = parse(&[
            "--id",
            "c1",
            "--bundle=/b",
            "--state-dir",
            "/s",
            "--log",
            "/l/c1-json.log",
            "--tty",
            "--stdin",
            "--stdin-once",
            "--hold",
            "--runtime",
            "/usr/sbin/runc",
            "--runtime-root",
            "/r",
        ])
        .unwrap();
        assert_eq!(options.id, "c1");
        assert_eq!(options.bundle, PathBuf::from("/b"));
        assert!(options.tty && options.stdin && options.stdin_once && options.hold);
        assert_eq!(options.runtime_root(), PathBuf::from("/r"));
        let args = options.to_args();
        assert_eq!(args[0], "start");
        assert_eq!(
            StartOptions::parse(args.into_iter().skip(1)).unwrap(),
            options
        );
    }

    #[test]
    fn bad_arguments_are_refused() {
        let base = [
            "--id",
            "c",
            "--bundle",
            "/b",
            "--state-dir",
            "/s",
            "--log",
            "/l",
        ];
        assert!(parse(&base).is_ok());
        assert_eq!(
            parse(&base).unwrap().runtime_root(),
            PathBuf::from("/s/runtime")
        );
        for bad in [
            &["--id", "c"][..],
            &[
                "--id",
                "a/b",
                "--bundle",
                "/b",
                "--state-dir",
                "/s",
                "--log",
                "/l",
            ],
            &[
                "--id",
                "c",
                "--bundle",
                "rel",
                "--state-dir",
                "/s",
                "--log",
                "/l",
            ],
            &[
                "--id",
                "c",
                "--bundle",
                "/b",
                "--state-dir",
                "/s",
                "--log",
                "/l",
                "--x",
            ],
            &["--id", "c", "--bundle", "/b", "--state-dir", "/s", "--log"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn exec_arguments_round_trip() {
        let options = ExecOptions::parse(
            [
                "--id",
                "c1",
                "--state-dir",
                "/run/execs/e1",
                "--container-state-dir=/run/shims/c1",
                "--process",
                "/run/execs/e1.json",
                "--tty",
                "--stdin",
                "--stdin-once",
            ]
            .map(OsString::from),
        )
        .unwrap();
        assert_eq!(
            options.runtime_root(),
            PathBuf::from("/run/shims/c1/runtime")
        );
        assert!(options.tty && options.stdin && options.stdin_once);
        let args = options.to_args();
        assert_eq!(args[0], "exec");
        assert_eq!(
            ExecOptions::parse(args.into_iter().skip(1)).unwrap(),
            options
        );
        assert!(ExecOptions::parse(["--id", "c1"].map(OsString::from)).is_err());
        assert!(
            ExecOptions::parse(
                [
                    "--id",
                    "c1",
                    "--state-dir",
                    "/s",
                    "--container-state-dir",
                    "/c",
                    "--process",
                    "rel.json",
                ]
                .map(OsString::from)
            )
            .is_err()
        );
    }
}
