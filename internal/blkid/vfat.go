package blkid

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// FAT limits and directory-entry attributes (libblkid vfat.c).
const (
	fat12Max = 0xFF4
	fat16Max = 0xFFF4
	fat32Max = 0x0FFFFFF6

	fatAttrVolumeID = 0x08
	fatAttrDir      = 0x10
	fatAttrLongName = 0x0F
	fatAttrMask     = 0x3F
	fatEntryFree    = 0xE5

	fatNoName = "NO NAME    "
)

// probeVFAT reads a FAT12/16/32 boot sector. The UUID is the volume serial,
// LABEL the volume-label entry of the root directory (what Windows and
// mlabel change), LABEL_FATBOOT the copy in the boot sector.
func probeVFAT(h head, r io.ReaderAt) (*Info, error) {
	bs := h.at(0, 512)
	if bs == nil {
		return nil, nil
	}
	magic := h.has(0x52, "MSWIN") || h.has(0x52, "FAT32   ") || h.has(0x36, "MSDOS") ||
		h.has(0x36, "FAT16   ") || h.has(0x36, "FAT12   ") || h.has(0x36, "FAT     ")
	if !magic {
		// Old media without a type string: a jump instruction and the
		// boot signature, and not one of the OS/2 pseudo-superblocks.
		if (bs[0] != 0xEB && bs[0] != 0xE9) || bs[0x1FE] != 0x55 || bs[0x1FF] != 0xAA ||
			h.has(0x36, "JFS     ") || h.has(0x36, "HPFS    ") {
			return nil, nil
		}
	}
	le := binary.LittleEndian
	sectorSize := uint32(le.Uint16(bs[0x0B:]))
	clusterSize := uint32(bs[0x0D])
	reserved := uint32(le.Uint16(bs[0x0E:]))
	fats := uint32(bs[0x10])
	dirEntries := uint32(le.Uint16(bs[0x11:]))
	sectors := uint32(le.Uint16(bs[0x13:]))
	media := bs[0x15]
	fatLength := uint32(le.Uint16(bs[0x16:]))
	fat32Length := le.Uint32(bs[0x24:])
	if sectors == 0 {
		sectors = le.Uint32(bs[0x20:])
	}
	if fats == 0 || reserved == 0 || !(media >= 0xF8 || media == 0xF0) ||
		!isPow2(clusterSize) || !isPow2(sectorSize) || sectorSize < 512 || sectorSize > 4096 {
		return nil, nil
	}
	length := fatLength
	if length == 0 {
		length = fat32Length
	}
	fatSize := length * fats
	dirSize := (dirEntries*32 + sectorSize - 1) / sectorSize
	meta := reserved + fatSize + dirSize
	if meta > sectors {
		return nil, nil
	}
	clusters := (sectors - meta) / clusterSize
	maxCount := uint32(fat12Max)
	switch {
	case fatLength == 0 && fat32Length != 0:
		maxCount = fat32Max
	case clusters > fat12Max:
		maxCount = fat16Max
	}
	if clusters > maxCount {
		return nil, nil
	}

	info := &Info{Type: "vfat", Usage: UsageFilesystem}
	var serial, bootLabel []byte
	var volLabel string
	var err error
	switch {
	case fatLength != 0:
		rootStart := int64(reserved+fatSize) * int64(sectorSize)
		if volLabel, err = fatDirLabel(r, rootStart, int(dirEntries)); err != nil {
			return nil, err
		}
		if bs[0x26] == 0x29 {
			bootLabel = bs[0x2B:0x36]
		}
		if bs[0x26] == 0x28 || bs[0x26] == 0x29 {
			serial = bs[0x27:0x2B]
		}
		switch {
		case clusters < fat12Max:
			info.Version = "FAT12"
		case clusters < fat16Max:
			info.Version = "FAT16"
		}
	case fat32Length != 0:
		info.Version = "FAT32"
		if volLabel, err = fat32RootLabel(r, bs, sectorSize, reserved, fatSize, fat32Length); err != nil {
			return nil, err
		}
		if bs[0x42] == 0x29 {
			bootLabel = bs[0x47:0x52]
		}
		serial = bs[0x43:0x47]
	default:
		return nil, nil
	}
	if bootLabel != nil && string(bootLabel) != fatNoName {
		info.LabelFATBoot = cString(bootLabel)
	}
	info.Label = volLabel
	if serial != nil {
		info.UUID = fmt.Sprintf("%02X%02X-%02X%02X", serial[3], serial[2], serial[1], serial[0])
	}
	return info, nil
}

// fat32RootLabel follows the FAT32 root directory's cluster chain (at most
// 100 clusters, as libblkid) looking for the volume label.
func fat32RootLabel(r io.ReaderAt, bs []byte, sectorSize, reserved, fatSize, fat32Length uint32) (string, error) {
	le := binary.LittleEndian
	clusterSize := uint32(bs[0x0D])
	clusterBytes := clusterSize * sectorSize
	dataStart := reserved + fatSize
	entries := uint64(fat32Length) * uint64(sectorSize) / 4
	next := le.Uint32(bs[0x2C:])
	for loop := 0; next != 0 && uint64(next) < entries && loop < 100; loop++ {
		if next < 2 {
			break
		}
		off := (int64(dataStart) + int64(next-2)*int64(clusterSize)) * int64(sectorSize)
		label, err := fatDirLabel(r, off, int(clusterBytes/32))
		if err != nil || label != "" {
			return label, err
		}
		fatEntry, err := readAt(r, int64(reserved)*int64(sectorSize)+int64(next)*4, 4)
		if errors.Is(err, io.EOF) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		next = le.Uint32(fatEntry) & 0x0FFFFFFF
	}
	return "", nil
}

// fatDirLabel scans count directory entries at off for the volume label
// entry; it stops at the end-of-directory marker.
func fatDirLabel(r io.ReaderAt, off int64, count int) (string, error) {
	if count <= 0 {
		return "", nil
	}
	dir, err := readAt(r, off, count*32)
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "", nil // truncated image: a FAT without its root directory
	}
	if err != nil {
		return "", err
	}
	for i := 0; i < count; i++ {
		e := dir[i*32 : i*32+32]
		attr := e[11]
		switch {
		case e[0] == 0:
			return "", nil
		case e[0] == fatEntryFree, binary.LittleEndian.Uint16(e[20:]) != 0 || binary.LittleEndian.Uint16(e[26:]) != 0,
			attr&fatAttrMask == fatAttrLongName:
			continue
		case attr&(fatAttrVolumeID|fatAttrDir) == fatAttrVolumeID:
			name := append([]byte(nil), e[:11]...)
			if name[0] == 0x05 { // 0x05 stands for a leading 0xE5 (KANJI lead byte)
				name[0] = 0xE5
			}
			if string(name) == fatNoName {
				return "", nil
			}
			return cString(name), nil
		}
	}
	return "", nil
}

func isPow2(n uint32) bool { return n != 0 && n&(n-1) == 0 }
