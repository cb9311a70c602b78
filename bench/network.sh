#!/usr/bin/env bash
# bench/network.sh - what networking costs, berthd against dockerd, both driven
# by the same docker CLI, side by side in one run:
#   - `run --rm busybox true` on the default bridge and with `--network none`
#     (hyperfine, both daemons in one invocation); the difference is what the
#     bridge adds to a run (issue 6's target: <= 10 ms for berthd)
#   - the same on a user-defined network (berthd: + the embedded DNS server)
#   - throughput of a published port: curl downloads a file from busybox httpd
#     in a container through -p, from the host's loopback (dockerd: its
#     userland proxy; berthd: nftables DNAT in the output hook) and through the
#     host's own address (both: kernel DNAT)
# and prints one table with both figures and the ratio berth/docker. Results
# (hyperfine JSON, daemon logs, the table) stay in a directory named at the end.
#
# dockerd runs with its defaults (docker0 + iptables NAT, userland proxy),
# except for its socket, data root, exec root, pid file and an empty config.
# berthd gets a bridge of its own (berth-bench, 10.205.0.1/24) so that the two
# default bridges never overlap. Everything stays on this machine.
#
# Cleanup on every exit path (trap): containers removed through each API,
# daemons stopped by pid, left-over shims killed, mounts under the scratch
# dirs unmounted, berthd's bridge and nftables table deleted, and - when this
# run's dockerd created them - docker0, docker's iptables chains and rules,
# ip_forward and the FORWARD policy restored.
#
# Usage: sudo bash bench/network.sh   (installs docker.io, hyperfine, curl,
#        nftables, iptables if missing; builds berthd with cargo when missing)
# Knobs: RUNS (20) WARMUP (3) SIZE_MB (256, the downloaded file) DOWNLOADS (5)
#        BERTHD (default target/release/berthd) DOCKER DOCKERD
set -euo pipefail

here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-20}
WARMUP=${WARMUP:-3}
SIZE_MB=${SIZE_MB:-256}
DOWNLOADS=${DOWNLOADS:-5}
DOCKER=${DOCKER:-/usr/local/bin/docker}
DOCKERD=${DOCKERD:-dockerd}
IMG=bench/busybox:latest
BRIDGE=berth-bench

log() { printf '[network %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
source "$repo/scripts/lib.sh"
ensure_packages docker.io hyperfine jq python3 busybox-static iptables iproute2 tar procps curl nftables
[ -x "$DOCKER" ] || DOCKER=$(command -v docker) || die "no docker CLI"
command -v "$DOCKERD" >/dev/null || die "dockerd not found"
if [ -z "${BERTHD:-}" ]; then
  BERTHD=$repo/target/release/berthd
  if [ ! -x "$BERTHD" ] || [ ! -x "$repo/target/release/berth-shim" ]; then
    log "building berthd and berth-shim (release)"
    cargo=$(find_cargo)
    (cd "$repo" && "$cargo" build --release -p daemon -p shim) >&2
  fi
fi
if pids=$(pidof dockerd); then die "a dockerd is already running (pid $pids); stop it first"; fi
ip link show "$BRIDGE" >/dev/null 2>&1 && die "$BRIDGE exists: another bench/network.sh is running?"

work=$(mktemp -d /tmp/berth-network-bench.XXXXXX)
xr=$(mktemp -d /run/bnb.XXXXXX)
res=$(mktemp -d /tmp/berth-network-results.XXXXXX)
export DOCKER_CONFIG=$work/cli-config
mkdir -p "$DOCKER_CONFIG" "$work/berth" "$work/docker"
echo '{}' > "$work/docker.json"
cat > "$work/berth.json" <<JSON
{"bridge": "$BRIDGE", "bip": "10.205.0.1/24", "default-address-pools": [{"base": "10.206.0.0/16", "size": 24}]}
JSON
declare -A HOST=([berth]="unix://$work/berth.sock" [docker]="unix://$work/docker.sock")
declare -A SOCK=([berth]="$work/berth.sock" [docker]="$work/docker.sock")

# Host state dockerd changes.
ip_forward_before=$(cat /proc/sys/net/ipv4/ip_forward)
forward_policy=$(iptables -S FORWARD 2>/dev/null | awk '$1=="-P"{print $3}')
docker_chains_before=$( { iptables -S; iptables -t nat -S; } 2>/dev/null | grep -c '^-N DOCKER' || true)
docker0_before=0; ip link show docker0 >/dev/null 2>&1 && docker0_before=1

start() { # start ENGINE
  local e=$1
  case $e in
    berth) setsid "$BERTHD" --data-root "$work/berth/data" --exec-root "$xr/b" -H "${HOST[berth]}" \
             --config-file "$work/berth.json" >"$res/berth.log" 2>&1 < /dev/null &
           echo $! > "$work/berth.pid" ;;
    docker) setsid "$DOCKERD" --data-root "$work/docker/data" --exec-root "$xr/d" -H "${HOST[docker]}" \
             -p "$work/docker/dockerd.pid" --config-file "$work/docker.json" >"$res/docker.log" 2>&1 < /dev/null &
           echo $! > "$work/docker.pid" ;;
  esac
  for _ in $(seq 300); do "$DOCKER" -H "${HOST[$e]}" version >/dev/null 2>&1 && return 0; sleep 0.1; done
  tail -20 "$res/$e.log" >&2; die "$e did not start"
}
stop() { # stop ENGINE
  local pid
  [ -s "$work/$1.pid" ] || return 0
  pid=$(cat "$work/$1.pid")
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$work/$1.pid"
}

cleanup() {
  local rc=$? e ids pid m
  trap - EXIT INT TERM
  set +e
  log "cleaning up"
  for e in berth docker; do
    if [ -S "${SOCK[$e]}" ]; then
      ids=$("$DOCKER" -H "${HOST[$e]}" ps -aq 2>/dev/null)
      # shellcheck disable=SC2086
      [ -z "$ids" ] || "$DOCKER" -H "${HOST[$e]}" rm -f $ids >/dev/null 2>&1
      "$DOCKER" -H "${HOST[$e]}" network prune -f >/dev/null 2>&1
    fi
  done
  stop berth; stop docker
  sleep 1
  for pid in $(ps -eo pid= -o args= | awk -v w="$work/" -v x="$xr/" '(index($0, w) || index($0, x)) && ($2 ~ /berth-shim$/ || $2 ~ /containerd/) {print $1}'); do
    kill -KILL "$pid" 2>/dev/null
  done
  for m in $(findmnt -rn -o TARGET | grep -F -e "$work/" -e "$xr/" | sort -r); do
    umount -l "$m" 2>/dev/null
  done
  rm -rf --one-file-system "$work" "$xr" 2>/dev/null
  ip link delete "$BRIDGE" 2>/dev/null
  nft delete table ip "$BRIDGE" 2>/dev/null
  nft -a list chain ip filter FORWARD 2>/dev/null | sed -n "s/.*\"berth:$BRIDGE\".*# handle \([0-9]*\)$/\1/p" |
    while read -r h; do nft delete rule ip filter FORWARD handle "$h"; done
  if [ "$docker0_before" = 0 ] && ip link show docker0 >/dev/null 2>&1; then ip link delete docker0; fi
  if [ "$docker_chains_before" = 0 ]; then
    local table line chain
    for table in filter nat; do
      iptables -t "$table" -S 2>/dev/null | grep -E '^-A (INPUT|FORWARD|OUTPUT|PREROUTING|POSTROUTING) .*(DOCKER|docker0)' |
        while read -r line; do read -ra rule <<< "${line#-A }"; iptables -t "$table" -D "${rule[@]}"; done
      for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^DOCKER/{print $2}'); do iptables -t "$table" -F "$chain"; done
      for chain in $(iptables -t "$table" -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^DOCKER/{print $2}'); do iptables -t "$table" -X "$chain"; done
    done
  fi
  [ -z "$forward_policy" ] || iptables -P FORWARD "$forward_policy"
  echo "$ip_forward_before" > /proc/sys/net/ipv4/ip_forward
  log "results kept in $res"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "starting berthd and dockerd"
start berth
start docker
bash "$repo/scripts/busybox-rootfs.sh" "$work/rootfs" >/dev/null 2>&1
tar -C "$work/rootfs" -cf "$work/busybox.tar" .
for e in berth docker; do
  "$DOCKER" -H "${HOST[$e]}" import "$work/busybox.tar" "$IMG" >/dev/null
  "$DOCKER" -H "${HOST[$e]}" network create benchnet >/dev/null
done

log "hyperfine: run --rm on the default bridge, a user network, and --network none"
hyperfine --style basic --warmup "$WARMUP" --runs "$RUNS" --export-json "$res/run.json" \
  -n "berth bridge" "$DOCKER -H ${HOST[berth]} run --rm $IMG true" \
  -n "berth user network" "$DOCKER -H ${HOST[berth]} run --rm --network benchnet $IMG true" \
  -n "berth none" "$DOCKER -H ${HOST[berth]} run --rm --network none $IMG true" \
  -n "docker bridge" "$DOCKER -H ${HOST[docker]} run --rm $IMG true" \
  -n "docker user network" "$DOCKER -H ${HOST[docker]} run --rm --network benchnet $IMG true" \
  -n "docker none" "$DOCKER -H ${HOST[docker]} run --rm --network none $IMG true" >&2
median_ms() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .median * 1000' "$res/run.json"; }

log "throughput of a published port: curl downloads ${SIZE_MB} MB from busybox httpd, $DOWNLOADS times"
host_ip=$(ip -4 -o addr show scope global | awk '$2 !~ /^(berth|br-|veth|docker)/ {print $4}' | head -1 | cut -d/ -f1)
declare -A PORT=([berth]=28081 [docker]=28082)
for e in berth docker; do
  "$DOCKER" -H "${HOST[$e]}" run -d --name web -p "${PORT[$e]}:80" "$IMG" sh -c \
    "mkdir /www && dd if=/dev/zero of=/www/big bs=1M count=$SIZE_MB 2>/dev/null && exec httpd -f -p 80 -h /www" >/dev/null
done
for e in berth docker; do
  for _ in $(seq 100); do curl -s -o /dev/null -r 0-0 "http://127.0.0.1:${PORT[$e]}/big" && break; sleep 0.1; done
done
speed() { # speed URL -> median MB/s over DOWNLOADS downloads

  for _ in $(seq "$DOWNLOADS"); do
    curl -s -o /dev/null -w '%{speed_download}\n' "$1"
  done | awk '{print $1 / 1048576}' | sort -n | awk '{a[NR]=$1} END{printf "%.0f\n", (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'
}
declare -A LOOP HOSTADDR
for e in berth docker; do
  LOOP[$e]=$(speed "http://127.0.0.1:${PORT[$e]}/big")
  HOSTADDR[$e]=$(speed "http://$host_ip:${PORT[$e]}/big")
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b == 0) print "-"; else printf "%.2f", a / b }'; }
fmt() { awk -v a="$1" 'BEGIN{printf "%.1f", a}'; }
bb=$(median_ms "berth bridge"); bu=$(median_ms "berth user network"); bn=$(median_ms "berth none")
db=$(median_ms "docker bridge"); du=$(median_ms "docker user network"); dn=$(median_ms "docker none")
{
  printf '%-44s %12s %12s %8s\n' "" berthd dockerd ratio
  printf '%-44s %9s ms %9s ms %8s\n' "run --rm busybox true, default bridge" "$(fmt "$bb")" "$(fmt "$db")" "$(ratio "$bb" "$db")"
  printf '%-44s %9s ms %9s ms %8s\n' "run --rm busybox true, user network" "$(fmt "$bu")" "$(fmt "$du")" "$(ratio "$bu" "$du")"
  printf '%-44s %9s ms %9s ms %8s\n' "run --rm busybox true, --network none" "$(fmt "$bn")" "$(fmt "$dn")" "$(ratio "$bn" "$dn")"
  printf '%-44s %9s ms %9s ms %8s\n' "what the bridge adds (bridge - none)" "$(fmt "$(awk -v a="$bb" -v b="$bn" 'BEGIN{print a-b}')")" \
    "$(fmt "$(awk -v a="$db" -v b="$dn" 'BEGIN{print a-b}')")" "target<=10"
  printf '%-44s %8s MB/s %7s MB/s %8s\n' "published port via 127.0.0.1 (curl <- httpd)" "${LOOP[berth]}" "${LOOP[docker]}" "$(ratio "${LOOP[berth]}" "${LOOP[docker]}")"
  printf '%-44s %8s MB/s %7s MB/s %8s\n' "published port via $host_ip" "${HOSTADDR[berth]}" "${HOSTADDR[docker]}" "$(ratio "${HOSTADDR[berth]}" "${HOSTADDR[docker]}")"
} | tee "$res/summary.txt"
