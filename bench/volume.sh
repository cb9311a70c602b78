#!/usr/bin/env bash
# bench/volume.sh - the cost of mounts at container start: `run --rm busybox
# true` with no mount, with a named volume (-v NAME:/data), with a bind mount
# (-v DIR:/data), with both plus a tmpfs (--mount type=tmpfs), and with a
# local volume that has mount options (-o type=tmpfs: mounted at start,
# unmounted at exit), berthd and dockerd side by side, driven by the same
# docker CLI (28.x at /usr/local/bin/docker by default).
#
# Every row runs with --network none on both daemons so that only the mounts
# differ from the first row (berthd's and dockerd's default networks are not
# alike).  For each case one hyperfine invocation times berthd then dockerd
# (--warmup, --runs), and the script prints the medians, the ratio
# berth/docker, and each engine's overhead over its own no-mount run.
#
# The daemons: berthd (target/release, built if missing) and Debian's dockerd
# (installed if missing), each started here on its own socket, with its data
# and exec roots in scratch directories and an empty config file.  dockerd runs
# with --bridge=none --iptables=false --ip6tables=false: the rows use
# --network none anyway, and so this run changes no host network state (no
# docker0, no iptables chains) and may run beside another dockerd.
#
# Cleanup on every exit path (trap): containers and volumes removed through
# each API, daemons stopped by pid (dockerd's containerd too), left-over shims
# of our scratch dirs killed, mounts under the scratch dirs unmounted, the
# scratch dirs deleted, and paths dockerd creates outside them (its trust key,
# /run/docker/plugins) removed when they did not exist before.
#
# Usage: sudo bash bench/volume.sh   (needs root; installs docker.io,
#        hyperfine, jq, python3, busybox-static if missing)
# Knobs (env): RUNS (30) WARMUP (3) DOCKER (client) DOCKERD (dockerd binary)
#              BERTHD (default target/release/berthd)
#              QUICK=1: berthd only (no dockerd), for before/after comparisons
set -euo pipefail

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
DOCKER=${DOCKER:-/usr/local/bin/docker}
DOCKERD=${DOCKERD:-dockerd}
QUICK=${QUICK:-}
IMG=bench/busybox:latest
ENGINES=(berth docker)
[ -z "$QUICK" ] || ENGINES=(berth)

log() { printf '[volume %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
source "$repo/scripts/lib.sh"
ensure_packages docker.io hyperfine jq python3 busybox-static tar procps
[ -x "$DOCKER" ] || DOCKER=$(command -v docker) || die "no docker CLI"
[ -n "$QUICK" ] || command -v "$DOCKERD" >/dev/null || die "dockerd not found"
if [ -z "${BERTHD:-}" ]; then
  BERTHD=$repo/target/release/berthd
  if [ ! -x "$BERTHD" ] || [ ! -x "$repo/target/release/berth-shim" ]; then
    log "building berthd and berth-shim (release)"
    cargo=$(find_cargo)
    (cd "$repo" && "$cargo" build --release -p daemon -p shim) >&2
  fi
fi
[ -x "$BERTHD" ] || die "berthd not found at $BERTHD"

# ----------------------------------------------------------------- scratch
work=$(mktemp -d /tmp/berth-volume-bench.XXXXXX)
# Short exec roots: berth-shim's socket path must fit in sun_path.
xr=$(mktemp -d /run/bvb.XXXXXX)
res=$(mktemp -d /tmp/berth-volume-results.XXXXXX)
export DOCKER_CONFIG=$work/cli-config
mkdir -p "$DOCKER_CONFIG" "$work/berth" "$work/docker" "$work/bind"
echo '{}' > "$work/daemon.json"
echo "bound" > "$work/bind/f"
declare -A HOST=([berth]="unix://$work/berth.sock" [docker]="unix://$work/docker.sock")
declare -A SOCK=([berth]="$work/berth.sock" [docker]="$work/docker.sock")
watched=(/etc/docker/key.json /etc/docker /run/docker/plugins /run/docker /run/containerd/s /run/containerd)
declare -A EXISTED=()
for f in "${watched[@]}"; do [ -e "$f" ] && EXISTED[$f]=1; done

alive() { local s; s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1; [ -n "$s" ] && [ "$s" != Z ]; }
wait_gone() { local i; for ((i = 0; i < $2; i++)); do alive "$1" || return 0; sleep 0.1; done; ! alive "$1"; }

start_daemon() { # start_daemon ENGINE
  local e=$1 cmd
  case $e in
    berth) cmd=("$BERTHD" --data-root "$work/berth/data" --exec-root "$xr/b" -H "${HOST[berth]}"
             --config-file "$work/daemon.json") ;;
    docker) cmd=("$DOCKERD" --data-root "$work/docker/data" --exec-root "$xr/d" -H "${HOST[docker]}"
             -p "$work/docker/dockerd.pid" --config-file "$work/daemon.json"
             --bridge=none --iptables=false --ip6tables=false) ;;
  esac
  setsid "${cmd[@]}" </dev/null >"$res/$e.log" 2>&1 &
  echo $! > "$work/$e.pid"
  local i
  for ((i = 0; i < 300; i++)); do
    [ -S "${SOCK[$e]}" ] && "$DOCKER" -H "${HOST[$e]}" version >/dev/null 2>&1 && break
    sleep 0.1
  done
  "$DOCKER" -H "${HOST[$e]}" version >/dev/null 2>&1 || { tail -20 "$res/$e.log" >&2; die "$e did not start"; }
  if [ "$e" = docker ]; then
    pgrep -P "$(cat "$work/docker.pid")" -x containerd | head -1 > "$work/containerd.pid" || true
  fi
}

stop_daemon() {
  local e=$1 pid c=""
  [ -s "$work/$e.pid" ] || return 0
  pid=$(cat "$work/$e.pid")
  [ "$e" = docker ] && c=$(cat "$work/containerd.pid" 2>/dev/null || true)
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 300 || { kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 50 || true; }
  fi
  if [ -n "$c" ] && alive "$c"; then
    wait_gone "$c" 100 || { kill -KILL "$c" 2>/dev/null || true; wait_gone "$c" 50 || true; }
  fi
  rm -f "$work/$e.pid"
}

clean_engine() { # clean_engine ENGINE: its containers and volumes
  local e=$1 ids
  [ -S "${SOCK[$e]}" ] && "$DOCKER" -H "${HOST[$e]}" version >/dev/null 2>&1 || return 0
  ids=$("$DOCKER" -H "${HOST[$e]}" ps -aq 2>/dev/null || true)
  # shellcheck disable=SC2086  # one argument per id
  [ -z "$ids" ] || "$DOCKER" -H "${HOST[$e]}" rm -fv $ids >/dev/null 2>&1 || true
  ids=$("$DOCKER" -H "${HOST[$e]}" volume ls -q 2>/dev/null || true)
  # shellcheck disable=SC2086
  [ -z "$ids" ] || "$DOCKER" -H "${HOST[$e]}" volume rm -f $ids >/dev/null 2>&1 || true
}

cleanup() {
  local rc=$? e pid m f
  trap - EXIT INT TERM
  set +e
  log "cleaning up"
  for e in "${ENGINES[@]}"; do clean_engine "$e"; done
  for e in "${ENGINES[@]}"; do stop_daemon "$e"; done
  for pid in $(ps -eo pid= -o args= | awk -v w="$work/" -v x="$xr/" '(index($0, w) || index($0, x)) && ($2 ~ /berth-shim$/ || $2 ~ /containerd-shim/) {print $1}'); do
    log "killing left-over shim $pid"; kill -KILL "$pid" 2>/dev/null
  done
  for m in $(findmnt -rn -o TARGET | grep -F -e "$work/" -e "$xr/" | sort -r); do
    umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
  rm -rf --one-file-system "$work" "$xr" 2>/dev/null || log "could not remove all of $work $xr"
  for f in "${watched[@]}"; do
    [ -n "${EXISTED[$f]:-}" ] && continue
    if [ -d "$f" ]; then rmdir "$f" 2>/dev/null; elif [ -e "$f" ]; then rm -f "$f"; fi
  done
  log "results kept in $res"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------------- setup
log "scratch dirs $work, $xr; results in $res"
bash "$repo/scripts/busybox-rootfs.sh" "$work/rootfs" >/dev/null 2>&1
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
for e in "${ENGINES[@]}"; do
  log "$e: start, import busybox, make the volumes"
  start_daemon "$e"
  "$DOCKER" -H "${HOST[$e]}" import -c 'CMD ["/bin/sh"]' "$work/busybox.tar" "$IMG" >/dev/null
  "$DOCKER" -H "${HOST[$e]}" volume create bench-vol >/dev/null
  "$DOCKER" -H "${HOST[$e]}" volume create -o type=tmpfs -o device=tmpfs -o o=size=16m bench-tmpfs-vol >/dev/null
  out=$("$DOCKER" -H "${HOST[$e]}" run --rm --network none -v bench-vol:/data -v "$work/bind:/b" "$IMG" cat /b/f)
  [ "$out" = bound ] || die "$e: smoke run failed: $out"
done

# ------------------------------------------------------------- benchmarks
# case KEY LABEL ARGS...: one hyperfine run of `run --rm --network none ARGS busybox true`.
declare -a KEYS=() LABELS=()
bench_case() {
  local key=$1 label=$2 e args=()
  shift 2
  for e in "${ENGINES[@]}"; do
    args+=(-n "$e" "$DOCKER -H ${HOST[$e]} run --rm --network none $* $IMG true")
  done
  log "hyperfine: $label"
  hyperfine -N --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$res/$key.json" "${args[@]}" >&2
  KEYS+=("$key"); LABELS+=("$label")
}
bench_case none "no mount"
bench_case named "-v bench-vol:/data (named volume)" -v bench-vol:/data
bench_case bind "-v DIR:/data (bind mount)" -v "$work/bind:/data"
bench_case three "named volume + bind + --mount type=tmpfs" \
  -v bench-vol:/data -v "$work/bind:/b" --mount type=tmpfs,dst=/t
bench_case optvol "-v bench-tmpfs-vol:/data (volume with -o type=tmpfs)" -v bench-tmpfs-vol:/data

# ------------------------------------------------------------------ report
median() { jq -r ".results[$2].median * 1000 * 10 | round / 10" "$res/$1.json"; }
{
  echo "# run --rm --network none busybox true with mounts, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs"
  echo "# client: $DOCKER $("$DOCKER" version -f '{{.Client.Version}}' 2>/dev/null); berthd: $BERTHD"
  [ -n "$QUICK" ] || echo "# dockerd: $("$DOCKER" -H "${HOST[docker]}" version -f '{{.Server.Version}}' 2>/dev/null) ($("$DOCKER" -H "${HOST[docker]}" info -f '{{.Driver}}' 2>/dev/null)), --bridge=none"
  echo "# hyperfine --warmup $WARMUP --runs $RUNS; medians in ms; +ms = over the engine's own no-mount run"
  printf '%-55s %9s %9s %9s %9s %8s\n' "case" "berthd" "+ms" "dockerd" "+ms" "ratio"
  base_b=$(median none 0)
  base_d=-
  [ -n "$QUICK" ] || base_d=$(median none 1)
  for i in "${!KEYS[@]}"; do
    b=$(median "${KEYS[$i]}" 0)
    if [ -n "$QUICK" ]; then
      printf '%-55s %9s %9s\n' "${LABELS[$i]}" "$b" "$(awk -v x="$b" -v y="$base_b" 'BEGIN{printf "%+.1f", x-y}')"
      continue
    fi
    d=$(median "${KEYS[$i]}" 1)
    printf '%-55s %9s %9s %9s %9s %8s\n' "${LABELS[$i]}" "$b" \
      "$(awk -v x="$b" -v y="$base_b" 'BEGIN{printf "%+.1f", x-y}')" "$d" \
      "$(awk -v x="$d" -v y="$base_d" 'BEGIN{printf "%+.1f", x-y}')" \
      "$(awk -v x="$b" -v y="$d" 'BEGIN{printf "%.2f", x/y}')"
  done
} | tee "$res/summary.txt"
