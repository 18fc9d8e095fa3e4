// Package blkid identifies filesystems and storage containers by their
// on-disk signatures, the way util-linux's libblkid does, in pure Go: ext2/3/4,
// XFS, Btrfs, FAT (vfat), ISO 9660, SquashFS, LUKS1/2, LVM2 physical volumes
// and swap. It also reads GPT and MBR partition tables (see ReadPartitions).
//
// Everything works on an io.ReaderAt, so it runs on device nodes, image
// files and byte slices alike. The values follow `blkid -p -o export`: TYPE,
// UUID, LABEL, UUID_SUB, LABEL_FATBOOT, VERSION.
package blkid

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf16"
)

// ErrUnknown means no known signature was found.
var ErrUnknown = errors.New("blkid: no known signature")

// Usage classes, as libblkid's USAGE.
const (
	UsageFilesystem = "filesystem"
	UsageCrypto     = "crypto"
	UsageRaid       = "raid"
	UsageOther      = "other"
)

// Info describes what was found on a device.
type Info struct {
	Type         string // "ext4", "xfs", "btrfs", "vfat", "iso9660", "squashfs", "crypto_LUKS", "LVM2_member", "swap", …
	Usage        string // UsageFilesystem, UsageCrypto, UsageRaid, UsageOther
	UUID         string // as blkid prints it (lower-case 8-4-4-4-12, vfat "ABCD-1234", iso9660 a date, LVM 6-4-4-4-4-4-6)
	UUIDSub      string // btrfs: the device's own UUID within the filesystem
	Label        string // LABEL (vfat: the root-directory volume label)
	LabelFATBoot string // vfat: the label in the boot sector
	Version      string // VERSION ("1.0", "FAT32", "2", "LVM2 001", …)
}

// headLen covers every fixed-offset signature: Btrfs's superblock at 64 KiB
// and swap's signature in a 64 KiB page.
const headLen = 0x10000 + 0x1000

type prober func(h head, r io.ReaderAt) (*Info, error)

// probers run in order; the first match wins. Containers come first: a LUKS
// or LVM header may sit over stale filesystem signatures, never the other
// way round (mkfs tools wipe them). FAT is last: its signature is the
// weakest.
func probers() []prober {
	return []prober{
		probeLUKS, probeLVM2, probeSwap, probeXFS, probeExt, probeBtrfs,
		probeSquashfs, probeISO9660, probeVFAT,
		// Last: a stale LUKS2 backup header must not hide a filesystem
		// written over the container.
		probeLUKS2Secondary,
	}
}

// Probe identifies the filesystem or container that starts at offset 0 of r.
// It returns ErrUnknown if nothing known is there.
func Probe(r io.ReaderAt) (*Info, error) {
	buf := make([]byte, headLen)
	n, err := r.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("blkid: read superblocks: %w", err)
	}
	h := head(buf[:n])
	for _, p := range probers() {
		info, err := p(h, r)
		if err != nil {
			return nil, err
		}
		if info != nil {
			return info, nil
		}
	}
	return nil, ErrUnknown
}

// head is the start of the device; accessors return nil or zero when the
// device is too short, so a truncated device never matches.
type head []byte

func (h head) at(off, n int) []byte {
	if off < 0 || n < 0 || off+n > len(h) {
		return nil
	}
	return h[off : off+n]
}

func (h head) has(off int, magic string) bool {
	b := h.at(off, len(magic))
	return b != nil && string(b) == magic
}

// readAt reads exactly n bytes at off from r.
func readAt(r io.ReaderAt, off int64, n int) ([]byte, error) {
	b := make([]byte, n)
	if _, err := r.ReadAt(b, off); err != nil {
		return nil, fmt.Errorf("blkid: read %d bytes at %d: %w", n, off, err)
	}
	return b, nil
}

// formatUUID prints 16 raw bytes as 8-4-4-4-12 lower-case hex; an all-zero
// UUID is "unset" (libblkid does not report it).
func formatUUID(b []byte) string {
	if len(b) != 16 || isZero(b) {
		return ""
	}
	s := hex.EncodeToString(b)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// cString returns b up to its first NUL with trailing whitespace removed, as
// libblkid's blkid_probe_set_label does.
func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return strings.TrimRight(string(b), " \t\n\r\v\f")
}

// utf16String decodes UTF-16 (big- or little-endian) up to the first NUL
// code unit, trimming trailing whitespace.
func utf16String(b []byte, bigEndian bool) string {
	u := make([]uint16, 0, len(b)/2)
	for i := 0; i+1 < len(b); i += 2 {
		var c uint16
		if bigEndian {
			c = uint16(b[i])<<8 | uint16(b[i+1])
		} else {
			c = uint16(b[i+1])<<8 | uint16(b[i])
		}
		if c == 0 {
			break
		}
		u = append(u, c)
	}
	return strings.TrimRight(string(utf16.Decode(u)), " \t\n\r\v\f")
}
