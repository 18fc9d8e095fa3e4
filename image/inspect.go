package image

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/internal/compress"
)

// ErrNoArchive means a file holds no cpio archive at all (it is empty or
// only NUL bytes), so it is not an initramfs.
var ErrNoArchive = errors.New("image: no cpio archive, not an initramfs")

// Segment is one part of an image as the kernel sees it: an uncompressed
// cpio archive, or a compressed stream holding one or more cpio archives.
type Segment struct {
	Offset      int64         // where the segment starts in the image
	Size        int64         // bytes of the image it occupies
	Compression string        // "none", "zstd", "gzip", "xz", "lz4", "bzip2" or "lzma"
	Archives    int           // cpio archives in it (a compressed stream may hold several)
	Bytes       int64         // length of its uncompressed cpio data
	Entries     []cpio.Header // entries of all its archives in order, trailers excluded
}

// Inspect walks an image the way the kernel unpacks it (init/initramfs.c
// unpack_to_rootfs) and lists its segments: NUL bytes between segments are
// skipped, an uncompressed cpio archive must start 4-byte aligned and runs to
// its TRAILER!!!, anything else is a compressed stream told by its magic
// bytes and decompressed as a stream, and may contain several cpio archives.
//
// bzip2 and lzma streams do not reveal where they end, so such a segment is
// taken to run to the end of the image (less trailing NULs). An empty image
// has no segments (the kernel accepts it); callers that want an initramfs
// report ErrNoArchive.
func Inspect(r io.ReaderAt, size int64) ([]Segment, error) {
	return walk(context.Background(), r, size, nil)
}

// visitFunc is called for each entry with its data; h == nil marks the end
// (TRAILER!!!) of an archive, where the kernel forgets its hard links.
type visitFunc func(h *cpio.Header, data io.Reader) error

// walk visits every entry of every segment of the image.
func walk(ctx context.Context, r io.ReaderAt, size int64, visit visitFunc) ([]Segment, error) {
	var segs []Segment
	var peek [8]byte
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return segs, err
		}
		n, err := r.ReadAt(peek[:min(int64(len(peek)), size-off)], off)
		if n == 0 {
			return segs, fmt.Errorf("read image at offset %d: %w", off, err)
		}
		head := peek[:n]
		if head[0] == 0 {
			if off, err = skipZeros(r, off, size); err != nil {
				return segs, err
			}
			continue
		}
		seg := Segment{Offset: off}
		if head[0] == '0' && off&3 == 0 {
			seg.Compression = "none"
			err = readPlain(ctx, r, size, &seg, visit)
		} else {
			err = readCompressed(ctx, r, size, head, &seg, visit)
		}
		if err != nil {
			return segs, fmt.Errorf("segment at offset %d (%s): %w", seg.Offset, seg.Compression, err)
		}
		segs = append(segs, seg)
		off += seg.Size
	}
	return segs, nil
}

// skipZeros returns the offset of the first non-NUL byte at or after off.
func skipZeros(r io.ReaderAt, off, size int64) (int64, error) {
	buf := make([]byte, 64<<10)
	for off < size {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if n == 0 {
			return off, fmt.Errorf("read image at offset %d: %w", off, err)
		}
		for _, c := range buf[:n] {
			if c != 0 {
				return off, nil
			}
			off++
		}
	}
	return off, nil
}

// readPlain reads one uncompressed archive, up to and including its trailer.
func readPlain(ctx context.Context, r io.ReaderAt, size int64, seg *Segment, visit visitFunc) error {
	cr := cpio.NewReader(bufio.NewReaderSize(io.NewSectionReader(r, seg.Offset, size-seg.Offset), 64<<10))
	if err := readArchive(ctx, cr, seg, visit); err != nil {
		return err
	}
	seg.Size, seg.Bytes = cr.Offset(), cr.Offset()
	return nil
}

// readArchive reads the entries of one archive into seg, visiting each.
func readArchive(ctx context.Context, cr *cpio.Reader, seg *Segment, visit visitFunc) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := cr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		seg.Entries = append(seg.Entries, *h)
		if visit != nil {
			if err := visit(h, cr); err != nil {
				return err
			}
		}
	}
	seg.Archives++
	if visit != nil {
		return visit(nil, nil)
	}
	return nil
}

// readCompressed reads one compressed stream: it finds where the stream ends
// and reads the cpio archives inside.
func readCompressed(ctx context.Context, r io.ReaderAt, size int64, head []byte, seg *Segment, visit visitFunc) error {
	f := compress.Detect(head)
	seg.Compression = string(f)
	rest := io.NewSectionReader(r, seg.Offset, size-seg.Offset)
	// in is what the decoder reads; seg.Size is set before reading when the
	// stream's end can be found without decoding, else from cnt after.
	var in io.Reader
	var cnt *countingReader
	var err error
	switch f {
	case compress.None:
		seg.Compression = "unknown"
		if head[0] == '0' {
			return fmt.Errorf("cpio data at unaligned offset (the kernel reports \"broken padding\")")
		}
		return fmt.Errorf("invalid magic % x: neither cpio nor a compression the kernel knows", head)
	case compress.LZ4Frame:
		return errors.New("LZ4 frame format: the kernel only unpacks the legacy format (lz4 -l)")
	case compress.LZO:
		return errors.New("lzo (lzop) is not supported by this reader")
	case compress.Gzip, compress.XZ:
		// With an io.ByteReader underneath, inflate reads exactly up to the
		// end of the member, so the byte count is the member's length; xz
		// reads one byte more (see xzStreamReader).
		cnt = &countingReader{r: bufio.NewReaderSize(rest, 64<<10)}
		in = cnt
	case compress.Zstd:
		seg.Size, err = zstdLength(rest)
		in = io.NewSectionReader(r, seg.Offset, seg.Size)
	case compress.LZ4:
		seg.Size, err = lz4LegacyLength(rest)
		in = io.NewSectionReader(r, seg.Offset, seg.Size)
	case compress.BZip2, compress.LZMA:
		// Neither format says where its stream ends, and trimming the image's
		// trailing NULs could cut a stream whose last bytes are zero. So the
		// decoder gets everything up to the end of the image, and a decoder
		// error after at least one complete archive (the NUL padding read as
		// another stream) counts as the end.
		seg.Size = size - seg.Offset
		in = rest
	}
	if err != nil {
		return err
	}
	zr, err := compress.NewReader(f, in)
	if err != nil {
		return err
	}
	defer zr.Close()
	var dec io.Reader = zr
	xr := &xzStreamReader{r: zr}
	switch f {
	case compress.XZ:
		dec = xr
	case compress.BZip2, compress.LZMA:
		dec = &lastStream{r: zr, seg: seg}
	}
	if err := readStream(ctx, dec, seg, visit); err != nil {
		return err
	}
	if cnt != nil {
		seg.Size = cnt.n - xr.overread
	}
	return nil
}

// lastStream turns a decoder error into the end of the stream once a whole
// archive has been read from it (see the bzip2/lzma case of readCompressed).
type lastStream struct {
	r   io.Reader
	seg *Segment
}

func (l *lastStream) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	if err != nil && err != io.EOF && l.seg.Archives > 0 {
		return n, io.EOF
	}
	return n, err
}

// readStream reads the cpio archives of a decompressed stream: archives
// separated by NUL padding, each starting 4-byte aligned, until the end.
func readStream(ctx context.Context, dec io.Reader, seg *Segment, visit visitFunc) error {
	br := bufio.NewReaderSize(dec, 128<<10)
	var pos int64 // offset in the decompressed data
	for {
		// Skip NULs between archives.
		for {
			b, err := br.Peek(max(1, br.Buffered()))
			if len(b) == 0 {
				if err == io.EOF {
					seg.Bytes = pos
					return nil
				}
				return fmt.Errorf("decompress at offset %d of the uncompressed data: %w", pos, err)
			}
			z := 0
			for z < len(b) && b[z] == 0 {
				z++
			}
			if _, err := br.Discard(z); err != nil {
				return err
			}
			pos += int64(z)
			if z < len(b) {
				break
			}
		}
		if pos&3 != 0 {
			return fmt.Errorf("cpio archive at unaligned offset %d of the uncompressed data (the kernel reports \"broken padding\")", pos)
		}
		cr := cpio.NewReader(br)
		err := readArchive(ctx, cr, seg, visit)
		if err != nil {
			return fmt.Errorf("archive at offset %d of the uncompressed data: %w", pos, err)
		}
		pos += cr.Offset()
	}
}

// countingReader counts the bytes handed to a decompressor. It is an
// io.ByteReader so that decompressors read no further than they need.
type countingReader struct {
	r *bufio.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func (c *countingReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// xzStreamReader turns the end of a single xz stream into io.EOF.
// ulikunitz/xz in SingleStream mode reads one byte past the stream to check
// for the end of input and, when there is one (padding, another segment),
// fails with "xz: unexpected data after stream"; that byte belongs to what
// follows, so overread records it.
type xzStreamReader struct {
	r        io.Reader
	overread int64
}

func (x *xzStreamReader) Read(p []byte) (int, error) {
	n, err := x.r.Read(p)
	if err != nil && err.Error() == "xz: unexpected data after stream" {
		x.overread = 1
		err = io.EOF
	}
	return n, err
}

// zstdLength returns the length of the run of zstd and skippable frames at
// the start of r, by walking frame and block headers (RFC 8878 §3.1), so
// that whatever follows the stream can be found without decoding it.
func zstdLength(r io.ReaderAt) (int64, error) {
	var b [8]byte
	// read returns the n bytes at off; short means r ends before them.
	read := func(off int64, n int) (buf []byte, short bool) {
		m, _ := r.ReadAt(b[:n], off)
		return b[:n], m < n
	}
	var off int64
	for frames := 0; ; frames++ {
		h, short := read(off, 4)
		magic := binary.LittleEndian.Uint32(h)
		switch {
		case short && frames > 0:
			return off, nil
		case magic&0xfffffff0 == 0x184d2a50: // skippable frame
			h, short := read(off+4, 4)
			if short {
				return 0, fmt.Errorf("zstd skippable frame at offset %d: %w", off, io.ErrUnexpectedEOF)
			}
			off += 8 + int64(binary.LittleEndian.Uint32(h))
			continue
		case short || magic != 0xfd2fb528:
			if frames == 0 {
				return 0, fmt.Errorf("no zstd magic at offset %d", off)
			}
			return off, nil
		}
		start := off
		h, short = read(off+4, 1)
		if short {
			return 0, fmt.Errorf("zstd frame at offset %d: %w", start, io.ErrUnexpectedEOF)
		}
		fhd := h[0]
		if fhd&0x08 != 0 {
			return 0, fmt.Errorf("zstd frame at offset %d: reserved bit set in the frame header", start)
		}
		single := fhd&0x20 != 0
		off += 5
		if !single {
			off++ // window descriptor
		}
		off += [4]int64{0, 1, 2, 4}[fhd&3] // dictionary ID
		fcs := [4]int64{0, 2, 4, 8}[fhd>>6]
		if fcs == 0 && single {
			fcs = 1
		}
		off += fcs
		for last := false; !last; {
			h, short := read(off, 3)
			if short {
				return 0, fmt.Errorf("zstd frame at offset %d: block header at %d: %w", start, off, io.ErrUnexpectedEOF)
			}
			v := uint32(h[0]) | uint32(h[1])<<8 | uint32(h[2])<<16
			typ, size := (v>>1)&3, int64(v>>3)
			last = v&1 != 0
			switch typ {
			case 1: // RLE: one byte stands for size bytes
				size = 1
			case 3:
				return 0, fmt.Errorf("zstd frame at offset %d: reserved block type at %d", start, off)
			}
			off += 3 + size
		}
		if fhd&0x04 != 0 {
			off += 4 // content checksum
		}
		if _, short := read(off-1, 1); short {
			return 0, fmt.Errorf("zstd frame at offset %d: truncated: %w", start, io.ErrUnexpectedEOF)
		}
	}
}

// lz4LegacyLength returns the length of the legacy LZ4 stream at the start
// of r. The format has no end mark: like the kernel's unlz4, treat every
// following 32-bit chunk size as a chunk, stopping at the end of the data,
// at a zero (padding) or at a size no 8 MiB chunk can compress to.
func lz4LegacyLength(r io.ReaderAt) (int64, error) {
	const legacyMagic = 0x184c2102
	const maxChunk = 8<<20 + 8<<20/255 + 16 // LZ4_compressBound(8 MiB)
	var b [4]byte
	off := int64(4)
	for {
		if m, _ := r.ReadAt(b[:], off); m < 4 {
			return off, nil
		}
		v := binary.LittleEndian.Uint32(b[:])
		switch {
		case v == legacyMagic: // concatenated legacy stream
			off += 4
			continue
		case v == 0 || v > maxChunk:
			return off, nil
		}
		end := off + 4 + int64(v)
		if m, _ := r.ReadAt(b[:1], end-1); m != 1 {
			return 0, fmt.Errorf("lz4 chunk at offset %d: %d bytes: %w", off, v, io.ErrUnexpectedEOF)
		}
		off = end
	}
}
