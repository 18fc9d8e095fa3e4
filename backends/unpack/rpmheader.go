package unpack

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
)

// An RPM file is a 96-byte lead, a signature header padded to 8 bytes, the
// main header and the compressed cpio payload. A header is a magic, an
// index of (tag, type, offset, count) entries and a data store.

const (
	rpmLeadSize     = 96
	rpmMaxHeader    = 256 << 20 // data store bytes
	rpmMaxIndex     = 1 << 20   // index entries
	rpmTypeInt16    = 3
	rpmTypeInt32    = 4
	rpmTypeInt64    = 5
	rpmTypeString   = 6
	rpmTypeStrArray = 8
	rpmTypeI18N     = 9
)

// Main header tags pkginitrd reads (rpm's lib/rpmtag.h).
const (
	tagName          = 1000
	tagVersion       = 1001
	tagRelease       = 1002
	tagEpoch         = 1003
	tagArch          = 1022
	tagOldFilenames  = 1027
	tagFileSizes     = 1028
	tagFileModes     = 1030
	tagFileLinkTos   = 1036
	tagFileFlags     = 1037
	tagDirIndexes    = 1116
	tagBaseNames     = 1117
	tagDirNames      = 1118
	tagPayloadFormat = 1124
	tagPayloadComp   = 1125
	tagLongFileSizes = 5008
)

// File flags (RPMFILE_*).
const (
	rpmFileConfig = 1 << 0
	rpmFileGhost  = 1 << 6
)

const rpmHeaderMagic = "\x8e\xad\xe8\x01"

type rpmIndex struct{ typ, off, count uint32 }

// rpmHeader is one parsed header structure.
type rpmHeader struct {
	index map[uint32]rpmIndex
	data  []byte
}

// readRPMHeader reads a header structure; pad8 skips the padding that
// follows the signature header.
func readRPMHeader(r io.Reader, pad8 bool) (*rpmHeader, error) {
	var pre [16]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return nil, fmt.Errorf("rpm header: %w", err)
	}
	if string(pre[:4]) != rpmHeaderMagic {
		return nil, errors.New("rpm header: bad magic")
	}
	n, size := binary.BigEndian.Uint32(pre[8:]), binary.BigEndian.Uint32(pre[12:])
	if n > rpmMaxIndex || size > rpmMaxHeader {
		return nil, fmt.Errorf("rpm header: %d entries, %d bytes: too large", n, size)
	}
	raw := make([]byte, 16*int(n)+int(size))
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, fmt.Errorf("rpm header: %w", err)
	}
	h := &rpmHeader{index: make(map[uint32]rpmIndex, n), data: raw[16*n:]}
	for i := range int(n) {
		e := raw[16*i:]
		tag := binary.BigEndian.Uint32(e)
		h.index[tag] = rpmIndex{typ: binary.BigEndian.Uint32(e[4:]), off: binary.BigEndian.Uint32(e[8:]), count: binary.BigEndian.Uint32(e[12:])}
	}
	if pad := (8 - size%8) % 8; pad8 && pad > 0 {
		if _, err := io.CopyN(io.Discard, r, int64(pad)); err != nil {
			return nil, fmt.Errorf("rpm signature padding: %w", err)
		}
	}
	return h, nil
}

// strings returns a string, string-array or i18n-string tag's values (nil
// when the tag is absent).
func (h *rpmHeader) strings(tag uint32) ([]string, error) {
	e, ok := h.index[tag]
	if !ok {
		return nil, nil
	}
	if e.typ != rpmTypeString && e.typ != rpmTypeStrArray && e.typ != rpmTypeI18N {
		return nil, fmt.Errorf("rpm tag %d: type %d is not a string", tag, e.typ)
	}
	if int(e.off) > len(h.data) || e.count > uint32(len(h.data)) {
		return nil, fmt.Errorf("rpm tag %d: outside the header", tag)
	}
	out := make([]string, 0, e.count)
	rest := h.data[e.off:]
	for range e.count {
		i := bytes.IndexByte(rest, 0)
		if i < 0 {
			return nil, fmt.Errorf("rpm tag %d: unterminated string", tag)
		}
		out = append(out, string(rest[:i]))
		rest = rest[i+1:]
	}
	return out, nil
}

// str returns the first value of a string tag ("" when absent).
func (h *rpmHeader) str(tag uint32) (string, error) {
	s, err := h.strings(tag)
	if err != nil || len(s) == 0 {
		return "", err
	}
	return s[0], nil
}

// ints returns an integer tag's values (nil when the tag is absent).
func (h *rpmHeader) ints(tag uint32) ([]uint64, error) {
	e, ok := h.index[tag]
	if !ok {
		return nil, nil
	}
	width := map[uint32]int{rpmTypeInt16: 2, rpmTypeInt32: 4, rpmTypeInt64: 8}[e.typ]
	if width == 0 {
		return nil, fmt.Errorf("rpm tag %d: type %d is not an integer", tag, e.typ)
	}
	end := uint64(e.off) + uint64(e.count)*uint64(width)
	if end > uint64(len(h.data)) {
		return nil, fmt.Errorf("rpm tag %d: outside the header", tag)
	}
	out := make([]uint64, e.count)
	for i := range out {
		b := h.data[int(e.off)+i*width:]
		switch width {
		case 2:
			out[i] = uint64(binary.BigEndian.Uint16(b))
		case 4:
			out[i] = uint64(binary.BigEndian.Uint32(b))
		default:
			out[i] = binary.BigEndian.Uint64(b)
		}
	}
	return out, nil
}

// RPM is what pkginitrd reads from an RPM's main header.
type RPM struct {
	Name, Version, Release, Arch string
	Epoch                        uint64
	Compressor                   string // payload compression: zstd, xz, gzip, ...
	Files                        []RPMFile
}

// RPMFile is one file the package lists.
type RPMFile struct {
	Path  string // absolute, as installed
	Mode  uint32 // type and permission bits
	Size  uint64
	Flags uint32 // RPMFILE_* (config, ghost, ...)
	Link  string // symlink target
}

// EVR returns the package's [epoch:]version-release.
func (p *RPM) EVR() string {
	if p.Epoch > 0 {
		return fmt.Sprintf("%d:%s-%s", p.Epoch, p.Version, p.Release)
	}
	return p.Version + "-" + p.Release
}

// ReadRPM reads the headers of the RPM at file (not its payload).
func ReadRPM(file string) (*RPM, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read rpm: %w", err)
	}
	defer f.Close()
	p, err := readRPM(bufio.NewReader(f))
	if err != nil {
		return nil, fmt.Errorf("read rpm %s: %w", file, err)
	}
	return p, nil
}

// readRPM reads the lead and both headers, leaving r at the payload.
func readRPM(r io.Reader) (*RPM, error) {
	var lead [rpmLeadSize]byte
	if _, err := io.ReadFull(r, lead[:]); err != nil {
		return nil, fmt.Errorf("rpm lead: %w", err)
	}
	if !bytes.Equal(lead[:4], []byte{0xed, 0xab, 0xee, 0xdb}) {
		return nil, errors.New("not an rpm (bad lead magic)")
	}
	if _, err := readRPMHeader(r, true); err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	h, err := readRPMHeader(r, false)
	if err != nil {
		return nil, err
	}
	return parseRPM(h)
}

func parseRPM(h *rpmHeader) (*RPM, error) {
	p := &RPM{}
	var err error
	for _, f := range []struct {
		tag uint32
		dst *string
	}{{tagName, &p.Name}, {tagVersion, &p.Version}, {tagRelease, &p.Release}, {tagArch, &p.Arch}, {tagPayloadComp, &p.Compressor}} {
		if *f.dst, err = h.str(f.tag); err != nil {
			return nil, err
		}
	}
	if format, err := h.str(tagPayloadFormat); err != nil || (format != "" && format != "cpio") {
		return nil, fmt.Errorf("payload format %q: %w", format, errors.Join(ErrUnsupported, err))
	}
	if e, err := h.ints(tagEpoch); err != nil {
		return nil, err
	} else if len(e) > 0 {
		p.Epoch = e[0]
	}
	paths, err := rpmPaths(h)
	if err != nil {
		return nil, err
	}
	sizes, err := h.ints(tagLongFileSizes)
	if err == nil && sizes == nil {
		sizes, err = h.ints(tagFileSizes)
	}
	if err != nil {
		return nil, err
	}
	modes, err1 := h.ints(tagFileModes)
	flags, err2 := h.ints(tagFileFlags)
	links, err3 := h.strings(tagFileLinkTos)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	n := len(paths)
	if len(sizes) != n || len(modes) != n || len(flags) != n || (links != nil && len(links) != n) {
		return nil, fmt.Errorf("rpm header: file lists of different lengths (%d names, %d sizes, %d modes, %d flags)", n, len(sizes), len(modes), len(flags))
	}
	p.Files = make([]RPMFile, n)
	for i := range paths {
		p.Files[i] = RPMFile{Path: paths[i], Mode: uint32(modes[i]), Size: sizes[i], Flags: uint32(flags[i])}
		if links != nil {
			p.Files[i].Link = links[i]
		}
	}
	return p, nil
}

// rpmPaths returns the files' full paths: dirnames[dirindexes[i]] +
// basenames[i], or the old single-list form.
func rpmPaths(h *rpmHeader) ([]string, error) {
	base, err1 := h.strings(tagBaseNames)
	dirs, err2 := h.strings(tagDirNames)
	idx, err3 := h.ints(tagDirIndexes)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nil, err
	}
	if base == nil {
		return h.strings(tagOldFilenames)
	}
	if len(idx) != len(base) {
		return nil, fmt.Errorf("rpm header: %d basenames, %d dirindexes", len(base), len(idx))
	}
	out := make([]string, len(base))
	for i, b := range base {
		if idx[i] >= uint64(len(dirs)) {
			return nil, fmt.Errorf("rpm header: dirindex %d out of range", idx[i])
		}
		out[i] = path.Clean(dirs[idx[i]] + b)
	}
	return out, nil
}
