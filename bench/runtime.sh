#!/usr/bin/env bash
# bench/runtime.sh [BERTH_RUNTIME] - `run` of /bin/true from one busybox
# bundle: berth-runtime against runc and crun, side by side in one hyperfine
# invocation (relative figures), then the median ratios berth/runc and
# berth/crun from hyperfine's JSON export.
#
# berth-runtime is argument 1, else $BERTH_RUNTIME, else the repo's
# target/release/berth-runtime, else /usr/local/bin/berth-runtime.
# Knobs: RUNS (30), WARMUP (3), KEEP_JSON=FILE to keep hyperfine's export.
#
# Fairness: crun 1.8 refuses a hybrid cgroup host whose cgroup2 mount has a
# controller ("cgroups in hybrid mode not supported"). On such a host all
# three runtimes run in one private mount namespace where an empty file is
# bind-mounted over /sys/fs/cgroup/unified/cgroup.controllers; nothing on
# the host changes. Each runtime gets its own --root in a scratch dir, all
# use the same bundle (terminal false, args /bin/true). A runtime that is
# not installed is skipped with a note. Needs root, hyperfine, jq.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}

die() { echo "bench/runtime.sh: $*" >&2; exit 1; }
[ "$(id -u)" = 0 ] || die "run as root"
for tool in hyperfine jq unshare; do command -v "$tool" >/dev/null || die "$tool is not installed"; done

berth=${1:-${BERTH_RUNTIME:-}}
if [ -z "$berth" ]; then
  if [ -x "$repo/target/release/berth-runtime" ]; then berth=$repo/target/release/berth-runtime
  else berth=/usr/local/bin/berth-runtime; fi
fi
[ -x "$berth" ] || die "berth-runtime not found at $berth (cargo build --release, or pass its path)"

# name<TAB>binary for every runtime we can compare
declare -a names=() bins=()
names+=(berth); bins+=("$berth")
for other in runc crun; do
  if bin=$(command -v "$other"); then names+=("$other"); bins+=("$bin")
  else echo "note: $other is not installed - skipped" >&2; fi
done

work=$(mktemp -d /tmp/berth-bench.XXXXXX)
empty=$work/empty-controllers
: > "$empty"

# True on a hybrid host whose cgroup2 mount lists controllers (crun refuses).
needs_private_ns() {
  [ "$(stat -fc %T /sys/fs/cgroup 2>/dev/null)" = tmpfs ] &&
    [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]
}
# in_ns CMD... - run CMD in the private mount namespace described above.
in_ns() {
  if needs_private_ns; then
    # shellcheck disable=SC2016  # $0/$@ belong to the inner bash
    unshare -m --propagation private -- bash -c \
      'mount --bind "$0" /sys/fs/cgroup/unified/cgroup.controllers && exec "$@"' "$empty" "$@"
  else
    "$@"
  fi
}

cleanup() {
  local i
  for i in "${!names[@]}"; do
    in_ns "${bins[$i]}" --root "$work/state-${names[$i]}" delete --force "bench-${names[$i]}" >/dev/null 2>&1 || true
  done
  rm -rf "$work"
}
trap cleanup EXIT

# The bundle: spec from runc when present (a reference config), else ours.
if command -v runc >/dev/null; then
  bash "$repo/scripts/busybox-bundle.sh" "$work/bundle" /bin/true 2>/dev/null
else
  BERTH_RUNTIME=$berth bash "$repo/scripts/busybox-bundle.sh" "$work/bundle" /bin/true 2>/dev/null
fi

# One smoke run each, so a broken runtime fails here with its own message
# instead of inside hyperfine.
hf_args=()
for i in "${!names[@]}"; do
  name=${names[$i]} bin=${bins[$i]}
  mkdir -p "$work/state-$name"
  cmd=("$bin" --root "$work/state-$name" run --bundle "$work/bundle" "bench-$name")
  if ! out=$(in_ns "${cmd[@]}" 2>&1); then
    die "$name failed a smoke run (${cmd[*]}): $out"
  fi
  # hyperfine -N splits the command on spaces: paths here have none.
  hf_args+=(-n "$name run (/bin/true)" "${cmd[*]}")
done

echo "# $(uname -r), $(nproc) CPUs; runtimes: $(for i in "${!names[@]}"; do printf '%s=%s ' "${names[$i]}" "${bins[$i]}"; done)"
needs_private_ns && echo "# all runtimes run in a private mount namespace (crun hybrid-cgroup workaround)"
in_ns hyperfine -N --warmup "$WARMUP" --runs "$RUNS" --export-json "$work/results.json" "${hf_args[@]}"
[ -n "${KEEP_JSON:-}" ] && cp "$work/results.json" "$KEEP_JSON"

# Median ratios parsed from the export (results are in command order).
jq -r '
  .results as $r
  | ($r | map({key: (.command | split(" ")[0]), value: .median}) | from_entries) as $m
  | "medians (ms): " + ([$r[] | "\(.command | split(" ")[0])=\(.median * 1000 * 10 | round / 10)"] | join(", "))
    + "\nmedian ratios: "
    + ([("runc", "crun") as $o | select($m[$o] != null)
        | "berth/\($o) = \($m.berth / $m[$o] * 100 | round / 100)"] | join(", "))
' "$work/results.json"
