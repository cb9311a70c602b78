#!/usr/bin/env bash
# scripts/setup.sh - set up a fresh Debian 12 machine for Berth, as root:
# install the build and test packages, build the workspace in release mode,
# install the binaries to /usr/local/bin, check berth-runtime runs a container,
# start berthd, make a local busybox image (no registry is reachable) and run
# `berth run --rm busybox echo hello` through the daemon.
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
  local binary
  for binary in berth-runtime berthd berth-shim berth-init berth; do
    install -D -m 0755 "$REPO/target/release/$binary" "$PREFIX/bin/$binary"
    echo "installed $PREFIX/bin/$binary"
  done
}

# start_daemon - (re)start berthd on /run/berth/berth.sock with its data in
# /var/lib/berth; it keeps running after this script (containers outlive it
# anyway: each has its own berth-shim).
start_daemon() {
  step "start berthd"
  if [ -f /run/berth/berthd.pid ] && kill -0 "$(cat /run/berth/berthd.pid)" 2>/dev/null; then
    kill "$(cat /run/berth/berthd.pid)"
    for _ in $(seq 100); do kill -0 "$(cat /run/berth/berthd.pid 2>/dev/null)" 2>/dev/null || break; sleep 0.05; done
  fi
  mkdir -p /run/berth /var/log
  setsid "$PREFIX/bin/berthd" --pidfile /run/berth/berthd.pid >>/var/log/berthd.log 2>&1 </dev/null &
  for _ in $(seq 200); do "$PREFIX/bin/berth" version >/dev/null 2>&1 && break; sleep 0.05; done
  "$PREFIX/bin/berth" version
}

# busybox_image - busybox:latest from Debian's busybox-static, imported.
busybox_image() {
  step "busybox:latest image"
  local rootfs
  rootfs=$(mktemp -d)
  bash "$REPO/scripts/busybox-rootfs.sh" "$rootfs" >/dev/null
  tar -C "$rootfs" -c . | "$PREFIX/bin/berth" import - busybox:latest
  rm -rf "$rootfs"
}

# hello - the main job: a container through the daemon.
hello() {
  step "berth run --rm busybox echo hello"
  "$PREFIX/bin/berth" run --rm busybox echo hello
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
  start_daemon
  busybox_image
  hello
  step "done: berthd serves unix:///run/berth/berth.sock (docker CLI: DOCKER_HOST=unix:///run/berth/berth.sock)"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  main "$@"
fi
