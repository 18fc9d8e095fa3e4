package compress

import (
	"bufio"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
	"github.com/ulikunitz/xz/lzma"
)

// kernelZstdWindow is the largest zstd window the kernel's decoder accepts
// (lib/decompress_unzstd.c); no input of ours needs more.
const kernelZstdWindow = 128 << 20

// NewReader returns a reader of the decompressed contents of r, which is
// in format f. It reads one stream, as the kernel does: a single gzip
// member, a single xz stream (whatever follows is an error), every zstd
// frame. When r is an io.ByteReader, gzip reads no byte past its member.
// Closing the reader releases the decoder but does not close r.
func NewReader(f Format, r io.Reader) (io.ReadCloser, error) {
	switch f {
	case None:
		return io.NopCloser(r), nil
	case Zstd:
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(kernelZstdWindow))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		return zr.IOReadCloser(), nil
	case Gzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		zr.Multistream(false)
		return zr, nil
	case XZ:
		// ulikunitz/xz verifies the check (CRC32 for modules and images).
		zr, err := xz.ReaderConfig{SingleStream: true}.NewReader(byteReader(r))
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return io.NopCloser(zr), nil
	case LZ4, LZ4Frame:
		return io.NopCloser(lz4.NewReader(r)), nil
	case BZip2:
		return io.NopCloser(bzip2.NewReader(byteReader(r))), nil
	case LZMA:
		zr, err := lzma.NewReader(byteReader(r))
		if err != nil {
			return nil, fmt.Errorf("lzma: %w", err)
		}
		return io.NopCloser(zr), nil
	case LZO:
		return nil, errors.New("lzo: no decompressor")
	}
	return nil, fmt.Errorf("unknown compression %q", f)
}

// DetectReader returns a reader of the decompressed contents of r and its
// format, told by its first bytes; data in no known format (None) is passed
// through. Closing the reader does not close r.
func DetectReader(r io.Reader) (io.ReadCloser, Format, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(MagicSize)
	if err != nil && err != io.EOF {
		return nil, None, fmt.Errorf("read magic: %w", err)
	}
	f := Detect(head)
	zr, err := NewReader(f, br)
	return zr, f, err
}

// byteReader returns r as an io.ByteReader, buffering it if needed, so
// that decoders that read byte by byte stay fast.
func byteReader(r io.Reader) io.Reader {
	if _, ok := r.(io.ByteReader); ok {
		return r
	}
	return bufio.NewReaderSize(r, 64<<10)
}
