#!/usr/bin/env bash
# Runs the README's test command (tests/run-all.sh) inside a freshly made
# Debian bookworm (debootstrap --variant=minbase), so that a program the
# tests call but run-all.sh never installs fails here, not on a new user's
# machine. Go is bind-mounted read-only from this machine (go.mod names the
# version); the checkout is bind-mounted at /src. Needs root.
#
#   tests/fresh-machine.sh [COMMAND...]   # default: ./tests/run-all.sh
#
# KEEP_ROOT=1 keeps the chroot for a look afterwards (its path is printed).
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
[ "$(id -u)" -eq 0 ] || { echo "fresh-machine: needs root (debootstrap, chroot, bind mounts)" >&2; exit 1; }
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
goroot=$(go env GOROOT)

export DEBIAN_FRONTEND=noninteractive
if ! command -v debootstrap >/dev/null; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends debootstrap debian-archive-keyring
fi

# The mirror this machine's apt uses (deb822 or one-line sources).
mirror=$(sed -n 's/^URIs:[[:space:]]*\([^[:space:]]*\/debian\)\/*$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
[ -n "$mirror" ] || mirror=$(sed -n 's/^deb[[:space:]]\+\(\[[^]]*\][[:space:]]\+\)\?\([^[:space:]]*\/debian\)\/\?[[:space:]]\+bookworm[[:space:]].*/\2/p' /etc/apt/sources.list 2>/dev/null | head -n1)
[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

root=$(mktemp -d /var/tmp/pkginitrd-fresh.XXXXXX)
chmod 755 "$root" # it becomes /, which every user must be able to enter
mounts=()
cleanup() {
  local i
  for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do umount -l "${mounts[i]}" 2>/dev/null || true; done
  if [ "${KEEP_ROOT:-0}" = 1 ]; then echo "fresh-machine: chroot kept at $root"; else rm -rf --one-file-system "$root"; fi
}
trap cleanup EXIT
bind() { # bind SRC DEST [ro]
  mkdir -p "$2"
  mount --rbind "$1" "$2"
  mount --make-rslave "$2"
  mounts+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}

echo "fresh-machine: debootstrap bookworm from $mirror into $root"
debootstrap --variant=minbase bookworm "$root" "$mirror" >"$root.log" 2>&1 || { tail -n 30 "$root.log"; exit 1; }
rm -f "$root.log"
# A fresh Debian installation's sources: the release, its updates and security.
rm -f "$root/etc/apt/sources.list"
cat >"$root/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
# This machine's network setup, which a new machine of its kind has too:
# name servers, an apt proxy, and local CA certificates (picked up when
# run-all.sh installs ca-certificates).
cp /etc/resolv.conf "$root/etc/resolv.conf"
if [ -d /usr/local/share/ca-certificates ]; then
  mkdir -p "$root/usr/local/share/ca-certificates"
  cp -r /usr/local/share/ca-certificates/. "$root/usr/local/share/ca-certificates/"
fi
for f in /etc/apt/apt.conf.d/*; do
  grep -qi 'proxy' "$f" 2>/dev/null && cp "$f" "$root/etc/apt/apt.conf.d/"
done

# The new root is a mount point of its own, as / is on a real machine
# (tests read /proc/self/mountinfo and expect to find /).
bind "$root" "$root"
bind /proc "$root/proc"
bind /sys "$root/sys"
bind /dev "$root/dev"
bind "$goroot" "$root/usr/local/go" ro
bind "$src" "$root/src"
mkdir -p "$root/tmp" && chmod 1777 "$root/tmp"

[ $# -gt 0 ] || set -- ./tests/run-all.sh
# A clean environment, as on a new machine: only what a login shell has,
# plus the Go proxy settings this machine needs to reach the module proxy.
envs=(HOME=/root TERM=dumb LANG=C.UTF-8 CI="${CI:-}"
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/usr/local/go/bin)
for v in GOPROXY GOSUMDB GONOSUMDB GOPRIVATE GOFLAGS http_proxy https_proxy no_proxy; do
  [ -n "${!v:-}" ] && envs+=("$v=${!v}")
done
echo "fresh-machine: running $* in the fresh bookworm"
chroot "$root" /usr/bin/env -i "${envs[@]}" bash -c 'cd /src && "$@"' bash "$@"
