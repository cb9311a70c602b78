//! Links `berth-shim` as a fully static, position-dependent executable (see the static-link
//! crate for how), libseccomp included.
//!
//! Why: one shim runs per container for the container's whole life and one is started for
//! every container start and every exec.
//! - Start: a static binary needs no dynamic loader, so exec(2) goes straight to `main` with no
//!   library lookup, mapping or symbol relocation.
//! - Memory: the shim's resident set is multiplied by the number of containers. In a PIE the
//!   dynamic loader writes every pointer of `.data.rel.ro` (vtables, static tables: ~264 KiB
//!   here, from the runtime library, serde and oci-spec) at start-up, which turns those pages
//!   into private anonymous memory of every shim; linked at a fixed address they need no
//!   relocation and stay clean, shared page-cache pages (RssAnon 460 KiB as PIE, 160-210 KiB
//!   without). And instead of mapping all of libc, whose scattered functions each bring the
//!   kernel's 64 KiB fault-around window into the resident set, only the libc code the shim
//!   uses is linked in, next to the rest of its code.
//!
//! The cost: the shim's own image is not randomised (ASLR still randomises its stack, heap and
//! mmaps). The shim parses only its root-only control socket's requests and splits container
//! output at newlines.

fn main() {
    static_link::link_binaries_statically(&["seccomp"]);
}
