package kmod

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/compress"
)

// Formats returns the compressions kmod and the kernel support for modules.
func Formats() []compress.Format {
	return []compress.Format{compress.XZ, compress.Zstd, compress.Gzip}
}

// StripCompressionExt removes a .xz, .zst or .gz suffix from p.
func StripCompressionExt(p string) string {
	for _, c := range Formats() {
		if s, ok := strings.CutSuffix(p, c.Ext()); ok {
			return s
		}
	}
	return p
}

// Decompress opens the module file at path and returns a reader of its
// decompressed contents (detected by magic, whatever the file name says).
// Closing it closes the file.
func Decompress(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	zr, c, err := compress.DetectReader(f)
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
	c    compress.Format
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
