#!/usr/bin/env bash
# ok/not_ok never fail, so `test && ok || not_ok` is a safe if/else here.
# shellcheck disable=SC2015
# tests/podman.sh [RUNTIME] - podman drives an OCI runtime with runc's CLI.
#
# RUNTIME is argument 1, else $BERTH_RUNTIME, else /usr/local/bin/berth-runtime.
# Validate the script itself with a reference runtime: tests/podman.sh "$(command -v runc)".
#
# Imports a busybox rootfs as localhost/busybox-berth:latest, then checks
# `run --rm`, `run -it` (console socket), `--memory`, `exec`, `stop`. Every
# container and the image are removed at the end, whatever happened.
# Prints "ok - ..." / "FAIL - ..." per check and a final "N passed, N failed";
# exits non-zero when a check failed.
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNTIME=${1:-${BERTH_RUNTIME:-/usr/local/bin/berth-runtime}}
IMAGE=localhost/busybox-berth:latest
LABEL=berth.podman-test=$$
work=$(mktemp -d /tmp/berth-podman.XXXXXX)

[ "$(id -u)" = 0 ] || { echo "tests/podman.sh: run as root" >&2; exit 2; }
command -v podman >/dev/null || { echo "tests/podman.sh: podman is not installed" >&2; exit 2; }
[ -x "$RUNTIME" ] || { echo "tests/podman.sh: runtime $RUNTIME is not executable" >&2; exit 2; }

# No systemd here: cgroupfs manager and file events. Rootful podman asks for
# RLIMIT_NOFILE/NPROC of 1048576; without CAP_SYS_RESOURCE no runtime may
# raise the hard limit past ours, so ask for what we have.
hard_nofile=$(ulimit -Hn); [ "$hard_nofile" = unlimited ] && hard_nofile=1048576
hard_nproc=$(ulimit -Hu); [ "$hard_nproc" = unlimited ] && hard_nproc=1048576
pid_max=$(cat /proc/sys/kernel/pid_max); [ "$hard_nproc" -gt "$pid_max" ] && hard_nproc=$pid_max
PODMAN=(podman --runtime "$RUNTIME" --cgroup-manager cgroupfs --events-backend file)
RUN=(run --label "$LABEL" --network none
  --ulimit "nofile=$hard_nofile:$hard_nofile" --ulimit "nproc=$hard_nproc:$hard_nproc")

passed=0 failed=0
ok() { echo "ok - $1"; passed=$((passed + 1)); }
not_ok() { echo "FAIL - $1"; [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/    /'; failed=$((failed + 1)); }

cleanup() {
  local ids=()
  mapfile -t ids < <("${PODMAN[@]}" ps -aq --filter "label=$LABEL" 2>/dev/null)
  [ ${#ids[@]} -gt 0 ] && "${PODMAN[@]}" rm -f -t 0 "${ids[@]}" >/dev/null 2>&1
  "${PODMAN[@]}" rmi -f "$IMAGE" >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT

echo "# podman $(podman --version | awk '{print $3}') with runtime $RUNTIME"
bash "$repo/scripts/busybox-rootfs.sh" "$work/rootfs" 2>/dev/null || { echo "cannot build rootfs" >&2; exit 1; }
if ! tar -C "$work/rootfs" -c . | podman import -q -c 'CMD ["/bin/sh"]' - "$IMAGE" >/dev/null; then
  echo "tests/podman.sh: podman import failed" >&2; exit 1
fi

# 1. run --rm echo
out=$("${PODMAN[@]}" "${RUN[@]}" --rm "$IMAGE" echo hi 2>&1)
[ "$out" = hi ] && ok "run --rm echo hi" || not_ok "run --rm echo hi" "$out"

# 2. exit code of a foreground container
"${PODMAN[@]}" "${RUN[@]}" --rm "$IMAGE" sh -c 'exit 7' >/dev/null 2>&1; rc=$?
[ "$rc" = 7 ] && ok "run --rm passes the exit code" || not_ok "run --rm passes the exit code" "got $rc"

# 3. -it: podman hands the runtime a console socket; script(1) gives podman
# a terminal, and the typed line reaches the shell through the pty.
# shellcheck disable=SC2016  # expanded by the container's shell
out=$(printf 'echo tty-$((6*7)); tty; exit 5\n' |
  timeout 60 script -qec "${PODMAN[*]} ${RUN[*]} --rm -it $IMAGE sh" /dev/null 2>&1); rc=$?
if printf '%s' "$out" | tr -d '\r' | grep -qx 'tty-42' &&
   printf '%s' "$out" | tr -d '\r' | grep -q '^/dev/pts/' && [ "$rc" = 5 ]; then
  ok "run -it (console socket, exit code)"
else
  not_ok "run -it (console socket, exit code)" "rc=$rc output: $out"
fi

# 4. detached container with a memory limit; exec; stop
name=berth-podman-$$
if cid=$("${PODMAN[@]}" "${RUN[@]}" -d --name "$name" --memory 64m "$IMAGE" sleep 300 2>&1); then
  ok "run -d"
  pid=$("${PODMAN[@]}" inspect -f '{{.State.Pid}}' "$name")
  memcg=$(awk -F: '$2 ~ /(^|,)memory(,|$)/ {print $3}' "/proc/$pid/cgroup" 2>/dev/null)
  limit=$(cat "/sys/fs/cgroup/memory$memcg/memory.limit_in_bytes" 2>/dev/null ||
          cat "/sys/fs/cgroup$(awk -F: '$1 == 0 {print $3}' "/proc/$pid/cgroup")/memory.max" 2>/dev/null)
  [ "$limit" = 67108864 ] && ok "--memory 64m sets the host cgroup limit" ||
    not_ok "--memory 64m sets the host cgroup limit" "pid $pid cgroup $memcg limit '$limit'"
  inside=$("${PODMAN[@]}" exec "$name" sh -c \
    'cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max' 2>&1)
  [ "$inside" = 67108864 ] && ok "--memory 64m visible inside (/sys/fs/cgroup)" ||
    not_ok "--memory 64m visible inside (/sys/fs/cgroup)" "$inside"
  out=$("${PODMAN[@]}" exec "$name" sh -c 'echo exec-ok $$' 2>&1)
  case $out in
    "exec-ok 1"|"") not_ok "exec" "$out" ;;
    exec-ok*) ok "exec runs a new process in the container" ;;
    *) not_ok "exec" "$out" ;;
  esac
  "${PODMAN[@]}" exec "$name" sh -c 'exit 4' >/dev/null 2>&1; rc=$?
  [ "$rc" = 4 ] && ok "exec passes the exit code" || not_ok "exec passes the exit code" "got $rc"
  out=$(printf 'echo exec-tty; exit\n' | timeout 60 script -qec "${PODMAN[*]} exec -it $name sh" /dev/null 2>&1)
  printf '%s' "$out" | tr -d '\r' | grep -qx 'exec-tty' && ok "exec -it" || not_ok "exec -it" "$out"
  if "${PODMAN[@]}" stop -t 2 "$name" >/dev/null 2>&1 &&
     [ "$("${PODMAN[@]}" inspect -f '{{.State.Status}}' "$name")" = exited ]; then
    ok "stop"
  else
    not_ok "stop" "$("${PODMAN[@]}" inspect -f '{{.State.Status}}' "$name" 2>&1)"
  fi
  "${PODMAN[@]}" rm -f -t 0 "$name" >/dev/null 2>&1 && ok "rm" || not_ok "rm"
  if [ -n "$pid" ] && [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; then
    not_ok "container process gone after rm" "pid $pid still alive"
  else
    ok "container process gone after rm"
  fi
else
  not_ok "run -d" "$cid"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
