package unpack

import (
	"archive/tar"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/compress"
)

// pkgtarPayload returns the file entries of a pacman package (.pkg.tar.zst,
// .xz or .gz): the decompressed tar stream without pacman's metadata files.
func pkgtarPayload(f compress.Format) payloadFunc {
	return func(r io.Reader) (entries, io.Closer, error) {
		dr, err := compress.NewReader(f, r)
		if err != nil {
			return nil, nil, fmt.Errorf("%s-compressed package: %w", f, err)
		}
		return pkgtarEntries{tar.NewReader(dr)}, dr, nil
	}
}

// pkgtarEntries skips the top-level dot files makepkg writes for pacman
// (.PKGINFO, .BUILDINFO, .MTREE, .INSTALL, .CHANGELOG): metadata and
// install scripts, never part of the installed tree.
type pkgtarEntries struct{ *tar.Reader }

func (p pkgtarEntries) Next() (*tar.Header, error) {
	for {
		hdr, err := p.Reader.Next()
		if err != nil {
			return nil, err
		}
		if !pacmanMetadata(hdr.Name) {
			return hdr, nil
		}
	}
}

// pacmanMetadata reports whether an archive path names one of pacman's
// top-level metadata files.
func pacmanMetadata(name string) bool {
	n := path.Clean(strings.TrimPrefix(name, "./"))
	return !strings.Contains(n, "/") && strings.HasPrefix(n, ".") && n != "." && n != ".."
}
