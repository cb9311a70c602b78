//! `berth-shim`: the per-container monitor's binary. See the `shim` crate for the design.
//!
//! ```text
//! berth-shim start --id ID --bundle DIR --state-dir DIR --log PATH
//!                  [--stdin] [--stdin-once] [--tty] [--hold] [--runtime PATH] [--runtime-root DIR]
//! berth-shim exec --id CONTAINER_ID --state-dir DIR --container-state-dir DIR --process FILE
//!                  [--stdin] [--stdin-once] [--tty] [--runtime PATH] [--runtime-root DIR]
//! ```
//!
//! Prints one line, `ok <init pid>` (`ok 0` for exec) (exit 0) or `error <message>` (exit 1).

use std::io::Write;

fn main() {
    // Descriptors the engine leaked to us must not reach the shim's long life or the
    // container (close_range(2), Linux 5.9; on older kernels they stay, which is harmless).
    // SAFETY: closes descriptors >= 3 before this process opened any of its own.
    unsafe { libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32) };
    let mut args = std::env::args_os().skip(1);
    let line = match args.next().as_deref().and_then(|a| a.to_str()) {
        Some("start") => match shim::StartOptions::parse(args) {
            Ok(options) => match shim::start::start(&options) {
                Ok(pid) => Ok(format!("ok {pid}")),
                Err(message) => Err(format!("error {message}")),
            },
            Err(error) => Err(format!("error {error}")),
        },
        Some("exec") => match shim::ExecOptions::parse(args) {
            Ok(options) => match shim::exec::exec(&options) {
                Ok(pid) => Ok(format!("ok {pid}")),
                Err(message) => Err(format!("error {message}")),
            },
            Err(error) => Err(format!("error {error}")),
        },
        _ => Err("error usage: berth-shim start --id ID --bundle DIR --state-dir DIR --log PATH [--stdin] [--stdin-once] [--tty] [--hold] [--runtime PATH] [--runtime-root DIR] | berth-shim exec --id ID --state-dir DIR --container-state-dir DIR --process FILE [--stdin] [--stdin-once] [--tty] [--runtime PATH] [--runtime-root DIR]".to_string()),
    };
    let mut stdout = std::io::stdout();
    let (text, code) = match line {
        Ok(text) => (text, 0),
        Err(text) => (text, 1),
    };
    let _ = writeln!(stdout, "{text}");
    let _ = stdout.flush();
    std::process::exit(code);
}
