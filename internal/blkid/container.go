package blkid

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/luks"
)

// probeLUKS reads a LUKS1 or LUKS2 primary header at 0.
func probeLUKS(h head, _ io.ReaderAt) (*Info, error) {
	if l, err := luks.ParseHeader(h.at(0, 256)); err == nil && !l.Secondary {
		return luksInfo(l), nil
	}
	return nil, nil
}

// probeLUKS2Secondary finds a LUKS2 container whose primary header is gone
// by its secondary header ("SKUL" magic, same layout) at one of the
// offsets cryptsetup may put it, as libblkid does: cryptsetup opens such a
// container from that copy.
func probeLUKS2Secondary(h head, r io.ReaderAt) (*Info, error) {
	for _, off := range luks.SecondaryOffsets() {
		hdr := h.at(off, 256)
		if hdr == nil {
			var err error
			if hdr, err = readAt(r, int64(off), 256); err != nil {
				return nil, nil // the device ends before: no such copy
			}
		}
		if l, err := luks.ParseHeader(hdr); err == nil && l.Secondary {
			return luksInfo(l), nil
		}
	}
	return nil, nil
}

func luksInfo(l luks.Header) *Info {
	return &Info{
		Type:    "crypto_LUKS",
		Usage:   UsageCrypto,
		Version: fmt.Sprint(l.Version),
		UUID:    l.UUID,
		Label:   l.Label,
	}
}

// probeLVM2 finds an LVM2 physical-volume label in one of the first four
// sectors: "LABELONE", the sector number it sits in, a CRC, type
// "LVM2 001", then the 32-character PV UUID.
func probeLVM2(h head, _ io.ReaderAt) (*Info, error) {
	for sector := 0; sector < 4; sector++ {
		lbl := h.at(sector*512, 512)
		if lbl == nil || string(lbl[0:8]) != "LABELONE" || string(lbl[0x18:0x20]) != "LVM2 001" {
			continue
		}
		if binary.LittleEndian.Uint64(lbl[8:]) != uint64(sector) {
			continue
		}
		if binary.LittleEndian.Uint32(lbl[0x10:]) != lvmCRC(lbl[0x14:512]) {
			continue
		}
		return &Info{
			Type:    "LVM2_member",
			Usage:   UsageRaid,
			Version: "LVM2 001",
			UUID:    formatLVMUUID(string(lbl[0x20:0x40])),
		}, nil
	}
	return nil, nil
}

// lvmCRC is LVM's calc_crc: the reflected CRC-32 (IEEE) polynomial with
// initial value 0xf597a6cf and no final inversion. Go's crc32 inverts on
// entry and exit, so undo both.
func lvmCRC(b []byte) uint32 {
	const initial = 0xf597a6cf
	return ^crc32.Update(^uint32(initial), crc32.IEEETable, b)
}

// formatLVMUUID inserts LVM's dashes: 6-4-4-4-4-4-6.
func formatLVMUUID(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i == 6 || i == 10 || i == 14 || i == 18 || i == 22 || i == 26 {
			b.WriteByte('-')
		}
		b.WriteRune(c)
	}
	return b.String()
}
