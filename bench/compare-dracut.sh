#!/usr/bin/env bash
# Times whole generic builds of pkginitrd and dracut side by side on the same
# input (the current Debian kernel package's modules; both images with LUKS
# and LVM support), RUNS times each, and
# prints the median wall time and the image sizes. With BOOT=1 it then boots
# each image under qemu (TCG) BOOTS times over the same fixture disk (ext4
# root by UUID holding a static busybox whose init prints a marker) and
# prints the median time from qemu start to that marker.
#
#   bench/compare-dracut.sh            # needs root (apt-get install dracut-core)
#   RUNS=9 BOOT=1 bench/compare-dracut.sh
#   BACKENDS=0 ...                      # skip the apt/dnf/pacman warm builds
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
work=$(mktemp -d /tmp/pkginitrd-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cache=${PKGINITRD_CACHE:-/var/cache/pkginitrd}

# dracut copies binaries from the host: it needs cryptsetup and lvm2 there to
# build the same LUKS+LVM-capable generic image pkginitrd builds from packages.
if ! command -v dracut >/dev/null || ! command -v cryptsetup >/dev/null || ! command -v lvm >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dracut-core kmod cpio zstd bc cryptsetup-bin lvm2 >/dev/null
fi
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$work/pkginitrd" ./cmd/pkginitrd

# Warm pkginitrd's cache (package lists, archives, unpacked trees) once.
"$work/pkginitrd" build --generic --kernel-package linux-image-amd64 --cache-dir "$cache" \
  -o "$work/warm.img" --manifest "$work/manifest.json" >/dev/null
kver=$(sed -n 's/.*"kernel_version": "\(.*\)".*/\1/p' "$work/manifest.json")
# The kernel package's unpacked tree in the cache (trees/<archive sha256>/tree).
moddir=$(find "$cache/trees" -mindepth 5 -maxdepth 6 -type d -path "*/modules/$kver" | head -n1)
[ -n "$moddir" ] || { echo "compare-dracut: no module tree for $kver under $cache/trees" >&2; exit 1; }
vmlinuz=$work/vmlinuz-$kver # placed beside the image by --kernel-package

# dracut needs a depmod'ed tree: copy it next to the bench and run depmod there.
mkdir -p "$work/root/lib/modules"
cp -a "$moddir" "$work/root/lib/modules/"
depmod -b "$work/root" "$kver"

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
timeit() {
  local s e
  s=$(date +%s.%N)
  "$@" >"$work/cmd.log" 2>&1 || { echo "failed: $*" >&2; tail -n 20 "$work/cmd.log" >&2; return 1; }
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}

echo "kernel $kver, $runs runs each, $(nproc) cores"
for i in $(seq "$runs"); do
  timeit "$work/pkginitrd" build --generic --kernel-package linux-image-amd64 --cache-dir "$cache" --offline -o "$work/pkginitrd.img"
done | median > "$work/p.t"
for i in $(seq "$runs"); do
  timeit dracut --force --no-hostonly --add "crypt lvm" --kver "$kver" --kmoddir "$work/root/lib/modules/$kver" --zstd "$work/dracut.img"
done | median > "$work/d.t"
printf "%-10s %10s %12s\n" tool "median s" "image bytes"
printf "%-10s %10s %12s\n" pkginitrd "$(cat "$work/p.t")" "$(stat -c %s "$work/pkginitrd.img")"
printf "%-10s %10s %12s\n" dracut "$(cat "$work/d.t")" "$(stat -c %s "$work/dracut.img")"

# Warm builds through each backend (apt, dnf, pacman) with the same module
# set: tests/bench_test.go, against local signed dnf and pacman repositories.
if [ "${BACKENDS:-1}" = 1 ]; then
  PKGINITRD_E2E=1 go test -run '^$' -bench BenchmarkWarmBuild -benchtime "${runs}x" ./tests/ | grep -E '^Benchmark|^ok'
fi

[ "${BOOT:-0}" = 1 ] || exit 0
boots=${BOOTS:-3}
mkdir -p "$work/fix/bin" "$work/fix/sbin" "$work/fix/dev" "$work/fix/proc" "$work/fix/sys" "$work/fix/run" "$work/fix/etc"
# systemd-based initrds (dracut's) refuse to switch to a root without os-release.
echo "ID=pkginitrd-bench" > "$work/fix/etc/os-release"
(cd "$work" && apt-get download -q busybox-static >/dev/null 2>&1 && dpkg-deb -x busybox-static_*.deb bbx)
cp "$work/bbx/bin/busybox" "$work/fix/bin/busybox"
printf '#!/bin/busybox sh\n/bin/busybox echo BENCH-ROOT-REACHED\n/bin/busybox poweroff -f\n' > "$work/fix/sbin/init"
chmod 755 "$work/fix/sbin/init"
uuid=0b9e4c1a-51f3-4c8e-9d2b-5a6c7e8f9a0b
truncate -s 64M "$work/root.img"
mkfs.ext4 -q -F -U "$uuid" -d "$work/fix" "$work/root.img"
# boottime IMAGE: seconds from qemu start until the root's init has printed
# its marker and powered the guest off.
boottime() {
  local s e
  s=$(date +%s.%N)
  timeout 300 qemu-system-x86_64 -accel tcg -smp 2 -m 1024 -display none -serial stdio -monitor none -no-reboot \
    -kernel "$vmlinuz" -initrd "$1" -append "console=ttyS0 panic=-1 root=UUID=$uuid rw" \
    -drive file="$work/root.img",if=virtio,format=raw </dev/null >"$work/console.log" 2>&1 || true
  e=$(date +%s.%N)
  if ! grep -q BENCH-ROOT-REACHED "$work/console.log"; then
    echo "$1: no marker; console:" >&2; tail -n 30 "$work/console.log" >&2; return 1
  fi
  echo "$e - $s" | bc
}
for img in pkginitrd dracut; do
  for i in $(seq "$boots"); do boottime "$work/$img.img"; done | median > "$work/$img.boot"
done
printf "%-10s %16s\n" tool "median boot s"
printf "%-10s %16s\n" pkginitrd "$(cat "$work/pkginitrd.boot")"
printf "%-10s %16s\n" dracut "$(cat "$work/dracut.boot")"
