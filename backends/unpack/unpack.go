// Package unpack extracts binary package archives (.deb, .rpm, pacman's
// .pkg.tar.*) in Go, without maintainer scripts or root, caches unpacked
// trees, and adds them to the image tree with the merged-/usr layout.
package unpack

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/pkginitrd/pkginitrd/internal/compress"
)

// ErrUnsafePath reports an archive entry that would be written outside the
// destination directory or through a symbolic link.
var ErrUnsafePath = errors.New("unpack: unsafe path")

// ErrUnsupported reports an archive format or entry type the unpacker does
// not handle.
var ErrUnsupported = errors.New("unpack: unsupported")

// ErrLimit reports a package that exceeds one of its Limits.
var ErrLimit = errors.New("unpack: limit exceeded")

// Default limits. Every real package of an image passes them with margin;
// measured (Debian, 2026): linux-image-6.1.0-57-amd64 unpacks to 389 MiB in
// 4941 entries, its largest file amdgpu.ko 18.6 MiB; trixie's
// linux-image-6.12.117 (xz-compressed modules) to 103 MiB in 5210 entries,
// largest vmlinuz 11.6 MiB; libc6 to 12 MiB in 302 entries. The non-free
// firmware packages were not measured (component not configured here).
const (
	DefaultMaxPackageSize = 1 << 30   // 1 GiB
	DefaultMaxFileSize    = 512 << 20 // 512 MiB
	DefaultMaxEntries     = 100_000
)

// Limits bound what one package may unpack to; zero fields take the
// defaults. Sizes are logical: a sparse file counts with its full size.
type Limits struct {
	MaxPackageSize int64 // total size of the regular files
	MaxFileSize    int64 // size of any one regular file
	MaxEntries     int   // archive entries of any type
}

// withDefaults returns l with every unset (zero or negative) field set to
// its default.
func (l Limits) withDefaults() Limits {
	if l.MaxPackageSize <= 0 {
		l.MaxPackageSize = DefaultMaxPackageSize
	}
	if l.MaxFileSize <= 0 {
		l.MaxFileSize = DefaultMaxFileSize
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	return l
}

// entries is a stream of archive entries: each Next is followed by reads of
// that entry's contents. *tar.Reader implements it; formats that are not tar
// (rpm's cpio) convert their headers to tar.Header.
type entries interface {
	Next() (*tar.Header, error)
	io.Reader
}

// payloadFunc turns an opened package archive into its file entries.
type payloadFunc func(r io.Reader) (entries, io.Closer, error)

// sniff identifies a package format by its first bytes and returns its name
// and payload reader; payload is nil for formats recognised but not yet
// supported.
func sniff(head []byte) (name string, payload payloadFunc) {
	switch {
	case bytes.HasPrefix(head, []byte(arMagic)):
		return "deb", debPayload
	case bytes.HasPrefix(head, []byte{0xed, 0xab, 0xee, 0xdb}):
		return "rpm", rpmPayload
	}
	// pacman packages are compressed tar archives.
	switch f := compress.Detect(head); f {
	case compress.Zstd, compress.XZ, compress.Gzip:
		return "pacman", pkgtarPayload(f)
	}
	return "", nil
}

// Unpack extracts the package archive at archive into destDir (created if
// missing, normally empty). It writes regular files with their permission
// bits (setuid included), directories, symlinks and hard links, never
// changes ownership, and refuses entries that escape destDir or would be
// written through a symbolic link. Maintainer scripts are not extracted.
// Device nodes, FIFOs and unknown entry types are refused, as is a package
// beyond lim; files keep their holes (sparse entries, runs of zeros).
func Unpack(ctx context.Context, archive, destDir string, lim Limits) error {
	f, err := os.Open(archive)
	if err != nil {
		return fmt.Errorf("unpack: %w", err)
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 256<<10)
	head, _ := br.Peek(8)
	name, payload := sniff(head)
	switch {
	case name == "":
		return fmt.Errorf("unpack %s: %w: unknown archive format", archive, ErrUnsupported)
	case payload == nil:
		return fmt.Errorf("unpack %s: %w: %s archives", archive, ErrUnsupported, name)
	}
	ents, closer, err := payload(br)
	if err != nil {
		return fmt.Errorf("unpack %s: %w", archive, err)
	}
	defer closer.Close()
	if err := os.MkdirAll(destDir, 0o755); err != nil {
		return fmt.Errorf("unpack %s: %w", archive, err)
	}
	root, err := os.OpenRoot(destDir)
	if err != nil {
		return fmt.Errorf("unpack %s: %w", archive, err)
	}
	defer root.Close()
	x := newExtractor(root, lim.withDefaults())
	if err := x.extract(ctx, ents); err != nil {
		return fmt.Errorf("unpack %s: %w", archive, err)
	}
	return nil
}
