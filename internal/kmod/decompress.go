package kmod

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression is the compression of a module file.
type Compression uint8

// Compressions kmod and the kernel support for modules.
const (
	None Compression = iota
	Gzip
	XZ
	Zstd
)

func (c Compression) String() string {
	switch c {
	case None:
		return "none"
	case Gzip:
		return "gzip"
	case XZ:
		return "xz"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("compression(%d)", uint8(c))
}

// Ext returns the file name suffix of c (".xz"), or "" for None.
func (c Compression) Ext() string {
	switch c {
	case Gzip:
		return ".gz"
	case XZ:
		return ".xz"
	case Zstd:
		return ".zst"
	}
	return ""
}

// Magic numbers, as kmod's libkmod-file.c checks them.
var (
	magicXZ   = []byte{0xFD, '7', 'z', 'X', 'Z', 0x00}
	magicZstd = []byte{0x28, 0xB5, 0x2F, 0xFD}
	magicGzip = []byte{0x1F, 0x8B}
)

// DetectCompression identifies the compression of data from its first bytes
// (6 are enough).
func DetectCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, magicXZ):
		return XZ
	case bytes.HasPrefix(head, magicZstd):
		return Zstd
	case bytes.HasPrefix(head, magicGzip):
		return Gzip
	}
	return None
}

// StripCompressionExt removes a .xz, .zst or .gz suffix from p.
func StripCompressionExt(p string) string {
	for _, c := range []Compression{XZ, Zstd, Gzip} {
		if s, ok := strings.CutSuffix(p, c.Ext()); ok {
			return s
		}
	}
	return p
}

// NewReader returns a reader of the decompressed contents of r, detecting
// the compression from its first bytes; uncompressed data is passed through.
// Closing the result does not close r.
func NewReader(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(len(magicXZ))
	if err != nil && err != io.EOF {
		return nil, None, err
	}
	c := DetectCompression(head)
	switch c {
	case XZ:
		// Modules are compressed with --check=crc32 (the kernel's in-kernel
		// decompressor needs it); ulikunitz/xz verifies the check.
		zr, err := xz.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("xz: %w", err)
		}
		return io.NopCloser(zr), c, nil
	case Zstd:
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true))
		if err != nil {
			return nil, c, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), c, nil
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, c, fmt.Errorf("gzip: %w", err)
		}
		return zr, c, nil
	}
	return io.NopCloser(br), None, nil
}

// Decompress opens the module file at path and returns a reader of its
// decompressed contents (detected by magic, whatever the file name says).
// Closing it closes the file.
func Decompress(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	zr, c, err := NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("decompress %s: %w", path, err)
	}
	return &fileReader{zr: zr, f: f, path: path, c: c}, nil
}

type fileReader struct {
	zr   io.ReadCloser
	f    *os.File
	path string
	c    Compression
}

func (r *fileReader) Read(p []byte) (int, error) {
	n, err := r.zr.Read(p)
	if err != nil && err != io.EOF {
		err = fmt.Errorf("decompress %s (%s): %w", r.path, r.c, err)
	}
	return n, err
}

func (r *fileReader) Close() error {
	err := r.zr.Close()
	if err2 := r.f.Close(); err == nil {
		err = err2
	}
	return err
}
