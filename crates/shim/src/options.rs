//! The command line of `berth-shim start`, parsed by hand (no argument library: the shim stays
//! small), and built back into arguments for the engine that spawns it.
//!
//! ```text
//! berth-shim start --id ID --bundle DIR --state-dir DIR --log PATH
//!                  [--stdin] [--tty] [--runtime PATH] [--runtime-root DIR]
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
    /// An external OCI runtime binary (runc's CLI); `None` for the built-in runtime library.
    pub runtime: Option<PathBuf>,
    /// The runtime's state root; defaults to `<state-dir>/runtime`.
    pub runtime_root: Option<PathBuf>,
}

impl StartOptions {
    /// Parses the arguments after `start`.
    pub fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Self> {
        let mut options = Self::default();
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
            let mut value = || {
                inline
                    .clone()
                    .or_else(|| args.next())
                    .ok_or_else(|| Error::InvalidArgument(format!("{name} needs a value")))
            };
            match name.as_str() {
                "--id" => {
                    options.id = value()?
                        .into_string()
                        .map_err(|_| Error::InvalidArgument("invalid --id".into()))?
                }
                "--bundle" => options.bundle = value()?.into(),
                "--state-dir" => options.state_dir = value()?.into(),
                "--log" => options.log = value()?.into(),
                "--runtime" => options.runtime = Some(value()?.into()),
                "--runtime-root" => options.runtime_root = Some(value()?.into()),
                "--stdin" => options.stdin = true,
                "--tty" => options.tty = true,
                other => {
                    return Err(Error::InvalidArgument(format!(
                        "unknown argument {other:?}"
                    )));
                }
            }
        }
        options.check()?;
        Ok(options)
    }

    /// Required arguments present, paths absolute (the shim changes no directory, but its
    /// daemon half must not depend on the caller's).
    pub fn check(&self) -> Result<()> {
        runtime::state::validate_id(&self.id).map_err(|e| Error::InvalidArgument(e.to_string()))?;
        for (flag, path) in [
            ("--bundle", Some(&self.bundle)),
            ("--state-dir", Some(&self.state_dir)),
            ("--log", Some(&self.log)),
            ("--runtime-root", self.runtime_root.as_ref()),
        ] {
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
        if let Some(runtime) = &self.runtime {
            args.push("--runtime".into());
            args.push(runtime.clone().into());
        }
        if let Some(root) = &self.runtime_root {
            args.push("--runtime-root".into());
            args.push(root.clone().into());
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
            "--runtime",
            "/usr/sbin/runc",
            "--runtime-root",
            "/r",
        ])
        .unwrap();
        assert_eq!(options.id, "c1");
        assert_eq!(options.bundle, PathBuf::from("/b"));
        assert!(options.tty && options.stdin);
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
}
