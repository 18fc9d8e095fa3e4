#!/usr/bin/env bash
# Times whole generic builds of pkginitrd and dracut side by side on the same
# input (the current Debian kernel package's modules), RUNS times each, and
# prints the median wall time and the image sizes. (Boot times under qemu are
# logged by the end-to-end tests: "root reached after …".)
#
#   bench/compare-dracut.sh            # needs root (apt-get install dracut-core)
#   RUNS=9 bench/compare-dracut.sh
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
work=$(mktemp -d /tmp/pkginitrd-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
cache=${PKGINITRD_CACHE:-/var/cache/pkginitrd}

if ! command -v dracut >/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends dracut-core kmod cpio zstd >/dev/null
fi
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$work/pkginitrd" ./cmd/pkginitrd

# Warm pkginitrd's cache (package lists, archives, unpacked trees) once.
"$work/pkginitrd" build --generic --kernel-package linux-image-amd64 --cache-dir "$cache" \
  -o "$work/warm.img" --manifest "$work/manifest.json" >/dev/null
kver=$(sed -n 's/.*"kernel_version": "\(.*\)".*/\1/p' "$work/manifest.json")
moddir=$(ls -d "$cache"/unpacked/linux-image-"$kver"_*/lib/modules/"$kver" | head -n1)

# dracut needs a depmod'ed tree: copy it next to the bench and run depmod there.
mkdir -p "$work/root/lib/modules"
cp -a "$moddir" "$work/root/lib/modules/"
depmod -b "$work/root" "$kver"

median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
timeit() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc; }

echo "kernel $kver, $runs runs each, $(nproc) cores"
for i in $(seq "$runs"); do
  timeit "$work/pkginitrd" build --generic --kernel-package linux-image-amd64 --cache-dir "$cache" --offline -o "$work/pkginitrd.img"
done | median > "$work/p.t"
for i in $(seq "$runs"); do
  timeit dracut --force --no-hostonly --kver "$kver" --kmoddir "$work/root/lib/modules/$kver" --zstd "$work/dracut.img"
done | median > "$work/d.t"
printf "%-10s %10s %12s\n" tool "median s" "image bytes"
printf "%-10s %10s %12s\n" pkginitrd "$(cat "$work/p.t")" "$(stat -c %s "$work/pkginitrd.img")"
printf "%-10s %10s %12s\n" dracut "$(cat "$work/d.t")" "$(stat -c %s "$work/dracut.img")"
