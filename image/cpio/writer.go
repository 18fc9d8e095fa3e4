package cpio

import (
	"fmt"
	"io"
	"strings"
)

// Writer writes a cpio archive: WriteHeader starts an entry, Write supplies
// the data of a regular file, Close ends the archive with TRAILER!!!.
// Once an I/O error happened every later call returns it.
type Writer struct {
	w      io.Writer
	format Format
	err    error // sticky: ErrWriteAfterClose after Close

	off       int64  // bytes written so far
	name      string // current entry, for errors
	remaining int64  // data bytes the current entry still needs
	regular   bool   // current entry is a regular file (its data is summed)
	sum       uint32 // running data sum (FormatCRC)
	wantSum   uint32 // Header.Checksum of the current entry (FormatCRC)
	buf       []byte // header scratch, reused
}

// NewWriter returns a Writer producing a newc (070701) archive on w.
func NewWriter(w io.Writer) *Writer { return NewWriterFormat(w, FormatNewc) }

// NewWriterFormat returns a Writer producing an archive of format f on w.
// With FormatCRC, each regular file's Header.Checksum must hold the sum of
// its data bytes; the Writer verifies it when the data is complete.
func NewWriterFormat(w io.Writer, f Format) *Writer {
	return &Writer{w: w, format: f}
}

// Offset returns the number of bytes written to the underlying writer.
func (tw *Writer) Offset() int64 { return tw.off }

// WriteHeader finishes the current entry (which must have received all its
// data) and writes the header of h. It keeps no reference to h. For a
// symlink it also writes h.Linkname as the entry's data. Invalid headers are
// rejected without breaking the Writer.
func (tw *Writer) WriteHeader(h *Header) error {
	if tw.err != nil {
		return tw.err
	}
	if err := tw.finishEntry(); err != nil {
		return err
	}
	hdr := *h
	if err := tw.validate(&hdr); err != nil {
		return err
	}
	dataSize := hdr.Size
	if hdr.Type() == TypeSymlink {
		dataSize = int64(len(hdr.Linkname))
	}
	if err := tw.writeHeader(&hdr, dataSize); err != nil {
		return err
	}
	tw.name = hdr.Name
	tw.regular = hdr.Type() == TypeReg
	tw.sum, tw.wantSum = 0, hdr.Checksum
	if hdr.Type() == TypeSymlink {
		if err := tw.write([]byte(hdr.Linkname)); err != nil {
			return err
		}
		return tw.pad()
	}
	tw.remaining = hdr.Size
	return nil
}

func (tw *Writer) validate(h *Header) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("cpio: entry %q: %s: %w", h.Name, fmt.Sprintf(format, args...), ErrHeader)
	}
	switch {
	case h.Name == "":
		return bad("empty name")
	case strings.IndexByte(h.Name, 0) >= 0:
		return bad("NUL byte in name")
	case h.Name == Trailer:
		return bad("name is reserved for the archive trailer")
	case !knownType(h.Type()):
		return bad("unknown file type %#o", h.Type())
	case h.Mode&^(TypeMask|ModeSetuid|ModeSetgid|ModeSticky|ModePerm) != 0:
		return bad("mode %#o has unknown bits", h.Mode)
	}
	tooLong := func(field string, v int64) error {
		return fmt.Errorf("cpio: entry %q: %s %d does not fit in 32 bits: %w", h.Name, field, v, ErrFieldTooLong)
	}
	switch {
	case h.Mtime < 0 || h.Mtime > maxUint32:
		return tooLong("mtime", h.Mtime)
	case h.Size < 0 || h.Size > maxUint32:
		return tooLong("size", h.Size)
	case int64(len(h.Name))+1 > maxUint32:
		return tooLong("name size", int64(len(h.Name))+1)
	case int64(len(h.Linkname)) > maxUint32:
		return tooLong("symlink target size", int64(len(h.Linkname)))
	}
	switch h.Type() {
	case TypeSymlink:
		if h.Linkname == "" {
			return bad("symlink without target")
		}
		if h.Size != 0 && h.Size != int64(len(h.Linkname)) {
			return bad("symlink size %d, target is %d bytes", h.Size, len(h.Linkname))
		}
	case TypeReg:
		if h.Linkname != "" {
			return bad("link target on a regular file")
		}
	default:
		if h.Size != 0 {
			return bad("size %d on a non-regular file (must be 0)", h.Size)
		}
		if h.Linkname != "" {
			return bad("link target on a non-symlink")
		}
	}
	if h.Checksum != 0 && tw.format != FormatCRC {
		return bad("checksum set but the format is %s", tw.format)
	}
	return nil
}

// writeHeader writes the 110-byte header, the name, its NUL and padding.
func (tw *Writer) writeHeader(h *Header, dataSize int64) error {
	magic, sum := magicNewc, uint32(0)
	if tw.format == FormatCRC {
		magic = magicCRC
		if h.Type() == TypeReg {
			sum = h.Checksum
		}
	}
	b := append(tw.buf[:0], magic...)
	for _, v := range [...]uint32{
		h.Ino, h.Mode, h.Uid, h.Gid, h.Nlink, uint32(h.Mtime), uint32(dataSize),
		h.DevMajor, h.DevMinor, h.RdevMajor, h.RdevMinor, uint32(len(h.Name) + 1), sum,
	} {
		b = appendHex8(b, v)
	}
	b = append(b, h.Name...)
	b = append(b, 0)
	b = append(b, make([]byte, align4(tw.off+int64(len(b))))...)
	tw.buf = b
	return tw.write(b)
}

func appendHex8(b []byte, v uint32) []byte {
	const digits = "0123456789abcdef"
	for shift := 28; shift >= 0; shift -= 4 {
		b = append(b, digits[v>>uint(shift)&0xf])
	}
	return b
}

// Write writes data of the current entry. It returns ErrWriteTooLong for
// bytes beyond the Size given to WriteHeader (writing the part that fits).
func (tw *Writer) Write(p []byte) (int, error) {
	if tw.err != nil {
		return 0, tw.err
	}
	tooLong := false
	if int64(len(p)) > tw.remaining {
		p = p[:tw.remaining]
		tooLong = true
	}
	if err := tw.write(p); err != nil {
		return 0, err
	}
	tw.remaining -= int64(len(p))
	if tw.format == FormatCRC && tw.regular {
		for _, c := range p {
			tw.sum += uint32(c)
		}
	}
	if tooLong {
		return len(p), fmt.Errorf("cpio: entry %q: %w", tw.name, ErrWriteTooLong)
	}
	return len(p), nil
}

// Close finishes the current entry, writes the TRAILER!!! entry and pads the
// archive to a 4-byte boundary. It does not close the underlying writer.
// Every call after Close, including another Close, returns ErrWriteAfterClose.
func (tw *Writer) Close() error {
	if tw.err != nil {
		return tw.err
	}
	if err := tw.finishEntry(); err != nil {
		return err
	}
	// GNU cpio writes the trailer with nlink 1; the kernel ignores it.
	if err := tw.writeHeader(&Header{Name: Trailer, Nlink: 1}, 0); err != nil {
		return err
	}
	tw.err = ErrWriteAfterClose
	return nil
}

// finishEntry checks that the current entry got all its data and pads it.
func (tw *Writer) finishEntry() error {
	if tw.name == "" {
		return nil
	}
	if tw.remaining > 0 {
		tw.err = fmt.Errorf("cpio: entry %q: missed writing %d bytes", tw.name, tw.remaining)
		return tw.err
	}
	if tw.format == FormatCRC && tw.regular && tw.sum != tw.wantSum {
		tw.err = fmt.Errorf("cpio: entry %q: data sums to %#x, header says %#x: %w", tw.name, tw.sum, tw.wantSum, ErrChecksum)
		return tw.err
	}
	tw.name = ""
	return tw.pad()
}

func (tw *Writer) pad() error {
	return tw.write(make([]byte, align4(tw.off)))
}

func (tw *Writer) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	n, err := tw.w.Write(p)
	tw.off += int64(n)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	if err != nil {
		tw.err = fmt.Errorf("cpio: write: %w", err)
	}
	return tw.err
}
