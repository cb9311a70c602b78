//! Links `berth-init` as a fully static, position-dependent executable.
//!
//! Why: the binary is bind-mounted into arbitrary images at /sbin/docker-init and runs there as
//! pid 1, so it must not need a dynamic loader or a libc inside the image (busybox-static has
//! neither). The stable toolchain's `-C target-feature=+crt-static` would do this, but it can only
//! be set for a whole build (it breaks proc-macros), not for one binary; and rustc always asks for
//! `-lgcc_s -lc ...` under `-Bdynamic`, so plain `-static` still pulls the shared objects.
//!
//! So this script makes a directory whose `lib<name>.a` files stand in for each library rustc
//! names (`libgcc_s.a` is a linker script grouping `libgcc_eh.a` and `libgcc.a`, the static
//! unwinder and runtime support; the rest link to glibc's archives from libc6-dev), and passes it
//! with `-L` to the binary's link only. Every `-L` applies to every `-l` whatever their order
//! (ld(1), "-L searchdir"), and the linker picks, per directory, whichever of `.so`/`.a` it finds
//! first, so these archives win over the system's shared objects. With `-no-pie -static` the
//! compiler driver chooses the static start files (crt1.o, crtbeginT.o) and the result has no
//! PT_INTERP and no DT_NEEDED. Tests and the library keep the normal dynamic link.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Asks the C compiler driver where it finds a file (`cc -print-file-name=NAME`).
fn locate(name: &str) -> PathBuf {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc)
        .arg(format!("-print-file-name={name}"))
        .output()
        .unwrap_or_else(|e| panic!("run {cc}: {e}"));
    let path = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    if !path.is_absolute() || !path.exists() {
        panic!("{name} not found by {cc}: install libc6-dev and libgcc-12-dev (static archives)");
    }
    path
}

fn replace_link(target: &Path, link: &Path) {
    let _ = std::fs::remove_file(link);
    std::os::unix::fs::symlink(target, link)
        .unwrap_or_else(|e| panic!("symlink {}: {e}", link.display()));
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR")).join("static-libs");
    std::fs::create_dir_all(&dir).expect("create static-libs dir");
    let script = format!(
        "GROUP ( {} {} )\n",
        locate("libgcc_eh.a").display(),
        locate("libgcc.a").display()
    );
    std::fs::write(dir.join("libgcc_s.a"), script).expect("write libgcc_s.a");
    for lib in ["c", "m", "rt", "dl", "pthread", "util"] {
        let name = format!("lib{lib}.a");
        replace_link(&locate(&name), &dir.join(&name));
    }
    println!("cargo:rustc-link-arg-bins=-L{}", dir.display());
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rustc-link-arg-bins=-static");
}
