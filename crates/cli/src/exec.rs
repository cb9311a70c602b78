//! `exec`: run a command in a running container (docker's `container exec`): create the exec
//! instance, start it hijacked (or detached with `-d`), follow the terminal size with `-t`,
//! and exit with the process's status from the exec's inspect.

use clap::Args;
use client::Client;
use client::models::ExecConfig;

use crate::app::{CmdResult, Failure, describe};
use crate::attach;

/// `exec`.
#[derive(Debug, Clone, Args)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long = "detach-keys")]
    pub detach_keys: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    pub env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    pub interactive: bool,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    pub tty: bool,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Container, then the command and its arguments
    #[arg(
        required = true,
        num_args = 2..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CONTAINER COMMAND [ARG...]"
    )]
    pub args: Vec<String>,
}

/// Parses an env file as docker does (`opts.ParseEnvFile`): one `NAME=value` per line, value
/// kept verbatim; blank lines and `#` comments skipped; a bare `NAME` takes our value (and is
/// dropped when we have none); a name with whitespace is an error.
pub fn parse_env_file(
    text: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim_start_matches([' ', '\t']);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, value) = match line.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (line, None),
        };
        if name.is_empty() {
            return Err(format!("invalid environment variable: {line}"));
        }
        if name.contains([' ', '\t']) {
            return Err(format!("variable '{name}' contains whitespaces"));
        }
        match value {
            Some(v) => out.push(format!("{name}={v}")),
            None => {
                if let Some(v) = lookup(name) {
                    out.push(format!("{name}={v}"));
                }
            }
        }
    }
    Ok(out)
}

/// The environment of `-e` and `--env-file` flags: files first, then `-e`, as docker merges
/// them.
pub fn env_of(files: &[String], flags: &[String]) -> Result<Vec<String>, Failure> {
    let lookup = |n: &str| std::env::var(n).ok();
    let mut env = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|e| Failure::new(format!("open {f}: {e}")))?;
        env.extend(parse_env_file(&text, &lookup).map_err(Failure::new)?);
    }
    env.extend(flags.iter().filter_map(|e| crate::options::env_entry(e)));
    Ok(env)
}

/// `exec`.
pub async fn exec(c: &Client, a: ExecArgs) -> CmdResult {
    let container = &a.args[0];
    let cmd = a.args[1..].to_vec();
    let env = env_of(&a.env_file, &a.env)?;
    let stdin = a.interactive && !a.detach;
    if !a.detach {
        attach::check_tty(stdin, a.tty)?;
    }
    let (keys, keys_flag) = attach::detach_keys_of(a.detach_keys.as_deref())?;
    let console_size = if a.tty {
        crate::system::terminal_size()
    } else {
        None
    };
    let config = ExecConfig {
        attach_stdin: Some(stdin),
        attach_stdout: Some(!a.detach),
        attach_stderr: Some(!a.detach),
        console_size: console_size.map(|(h, w)| vec![h as usize, w as usize]),
        detach_keys: keys_flag,
        tty: Some(a.tty),
        env: if env.is_empty() { None } else { Some(env) },
        cmd: Some(cmd),
        privileged: Some(a.privileged),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
    };
    let id = c.exec_create(container, &config).await?;
    if a.detach {
        c.exec_start_detached(&id, a.tty).await?;
        return Ok(0);
    }
    let hijacked = match c
        .exec_start_attached(&id, a.tty, console_size.map(|(h, w)| [h, w]))
        .await
    {
        Ok(h) => h,
        Err(e) => return Err(start_failure(c, &id, e).await),
    };
    let session = attach::Session::begin(
        hijacked,
        attach::SessionOptions {
            tty: a.tty,
            stdin,
            detach_keys: keys,
        },
    );
    let _resizer = if a.tty {
        attach::follow_terminal_size(c, attach::ResizeTarget::Exec(id.clone()))
    } else {
        None
    };
    match session.finish().await {
        Ok(attach::SessionEnd::Detached) => {
            return Err(Failure::new(attach::DETACHED_MESSAGE));
        }
        Ok(attach::SessionEnd::OutputEnded) => {}
        Err(e) => eprintln!("{e}"),
    }
    exit_status(c, &id).await
}

/// The exit code of a finished exec, read from its inspect (the daemon may record it a
/// moment after the stream closes: poll briefly while it still runs).
async fn exit_status(c: &Client, id: &str) -> CmdResult {
    for _ in 0..100 {
        let r = c.exec_inspect(id).await?;
        if r.running != Some(true) {
            return Ok(r.exit_code.unwrap_or(0) as i32);
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    Ok(0)
}

/// A start refused before the stream: the daemon's message, with the status docker gives
/// (the exec's recorded exit code, 126/127 for a command that cannot run, else 1).
async fn start_failure(c: &Client, id: &str, e: client::Error) -> Failure {
    let message = describe(&e);
    let recorded = c
        .exec_inspect(id)
        .await
        .ok()
        .and_then(|r| r.exit_code)
        .filter(|&code| code != 0);
    let status = match recorded {
        Some(code) => code as i32,
        None => match crate::run::start_error_status(&message) {
            125 => 1,
            s => s,
        },
    };
    Failure::new(message).with_status(status)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct T {
        #[command(flatten)]
        exec: ExecArgs,
    }

    #[test]
    fn flags_stop_at_the_command() {
        let t = T::try_parse_from([
            "exec", "-it", "-u", "1:2", "-w", "/tmp", "c1", "ls", "-l", "-u",
        ])
        .unwrap();
        assert!(t.exec.interactive && t.exec.tty);
        assert_eq!(t.exec.user.as_deref(), Some("1:2"));
        assert_eq!(t.exec.args, ["c1", "ls", "-l", "-u"]);
        assert!(T::try_parse_from(["exec", "c1"]).is_err());
    }

    #[test]
    fn env_files() {
        let lookup = |n: &str| (n == "HOME").then(|| "/root".to_string());
        let env = parse_env_file(
            "# comment\n\nA=1\n  B= spaced \nHOME\nUNSET\nC=x=y\n",
            &lookup,
        )
        .unwrap();
        assert_eq!(env, ["A=1", "B= spaced ", "HOME=/root", "C=x=y"]);
        assert!(parse_env_file("BAD NAME=1\n", &lookup).is_err());
        assert!(parse_env_file("=1\n", &lookup).is_err());
    }
}
