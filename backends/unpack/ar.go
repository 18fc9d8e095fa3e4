package unpack

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// arMagic starts every ar archive, including .deb files.
const arMagic = "!<arch>\n"

// arReader reads the members of a common-format ar archive (the container of
// a .deb) sequentially, like tar.Reader.
type arReader struct {
	r      io.Reader
	remain int64 // unread bytes of the current member
	pad    int64 // padding byte after the current member (members are 2-aligned)
	err    error
}

// newArReader checks the global header and returns a reader positioned
// before the first member.
func newArReader(r io.Reader) (*arReader, error) {
	magic := make([]byte, len(arMagic))
	if _, err := io.ReadFull(r, magic); err != nil {
		return nil, fmt.Errorf("ar header: %w", noEOF(err))
	}
	if string(magic) != arMagic {
		return nil, errors.New("not an ar archive")
	}
	return &arReader{r: r}, nil
}

// Next skips the rest of the current member and returns the next member's
// name and size, or io.EOF after the last one.
func (a *arReader) Next() (name string, size int64, err error) {
	if a.err != nil {
		return "", 0, a.err
	}
	if _, err := io.CopyN(io.Discard, a.r, a.remain+a.pad); err != nil {
		a.err = fmt.Errorf("ar member: %w", noEOF(err))
		return "", 0, a.err
	}
	a.remain, a.pad = 0, 0
	var hdr [60]byte
	n, err := io.ReadFull(a.r, hdr[:])
	if n == 0 && err == io.EOF {
		a.err = io.EOF
		return "", 0, io.EOF
	}
	if err != nil {
		a.err = fmt.Errorf("ar member header: %w", noEOF(err))
		return "", 0, a.err
	}
	name, size, err = parseArHeader(hdr[:])
	if err != nil {
		a.err = err
		return "", 0, err
	}
	a.remain, a.pad = size, size%2
	return name, size, nil
}

// Read reads from the current member.
func (a *arReader) Read(p []byte) (int, error) {
	if a.remain <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > a.remain {
		p = p[:a.remain]
	}
	n, err := a.r.Read(p)
	a.remain -= int64(n)
	if err == io.EOF && a.remain > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// parseArHeader decodes one 60-byte member header: name[16] mtime[12]
// uid[6] gid[6] mode[8] size[10] "`\n".
func parseArHeader(hdr []byte) (name string, size int64, err error) {
	if len(hdr) != 60 || string(hdr[58:60]) != "`\n" {
		return "", 0, fmt.Errorf("ar member header %q: bad terminator", hdr)
	}
	name = strings.TrimRight(string(hdr[0:16]), " ")
	// GNU ar ends names with "/"; BSD-style long names ("#1/N") never occur in
	// .deb files, which only hold short fixed names.
	name = strings.TrimSuffix(name, "/")
	size, err = strconv.ParseInt(string(bytes.TrimRight(hdr[48:58], " ")), 10, 64)
	if err != nil || size < 0 {
		return "", 0, fmt.Errorf("ar member %q: bad size %q", name, hdr[48:58])
	}
	return name, size, nil
}

// noEOF turns a premature io.EOF into io.ErrUnexpectedEOF.
func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
