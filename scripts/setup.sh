#!/usr/bin/env bash
# scripts/setup.sh - set up a fresh Debian 12 machine for Berth, as root:
# install the build and test packages, build the workspace in release mode,
# install berth-runtime to /usr/local/bin, and check it runs a container.
#
#   sudo bash scripts/setup.sh
#
# Each step is a function; main() lists them in order, so a later step
# (starting the daemon) is one more line there.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${PREFIX:-/usr/local}
BUNDLES=/var/lib/berth/bundles
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$REPO/scripts/lib.sh"

step() { printf '\n== %s\n' "$*"; }

install_packages() {
  step "packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  ensure_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
}

build() {
  step "cargo build --release --workspace"
  local cargo
  cargo=$(find_cargo)
  (cd "$REPO" && "$cargo" build --release --workspace)
}

install_binaries() {
  step "install to $PREFIX/bin"
  install -D -m 0755 "$REPO/target/release/berth-runtime" "$PREFIX/bin/berth-runtime"
  echo "installed $PREFIX/bin/berth-runtime"
}

# smoke_test_runtime [RUNTIME] - run `echo hello from berth` in a busybox
# bundle with RUNTIME (default: the installed berth-runtime), then delete the
# container and the bundle.
smoke_test_runtime() {
  local runtime=${1:-$PREFIX/bin/berth-runtime} id=berth-setup-hello
  local bundle=$BUNDLES/hello
  step "smoke test: $runtime run"
  mkdir -p "$BUNDLES"
  rm -rf "$bundle"
  BERTH_RUNTIME=$runtime bash "$REPO/scripts/busybox-bundle.sh" "$bundle" echo hello from berth
  local out rc=0
  out=$("$runtime" run --bundle "$bundle" "$id" 2>&1) || rc=$?
  "$runtime" delete --force "$id" >/dev/null 2>&1 || true
  rm -rf "$bundle"
  rmdir "$BUNDLES" 2>/dev/null || true
  if [ "$rc" != 0 ] || [ "$out" != "hello from berth" ]; then
    echo "smoke test failed (exit $rc): $out" >&2
    return 1
  fi
  echo "$out"
}

main() {
  need_root
  install_packages
  build
  install_binaries
  smoke_test_runtime "$PREFIX/bin/berth-runtime"
  # Next: install and start berthd here once it exists.
  step "done: berth-runtime is ready ($PREFIX/bin/berth-runtime)"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
