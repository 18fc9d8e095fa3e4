package unpack

import (
	"archive/tar"
	"bufio"
	"compress/bzip2"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
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
		dr, closer, err := decompress(strings.TrimPrefix(name, "data.tar"), ar)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
		return tar.NewReader(dr), closer, nil
	}
}

// decompress wraps r in the decompressor named by a .deb member suffix
// (".xz", ".zst", ...; "" for none). The closer releases decoder resources.
func decompress(suffix string, r io.Reader) (io.Reader, io.Closer, error) {
	switch suffix {
	case "":
		return r, nopCloser{}, nil
	case ".xz":
		// SingleStream: a .deb member holds exactly one xz stream; this also
		// stops the reader from hunting for another stream in the padding.
		xr, err := xz.ReaderConfig{SingleStream: true}.NewReader(bufio.NewReaderSize(r, 64<<10))
		return xr, nopCloser{}, err
	case ".zst":
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(false))
		if err != nil {
			return nil, nil, err
		}
		return zr, closerFunc(zr.Close), nil
	case ".gz":
		gr, err := gzip.NewReader(r)
		return gr, gr, err
	case ".bz2":
		return bzip2.NewReader(bufio.NewReaderSize(r, 64<<10)), nopCloser{}, nil
	case ".lzma":
		lr, err := lzma.NewReader(bufio.NewReaderSize(r, 64<<10))
		return lr, nopCloser{}, err
	}
	return nil, nil, fmt.Errorf("unsupported compression %q", suffix)
}

type closerFunc func()

func (f closerFunc) Close() error { f(); return nil }

// nopCloser is the closer of decompressors that hold no resources.
type nopCloser struct{}

func (nopCloser) Close() error { return nil }
