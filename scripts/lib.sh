# shellcheck shell=bash disable=SC2034  # the arrays are used by the sourcing scripts
# scripts/lib.sh - shared by scripts/setup.sh and scripts/test.sh (source it).
# Package lists, an idempotent installer and the cargo lookup.

# Build: a C toolchain for the Rust linker, libseccomp for the seccomp crate.
BUILD_PACKAGES=(build-essential pkg-config libseccomp-dev ca-certificates git)
# Tests and benchmarks: reference runtimes and podman, the busybox image,
# hyperfine, the tools the scripts call (jq, python3, unshare/findmnt/mount from
# util-linux, script from bsdutils, pgrep from procps, newuidmap, mkfs.ext4
# from e2fsprogs for the storage-driver tests), the linter that test.sh runs
# over these scripts, nft (berthd's NAT and published ports), curl (published
# ports from the host) and docker-compose (the compose e2e test).
TEST_PACKAGES=(busybox-static runc crun podman hyperfine iproute2 jq uidmap
  util-linux bsdutils procps python3 tar shellcheck e2fsprogs nftables curl docker-compose)

# ensure_packages PKG... - apt-get install only what is missing; quick (one
# dpkg-query, no network) when everything is present.
ensure_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}\n' "$pkg" 2>/dev/null | grep -q '^install ok installed$' ||
      missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# find_cargo - print the path of cargo. Under sudo, PATH may lack rustup's
# ~/.cargo/bin, so look there too (root's and the invoking user's).
find_cargo() {
  local candidate
  for candidate in "$(command -v cargo 2>/dev/null)" "${CARGO_HOME:-$HOME/.cargo}/bin/cargo" \
      /root/.cargo/bin/cargo ${SUDO_USER:+"$(getent passwd "$SUDO_USER" | cut -d: -f6)/.cargo/bin/cargo"}; do
    [ -n "$candidate" ] && [ -x "$candidate" ] && { echo "$candidate"; return 0; }
  done
  cat >&2 <<'MSG'
cargo was not found. Berth needs a Rust toolchain (1.90 or newer):
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
then re-run this script (or put ~/.cargo/bin on PATH).
MSG
  return 1
}

# need_root - stop unless running as root.
need_root() {
  [ "$(id -u)" = 0 ] || { echo "$(basename "$0"): run as root (sudo bash $0)" >&2; exit 1; }
}
