#!/usr/bin/env bash
# bench/engine.sh - berthd against dockerd, both driven by the same docker CLI
# (28.x at /usr/local/bin/docker by default), side by side in one run.
#
# The script starts each daemon itself, on its own socket, with its data root
# and exec root in a scratch directory, imports the same busybox image
# (scripts/busybox-rootfs.sh + `docker import`) into both, and measures:
#   - daemon start until GET /_ping answers (first start on an empty data root,
#     then N_START restarts with the image present; median of the restarts)
#   - daemon RSS idle, and with N_MEM containers running (dockerd: dockerd +
#     its containerd), after the benchmarks idle again
#   - monitor RSS / PSS per container: berth-shim vs containerd-shim-runc-v2
#     (the parent of the container's init; VmRSS from status, Pss from
#     smaps_rollup), averaged over N_MEM containers
#   - hyperfine, both daemons in one invocation each: `run --rm busybox true`
#     (default network) and `--network none`, `run -d busybox sleep 1000`
#     (container removed before each run, not timed), `rm -f` of a running
#     container (started before each run, not timed), `ps` with 0 and with
#     N_TP running
#   - N_TP sequential `run -d` from a shell loop, total wall time
# then prints a table with both figures and the ratio berth/docker, and keeps
# hyperfine's JSON exports, the daemons' logs and the table in a results
# directory printed at the end.  Method as /work/shared/anchors/anchors.sh.
#
# Fairness notes: dockerd runs with its defaults (overlay2, bridge network with
# docker0 + iptables NAT, json-file logs, runc via containerd-shim-runc-v2),
# except for the socket, data root, exec root, pid file and an empty config
# file.  Both default networks are bridges with NAT (docker0 and berth0), so the
# default-network row compares like with like; the --network none row shows what
# each engine's bridge plumbing costs.
#
# Cleanup on every exit path (trap): containers removed through each API,
# daemons stopped by pid (dockerd's containerd too), left-over shims of our
# scratch dirs killed by pid, mounts under the scratch dir unmounted, the
# scratch dir deleted, and - when this run's dockerd created them - docker0,
# docker's iptables rules/chains and new empty docker cgroups removed,
# ip_forward / FORWARD policy / bridge-nf-call sysctls restored.
#
# Usage: sudo bash bench/engine.sh        (needs root; installs docker.io,
#        hyperfine, jq, python3, busybox-static, iptables, iproute2 if missing)
# Knobs (env): RUNS (20) WARMUP (3) RUNS_FAST (40, for ps) N_TP (30) N_MEM (10)
#              N_START (5) DOCKER (client) BERTHD (default target/release/berthd,
#              built with cargo when missing) DOCKERD (dockerd binary)
#              QUICK=1: berthd only, just the container latencies (run --rm,
#              --network none, run -d, rm -f), for before/after comparisons
#              while working on the start path
set -euo pipefail

SELF=$(readlink -f "${BASH_SOURCE[0]}")
here=$(dirname "$SELF")
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
RUNS_FAST=${RUNS_FAST:-40}
N_TP=${N_TP:-30}
N_MEM=${N_MEM:-10}
N_START=${N_START:-5}
DOCKER=${DOCKER:-/usr/local/bin/docker}
DOCKERD=${DOCKERD:-dockerd}
IMG=bench/busybox:latest
LABEL=bench.engine=1
QUICK=${QUICK:-}
ENGINES=(berth docker)
[ -z "$QUICK" ] || ENGINES=(berth)

log() { printf '[engine %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ------------------------------------------------ hyperfine --prepare helpers
# Called as `bash engine.sh _prep_rm HOST NAME` from hyperfine; no trap there.
_prep_rm() { "$DOCKER" -H "$1" rm -f "$2" >/dev/null 2>&1 || true; }
_prep_run_d() {
  _prep_rm "$1" "$2"
  "$DOCKER" -H "$1" run -d --name "$2" --label "$LABEL" "$IMG" sleep 1000 >/dev/null
}
case "${1:-}" in
  _prep_rm|_prep_run_d) "$@"; exit ;;
  "") ;;
  *) echo "usage: $0   (no arguments; knobs via environment, see the header)" >&2; exit 2 ;;
esac

# ------------------------------------------------------------------- checks
[ "$(id -u)" = 0 ] || die "run as root"
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
source "$repo/scripts/lib.sh"
ensure_packages docker.io hyperfine jq python3 busybox-static iptables iproute2 tar procps
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
# docker0 and docker's iptables chains are global: a second dockerd would share
# (and our cleanup would break) them.
if [ -z "$QUICK" ] && pids=$(pidof dockerd); then die "a dockerd is already running (pid $pids); stop it first"; fi

# ----------------------------------------------------------------- scratch
work=$(mktemp -d /tmp/berth-engine-bench.XXXXXX)
# Exec roots in a short directory: berth-shim's socket is
# EXEC_ROOT/shims/<64-hex id>/shim.sock and must fit in sun_path (108 bytes).
xr=$(mktemp -d /run/bbe.XXXXXX)
res=$(mktemp -d /tmp/berth-engine-results.XXXXXX)
export DOCKER_CONFIG=$work/cli-config     # the CLI's config dir, isolated
mkdir -p "$DOCKER_CONFIG" "$work/berth" "$work/docker"
echo '{}' > "$work/daemon.json"
declare -A HOST=([berth]="unix://$work/berth.sock" [docker]="unix://$work/docker.sock")
declare -A SOCK=([berth]="$work/berth.sock" [docker]="$work/docker.sock")
daemon_cmd() { # daemon_cmd ENGINE -> the command line (array DCMD)
  case $1 in
    berth) DCMD=("$BERTHD" --data-root "$work/berth/data" --exec-root "$xr/b"
             -H "${HOST[berth]}" --config-file "$work/daemon.json") ;;
    docker) DCMD=("$DOCKERD" --data-root "$work/docker/data" --exec-root "$xr/d"
             -H "${HOST[docker]}" -p "$work/docker/dockerd.pid" --config-file "$work/daemon.json") ;;
  esac
}

# ------------------------------------------- host state that dockerd changes
sysctl_files=(/proc/sys/net/ipv4/ip_forward /proc/sys/net/bridge/bridge-nf-call-iptables
  /proc/sys/net/bridge/bridge-nf-call-ip6tables)
declare -A SYSCTL_BEFORE=()
for f in "${sysctl_files[@]}"; do [ -r "$f" ] && SYSCTL_BEFORE[$f]=$(cat "$f"); done
forward_policy=$(iptables -S FORWARD 2>/dev/null | awk '$1=="-P"{print $3}')
docker_chains_before=$( { iptables -S; iptables -t nat -S; } 2>/dev/null | grep -c '^-N DOCKER' || true)
docker0_before=0; ip link show docker0 >/dev/null 2>&1 && docker0_before=1
cgroups_before=$(find /sys/fs/cgroup/*/docker -maxdepth 1 -type d 2>/dev/null | sort || true)
berth_cgroups_before=$(find /sys/fs/cgroup/*/berth -maxdepth 1 -type d 2>/dev/null | sort || true)
# Paths outside the scratch dirs that the daemons create (dockerd: trust key,
# plugin dir, containerd's shim socket dir; berth: the /berth cgroup parents).
# Removed at the end when they did not exist before (directories only if empty).
watched=(/etc/docker/key.json /etc/docker /run/docker/plugins /run/docker /run/containerd/s
  /run/containerd /sys/fs/cgroup/*/berth)
declare -A EXISTED=()
for f in "${watched[@]}"; do [ -e "$f" ] && EXISTED[$f]=1; done

cleanup_docker_host_state() {
  if [ "$docker0_before" = 0 ] && ip link show docker0 >/dev/null 2>&1; then
    ip link del docker0 || log "could not delete docker0"
  fi
  if [ "$docker_chains_before" = 0 ]; then
    local table line chain
    for table in filter nat; do
      # rules in the built-in chains that lead to docker's chains or docker0
      iptables -t "$table" -S 2>/dev/null |
        grep -E '^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) .*(DOCKER|docker0)' |
        while read -r line; do
          read -ra rule <<< "${line#-A }"
          iptables -t "$table" -D "${rule[@]}" || log "could not delete: $table $line"
        done
      for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^DOCKER/{print $2}'); do
        iptables -t "$table" -F "$chain" || true
      done
      for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^DOCKER/{print $2}'); do
        iptables -t "$table" -X "$chain" || log "could not delete chain $table/$chain"
      done
    done
  else
    log "docker iptables chains existed before this run: left as they are"
  fi
  if [ -n "$forward_policy" ] && [ "$(iptables -S FORWARD 2>/dev/null | awk '$1=="-P"{print $3}')" != "$forward_policy" ]; then
    iptables -P FORWARD "$forward_policy" || true
  fi
  local f
  for f in "${!SYSCTL_BEFORE[@]}"; do
    [ "$(cat "$f" 2>/dev/null)" = "${SYSCTL_BEFORE[$f]}" ] || echo "${SYSCTL_BEFORE[$f]}" > "$f" || true
  done
  # container cgroups under /docker that this run created (dockerd leaves them
  # empty); a cgroup with processes refuses rmdir, so nothing live is touched
  local d
  while read -r d; do
    [ -n "$d" ] && ! grep -qxF "$d" <<< "$cgroups_before" && rmdir "$d" 2>/dev/null
  done < <(find /sys/fs/cgroup/*/docker -mindepth 0 -maxdepth 1 -type d 2>/dev/null | sort -r)
  # container cgroups under /berth that appeared during the run: reported, not
  # removed (another berthd on this host may own them)
  local leaked
  leaked=$(comm -13 <(echo "$berth_cgroups_before") \
    <(find /sys/fs/cgroup/*/berth -mindepth 1 -maxdepth 1 -type d 2>/dev/null | sort) | wc -l)
  [ "$leaked" = 0 ] || log "note: $leaked cgroup(s) under /berth appeared during the run (not removed)"
  for f in "${watched[@]}" /sys/fs/cgroup/*/berth; do
    [ -n "${EXISTED[$f]:-}" ] && continue
    if [ -d "$f" ]; then rmdir "$f" 2>/dev/null; elif [ -e "$f" ]; then rm -f "$f"; fi
  done
  return 0
}

# ----------------------------------------------------------------- daemons
rss_kb() { awk '/^VmRSS:/{print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
pss_kb() { awk '/^Pss:/{print $2}' "/proc/$1/smaps_rollup" 2>/dev/null || echo 0; }
ppid_of() { awk '{print $4}' "/proc/$1/stat"; }
alive() { # alive PID: exists and is not a zombie
  local s; s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [ -n "$s" ] && [ "$s" != Z ]
}
wait_gone() { # wait_gone PID TENTHS
  local i; for ((i = 0; i < $2; i++)); do alive "$1" || return 0; sleep 0.1; done; ! alive "$1"
}
# containerd started by our dockerd (its child), recorded at start
containerd_of() { pgrep -P "$1" -x containerd | head -1 || true; }

# start_daemon ENGINE -> prints the ms from spawn until /_ping answers 200.
# A small python poller spawns the daemon (new session, so it is not our
# child after the poller exits) and polls the socket every millisecond; a
# shell loop with curl would add its own start-up to every poll.
start_daemon() {
  local e=$1 out
  daemon_cmd "$e"
  out=$(python3 - "${SOCK[$e]}" "$work/$e.pid" "$res/$e.log" "${DCMD[@]}" <<'PY'
import socket, subprocess, sys, time
sock, pidfile, logpath, cmd = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
logf = open(logpath, "ab")
t0 = time.monotonic()
p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, start_new_session=True)
with open(pidfile, "w") as f:
    f.write(str(p.pid))
while True:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(b"GET /_ping HTTP/1.0\r\nHost: daemon\r\n\r\n")
        head = s.recv(64)
        s.close()
        if head.split(b" ")[1:2] == [b"200"]:
            break
    except (OSError, IndexError):
        pass
    if p.poll() is not None:
        sys.exit(f"daemon exited with status {p.returncode} before answering")
    if time.monotonic() - t0 > 30:
        sys.exit("daemon did not answer /_ping within 30 s")
    time.sleep(0.001)
print(f"{(time.monotonic() - t0) * 1000:.1f}")
PY
  ) || { tail -20 "$res/$e.log" >&2; die "$e daemon did not start (log: $res/$e.log)"; }
  if [ "$e" = docker ]; then
    local c=""; for _ in $(seq 1 50); do c=$(containerd_of "$(cat "$work/docker.pid")"); [ -n "$c" ] && break; sleep 0.1; done
    echo "$c" > "$work/containerd.pid"
  fi
  echo "$out"
}
stop_daemon() {
  local e=$1 pid c=""
  [ -s "$work/$e.pid" ] || return 0
  pid=$(cat "$work/$e.pid")
  [ "$e" = docker ] && c=$(cat "$work/containerd.pid" 2>/dev/null || true)
  if alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 300 || { log "$e daemon $pid still alive after 30 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; wait_gone "$pid" 50 || true; }
  fi
  if [ -n "$c" ] && alive "$c"; then
    wait_gone "$c" 100 || { kill -KILL "$c" 2>/dev/null || true; wait_gone "$c" 50 || true; }
  fi
  rm -f "$work/$e.pid" "$work/containerd.pid"
}
api_up() { [ -S "${SOCK[$1]}" ] && "$DOCKER" -H "${HOST[$1]}" version >/dev/null 2>&1; }
remove_all() { # remove_all ENGINE: every container of this daemon
  local ids
  api_up "$1" || return 0
  ids=$("$DOCKER" -H "${HOST[$1]}" ps -aq 2>/dev/null || true)
  # shellcheck disable=SC2086  # one argument per id
  [ -z "$ids" ] || "$DOCKER" -H "${HOST[$1]}" rm -f $ids >/dev/null 2>&1 || log "$1: rm -f of all containers failed"
}

cleanup() {
  local rc=$? e pid p m
  trap - EXIT INT TERM
  set +e   # best effort: one failing step must not skip the others
  log "cleaning up"
  for e in "${ENGINES[@]}"; do remove_all "$e" || true; done
  for e in "${ENGINES[@]}"; do stop_daemon "$e" || true; done
  # shims (and containers) that outlived their daemon: berth-shims of our exec
  # root (containers keep running when berthd stops), containerd shims of ours
  for pid in $(ps -eo pid= -o args= | awk -v w="$work/" -v x="$xr/" '(index($0, w) || index($0, x)) && ($2 ~ /berth-shim$/ || $2 ~ /containerd-shim/) {print $1}'); do
    log "killing left-over shim $pid"; kill -KILL "$pid" 2>/dev/null || true
  done
  for p in "$xr"/b/shims/*/init.pid; do
    if [ -s "$p" ]; then kill -KILL "$(cat "$p")" 2>/dev/null; fi
  done
  # mounts under the scratch dir (container rootfs, netns files), deepest first
  for m in $(findmnt -rn -o TARGET | grep -F -e "$work/" -e "$xr/" | sort -r); do
    umount -l "$m" 2>/dev/null || log "could not unmount $m"
  done
  rm -rf --one-file-system "$work" "$xr" 2>/dev/null || log "could not remove all of $work $xr"
  cleanup_docker_host_state
  log "results kept in $res"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# What a container's first cgroup.procs write costs on this host. Without
# favordynmods, that write waits for an RCU grace period (~12 ms here;
# cgroup_threadgroup_rwsem, kernel/rcu/sync.c), which both engines pay on
# their start path; with favordynmods (on kernels >= 6.18 a one-way switch until
# reboot, even if the mount option is removed again) it is cheap. Measured
# directly (a no-op move of a short-lived process into its own cgroup after
# 300 ms of quiet), since the mount options do not tell, so that figures from
# different hosts compare.
cgroup_note() {
  python3 - <<'PY' 2>/dev/null || echo "host: cost of a cgroup.procs write not measured"
import os, time
procs = None
for line in open("/proc/self/cgroup"):
    _, controllers, path = line.rstrip("\n").split(":", 2)
    if controllers == "pids":
        procs = "/sys/fs/cgroup/pids" + path.rstrip("/") + "/cgroup.procs"
if procs is None:
    procs = "/sys/fs/cgroup" + open("/proc/self/cgroup").read().split("::", 1)[1].strip().rstrip("/") + "/cgroup.procs"
times = []
for _ in range(3):
    time.sleep(0.3)
    fd = os.open(procs, os.O_WRONLY)
    t0 = time.monotonic()
    os.write(fd, b"0")
    times.append((time.monotonic() - t0) * 1000)
    os.close(fd)
times.sort()
kind = "waits for an RCU grace period" if times[1] > 2 else "cheap (favordynmods in effect)"
print(f"host: first cgroup.procs write after idle {times[1]:.2f} ms (median of 3): {kind}")
PY
}

# --------------------------------------------------------------- measuring
# summary.tsv: key, label, berth value, docker value, unit, target
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$res/summary.tsv"; }
median() { sort -n | awk '{a[NR]=$1} END{if (NR==0) print "-"; else if (NR%2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }
now_ns() { date +%s%N; }

# hf KEY LABEL TARGET PREPARE CMD - one hyperfine run, berthd then dockerd.
# PREPARE and CMD are templates where @H@ is the daemon's host; PREPARE may be
# empty.  Paths contain no spaces (hyperfine -N splits on whitespace).
hf() {
  local key=$1 label=$2 target=$3 prep=$4 cmd=$5 runs=${RUNS_OVERRIDE:-$RUNS} e args=()
  for e in "${ENGINES[@]}"; do
    [ -z "$prep" ] || args+=(--prepare "${prep//@H@/${HOST[$e]}}")
  done
  for e in "${ENGINES[@]}"; do args+=(-n "$e: $label" "${cmd//@H@/${HOST[$e]}}"); done
  log "hyperfine: $label"
  hyperfine -N --style basic --warmup "$WARMUP" --runs "$runs" \
    --export-json "$res/$key.json" "${args[@]}" >&2
  row "$key" "$label" \
    "$(jq -r '.results[0].median * 1000 * 10 | round / 10' "$res/$key.json")" \
    "$(jq -r '(.results[1].median // empty) * 1000 * 10 | round / 10' "$res/$key.json")" "ms (median)" "$target"
}

# daemon_rss ENGINE -> "RSS_KiB PSS_KiB" of the daemon (docker: + containerd)
daemon_mem() {
  local pids=() p r=0 s=0
  pids+=("$(cat "$work/$1.pid")")
  [ "$1" = docker ] && pids+=("$(cat "$work/containerd.pid")")
  for p in "${pids[@]}"; do r=$((r + $(rss_kb "$p"))); s=$((s + $(pss_kb "$p"))); done
  echo "$r $s"
}
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }

# ------------------------------------------------------------------- setup
log "scratch dirs $work, $xr; results in $res"
log "busybox rootfs and tarball"
bash "$repo/scripts/busybox-rootfs.sh" "$work/rootfs" 2>/dev/null
tar -C "$work/rootfs" -cf "$work/busybox.tar" .

declare -A FIRST_START=()
declare -A STARTS=()
for e in "${ENGINES[@]}"; do
  log "$e: first start (empty data root)"
  FIRST_START[$e]=$(start_daemon "$e")
  "$DOCKER" -H "${HOST[$e]}" import -c 'CMD ["/bin/sh"]' "$work/busybox.tar" "$IMG" >/dev/null ||
    die "$e: docker import failed"
  out=$("$DOCKER" -H "${HOST[$e]}" run --rm "$IMG" echo ok 2>&1) || true
  [ "$out" = ok ] || die "$e: smoke run failed: $out"
  log "$e: $N_START restarts (image present)"
  STARTS[$e]=""
  for ((i = 1; i <= N_START; i++)); do
    stop_daemon "$e"
    STARTS[$e]+="$(start_daemon "$e") "
  done
done
for e in "${ENGINES[@]}"; do printf '%s\t%s\n' "$e" "${STARTS[$e]}" >> "$res/start-ms.tsv"; done
if [ -n "$QUICK" ]; then
  hf run_rm "run --rm busybox true (default network)" "<= 45" "" \
    "$DOCKER -H @H@ run --rm $IMG true"
  hf run_rm_none "run --rm --network none busybox true" "<= 45" "" \
    "$DOCKER -H @H@ run --rm --network none $IMG true"
  hf run_d "run -d busybox sleep 1000 (removed before each run)" "<= 30" \
    "bash $SELF _prep_rm @H@ bench-d" \
    "$DOCKER -H @H@ run -d --name bench-d --label $LABEL $IMG sleep 1000"
  hf rm_f "rm -f of a running container" "<= 20" \
    "bash $SELF _prep_run_d @H@ bench-d" \
    "$DOCKER -H @H@ rm -f bench-d"
  echo
  echo "# berthd $BERTHD ($(date -u -r "$BERTHD" '+built %Y-%m-%d %H:%M UTC')), $(uname -r), $(nproc) CPUs, hyperfine runs $RUNS"
  echo "# $(cgroup_note)"
  awk -F'\t' '{ printf "%-55s %8s ms   target %s\n", $2, $3, $6 }' "$res/summary.tsv"
  exit 0
fi
row start_first "daemon start -> /_ping answers (empty data root, once)" \
  "${FIRST_START[berth]}" "${FIRST_START[docker]}" ms ""
row start "daemon start -> /_ping answers (median of $N_START restarts)" \
  "$(tr ' ' '\n' <<< "${STARTS[berth]}" | grep . | median)" \
  "$(tr ' ' '\n' <<< "${STARTS[docker]}" | grep . | median)" ms "<= 50"

sleep 2
declare -A MEM=()
for e in "${ENGINES[@]}"; do MEM[$e]=$(daemon_mem "$e"); done
row rss_idle "daemon RSS, idle (docker: dockerd+containerd)" \
  "$(mib "${MEM[berth]% *}")" "$(mib "${MEM[docker]% *}")" MiB "<= 15"
row pss_idle "daemon PSS, idle (docker: dockerd+containerd)" \
  "$(mib "${MEM[berth]#* }")" "$(mib "${MEM[docker]#* }")" MiB ""

# ------------------------------------------------------------- benchmarks
hf run_rm "run --rm busybox true (default network)" "<= 45" "" \
  "$DOCKER -H @H@ run --rm $IMG true"
hf run_rm_none "run --rm --network none busybox true" "<= 45" "" \
  "$DOCKER -H @H@ run --rm --network none $IMG true"
RUNS_OVERRIDE=$RUNS_FAST hf ps0 "ps (0 running)" "" "" "$DOCKER -H @H@ ps"
hf run_d "run -d busybox sleep 1000 (removed before each run)" "<= 30" \
  "bash $SELF _prep_rm @H@ bench-d" \
  "$DOCKER -H @H@ run -d --name bench-d --label $LABEL $IMG sleep 1000"
hf rm_f "rm -f of a running container" "<= 20" \
  "bash $SELF _prep_run_d @H@ bench-d" \
  "$DOCKER -H @H@ rm -f bench-d"
for e in "${ENGINES[@]}"; do remove_all "$e"; done

declare -A TP=()
for e in "${ENGINES[@]}"; do
  log "$e: $N_TP sequential run -d"
  t0=$(now_ns)
  for ((i = 1; i <= N_TP; i++)); do
    "$DOCKER" -H "${HOST[$e]}" run -d --label "$LABEL" --name "bench-t$i" "$IMG" sleep 1000 >/dev/null
  done
  TP[$e]=$(( ($(now_ns) - t0) / 1000000 ))
done
row tp "$N_TP sequential run -d (shell loop), total" "${TP[berth]}" "${TP[docker]}" ms ""
RUNS_OVERRIDE=$RUNS_FAST hf ps_n "ps ($N_TP running)" "" "" "$DOCKER -H @H@ ps"
declare -A RMALL=()
for e in "${ENGINES[@]}"; do
  t0=$(now_ns); remove_all "$e"; RMALL[$e]=$(( ($(now_ns) - t0) / 1000000 ))
done
row rm_all "one rm -f of $N_TP running (ps -aq + rm -f)" "${RMALL[berth]}" "${RMALL[docker]}" ms ""

log "memory with $N_MEM running"
for e in "${ENGINES[@]}"; do
  for ((i = 1; i <= N_MEM; i++)); do
    "$DOCKER" -H "${HOST[$e]}" run -d --label "$LABEL" --name "bench-m$i" "$IMG" sleep 1000 >/dev/null
  done
done
sleep 2
declare -A MON=() MONNAME=()
for e in "${ENGINES[@]}"; do
  MEM[$e]=$(daemon_mem "$e")
  r=0; s=0
  for ((i = 1; i <= N_MEM; i++)); do
    pid=$("$DOCKER" -H "${HOST[$e]}" inspect -f '{{.State.Pid}}' "bench-m$i")
    shim=$(ppid_of "$pid")
    r=$((r + $(rss_kb "$shim"))); s=$((s + $(pss_kb "$shim")))
  done
  MONNAME[$e]=$(basename "$(tr '\0' '\n' < "/proc/$shim/cmdline" | head -1)")
  MON[$e]="$((r / N_MEM)) $((s / N_MEM))"
done
row rss_10 "daemon RSS with $N_MEM running" "$(mib "${MEM[berth]% *}")" "$(mib "${MEM[docker]% *}")" MiB ""
row mon_rss "monitor VmRSS per container (${MONNAME[berth]} vs ${MONNAME[docker]})" \
  "$(mib "${MON[berth]% *}")" "$(mib "${MON[docker]% *}")" MiB "<= 1"
row mon_pss "monitor Pss per container" "$(mib "${MON[berth]#* }")" "$(mib "${MON[docker]#* }")" MiB ""
for e in "${ENGINES[@]}"; do remove_all "$e"; done
# berthd trims its heap after 1 s without requests (crates/daemon/src/idle.rs).
sleep 3
for e in "${ENGINES[@]}"; do MEM[$e]=$(daemon_mem "$e"); done
row rss_end "daemon RSS, idle after the benchmarks" "$(mib "${MEM[berth]% *}")" "$(mib "${MEM[docker]% *}")" MiB ""

# ------------------------------------------------------------------ report
{
  echo "# berthd vs dockerd, $(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -r), $(nproc) CPUs"
  echo "# client: $DOCKER $("$DOCKER" version -f '{{.Client.Version}}' 2>/dev/null)"
  echo "# berthd: $BERTHD ($(date -u -r "$BERTHD" '+built %Y-%m-%d %H:%M UTC'))"
  echo "# dockerd: $("$DOCKER" -H "${HOST[docker]}" version -f '{{.Server.Version}}' 2>/dev/null), containerd $(containerd --version 2>/dev/null | awk '{print $3}'), runc $(runc --version 2>/dev/null | awk 'NR==1{print $3}'); storage $("$DOCKER" -H "${HOST[docker]}" info -f '{{.Driver}}' 2>/dev/null)"
  echo "# hyperfine --warmup $WARMUP, runs $RUNS (ps: $RUNS_FAST); both on their default bridge unless --network none"
  echo "# $(cgroup_note)"
  echo
  echo "| measurement | berthd | dockerd | berth/docker | unit | target |"
  echo "|---|---:|---:|---:|---|---|"
  awk -F'\t' '{
    ratio = ($4 + 0 > 0) ? sprintf("%.3f", $3 / $4) : "-"
    printf "| %s | %s | %s | %s | %s | %s |\n", $2, $3, $4, ratio, $5, $6
  }' "$res/summary.tsv"
} > "$res/table.md"
echo
cat "$res/table.md"
echo
echo "raw hyperfine JSON, daemon logs, start times: $res"
