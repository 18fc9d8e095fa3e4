// Package unpack extracts binary package archives (.deb, pacman's
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
		return "rpm", nil
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
func Unpack(ctx context.Context, archive, destDir string) error {
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
	x := newExtractor(root)
	if err := x.extract(ctx, ents); err != nil {
		return fmt.Errorf("unpack %s: %w", archive, err)
	}
	return nil
}
