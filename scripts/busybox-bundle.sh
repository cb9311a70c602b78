#!/usr/bin/env bash
# busybox-bundle.sh DIR [ARGS...] - make an OCI bundle: DIR/rootfs (see
# busybox-rootfs.sh) and DIR/config.json.  The config comes from
# `$BERTH_RUNTIME spec` when BERTH_RUNTIME is set, else from `runc spec`; the
# process args are set to ARGS (default: sh) and terminal to false.
set -euo pipefail

die() { echo "busybox-bundle.sh: $*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: busybox-bundle.sh DIR [ARGS...]"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
dir=$1; shift
[ $# -gt 0 ] || set -- sh

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
bash "$here/busybox-rootfs.sh" "$dir/rootfs" 2>/dev/null

spec_tool=${BERTH_RUNTIME:-runc}
command -v "$spec_tool" >/dev/null || die "$spec_tool not found (set BERTH_RUNTIME or install runc)"
rm -f "$dir/config.json"
(cd "$dir" && "$spec_tool" spec) || die "$spec_tool spec failed"
[ -s "$dir/config.json" ] || die "$spec_tool spec wrote no config.json"

# Edit with python3 (always on Debian) so ARGS need no JSON quoting by hand.
python3 - "$dir/config.json" "$@" <<'PY'
import json, sys
path, args = sys.argv[1], sys.argv[2:]
with open(path) as f:
    spec = json.load(f)
spec["process"]["args"] = args
spec["process"]["terminal"] = False
with open(path + ".new", "w") as f:
    json.dump(spec, f, indent=2)
PY
mv "$dir/config.json.new" "$dir/config.json"
echo "bundle ready in $dir (args: $*)" >&2
