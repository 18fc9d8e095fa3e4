#!/usr/bin/env bash
# Runs every pkginitrd test on a Debian machine, end-to-end qemu boots
# included. Installs what the tests need first (needs root or sudo).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then sudo=(); else sudo=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends \
  qemu-system-x86 cpio gdisk fdisk mount e2fsprogs xfsprogs btrfs-progs dosfstools \
  squashfs-tools xorriso mtools zstd xz-utils lz4 bzip2 binutils kmod cryptsetup-bin lvm2 dpkg-dev \
  debian-archive-keyring ca-certificates dracut-core bc isolinux syslinux-common systemd

command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "run-all: Go is required (go.mod names the version)" >&2; exit 1; }

go vet ./...
test -z "$(gofmt -l .)" || { echo "run-all: files not gofmt'ed:"; gofmt -l .; exit 1; }
PKGINITRD_E2E=1 go test -count=1 -timeout 50m ./... 2>&1 | tee /tmp/pkginitrd-test.log
