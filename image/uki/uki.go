// Package uki writes unified kernel images: a systemd-stub PE binary with
// the kernel, initrd, command line and os-release added as PE sections
// (systemd's UKI specification; REFERENCE.md §10).
//
// The writer keeps the stub's bytes and sections as they are and appends
// the new sections after its last one:
//   - each new section's virtual address follows the previous section,
//     aligned to the stub's SectionAlignment and at least to 4 KiB;
//   - its file data follows the stub's last section data, aligned to
//     FileAlignment and padded with zeros;
//   - NumberOfSections, SizeOfImage, SizeOfInitializedData and the
//     checksum are updated; a certificate table (a signed stub's) and a
//     COFF symbol table behind the sections are dropped.
//
// The output depends only on the stub and the sections: the same inputs
// give the same bytes. Signing must come after (it appends a certificate
// table, which any later rewrite would drop).
package uki

import (
	"bytes"
	"debug/pe"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// The sections systemd-stub reads, in the order they are written (the
// kernel last, as ukify does).
const (
	OSRel   = ".osrel"   // the distribution's os-release
	Cmdline = ".cmdline" // kernel command line, no trailing newline
	Uname   = ".uname"   // kernel release (uname -r); informational for stub 252
	Initrd  = ".initrd"  // the initramfs, all its segments
	Linux   = ".linux"   // the kernel's bzImage
)

// Section is one section to add: its name (at most 8 bytes) and contents.
type Section struct {
	Name string
	Data io.ReaderAt
	Size int64
}

// Bytes is a section holding b.
func Bytes(name string, b []byte) Section {
	return Section{Name: name, Data: bytes.NewReader(b), Size: int64(len(b))}
}

// Errors about the stub.
var (
	ErrNotStub      = errors.New("uki: not a systemd-stub PE binary")
	ErrHeaderRoom   = errors.New("uki: no room in the stub's headers for the new section headers")
	ErrSectionName  = errors.New("uki: section name longer than 8 bytes")
	ErrSectionTwice = errors.New("uki: section already present")
)

// PE layout offsets (Microsoft PE/COFF specification).
const (
	peOffsetField  = 0x3c // DOS header: file offset of "PE\0\0"
	coffSize       = 20   // COFF file header after the signature
	sectionHdrSize = 40
	minAlign       = 0x1000 // REFERENCE.md §10: 4 KiB aligned sections boot with stub 252 (SectionAlignment 0x200)
	// Characteristics of the added sections: initialized, readable data.
	dataSection = pe.IMAGE_SCN_CNT_INITIALIZED_DATA | pe.IMAGE_SCN_MEM_READ
	dirSecurity = 4 // data directory index of the certificate table
)

// Write writes the UKI made of stub and sections to w and returns its size.
// Sections are read twice: once for the checksum, once to write.
func Write(w io.Writer, stub []byte, sections []Section) (int64, error) {
	l, err := plan(stub, sections)
	if err != nil {
		return 0, err
	}
	var sum checksum
	if _, err := io.Copy(&sum, l.reader()); err != nil {
		return 0, fmt.Errorf("uki: read sections: %w", err)
	}
	binary.LittleEndian.PutUint32(l.header[l.checksumAt:], sum.value())
	n, err := io.Copy(w, l.reader())
	if err != nil {
		return n, fmt.Errorf("uki: write: %w", err)
	}
	return n, nil
}

// layout is the planned output: the patched stub bytes, then each added
// section's data at its offset.
type layout struct {
	header     []byte // the stub up to the end of its last section, patched
	checksumAt int
	parts      []part
	size       int64
}

type part struct {
	offset int64
	sec    Section
}

// reader returns the whole output, zero padding included.
func (l *layout) reader() io.Reader {
	rs := []io.Reader{bytes.NewReader(l.header)}
	pos := int64(len(l.header))
	for _, p := range l.parts {
		rs = append(rs, io.LimitReader(zeros{}, p.offset-pos), io.NewSectionReader(p.sec.Data, 0, p.sec.Size))
		pos = p.offset + p.sec.Size
	}
	rs = append(rs, io.LimitReader(zeros{}, l.size-pos))
	return io.MultiReader(rs...)
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// stubInfo is what plan needs from the stub's headers.
type stubInfo struct {
	file                   *pe.File
	coff, opt, table       int // offsets of the COFF header, optional header, section table
	sectionAlign, fileAlgn uint32
	sizeOfHeaders          uint32
	sizeOfImage            uint32
	dirs                   int // offset of the data directories
	ndirs                  uint32
}

func readStub(stub []byte) (*stubInfo, error) {
	f, err := pe.NewFile(bytes.NewReader(stub))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNotStub, err)
	}
	s := &stubInfo{file: f}
	s.coff = int(binary.LittleEndian.Uint32(stub[peOffsetField:])) + 4
	s.opt = s.coff + coffSize
	s.table = s.opt + int(f.SizeOfOptionalHeader)
	switch h := f.OptionalHeader.(type) {
	case *pe.OptionalHeader64:
		s.sectionAlign, s.fileAlgn, s.sizeOfHeaders, s.sizeOfImage = h.SectionAlignment, h.FileAlignment, h.SizeOfHeaders, h.SizeOfImage
		s.dirs, s.ndirs = s.opt+112, h.NumberOfRvaAndSizes
	case *pe.OptionalHeader32:
		s.sectionAlign, s.fileAlgn, s.sizeOfHeaders, s.sizeOfImage = h.SectionAlignment, h.FileAlignment, h.SizeOfHeaders, h.SizeOfImage
		s.dirs, s.ndirs = s.opt+96, h.NumberOfRvaAndSizes
	default:
		return nil, fmt.Errorf("%w: no optional header", ErrNotStub)
	}
	if s.sectionAlign == 0 || s.fileAlgn == 0 || len(f.Sections) == 0 {
		return nil, fmt.Errorf("%w: no sections or zero alignment", ErrNotStub)
	}
	if f.Section(Linux) != nil {
		return nil, fmt.Errorf("%w: it already has a %s section (a UKI, not a stub)", ErrNotStub, Linux)
	}
	return s, nil
}

// plan lays the sections out after the stub's and patches its headers.
func plan(stub []byte, sections []Section) (*layout, error) {
	s, err := readStub(stub)
	if err != nil {
		return nil, err
	}
	end, vend := int64(s.sizeOfHeaders), int64(s.sizeOfImage)
	for _, sec := range s.file.Sections {
		end = max(end, int64(sec.Offset)+int64(sec.Size))
		vend = max(vend, int64(sec.VirtualAddress)+int64(max(sec.VirtualSize, sec.Size)))
	}
	if end > int64(len(stub)) {
		return nil, fmt.Errorf("%w: sections end at %d, beyond the file's %d bytes", ErrNotStub, end, len(stub))
	}
	// The new headers go between the section table and the first
	// section's data, which must not move (ukify refuses the same way).
	n := len(s.file.Sections)
	tableEnd := s.table + sectionHdrSize*(n+len(sections))
	if limit := firstData(s); tableEnd > limit {
		return nil, fmt.Errorf("%w: %d more need %d bytes, %d are free", ErrHeaderRoom, len(sections), sectionHdrSize*len(sections), limit-(s.table+sectionHdrSize*n))
	}
	l := &layout{header: bytes.Clone(stub[:end]), checksumAt: s.opt + 64}
	h := l.header
	valign := int64(max(s.sectionAlign, minAlign))
	off, va := alignUp(end, int64(s.fileAlgn)), alignUp(vend, valign)
	var added uint32
	vlast := va // end of the last section in memory
	for i, sec := range sections {
		if len(sec.Name) > 8 {
			return nil, fmt.Errorf("%w: %q", ErrSectionName, sec.Name)
		}
		if s.file.Section(sec.Name) != nil || slices.ContainsFunc(sections[:i], func(o Section) bool { return o.Name == sec.Name }) {
			return nil, fmt.Errorf("%w: %s", ErrSectionTwice, sec.Name)
		}
		raw := alignUp(sec.Size, int64(s.fileAlgn))
		if off+raw > 1<<32-1 || va+sec.Size > 1<<32-1 {
			return nil, fmt.Errorf("uki: section %s: image beyond 4 GiB", sec.Name)
		}
		hdr := h[s.table+sectionHdrSize*(n+i):][:sectionHdrSize]
		clear(hdr)
		copy(hdr, sec.Name)
		le32(hdr[8:], sec.Size)
		le32(hdr[12:], va)
		le32(hdr[16:], raw)
		le32(hdr[20:], off)
		binary.LittleEndian.PutUint32(hdr[36:], dataSection)
		l.parts = append(l.parts, part{offset: off, sec: sec})
		added += uint32(raw)
		off += raw
		vlast = va + sec.Size
		va = alignUp(vlast, valign)
	}
	l.size = off
	binary.LittleEndian.PutUint16(h[s.coff+2:], uint16(n+len(sections)))
	if ptr := binary.LittleEndian.Uint32(h[s.coff+8:]); ptr != 0 && int64(ptr) >= end {
		le32(h[s.coff+8:], 0) // the symbol table is not copied
		le32(h[s.coff+12:], 0)
	}
	le32(h[s.opt+8:], int64(binary.LittleEndian.Uint32(h[s.opt+8:])+added))
	le32(h[s.opt+56:], alignUp(vlast, int64(s.sectionAlign)))
	le32(h[l.checksumAt:], 0)
	if s.ndirs > dirSecurity {
		clear(h[s.dirs+8*dirSecurity:][:8]) // the certificate table is not copied
	}
	return l, nil
}

// firstData is the offset of the first section data in the stub: the
// section headers must end before it (and before SizeOfHeaders).
func firstData(s *stubInfo) int {
	limit := int(s.sizeOfHeaders)
	for _, sec := range s.file.Sections {
		if sec.Size > 0 && int(sec.Offset) < limit {
			limit = int(sec.Offset)
		}
	}
	return limit
}

func alignUp(v, a int64) int64 { return (v + a - 1) / a * a }

func le32(b []byte, v int64) { binary.LittleEndian.PutUint32(b, uint32(v)) }

// checksum computes the PE image checksum (the algorithm of Windows'
// CheckSumMappedFile): the file summed as little-endian 16-bit words with
// the carry folded back, the checksum field counted as zero, plus the
// file's length.
type checksum struct {
	sum  uint32
	n    int64
	odd  bool // a low byte is pending
	last byte
}

func (c *checksum) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	for _, b := range p {
		if !c.odd {
			c.last, c.odd = b, true
			continue
		}
		c.add(uint32(c.last) | uint32(b)<<8)
		c.odd = false
	}
	return len(p), nil
}

func (c *checksum) add(w uint32) {
	c.sum += w
	c.sum = (c.sum & 0xffff) + (c.sum >> 16)
}

func (c *checksum) value() uint32 {
	s := *c
	if s.odd {
		s.add(uint32(s.last))
	}
	return uint32(int64(s.sum&0xffff) + s.n)
}
