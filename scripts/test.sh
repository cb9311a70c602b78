#!/usr/bin/env bash
# scripts/test.sh - the whole test suite, as root:
#   1. test packages present (installs only what is missing), shellcheck of
#      the scripts, 2. cargo build --workspace, 3. cargo test --workspace (root-only
#   integration tests included), 4. tests/podman.sh with the built
#   berth-runtime, 5. a leak check: no berth mount, cgroup, process or
#   runtime state left on the host, no test volume plugin, e2e data root or
#   loop device.
# Prints a final "N passed, N failed" summing cargo's test counts, podman.sh's
# checks and this script's own checks; exits non-zero if anything failed.
#
#   sudo bash scripts/test.sh
# Knobs: BERTH_RUNTIME (runtime for tests/podman.sh; default the debug build),
#        CARGO_TEST_ARGS (extra args after `cargo test --workspace`).
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$REPO/scripts/lib.sh"
need_root
cd "$REPO" || exit 1

passed=0 failed=0
log=$(mktemp /tmp/berth-testlog.XXXXXX)
trap 'rm -f "$log"' EXIT
check() { # check NAME STATUS [DETAIL]
  if [ "$2" = 0 ]; then echo "ok - $1"; passed=$((passed + 1))
  else echo "FAIL - $1${3:+: $3}"; failed=$((failed + 1)); fi
}
section() { printf '\n== %s\n' "$*"; }

section "packages"
ensure_packages "${BUILD_PACKAGES[@]}" "${TEST_PACKAGES[@]}"
check "packages installed" $?

cargo=$(find_cargo) || exit 1

section "shellcheck"
shellcheck -x scripts/*.sh tests/*.sh bench/*.sh .ci/run
check "shellcheck of the scripts" $?

section "cargo build --workspace"
"$cargo" build --workspace
build_status=$?
check "cargo build --workspace" $build_status

section "cargo test --workspace"
if [ "$build_status" = 0 ]; then
  # shellcheck disable=SC2086
  "$cargo" test --workspace --no-fail-fast ${CARGO_TEST_ARGS:-} 2>&1 | tee "$log"
  test_status=${PIPESTATUS[0]}
  # Sum cargo's "test result: ... N passed; M failed" lines.
  read -r cargo_passed cargo_failed < <(awk '/^test result:/ {
      for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }
    } END { print p + 0, f + 0 }' "$log")
  passed=$((passed + cargo_passed)); failed=$((failed + cargo_failed))
  echo "cargo: $cargo_passed passed, $cargo_failed failed"
  # A crash or compile error of a test target counts as one more failure.
  if [ "$test_status" != 0 ] && [ "$cargo_failed" = 0 ]; then
    check "cargo test --workspace exit status" "$test_status"
  fi
else
  check "cargo test --workspace" 1 "skipped: build failed"
fi

section "berth CLI end to end against berthd"
# The CLI's e2e tests speak to whatever daemon BERTH_TEST_HOST names: here a
# berthd of this build, in its own data root, with a busybox image imported by
# the CLI itself.
if [ "$build_status" = 0 ]; then
  e2e=$(mktemp -d /tmp/berth-cli-e2e.XXXXXX)
  target=${CARGO_TARGET_DIR:-$REPO/target}/debug
  # A network slot of its own, as every daemon test takes one (crates/daemon/tests/common):
  # bridge and nftables table berth-t<N>, subnets 10.210.N.0/24 and 10.211.N.0/24, held by
  # a lock while the daemon lives, so concurrent runs never share them.
  mkdir -p /run/berth-test-nets
  slot=""
  for n in $(seq 200 249); do
    exec {slot_fd}>"/run/berth-test-nets/$n.lock"
    if flock -n "$slot_fd"; then slot=$n; break; fi
    exec {slot_fd}>&-
  done
  bridge=berth-t$slot
  cat >"$e2e/daemon.json" <<JSON
{"bridge": "$bridge", "bip": "10.210.$slot.1/24",
 "default-address-pools": [{"base": "10.211.$slot.0/24", "size": 28}], "dns": ["127.0.0.1"]}
JSON
  "$target/berthd" --data-root "$e2e/data" --exec-root "$e2e/run" -H "unix://$e2e/run/berth.sock" \
    --config-file "$e2e/daemon.json" >"$e2e/berthd.log" 2>&1 &
  berthd_pid=$!
  for _ in $(seq 200); do [ -S "$e2e/run/berth.sock" ] && break; sleep 0.05; done
  bash "$REPO/scripts/busybox-rootfs.sh" "$e2e/rootfs" >/dev/null
  tar -C "$e2e/rootfs" -c . | BERTH_HOST="unix://$e2e/run/berth.sock" "$target/berth" import - busybox:latest >/dev/null
  BERTH_TEST_HOST="unix://$e2e/run/berth.sock" "$cargo" test -p cli --test e2e 2>&1 | tee "$log"
  cli_status=${PIPESTATUS[0]}
  read -r cli_passed cli_failed < <(awk '/^test result:/ {
      for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i }
    } END { print p + 0, f + 0 }' "$log")
  passed=$((passed + cli_passed)); failed=$((failed + cli_failed))
  if [ "$cli_status" != 0 ] && [ "$cli_failed" = 0 ]; then
    check "berth CLI e2e exit status" "$cli_status"
  fi
  ids=$(BERTH_HOST="unix://$e2e/run/berth.sock" "$target/berth" ps -aq)
  # shellcheck disable=SC2086
  [ -n "$ids" ] && BERTH_HOST="unix://$e2e/run/berth.sock" "$target/berth" rm -f $ids >/dev/null
  BERTH_HOST="unix://$e2e/run/berth.sock" "$target/berth" network prune -f >/dev/null 2>&1
  kill "$berthd_pid"; wait "$berthd_pid" 2>/dev/null
  findmnt -rn -o TARGET | grep "^$e2e" | sort -r | xargs -r -n1 umount -l
  # The daemon's bridges (the default one, and any a failed test left), its table and its
  # accept rules in iptables-nft's FORWARD chain.
  for link in "$bridge" $(cat "$e2e"/data/network/*.json 2>/dev/null | jq -r 'select(.driver == "bridge") | .interface'); do
    ip link delete "$link" 2>/dev/null
  done
  nft delete table ip "$bridge" 2>/dev/null
  nft -a list chain ip filter FORWARD 2>/dev/null | sed -n "s/.*\"berth:$bridge\".*# handle \([0-9]*\)$/\1/p" |
    while read -r handle; do nft delete rule ip filter FORWARD handle "$handle"; done
  exec {slot_fd}>&-
  rm -rf "$e2e"
fi

section "tests/podman.sh"
runtime=${BERTH_RUNTIME:-${CARGO_TARGET_DIR:-$REPO/target}/debug/berth-runtime}
bash "$REPO/tests/podman.sh" "$runtime" 2>&1 | tee "$log"
podman_status=${PIPESTATUS[0]}
read -r podman_passed podman_failed < <(awk '/^[0-9]+ passed, [0-9]+ failed$/ {p = $1; f = $3} END {print p + 0, f + 0}' "$log")
passed=$((passed + podman_passed)); failed=$((failed + podman_failed))
if [ "$podman_status" != 0 ] && [ "$podman_failed" = 0 ]; then
  check "tests/podman.sh ran" "$podman_status"
fi

section "leak check"
# Mounts: test bundles live in /tmp/berth-test-*, the runtime state in
# /run/berth-runtime; nothing of either may stay mounted.
leaked=$(grep berth /proc/self/mountinfo)
check "no berth mount left" "$([ -z "$leaked" ]; echo $?)" "$leaked"

# Cgroups: the integration tests use /berth-test/<id>; the empty parent
# directory is not a leak, a container directory inside it is.
# berthd keeps containers under /berth/<id>, as dockerd under /docker/<id>.
rmdir /sys/fs/cgroup/*/berth-test /sys/fs/cgroup/berth-test /sys/fs/cgroup/*/berth /sys/fs/cgroup/berth 2>/dev/null
leaked=$(find /sys/fs/cgroup -maxdepth 3 -name '*berth*' 2>/dev/null)
check "no berth cgroup left" "$([ -z "$leaked" ]; echo $?)" "$leaked"

# Processes: the runtime itself, and anything living in a berth cgroup or
# rooted in a berth directory (zombies excluded: pid 1 reaps orphans).
leaked=""
for proc in /proc/[0-9]*; do
  pid=${proc#/proc/}
  [ "$pid" = $$ ] && continue
  # The daemon that scripts/setup.sh started (the main job) is not a leak.
  [ "$pid" = "$(cat /run/berth/berthd.pid 2>/dev/null)" ] && continue
  state=$(awk '/^State:/ {print $2}' "$proc/status" 2>/dev/null)
  { [ -z "$state" ] || [ "$state" = Z ]; } && continue
  comm=$(cat "$proc/comm" 2>/dev/null)
  if [ "$comm" = berth-runtime ] || [ "$comm" = berthd ] || [ "$comm" = berth-shim ] || grep -q berth "$proc/cgroup" 2>/dev/null ||
     readlink "$proc/root" 2>/dev/null | grep -q berth; then
    leaked+="$pid($comm) "
  fi
done
check "no berth-runtime or container process left" "$([ -z "$leaked" ]; echo $?)" "$leaked"

# Runtime state: the default --root (podman uses it) holds no container.
leaked=$(find /run/berth-runtime -mindepth 1 -maxdepth 1 2>/dev/null)
check "no state left under /run/berth-runtime" "$([ -z "$leaked" ]; echo $?)" "$leaked"
leaked=$(podman ps -aq --filter ancestor=localhost/busybox-berth:latest 2>/dev/null)
podman image exists localhost/busybox-berth:latest 2>/dev/null && leaked+=" image localhost/busybox-berth:latest"
check "no podman test container or image left" "$([ -z "$leaked" ]; echo $?)" "$leaked"
leaked=$(find /tmp -maxdepth 1 -name 'berth-test-*' 2>/dev/null)
check "no test tempdir left" "$([ -z "$leaked" ]; echo $?)" "$leaked"

# Storage: the daemon e2e tempdirs (data roots with volumes, loop-mounted file
# systems of the storage-driver tests), the test volume plugins (their
# directories and python processes), and loop devices backed by test images.
leaked=$(find /tmp -maxdepth 1 \( -name 'berthd-e2e-*' -o -name 'berth-plugins-*' \) 2>/dev/null)
check "no daemon e2e or plugin tempdir left" "$([ -z "$leaked" ]; echo $?)" "$leaked"
leaked=$(pgrep -af 'berth-plugins-' 2>/dev/null | grep -v pgrep)
check "no test volume plugin left running" "$([ -z "$leaked" ]; echo $?)" "$leaked"
leaked=$(losetup -a 2>/dev/null | grep -e berth -e /tmp/.tmp)
check "no loop device of a test image left" "$([ -z "$leaked" ]; echo $?)" "$leaked"

# Networking: test daemons name their bridges and nftables tables berth-t<N>, and the
# tests' fake hosts and macvlan parents berth-<role><N>; user-defined networks of test
# daemons are br-<id> bridges whose ports are veths. The daemon that scripts/setup.sh
# started (berth0, table "berth") is not a test's.
leaked=$(ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E '^berth-' | tr '\n' ' ')
check "no berth test link left" "$([ -z "$leaked" ]; echo $?)" "$leaked"
leaked=$(nft list tables 2>/dev/null | grep -E '^table ip berth-' | tr '\n' ' ')
check "no berth test nftables table left" "$([ -z "$leaked" ]; echo $?)" "$leaked"
leaked=$(nft list chain ip filter FORWARD 2>/dev/null | grep -c '"berth:berth-')
check "no berth accept rule left in ip filter FORWARD" "$([ "${leaked:-0}" = 0 ]; echo $?)" "$leaked rules"
leaked=$(find /run/netns -maxdepth 1 -name 'berth*' 2>/dev/null | tr '\n' ' ')
check "no berth test network namespace left" "$([ -z "$leaked" ]; echo $?)" "$leaked"

echo
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
