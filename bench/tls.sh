#!/usr/bin/env bash
# bench/tls.sh - the API over TLS: berthd against dockerd, side by side in one
# hyperfine run, both with --tlsverify on tcp://127.0.0.1 (and their unix
# socket for reference), both driven by the same clients:
#   - curl GET /_ping with a client certificate (a new TLS connection each:
#     handshake + one request, little client start-up to hide it)
#   - docker version, docker ps (the docker CLI 28 over TLS)
#   - berth ps over TLS against berthd (no dockerd counterpart: the docker CLI
#     is the common client)
# and prints the ratios berthd/dockerd, and TLS/unix for each daemon.
#
# Certificates: a CA, a server certificate for 127.0.0.1, a client
# certificate, made with openssl in a scratch directory. dockerd runs on its
# own data root, exec root, pid file and sockets, with --bridge=none
# --iptables=false (this benchmark needs no container network, and so leaves
# docker0 and the host's firewall alone); it starts its own containerd, which
# stops with it. Cleanup (also on failure): both daemons stopped by pid,
# mounts under the scratch directories unmounted, the scratch directories
# removed, paths dockerd creates outside them removed when they did not exist
# before.
#
#   sudo bash bench/tls.sh
# Knobs: RUNS (default 30), WARMUP (3), DOCKER (CLI, default
#        /usr/local/bin/docker), DOCKERD, BERTHD (default target/release/berthd,
#        built when missing), BERTH (default target/release/berth).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
DOCKER=${DOCKER:-/usr/local/bin/docker}
DOCKERD=${DOCKERD:-dockerd}

log() { printf '[tls %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root"
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
source "$repo/scripts/lib.sh"
ensure_packages docker.io hyperfine jq openssl curl procps
[ -x "$DOCKER" ] || DOCKER=$(command -v docker) || die "no docker CLI"
command -v "$DOCKERD" >/dev/null || die "dockerd not found"
if [ -z "${BERTHD:-}" ]; then
  BERTHD=$repo/target/release/berthd
  BERTH=${BERTH:-$repo/target/release/berth}
  if [ ! -x "$BERTHD" ] || [ ! -x "$BERTH" ] || [ ! -x "$repo/target/release/berth-shim" ]; then
    log "building berthd, berth-shim and berth (release)"
    cargo=$(find_cargo)
    (cd "$repo" && "$cargo" build --release -p daemon -p shim -p cli) >&2
  fi
fi
BERTH=${BERTH:-$(dirname "$BERTHD")/berth}
[ -x "$BERTHD" ] || die "berthd not found at $BERTHD"
[ -x "$BERTH" ] || die "berth not found at $BERTH"

work=$(mktemp -d /tmp/berth-tls-bench.XXXXXX)
xr=$(mktemp -d /run/bbt.XXXXXX)
export DOCKER_CONFIG=$work/cli-config
mkdir -p "$DOCKER_CONFIG" "$work/pki"
echo '{}' > "$work/daemon.json"

# Paths outside the scratch dirs that dockerd creates; removed at the end when
# they did not exist before (directories only if empty).
watched=(/etc/docker/key.json /etc/docker /run/docker/plugins /run/docker /run/containerd/s /run/containerd)
declare -A EXISTED=()
for f in "${watched[@]}"; do [ -e "$f" ] && EXISTED[$f]=1; done

alive() { local s; s=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1; [ -n "$s" ] && [ "$s" != Z ]; }
stop_pid() { # stop_pid PID: TERM, then KILL after 30 s
  local pid=$1 i
  alive "$pid" || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do alive "$pid" || return 0; sleep 0.1; done
  log "pid $pid still alive after 30 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true
}
cleanup() {
  local pid
  for f in "$work/berthd.pid" "$work/dockerd.pid"; do
    [ -s "$f" ] && stop_pid "$(cat "$f")"
  done
  # containerd of our dockerd stops with it; wait for it all the same
  for pid in $(pgrep -f "containerd --config $xr/" || true); do stop_pid "$pid"; done
  findmnt -rn -o TARGET | grep -E "^($work|$xr)" | sort -r | xargs -r -n1 umount -l || true
  rm -rf "$work" "$xr"
  for f in "${watched[@]}"; do
    [ -n "${EXISTED[$f]:-}" ] && continue
    if [ -d "$f" ]; then rmdir "$f" 2>/dev/null || true; elif [ -e "$f" ]; then rm -f "$f"; fi
  done
}
trap cleanup EXIT

# ---------------------------------------------------------------- certificates
log "certificates (openssl)"
(
  cd "$work/pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca -keyout ca-key.pem -out ca.pem 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=daemon -keyout server-key.pem -out server.csr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' > server.ext
  openssl x509 -req -days 2 -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
    -out server-cert.pem -extfile server.ext 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj /CN=client -keyout key.pem -out client.csr 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' > client.ext
  openssl x509 -req -days 2 -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
    -out cert.pem -extfile client.ext 2>/dev/null
)
pki=$work/pki
tls_server=(--tlsverify --tlscacert "$pki/ca.pem" --tlscert "$pki/server-cert.pem" --tlskey "$pki/server-key.pem")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port_b=$(free_port); port_d=$(free_port)
[ "$port_b" != "$port_d" ] || port_d=$(free_port)

# --------------------------------------------------------------------- daemons
wait_up() { # wait_up NAME PIDFILE HOST
  local i
  for ((i = 0; i < 300; i++)); do
    "$DOCKER" -H "$3" version >/dev/null 2>&1 && return 0
    [ -s "$2" ] && ! alive "$(cat "$2")" && break
    sleep 0.1
  done
  tail -20 "$work/$1.log" >&2; die "$1 did not start"
}
log "starting berthd and dockerd"
setsid "$BERTHD" --data-root "$work/berth" --exec-root "$xr/b" --config-file "$work/daemon.json" \
  -H "unix://$work/berth.sock" -H "tcp://127.0.0.1:$port_b" "${tls_server[@]}" \
  -p "$work/berthd.pid" >"$work/berthd.log" 2>&1 < /dev/null &
setsid "$DOCKERD" --data-root "$work/docker" --exec-root "$xr/d" --config-file "$work/daemon.json" \
  -H "unix://$work/docker.sock" -H "tcp://127.0.0.1:$port_d" "${tls_server[@]}" \
  -p "$work/dockerd.pid" --bridge=none --iptables=false \
  >"$work/dockerd.log" 2>&1 < /dev/null &
wait_up berthd "$work/berthd.pid" "unix://$work/berth.sock"
wait_up dockerd "$work/dockerd.pid" "unix://$work/docker.sock"

client_tls=(--tlsverify --tlscacert "$pki/ca.pem" --tlscert "$pki/cert.pem" --tlskey "$pki/key.pem")
curl_tls=(--cacert "$pki/ca.pem" --cert "$pki/cert.pem" --key "$pki/key.pem")
q() { printf '%q ' "$@"; }
declare -a names=() commands=()
add() { names+=("$1"); commands+=("$2"); }
for e in berthd dockerd; do
  if [ "$e" = berthd ]; then port=$port_b; sock=$work/berth.sock; else port=$port_d; sock=$work/docker.sock; fi
  add "$e curl _ping tls" "curl -sf $(q "${curl_tls[@]}") https://127.0.0.1:$port/_ping"
  add "$e curl _ping unix" "curl -sf --unix-socket $(q "$sock") http://d/_ping"
  add "$e docker version tls" "$(q "$DOCKER" "${client_tls[@]}") -H tcp://127.0.0.1:$port version"
  add "$e docker version unix" "$(q "$DOCKER") -H unix://$(q "$sock") version"
  add "$e docker ps tls" "$(q "$DOCKER" "${client_tls[@]}") -H tcp://127.0.0.1:$port ps"
  add "$e docker ps unix" "$(q "$DOCKER") -H unix://$(q "$sock") ps"
done
add "berthd berth ps tls" "$(q "$BERTH" "${client_tls[@]}") -H tcp://127.0.0.1:$port_b ps"
add "berthd berth ps unix" "$(q "$BERTH") -H unix://$(q "$work/berth.sock") ps"
# Every command must work before it is timed.
for i in "${!commands[@]}"; do
  bash -c "${commands[$i]}" >/dev/null || die "${names[$i]} failed: ${commands[$i]}"
done

args=()
for i in "${!commands[@]}"; do args+=(-n "${names[$i]}" "${commands[$i]}"); done
hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/results.json" "${args[@]}" >&2

median() { jq -r --arg n "$1" '.results[] | select(.command == $n) | .median * 1000' "$work/results.json"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo
printf '%-22s %12s %12s %10s\n' "median (ms)" berthd dockerd "ratio"
for what in "curl _ping" "docker version" "docker ps"; do
  for via in tls unix; do
    b=$(median "berthd $what $via"); d=$(median "dockerd $what $via")
    printf '%-22s %12.2f %12.2f %10s\n' "$what $via" "$b" "$d" "$(ratio "$b" "$d")"
  done
done
printf '%-22s %12.2f\n' "berth ps tls" "$(median "berthd berth ps tls")"
printf '%-22s %12.2f\n' "berth ps unix" "$(median "berthd berth ps unix")"
echo
echo "TLS cost (tls / unix, same client):"
for what in "curl _ping" "docker version" "docker ps"; do
  printf '  %-20s berthd %s   dockerd %s\n' "$what" \
    "$(ratio "$(median "berthd $what tls")" "$(median "berthd $what unix")")" \
    "$(ratio "$(median "dockerd $what tls")" "$(median "dockerd $what unix")")"
done
printf '  %-20s berthd %s\n' "berth ps" \
  "$(ratio "$(median "berthd berth ps tls")" "$(median "berthd berth ps unix")")"
