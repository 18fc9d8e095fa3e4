package blkid

import (
	"encoding/binary"
	"fmt"
	"io"
	"strings"
)

// ext2/3/4 feature bits (linux/fs/ext4/ext4.h) that libblkid uses to tell
// the three apart.
const (
	extCompatHasJournal    = 0x0004
	extIncompatJournalDev  = 0x0008
	extIncompatFiletype    = 0x0002
	extIncompatRecover     = 0x0004
	extIncompatMetaBG      = 0x0010
	extRoCompatSparseSuper = 0x0001
	extRoCompatLargeFile   = 0x0002
	extRoCompatBtreeDir    = 0x0004
	extFlagsTestFilesys    = 0x0004

	ext2IncompatSupp  = extIncompatFiletype | extIncompatMetaBG
	ext3IncompatSupp  = extIncompatFiletype | extIncompatRecover | extIncompatMetaBG
	ext23RoCompatSupp = extRoCompatSparseSuper | extRoCompatLargeFile | extRoCompatBtreeDir
)

// probeExt reads the ext superblock at 1 KiB. ext4 is "has a feature ext3
// lacks", ext3 "has a journal", ext2 the rest; a journal device is "jbd".
func probeExt(h head, _ io.ReaderAt) (*Info, error) {
	sb := h.at(0x400, 0x400)
	if sb == nil || binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		return nil, nil
	}
	compat := binary.LittleEndian.Uint32(sb[0x5C:])
	incompat := binary.LittleEndian.Uint32(sb[0x60:])
	roCompat := binary.LittleEndian.Uint32(sb[0x64:])
	flags := binary.LittleEndian.Uint32(sb[0x160:])
	info := &Info{
		Usage:   UsageFilesystem,
		UUID:    formatUUID(sb[0x68:0x78]),
		Label:   cString(sb[0x78:0x88]),
		Version: fmt.Sprintf("%d.%d", binary.LittleEndian.Uint32(sb[0x4C:]), binary.LittleEndian.Uint16(sb[0x3E:])),
	}
	switch {
	case incompat&extIncompatJournalDev != 0:
		info.Type, info.Usage = "jbd", UsageOther
	case roCompat&^ext23RoCompatSupp != 0 || incompat&^ext3IncompatSupp != 0:
		info.Type = "ext4"
		if flags&extFlagsTestFilesys != 0 {
			info.Type = "ext4dev"
		}
	case compat&extCompatHasJournal != 0:
		info.Type = "ext3"
	case incompat&^ext2IncompatSupp != 0:
		// ext2 without a journal but with RECOVER set: not valid ext2.
		return nil, nil
	default:
		info.Type = "ext2"
	}
	return info, nil
}

// probeXFS reads the XFS superblock at 0 (big-endian).
func probeXFS(h head, _ io.ReaderAt) (*Info, error) {
	sb := h.at(0, 0x100)
	if sb == nil || string(sb[0:4]) != "XFSB" {
		return nil, nil
	}
	be := binary.BigEndian
	blockSize := be.Uint32(sb[4:])
	agCount := be.Uint32(sb[0x58:])
	sectSize := be.Uint16(sb[0x66:])
	// Sanity checks after libblkid's xfs_verify_sb, reduced to the fields
	// that make a random "XFSB" impossible.
	if blockSize < 512 || blockSize > 65536 || blockSize&(blockSize-1) != 0 ||
		sectSize < 512 || sectSize > 32768 || sectSize&(sectSize-1) != 0 || agCount == 0 {
		return nil, nil
	}
	return &Info{
		Type:  "xfs",
		Usage: UsageFilesystem,
		UUID:  formatUUID(sb[0x20:0x30]),
		Label: cString(sb[0x6C:0x78]),
	}, nil
}

// probeBtrfs reads the primary Btrfs superblock at 64 KiB. UUID is the
// filesystem's fsid, UUID_SUB the device item's own UUID.
func probeBtrfs(h head, _ io.ReaderAt) (*Info, error) {
	sb := h.at(0x10000, 0x1000)
	if sb == nil || string(sb[0x40:0x48]) != "_BHRfS_M" {
		return nil, nil
	}
	return &Info{
		Type:    "btrfs",
		Usage:   UsageFilesystem,
		UUID:    formatUUID(sb[0x20:0x30]),
		UUIDSub: formatUUID(sb[0x10B:0x11B]),
		Label:   cString(sb[0x12B:0x22B]),
	}, nil
}

// probeSquashfs: "hsqs" little-endian superblock, version 4 and later;
// older or big-endian ("sqsh") images are "squashfs3".
func probeSquashfs(h head, _ io.ReaderAt) (*Info, error) {
	sb := h.at(0, 0x20)
	if sb == nil {
		return nil, nil
	}
	var major, minor uint16
	switch string(sb[0:4]) {
	case "hsqs":
		major, minor = binary.LittleEndian.Uint16(sb[0x1C:]), binary.LittleEndian.Uint16(sb[0x1E:])
	case "sqsh":
		major, minor = binary.BigEndian.Uint16(sb[0x1C:]), binary.BigEndian.Uint16(sb[0x1E:])
	default:
		return nil, nil
	}
	t := "squashfs"
	if major < 4 {
		t = "squashfs3"
	}
	return &Info{Type: t, Usage: UsageFilesystem, Version: fmt.Sprintf("%d.%d", major, minor)}, nil
}

// probeSwap finds "SWAPSPACE2" (or the old "SWAP-SPACE") at the end of the
// first page, for any page size from 4 to 64 KiB. The v1 header at 1 KiB
// carries the UUID and label. A swap area holding a hibernation image has
// the kernel's "S1SUSPEND" (or another suspend tool's signature) in place
// of SWAPSPACE2 and the v1 header untouched: it is "swsuspend", as for
// libblkid, with the swap's UUID, so resume=UUID= finds it.
func probeSwap(h head, _ io.ReaderAt) (*Info, error) {
	for page := 4096; page <= 65536; page *= 2 {
		typ, ver := "swap", "1"
		for _, sig := range []string{"S1SUSPEND", "S2SUSPEND", "ULSUSPEND", "LINHIB0001"} {
			if h.has(page-10, sig) {
				typ, ver = "swsuspend", strings.ToLower(sig)
			}
		}
		switch {
		case h.has(page-10, "SWAP-SPACE"):
			return &Info{Type: "swap", Usage: UsageOther, Version: "0"}, nil
		case typ == "swsuspend", h.has(page-10, "SWAPSPACE2"):
			hdr := h.at(1024, 4*3+16+16+118*4)
			if hdr == nil {
				return nil, nil
			}
			version, lastPage := binary.LittleEndian.Uint32(hdr[0:]), binary.LittleEndian.Uint32(hdr[4:])
			if (version != 1 && version != 0x01000000) || lastPage == 0 {
				return nil, nil
			}
			info := &Info{Type: typ, Usage: UsageOther, Version: ver}
			// libblkid trusts UUID and label only when this padding is
			// clear ("is there any garbage down there?").
			if pad := hdr[44+32*4 : 44+34*4]; isZero(pad[0:4]) && isZero(pad[4:8]) {
				info.UUID = formatUUID(hdr[12:28])
				info.Label = cString(hdr[28:44])
			}
			return info, nil
		}
	}
	return nil, nil
}
