package blkid

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

// ErrNoPartitionTable means neither a GPT nor an MBR partition table was found.
var ErrNoPartitionTable = errors.New("blkid: no partition table")

// Table is a disk's partition table.
type Table struct {
	Type       string // "gpt" or "dos", as blkid's PTTYPE
	UUID       string // PTUUID: the GPT disk GUID, or the MBR disk id as 8 hex digits
	SectorSize int
	Partitions []Partition
}

// Partition is one entry of a partition table.
type Partition struct {
	Number   int    // as the kernel numbers it: GPT entry index + 1; MBR 1–4 primary, 5… logical
	UUID     string // PARTUUID: the GPT entry GUID, or "<disk id>-<number as %02x>" on MBR
	Name     string // PARTLABEL (GPT only)
	Type     string // GPT type GUID, or the MBR type as "0x83"
	FirstLBA uint64
	LastLBA  uint64
	Attrs    uint64 // GPT attribute bits
}

// Find returns the partition with the kernel's partition number n.
func (t *Table) Find(n int) (Partition, bool) {
	for _, p := range t.Partitions {
		if p.Number == n {
			return p, true
		}
	}
	return Partition{}, false
}

// ReadPartitions reads the partition table of a disk of size bytes whose
// logical sectors are sectorSize bytes (the kernel's
// queue/logical_block_size). A protective MBR means GPT, whose backup
// header is used when the primary one is damaged.
func ReadPartitions(r io.ReaderAt, size int64, sectorSize int) (*Table, error) {
	if sectorSize < 512 || sectorSize&(sectorSize-1) != 0 {
		return nil, fmt.Errorf("blkid: bad sector size %d", sectorSize)
	}
	mbr := make([]byte, 512)
	if _, err := r.ReadAt(mbr, 0); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, ErrNoPartitionTable
		}
		return nil, fmt.Errorf("blkid: read MBR: %w", err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		return nil, ErrNoPartitionTable
	}
	protective := false
	for i := 0; i < 4; i++ {
		if mbr[446+i*16+4] == 0xEE {
			protective = true
		}
	}
	if protective {
		return readGPT(r, size, sectorSize)
	}
	// A GPT without a protective MBR is ignored, as the kernel does unless
	// booted with "gpt".
	return readMBR(r, mbr, sectorSize)
}

// readGPT reads the primary GPT header at LBA 1, else the backup header at
// the last LBA, checking both CRCs.
func readGPT(r io.ReaderAt, size int64, sectorSize int) (*Table, error) {
	t, err := readGPTHeader(r, 1, sectorSize)
	if err != nil && size > 0 {
		last := uint64(size/int64(sectorSize)) - 1
		if backup, berr := readGPTHeader(r, last, sectorSize); berr == nil {
			return backup, nil
		}
	}
	return t, err
}

func readGPTHeader(r io.ReaderAt, lba uint64, sectorSize int) (*Table, error) {
	le := binary.LittleEndian
	hdr, err := readAt(r, int64(lba)*int64(sectorSize), sectorSize)
	if err != nil {
		return nil, err
	}
	if string(hdr[0:8]) != "EFI PART" {
		return nil, fmt.Errorf("blkid: no GPT header at LBA %d: %w", lba, ErrNoPartitionTable)
	}
	hdrSize := le.Uint32(hdr[12:])
	if hdrSize < 92 || int(hdrSize) > sectorSize {
		return nil, fmt.Errorf("blkid: GPT header at LBA %d: bad size %d", lba, hdrSize)
	}
	check := append([]byte(nil), hdr[:hdrSize]...)
	binary.LittleEndian.PutUint32(check[16:], 0)
	if crc32.ChecksumIEEE(check) != le.Uint32(hdr[16:]) {
		return nil, fmt.Errorf("blkid: GPT header at LBA %d: CRC mismatch", lba)
	}
	if le.Uint64(hdr[24:]) != lba {
		return nil, fmt.Errorf("blkid: GPT header at LBA %d claims to be at %d", lba, le.Uint64(hdr[24:]))
	}
	entriesLBA := le.Uint64(hdr[72:])
	count := le.Uint32(hdr[80:])
	entrySize := le.Uint32(hdr[84:])
	if entrySize < 128 || entrySize%8 != 0 || count > 4096 {
		return nil, fmt.Errorf("blkid: GPT header at LBA %d: bad entry array (%d × %d bytes)", lba, count, entrySize)
	}
	entries, err := readAt(r, int64(entriesLBA)*int64(sectorSize), int(count*entrySize))
	if err != nil {
		return nil, err
	}
	if crc32.ChecksumIEEE(entries) != le.Uint32(hdr[88:]) {
		return nil, fmt.Errorf("blkid: GPT partition entries at LBA %d: CRC mismatch", entriesLBA)
	}
	t := &Table{Type: "gpt", UUID: formatGUID(hdr[56:72]), SectorSize: sectorSize}
	for i := 0; i < int(count); i++ {
		e := entries[i*int(entrySize) : (i+1)*int(entrySize)]
		if isZero(e[0:16]) {
			continue
		}
		t.Partitions = append(t.Partitions, Partition{
			Number:   i + 1,
			Type:     formatGUID(e[0:16]),
			UUID:     formatGUID(e[16:32]),
			FirstLBA: le.Uint64(e[32:]),
			LastLBA:  le.Uint64(e[40:]),
			Attrs:    le.Uint64(e[48:]),
			Name:     utf16String(e[56:128], false),
		})
	}
	return t, nil
}

// formatGUID prints a GUID stored in the mixed-endian EFI layout: the first
// three fields little-endian, the rest as bytes.
func formatGUID(b []byte) string {
	g := []byte{b[3], b[2], b[1], b[0], b[5], b[4], b[7], b[6]}
	g = append(g, b[8:16]...)
	s := hex.EncodeToString(g)
	return s[0:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:32]
}

// readMBR reads the four primary entries and walks the extended
// partition's chain of EBRs for the logical ones (numbered from 5).
func readMBR(r io.ReaderAt, mbr []byte, sectorSize int) (*Table, error) {
	le := binary.LittleEndian
	id := le.Uint32(mbr[440:])
	t := &Table{Type: "dos", UUID: fmt.Sprintf("%08x", id), SectorSize: sectorSize}
	// A FAT boot sector also ends in 55 AA; its "entries" have junk boot
	// flags, which is how libblkid tells them apart.
	for i := 0; i < 4; i++ {
		if flag := mbr[446+i*16]; flag != 0 && flag != 0x80 {
			return nil, ErrNoPartitionTable
		}
	}
	add := func(n int, typ byte, start, count uint64) {
		t.Partitions = append(t.Partitions, Partition{
			Number:   n,
			UUID:     fmt.Sprintf("%08x-%02x", id, n),
			Type:     fmt.Sprintf("0x%x", typ),
			FirstLBA: start,
			LastLBA:  start + count - 1,
		})
	}
	var extStart uint64
	for i := 0; i < 4; i++ {
		e := mbr[446+i*16 : 446+(i+1)*16]
		typ, start, count := e[4], uint64(le.Uint32(e[8:])), uint64(le.Uint32(e[12:]))
		if typ == 0 || count == 0 {
			continue
		}
		add(i+1, typ, start, count)
		if isExtended(typ) && extStart == 0 {
			extStart = start
		}
	}
	if extStart == 0 {
		return t, nil
	}
	// Each EBR holds one logical partition (start relative to that EBR)
	// and a link to the next EBR (start relative to the extended partition).
	n, ebr := 5, extStart
	for loop := 0; loop < 128 && ebr != 0; loop++ {
		b, err := readAt(r, int64(ebr)*int64(sectorSize), 512)
		if err != nil {
			return nil, err
		}
		if b[510] != 0x55 || b[511] != 0xAA {
			break
		}
		this := ebr
		ebr = 0
		for i := 0; i < 2; i++ {
			e := b[446+i*16 : 446+(i+1)*16]
			typ, start, count := e[4], uint64(le.Uint32(e[8:])), uint64(le.Uint32(e[12:]))
			switch {
			case typ == 0 || count == 0:
			case isExtended(typ):
				ebr = extStart + start
			default:
				add(n, typ, this+start, count)
				n++
			}
		}
	}
	return t, nil
}

func isExtended(typ byte) bool { return typ == 0x05 || typ == 0x0F || typ == 0x85 }
