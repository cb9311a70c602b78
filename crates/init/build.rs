//! Links `berth-init` as a fully static, position-dependent executable (see the static-link
//! crate for how).
//!
//! Why: the binary is bind-mounted into arbitrary images at /sbin/docker-init and runs there as
//! pid 1, so it must not need a dynamic loader or a libc inside the image (busybox-static has
//! neither).

fn main() {
    static_link::link_binaries_statically(&[]);
}
