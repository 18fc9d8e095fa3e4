#!/usr/bin/env bash
# Runs every pkginitrd test on a Debian machine: go vet, gofmt, the
# linters, unit tests and the end-to-end qemu boots. Installs what the tests
# need first. Runs as root (it re-runs itself with sudo): some tests make
# device nodes, mount filesystems and attach loop devices.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
if [ "$(id -u)" -ne 0 ]; then exec sudo -E env "PATH=$PATH" "$0" "$@"; fi
# Debian keeps mkfs, sfdisk, cryptsetup, depmod and friends in the sbin directories.
export PATH="/usr/local/sbin:/usr/sbin:/sbin:$PATH"

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends \
  qemu-system-x86 cpio gdisk fdisk mount e2fsprogs xfsprogs btrfs-progs dosfstools \
  squashfs-tools xorriso mtools zstd xz-utils lz4 bzip2 binutils kmod cryptsetup-bin lvm2 dpkg-dev \
  debian-archive-keyring ca-certificates gpg dracut-core bc isolinux syslinux-common systemd \
  dnf rpm createrepo-c gnupg pacman-package-manager makepkg archlinux-keyring libarchive-tools fakeroot \
  kbd console-data console-setup-linux debootstrap make git \
  ovmf sbsigntool systemd-boot-efi openssl

command -v go >/dev/null || { echo "run-all: Go is required (go.mod names the version)" >&2; exit 1; }

go vet ./...
test -z "$(gofmt -l .)" || { echo "run-all: files not gofmt'ed:"; gofmt -l .; exit 1; }
# The linters and their settings: .golangci.yml.
go run github.com/golangci/golangci-lint/v2/cmd/golangci-lint@v2.15.0 run ./...
PKGINITRD_E2E=1 go test -count=1 -timeout 50m ./... 2>&1 | tee /tmp/pkginitrd-test.log
