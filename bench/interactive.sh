#!/usr/bin/env bash
# bench/interactive.sh - exec and attach latency, berthd against dockerd, both driven by the
# same docker CLI (28.x at /usr/local/bin/docker by default), plus the berth CLI on berthd.
#
# Each daemon is started by this script on its own socket, with its data root and exec root in
# a scratch directory; the same busybox image (scripts/busybox-rootfs.sh + `docker import`)
# goes into both; one container `sleep 100000` runs in each. Measured with hyperfine (-N):
#   - exec round trip: `docker exec c true` (create, start with a hijacked stream, process
#     run and reaped, inspect for the exit code) on berthd and dockerd, and `berth exec c true`
#     on berthd - the issue's target is <= 15 ms for the latter;
#   - exec with output: `docker exec c echo x`;
#   - attach latency without a terminal: `docker start -a a` of a created container running
#     `true` (attach before start, start, output, exit, wait) - every run restarts it.
# Prints a table with both figures and the ratio berth/docker, and keeps hyperfine's JSON and
# the daemons' logs in a results directory printed at the end.
#
# Fairness: dockerd runs with its defaults except the socket, roots, pid file, an empty config
# file, and no bridge/iptables (--bridge=none --iptables=false --ip6tables=false): exec and
# attach do not touch the network, and the host's firewall is left alone.
#
# Cleanup on every exit path (trap): containers removed through each API, daemons stopped by
# pid (dockerd's own containerd with it), left-over shims of our scratch dir killed by pid,
# mounts under the scratch dir unmounted, the scratch dir deleted.
#
# Usage: sudo bash bench/interactive.sh
# Knobs (env): RUNS (30) WARMUP (3) DOCKER (client) DOCKERD (dockerd binary; skipped when
#              missing) BERTHD BERTH BERTH_SHIM (default target/release/*, else target/debug/*)
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
repo=$(cd "$(dirname "$SELF")/.." && pwd)
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
DOCKER=${DOCKER:-/usr/local/bin/docker}
DOCKERD=${DOCKERD:-dockerd}

pick() { # pick NAME: the release binary, else the debug one
  if [ -x "$repo/target/release/$1" ]; then echo "$repo/target/release/$1"; else echo "$repo/target/debug/$1"; fi
}
BERTHD=${BERTHD:-$(pick berthd)}
BERTH=${BERTH:-$(pick berth)}

log() { echo "[interactive.sh] $*" >&2; }
[ "$(id -u)" = 0 ] || { log "needs root"; exit 1; }
command -v hyperfine >/dev/null || { log "needs hyperfine (apt-get install hyperfine)"; exit 1; }
for binary in "$BERTHD" "$BERTH" "$DOCKER"; do
  [ -x "$binary" ] || { log "missing $binary (cargo build --release -p daemon -p shim -p cli)"; exit 1; }
done

work=$(mktemp -d /tmp/bench-interactive.XXXXXX)
res=$(mktemp -d /tmp/bench-interactive-results.XXXXXX)
declare -A HOST PIDFILE
ENGINES=(berth)
if command -v "$DOCKERD" >/dev/null; then ENGINES+=(docker); else log "no dockerd: berthd only"; fi

cleanup() {
  set +e
  for engine in "${ENGINES[@]}"; do
    if [ -n "${HOST[$engine]:-}" ]; then
      mapfile -t ids < <("$DOCKER" -H "${HOST[$engine]}" ps -aq 2>/dev/null)
      [ "${#ids[@]}" -gt 0 ] && "$DOCKER" -H "${HOST[$engine]}" rm -f "${ids[@]}" >/dev/null 2>&1
    fi
    if [ -f "${PIDFILE[$engine]:-/nonexistent}" ]; then
      pid=$(cat "${PIDFILE[$engine]}")
      kill "$pid" 2>/dev/null
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null
    fi
  done
  # shims and containerd processes left under our scratch dir
  for pidfile in "$work"/berth/run/shims/*/shim.pid "$work"/berth/run/execs/*/shim.pid; do
    [ -f "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null
  done
  grep " $work" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r m; do umount -l "$m"; done
  cp "$work"/*/daemon.log "$res"/ 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

start_daemon() { # start_daemon ENGINE
  local engine=$1 dir="$work/$1"
  mkdir -p "$dir"
  echo '{}' > "$dir/daemon.json"
  HOST[$engine]="unix://$dir/$engine.sock"
  PIDFILE[$engine]="$dir/daemon.pid"
  case $engine in
    berth)
      "$BERTHD" --data-root "$dir/data" --exec-root "$dir/run" -H "${HOST[berth]}" \
        --config-file "$dir/daemon.json" > "$dir/daemon.log" 2>&1 &
      echo $! > "$dir/daemon.pid" ;;
    docker)
      "$DOCKERD" --data-root "$dir/data" --exec-root "$dir/run" -H "${HOST[docker]}" \
        -p "$dir/daemon.pid" --config-file "$dir/daemon.json" \
        --bridge=none --iptables=false --ip6tables=false > "$dir/daemon.log" 2>&1 & ;;
  esac
  for _ in $(seq 300); do
    "$DOCKER" -H "${HOST[$engine]}" version >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  log "$engine did not come up: $(tail -5 "$dir/daemon.log")"; exit 1
}

rootfs="$work/busybox-rootfs"
bash "$repo/scripts/busybox-rootfs.sh" "$rootfs" >/dev/null
tar -C "$rootfs" -cf "$work/busybox.tar" .
for engine in "${ENGINES[@]}"; do
  start_daemon "$engine"
  d=("$DOCKER" -H "${HOST[$engine]}")
  "${d[@]}" import "$work/busybox.tar" bench/busybox:latest >/dev/null
  "${d[@]}" run -d --network none --name bench-exec bench/busybox sleep 100000 >/dev/null
  "${d[@]}" create --network none --name bench-attach bench/busybox true >/dev/null
done

# hf KEY CMD... - one hyperfine run; prints the mean in ms
hf() {
  local key=$1; shift
  hyperfine -N --style none --warmup "$WARMUP" --runs "$RUNS" --export-json "$res/$key.json" "$*" >/dev/null 2>&1 \
    || { echo "failed"; return; }
  python3 -c "import json,sys; print('%.1f' % (json.load(open(sys.argv[1]))['results'][0]['mean']*1000))" "$res/$key.json"
}

declare -A MEAN
for engine in "${ENGINES[@]}"; do
  h=${HOST[$engine]}
  MEAN[exec.$engine]=$(hf "exec-true-$engine" "$DOCKER" -H "$h" exec bench-exec true)
  MEAN[echo.$engine]=$(hf "exec-echo-$engine" "$DOCKER" -H "$h" exec bench-exec echo x)
  MEAN[attach.$engine]=$(hf "start-a-$engine" "$DOCKER" -H "$h" start -a bench-attach)
done
export BERTH_HOST=${HOST[berth]}
MEAN[berthcli]=$(hf "berth-exec-true" "$BERTH" exec bench-exec true)

ratio() { python3 -c "import sys; a,b=sys.argv[1:]; print('%.2f' % (float(a)/float(b)))" "$1" "$2" 2>/dev/null || echo "-"; }
{
  echo "# berthd $BERTHD ($(date -u -r "$BERTHD" '+built %Y-%m-%d %H:%M UTC')), $(uname -r), $(nproc) CPUs, hyperfine runs $RUNS, warmup $WARMUP"
  printf "%-40s %12s %12s %8s\n" "mean latency (ms)" "berthd" "dockerd" "ratio"
  for row in "exec:docker exec c true" "echo:docker exec c echo x" "attach:docker start -a (attach+start+exit)"; do
    key=${row%%:*}; label=${row#*:}
    b=${MEAN[$key.berth]}; k=${MEAN[$key.docker]:--}
    printf "%-40s %12s %12s %8s\n" "$label" "$b" "$k" "$(ratio "$b" "$k")"
  done
  target=$(python3 -c "import sys; print('yes' if float(sys.argv[1]) <= 15 else 'NO')" "${MEAN[berthcli]}" 2>/dev/null || echo "?")
  printf "%-40s %12s %12s %8s\n" "berth exec c true (target <= 15 ms)" "${MEAN[berthcli]}" "-" "$target"
} | tee "$res/summary.txt"
echo "raw hyperfine JSON and daemon logs: $res"
