//! Links a crate's binaries as fully static, position-dependent executables, for build scripts.
//!
//! The stable toolchain's `-C target-feature=+crt-static` would do this, but it can only be set
//! for a whole build (it breaks proc-macros), not for one binary; and rustc always asks for
//! `-lgcc_s -lc ...` under `-Bdynamic`, so plain `-static` still pulls the shared objects.
//!
//! So [`link_binaries_statically`] makes a directory whose `lib<name>.a` files stand in for each
//! library rustc names (`libgcc_s.a` is a linker script grouping `libgcc_eh.a` and `libgcc.a`,
//! the static unwinder and runtime support; the rest link to the archives of libc6-dev and of
//! the `-dev` packages of the extra libraries), and passes it with `-L` to the binaries' link
//! only. Every `-L` applies to every `-l` whatever their order (ld(1), "-L searchdir"), and the
//! linker picks, per directory, whichever of `.so`/`.a` it finds first, so these archives win
//! over the system's shared objects. With `-no-pie -static` the compiler driver chooses the
//! static start files (crt1.o, crtbeginT.o) and the result has no PT_INTERP and no DT_NEEDED.
//! Tests and libraries keep the normal dynamic link.
//!
//! In a build script's `main`:
//!
//! ```no_run
//! static_link::link_binaries_statically(&["seccomp"]);
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

/// glibc's libraries that rustc links every binary with.
const LIBC_PARTS: [&str; 6] = ["c", "m", "rt", "dl", "pthread", "util"];

/// Asks the C compiler driver where it finds a file (`cc -print-file-name=NAME`).
fn locate(name: &str) -> PathBuf {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .arg(format!("-print-file-name={name}"))
        .output()
        .unwrap_or_else(|e| panic!("run {cc}: {e}"));
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !path.is_absolute() || !path.exists() {
        panic!(
            "{name} not found by {cc}: install libc6-dev, libgcc-12-dev and the -dev package of \
             the library (static archives)"
        );
    }
    path
}

fn replace_link(target: &Path, link: &Path) {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link)
        .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
}

/// Makes the calling build script's crate link its binaries statically; `extra` names the
/// C libraries besides glibc's (e.g. `seccomp` for libseccomp.a) that its dependencies link.
pub fn link_binaries_statically(extra: &[&str]) {
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("static-libs");
    std::fs::create_dir_all(&dir).expect("create static-libs dir");
    let script = format!(
        "GROUP ( {} {} )\n",
        locate("libgcc_eh.a").display(),
        locate("libgcc.a").display()
    );
    std::fs::write(dir.join("libgcc_s.a"), script).expect("write libgcc_s.a");
    for lib in LIBC_PARTS.iter().chain(extra) {
        let name = format!("lib{lib}.a");
        replace_link(&locate(&name), &dir.join(&name));
    }
    println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rustc-link-arg-bins=-static");
}
