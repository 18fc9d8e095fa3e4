package compress

import (
	"fmt"
	"io"
	"runtime"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

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

// NewWriter returns a writer compressing to w in format f (one of
// Writable) in a form the kernel unpacks: LZ4 in the legacy format, xz with
// a CRC32 check and a 1 MiB dictionary. Closing it flushes the stream but
// does not close w. The output depends only on the input bytes (not on the
// number of CPUs).
func NewWriter(f Format, w io.Writer) (io.WriteCloser, error) {
	switch f {
	case Zstd, "": // "" is the default, as for ByName
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
		return nopWriteCloser{w}, nil
	}
	_, err := ByName(string(f)) // the error lists the valid names
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

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }
