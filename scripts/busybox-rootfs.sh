#!/usr/bin/env bash
# busybox-rootfs.sh DIR - build a minimal root filesystem from Debian's
# busybox-static: DIR/bin/busybox plus one symlink per applet, /etc/passwd and
# /etc/group with root and nobody, and empty /tmp /proc /sys /dev mount points.
# Idempotent: re-running over an existing DIR refreshes it.
set -euo pipefail

die() { echo "busybox-rootfs.sh: $*" >&2; exit 1; }
[ $# -eq 1 ] || die "usage: busybox-rootfs.sh DIR"
dir=$1

# Debian's busybox-static installs a statically linked /bin/busybox; the
# dynamically linked "busybox" package would need libc inside the rootfs.
bb=/bin/busybox
if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q 'install ok installed'; then
  [ "$(id -u)" = 0 ] || die "busybox-static is not installed (apt-get install busybox-static as root)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null ||
    die "could not install busybox-static"
fi
[ -x "$bb" ] || die "$bb missing after installing busybox-static"

mkdir -p "$dir"
cd "$dir"
mkdir -p bin sbin usr/bin usr/sbin etc root tmp proc sys dev
chmod 1777 tmp
chmod 700 root
cp -f "$bb" bin/busybox
chmod 755 bin/busybox
# One relative symlink per applet, all in /bin (on the default OCI PATH).
for applet in $("$bb" --list); do
  [ "$applet" = busybox ] && continue
  ln -sfn busybox "bin/$applet"
done
cat > etc/passwd <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > etc/group <<'GROUP'
root:x:0:
nogroup:x:65534:
GROUP
: > etc/hostname
echo "built busybox rootfs in $dir ($("$bb" --list | wc -l) applets)" >&2
