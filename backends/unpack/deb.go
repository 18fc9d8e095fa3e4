package unpack

import (
	"archive/tar"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/compress"
)

// debPayload returns the file entries of a .deb: the tar stream of its
// data.tar member, decompressed. control.tar (maintainer scripts) is skipped.
func debPayload(r io.Reader) (entries, io.Closer, error) {
	ar, err := newArReader(r)
	if err != nil {
		return nil, nil, err
	}
	for {
		name, _, err := ar.Next()
		if err == io.EOF {
			return nil, nil, fmt.Errorf("no data.tar member")
		}
		if err != nil {
			return nil, nil, err
		}
		if !strings.HasPrefix(name, "data.tar") {
			continue
		}
		suffix := strings.TrimPrefix(name, "data.tar")
		f, ok := compress.ByExt(suffix)
		if !ok || !slices.Contains(dpkgFormats(), f) {
			return nil, nil, fmt.Errorf("%s: unsupported compression %q", name, suffix)
		}
		dr, err := compress.NewReader(f, ar)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		return tar.NewReader(dr), dr, nil
	}
}

// dpkgFormats are the compressions of data.tar that dpkg reads.
func dpkgFormats() []compress.Format {
	return []compress.Format{compress.None, compress.XZ, compress.Zstd, compress.Gzip, compress.BZip2, compress.LZMA}
}
