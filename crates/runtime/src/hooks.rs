//! Lifecycle hooks (OCI runtime-spec config.md "POSIX-platform Hooks"): each hook is a program
//! run with the container's state JSON on its stdin; a hook with a timeout is killed when it
//! runs longer.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::{Hook, State};

use crate::error::{Error, Result};

/// Which point of the lifecycle a hook list belongs to (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookPoint {
    Prestart,
    CreateRuntime,
    CreateContainer,
    StartContainer,
    Poststart,
    Poststop,
}

impl HookPoint {
    fn name(self) -> &'static str {
        match self {
            Self::Prestart => "prestart",
            Self::CreateRuntime => "createRuntime",
            Self::CreateContainer => "createContainer",
            Self::StartContainer => "startContainer",
            Self::Poststart => "poststart",
            Self::Poststop => "poststop",
        }
    }
}

/// The hooks of one point from a spec, empty when there are none.
pub fn of(spec: &oci_spec::runtime::Spec, point: HookPoint) -> Vec<Hook> {
    let Some(hooks) = spec.hooks() else {
        return Vec::new();
    };
    #[allow(deprecated)]
    let list = match point {
        HookPoint::Prestart => hooks.prestart(),
        HookPoint::CreateRuntime => hooks.create_runtime(),
        HookPoint::CreateContainer => hooks.create_container(),
        HookPoint::StartContainer => hooks.start_container(),
        HookPoint::Poststart => hooks.poststart(),
        HookPoint::Poststop => hooks.poststop(),
    };
    list.clone().unwrap_or_default()
}

/// Runs the hooks in order; the first failure stops the list and is returned.
pub fn run(hooks: &[Hook], point: HookPoint, state: &State) -> Result<()> {
    let state_json = serde_json::to_vec(state).map_err(|e| Error::Child(e.to_string()))?;
    for hook in hooks {
        run_one(hook, &state_json).map_err(|message| {
            Error::Child(format!(
                "{} hook {:?}: {message}",
                point.name(),
                hook.path()
            ))
        })?;
    }
    Ok(())
}

/// Runs the hooks and logs failures instead of returning them: poststart and poststop failures
/// must not stop the lifecycle (config.md: "the runtime MUST log a warning").
/// Every hook runs even when an earlier one failed.
pub fn run_logging_failures(hooks: &[Hook], point: HookPoint, state: &State) {
    for hook in hooks {
        if let Err(error) = run(std::slice::from_ref(hook), point, state) {
            tracing::warn!("{error}");
        }
    }
}

fn run_one(hook: &Hook, state_json: &[u8]) -> std::result::Result<(), String> {
    let mut command = Command::new(hook.path());
    if let Some(args) = hook.args() {
        // args[0] is the program's argv[0], as in execv.
        if let Some((first, rest)) = args.split_first() {
            use std::os::unix::process::CommandExt;
            command.arg0(first).args(rest);
        }
    }
    command.env_clear();
    for entry in hook.env().iter().flatten() {
        if let Some((key, value)) = entry.split_once('=') {
            command.env(key, value);
        }
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| format!("cannot start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that ignores its stdin may close it early: that is not an error.
        let _ = stdin.write_all(state_json);
    }
    let deadline = hook
        .timeout()
        .filter(|seconds| *seconds > 0)
        .map(|seconds| Instant::now() + Duration::from_secs(seconds as u64));
    let status = loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            break status;
        }
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("timed out".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    if status.success() {
        return Ok(());
    }
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stderr);
    }
    let stderr = stderr.trim();
    Err(if stderr.is_empty() {
        format!("failed: {status}")
    } else {
        format!("{status}: {stderr}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::HookBuilder;

    fn state() -> State {
        let mut state = State::default();
        state.set_id("hooked".into());
        state
    }

    #[test]
    fn a_hook_reads_the_state_on_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("state.json");
        let hook = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".into(),
                "-c".into(),
                format!("cat > {}", out.display()),
            ])
            .build()
            .unwrap();
        run(&[hook], HookPoint::Prestart, &state()).unwrap();
        let written: State = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
        assert_eq!(written.id(), "hooked");
    }

    #[test]
    fn logged_failures_do_not_stop_the_remaining_hooks() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("ran");
        let fail = HookBuilder::default().path("/bin/false").build().unwrap();
        let write = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".into(),
                "-c".into(),
                format!("touch {}", out.display()),
            ])
            .build()
            .unwrap();
        run_logging_failures(&[fail, write], HookPoint::Poststop, &state());
        assert!(out.exists());
    }

    #[test]
    fn a_failing_hook_names_itself_and_a_slow_one_times_out() {
        let fail = HookBuilder::default()
            .path("/bin/sh")
            .args(vec![
                "sh".into(),
                "-c".into(),
                "echo nope >&2; exit 3".into(),
            ])
            .build()
            .unwrap();
        let error = run(&[fail], HookPoint::CreateRuntime, &state())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("createRuntime") && error.contains("nope"),
            "{error}"
        );
        let slow = HookBuilder::default()
            .path("/bin/sh")
            .args(vec!["sh".into(), "-c".into(), "sleep 5".into()])
            .timeout(1i64)
            .build()
            .unwrap();
        let error = run(&[slow], HookPoint::Poststart, &state())
            .unwrap_err()
            .to_string();
        assert!(error.contains("timed out"), "{error}");
    }
}
