package image

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// Compression names the compressor of the main segment.
type Compression string

// The compressions the kernel can unpack (REFERENCE.md §1.2) that Build writes.
const (
	Zstd Compression = "zstd" // the default
	Gzip Compression = "gzip"
	LZ4  Compression = "lz4" // legacy frame format, the only one the kernel reads
	XZ   Compression = "xz"  // CRC32 check, 1 MiB dictionary (XZ Embedded limits)
	None Compression = "none"
)

// Compressions returns every valid Compression, default first.
func Compressions() []Compression { return []Compression{Zstd, Gzip, LZ4, XZ, None} }

// ParseCompression returns the Compression named s; "" means Zstd.
func ParseCompression(s string) (Compression, error) {
	if s == "" {
		return Zstd, nil
	}
	for _, c := range Compressions() {
		if string(c) == s {
			return c, nil
		}
	}
	var names []string
	for _, c := range Compressions() {
		names = append(names, string(c))
	}
	return "", fmt.Errorf("unknown compression %q (valid: %s)", s, strings.Join(names, ", "))
}

// Compressor settings. They are part of the output format: changing one
// changes every image byte, so they are constants, not options. Levels were
// picked on real Debian kernel modules (51 MiB of .ko files), where higher
// levels cost far more than they save: gzip -9 takes 30× the time of -6 for
// 0.5% smaller output, LZ4 HC level 9 6× the time of level 1 for 0.6%.
// zstd: on a whole generic image (36 MiB of cpio) "default" writes 11.55 MB
// in 0.25 s on 2 cores, "better" 11.35 MB in 1.2 s: 2% smaller for 5× the
// time, which would dominate a warm build, so default it is.
const (
	// zstdWindow stays far below the kernel's 128 MiB limit and keeps the
	// decoder's memory small at early boot.
	zstdWindow = 8 << 20
	zstdLevel  = zstd.SpeedDefault
	gzipLevel  = 6
	lz4Level   = lz4.Level1 // the cheapest LZ4 HC level
	// xzDict: "1 MiB is probably the maximum reasonable dictionary size"
	// for the kernel's XZ Embedded (K: Documentation/staging/xz.rst).
	xzDict = 1 << 20
)

// NewCompressor returns a writer compressing to w with c in a form the
// kernel unpacks. Closing it flushes the stream but does not close w. The
// output depends only on the input bytes (not on the number of CPUs).
func NewCompressor(w io.Writer, c Compression) (io.WriteCloser, error) {
	switch c {
	case Zstd, "":
		return newZstd(w, runtime.GOMAXPROCS(0))
	case Gzip:
		// No name and a zero mtime in the gzip header: reproducible.
		zw, err := gzip.NewWriterLevel(w, gzipLevel)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		return zw, nil
	case LZ4:
		zw := lz4.NewWriter(w)
		if err := zw.Apply(lz4.LegacyOption(true), lz4.CompressionLevelOption(lz4Level), lz4.ConcurrencyOption(1)); err != nil {
			return nil, fmt.Errorf("lz4: %w", err)
		}
		return zw, nil
	case XZ:
		zw, err := xz.WriterConfig{CheckSum: xz.CRC32, DictCap: xzDict}.NewWriter(w)
		if err != nil {
			return nil, fmt.Errorf("xz: %w", err)
		}
		return zw, nil
	case None:
		return nopCloser{w}, nil
	}
	_, err := ParseCompression(string(c))
	return nil, err
}

// newZstd returns a zstd writer using up to concurrency goroutines.
// klauspost/zstd's concurrent-blocks mode splits the input into jobs whose
// bounds depend only on the window size, so its output is the same for any
// concurrency ≥ 2; with 1 it would switch to the serial encoder and produce
// different bytes, hence the floor of 2.
func newZstd(w io.Writer, concurrency int) (io.WriteCloser, error) {
	concurrency = max(concurrency, 2)
	zw, err := zstd.NewWriter(w,
		zstd.WithEncoderLevel(zstdLevel),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithEncoderConcurrency(concurrency),
		zstd.WithConcurrentBlocks(true),
		zstd.WithEncoderCRC(true),
	)
	if err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return zw, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
