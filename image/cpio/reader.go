package cpio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
)

// Reader reads a newc (070701) or crc (070702) archive. Next advances to the
// next entry and Read reads its data. The Reader reads from the underlying
// reader exactly the bytes of the archive (up to the trailer's padding), so
// Offset tells where whatever follows the archive starts.
type Reader struct {
	r   io.Reader
	err error // sticky; io.EOF after the trailer

	off       int64  // bytes consumed from r
	name      string // current entry, for errors
	remaining int64  // data bytes of the current entry not read yet
	crc       bool   // current entry's data is checksummed
	sum, want uint32
	dataStart int64
	hdr       [headerSize]byte
}

// NewReader returns a Reader reading an archive from r.
func NewReader(r io.Reader) *Reader { return &Reader{r: r} }

// Offset returns the number of bytes of the underlying reader consumed so
// far. After Next returned io.EOF at the trailer, it is the archive's length
// including the trailer and its padding to 4 bytes.
func (cr *Reader) Offset() int64 { return cr.off }

// Next skips the rest of the current entry and returns the header of the
// next one. It returns io.EOF at the TRAILER!!! entry, or when the input ends
// cleanly where a header would start (the trailer is optional for the
// kernel). Corrupt input yields a *FormatError wrapping ErrHeader,
// ErrChecksum or io.ErrUnexpectedEOF.
func (cr *Reader) Next() (*Header, error) {
	if cr.err != nil {
		return nil, cr.err
	}
	if err := cr.skipData(); err != nil {
		return nil, err
	}
	h, err := cr.readHeader()
	if err != nil {
		cr.err = err
		return nil, err
	}
	return h, nil
}

func (cr *Reader) readHeader() (*Header, error) {
	start := cr.off
	n, err := io.ReadFull(cr.r, cr.hdr[:])
	cr.off += int64(n)
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, cr.ioError(start, "", "reading header", err)
	}
	corrupt := func(name, format string, args ...any) error {
		return &FormatError{Offset: start, Name: name, Reason: fmt.Sprintf(format, args...), Err: ErrHeader}
	}
	magic := string(cr.hdr[:6])
	switch magic {
	case magicNewc, magicCRC:
	case magicODC:
		return nil, corrupt("", "old portable (odc, 070707) format is not supported: write archives with -H newc")
	default:
		return nil, corrupt("", "no cpio magic (got %q, want %q or %q)", cr.hdr[:6], magicNewc, magicCRC)
	}
	var f [13]uint32
	for i := range f {
		v, ok := parseHex8(cr.hdr[6+8*i : 14+8*i])
		if !ok {
			return nil, corrupt("", "field %s is not 8 hex digits: %q", fieldName(i), cr.hdr[6+8*i:14+8*i])
		}
		f[i] = v
	}
	h := &Header{
		Ino: f[0], Mode: f[1], Uid: f[2], Gid: f[3], Nlink: f[4], Mtime: int64(f[5]), Size: int64(f[6]),
		DevMajor: f[7], DevMinor: f[8], RdevMajor: f[9], RdevMinor: f[10],
	}
	nameSize, sum := int64(f[11]), f[12]
	switch {
	case nameSize == 0:
		return nil, corrupt("", "name size is 0")
	case nameSize > MaxNameSize:
		return nil, corrupt("", "name size %d exceeds %d", nameSize, MaxNameSize)
	}
	name := make([]byte, nameSize+align4(cr.off+nameSize))
	n, err = io.ReadFull(cr.r, name)
	cr.off += int64(n)
	if err != nil {
		return nil, cr.ioError(start, "", "reading name", err)
	}
	name = name[:nameSize]
	if name[len(name)-1] != 0 {
		return nil, corrupt("", "name is not NUL-terminated")
	}
	// dracut-cpio pads names with extra NULs to align data; the name ends
	// at the first NUL, as for the kernel.
	h.Name = string(name[:bytes.IndexByte(name, 0)])
	if h.Name == "" {
		return nil, corrupt("", "empty name")
	}
	if h.Name == Trailer {
		// The kernel skips a trailer's data, if any; do the same.
		cr.name, cr.remaining = h.Name, h.Size
		if err := cr.skipData(); err != nil {
			return nil, err
		}
		return nil, io.EOF
	}
	cr.name = h.Name
	if h.Type() == TypeSymlink {
		if h.Size == 0 || h.Size > MaxLinknameSize {
			return nil, corrupt(h.Name, "symlink target size %d not in 1..%d", h.Size, MaxLinknameSize)
		}
		target := make([]byte, h.Size+align4(cr.off+h.Size))
		n, err = io.ReadFull(cr.r, target)
		cr.off += int64(n)
		if err != nil {
			return nil, cr.ioError(start, h.Name, "reading symlink target", err)
		}
		h.Linkname, h.Size = string(target[:h.Size]), 0
		return h, nil
	}
	cr.remaining = h.Size
	cr.dataStart = cr.off
	cr.crc = magic == magicCRC && h.Type() == TypeReg
	cr.sum, cr.want = 0, sum
	if cr.crc {
		h.Checksum = sum
	}
	if cr.remaining == 0 {
		if err := cr.endData(); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// fieldName names the i-th hex field of a newc header.
func fieldName(i int) string {
	return [13]string{
		"c_ino", "c_mode", "c_uid", "c_gid", "c_nlink", "c_mtime", "c_filesize",
		"c_maj", "c_min", "c_rmaj", "c_rmin", "c_namesize", "c_chksum",
	}[i]
}

func parseHex8(b []byte) (uint32, bool) {
	var v uint32
	for _, c := range b {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		v = v<<4 | uint32(c)
	}
	return v, true
}

// Read reads data of the current entry. It returns io.EOF at the end of the
// entry's data, after verifying the checksum of a 070702 regular file.
func (cr *Reader) Read(p []byte) (int, error) {
	if cr.err != nil && cr.err != io.EOF {
		return 0, cr.err
	}
	if cr.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > cr.remaining {
		p = p[:cr.remaining]
	}
	n, err := cr.r.Read(p)
	cr.off += int64(n)
	cr.remaining -= int64(n)
	if cr.crc {
		for _, c := range p[:n] {
			cr.sum += uint32(c)
		}
	}
	if cr.remaining == 0 {
		if err := cr.endData(); err != nil {
			return n, err
		}
		return n, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		cr.err = cr.ioError(cr.off, cr.name, "reading data", err)
		return n, cr.err
	}
	return n, nil
}

// endData runs when the last data byte was read: verify the sum, eat padding.
func (cr *Reader) endData() error {
	if cr.crc && cr.sum != cr.want {
		cr.err = &FormatError{Offset: cr.dataStart, Name: cr.name, Err: ErrChecksum,
			Reason: fmt.Sprintf("data sums to %#x, header says %#x", cr.sum, cr.want)}
		return cr.err
	}
	cr.crc = false
	pad := align4(cr.off)
	n, err := io.ReadFull(cr.r, cr.hdr[:pad])
	cr.off += int64(n)
	if err != nil {
		cr.err = cr.ioError(cr.off, cr.name, "reading padding", err)
		return cr.err
	}
	return nil
}

// skipData discards what is left of the current entry's data and padding.
func (cr *Reader) skipData() error {
	if cr.remaining == 0 {
		return nil
	}
	_, err := io.Copy(io.Discard, cr)
	return err
}

func (cr *Reader) ioError(off int64, name, what string, err error) error {
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return &FormatError{Offset: off, Name: name, Reason: what, Err: err}
}
