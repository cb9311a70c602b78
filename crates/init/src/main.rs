//! `berth-init`: see the library documentation (crates/init/src/lib.rs).

use std::io::Write;

use berth_init::{Invocation, USAGE, parse_args, run};

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match parse_args(&args) {
        Ok(Invocation::Run { group, argv }) => {
            // Nothing but the child's status matters from here; drop the argument copies.
            drop(args);
            run(&argv, group)
        }
        Ok(Invocation::Version) => {
            let _ = writeln!(
                std::io::stdout(),
                "berth-init {}",
                env!("CARGO_PKG_VERSION")
            );
            0
        }
        Ok(Invocation::Help) => {
            let _ = std::io::stdout().write_all(USAGE.as_bytes());
            0
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "berth-init: {e}\n{USAGE}");
            // tini's code for a usage error; never a code a command commonly returns.
            1
        }
    };
    std::process::exit(code);
}
