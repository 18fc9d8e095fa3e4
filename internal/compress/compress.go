// Package compress knows the compression formats pkginitrd meets: in
// initramfs images (lib/decompress.c), kernel modules, firmware and .deb
// members. It tells them apart by magic, name or file suffix, reads each
// format it can and writes the formats the kernel unpacks.
package compress

import (
	"bytes"
	"fmt"
	"strings"
)

// Format is a compression format, named as the kernel and the tools name it.
type Format string

// The known formats.
const (
	None     Format = "none"
	Zstd     Format = "zstd"
	Gzip     Format = "gzip"
	XZ       Format = "xz"
	LZ4      Format = "lz4"       // legacy frame format (lz4 -l), the only one the kernel reads
	LZ4Frame Format = "lz4 frame" // the current LZ4 frame format
	BZip2    Format = "bzip2"
	LZMA     Format = "lzma"
	LZO      Format = "lzo" // detected only: there is no reader
)

// MagicSize is the number of leading bytes Detect needs.
const MagicSize = 6

type magic struct {
	f     Format
	magic []byte
}

// magics are the leading bytes of each format (lib/decompress.c, kmod's
// libkmod-file.c).
func magics() []magic {
	return []magic{
		{Gzip, []byte{0x1f, 0x8b}},
		{Gzip, []byte{0x1f, 0x9e}}, // old gzip; the kernel accepts it, Go cannot read it
		{Zstd, []byte{0x28, 0xb5, 0x2f, 0xfd}},
		{XZ, []byte{0xfd, '7', 'z', 'X', 'Z', 0}},
		{LZ4, []byte{0x02, 0x21, 0x4c, 0x18}},
		{LZ4Frame, []byte{0x04, 0x22, 0x4d, 0x18}},
		{BZip2, []byte("BZh")},
		{LZMA, []byte{0x5d, 0x00}},
		{LZO, []byte{0x89, 'L', 'Z', 'O'}},
	}
}

// Detect returns the format of data starting with head (MagicSize bytes
// are enough), or None when head starts no known format.
func Detect(head []byte) Format {
	for _, m := range magics() {
		if bytes.HasPrefix(head, m.magic) {
			return m.f
		}
	}
	return None
}

// Ext returns the file name suffix of f (".zst"), or "" for None.
func (f Format) Ext() string {
	switch f {
	case Zstd:
		return ".zst"
	case Gzip:
		return ".gz"
	case XZ:
		return ".xz"
	case LZ4, LZ4Frame:
		return ".lz4"
	case BZip2:
		return ".bz2"
	case LZMA:
		return ".lzma"
	case LZO:
		return ".lzo"
	}
	return ""
}

// ByExt returns the format whose file name suffix is ext (".xz"; "" is
// None). ok is false for an unknown suffix.
func ByExt(ext string) (f Format, ok bool) {
	for _, f := range []Format{None, Zstd, Gzip, XZ, LZ4, BZip2, LZMA, LZO} {
		if f.Ext() == ext {
			return f, true
		}
	}
	return "", false
}

// Writable returns the formats NewWriter writes, the default (Zstd) first.
func Writable() []Format { return []Format{Zstd, Gzip, LZ4, XZ, None} }

// ByName returns the writable format called name; "" means the default,
// Zstd. Formats that can only be read are found by Detect or ByExt.
func ByName(name string) (Format, error) {
	if name == "" {
		return Zstd, nil
	}
	var names []string
	for _, f := range Writable() {
		if string(f) == name {
			return f, nil
		}
		names = append(names, string(f))
	}
	return "", fmt.Errorf("unknown compression %q (valid: %s)", name, strings.Join(names, ", "))
}
