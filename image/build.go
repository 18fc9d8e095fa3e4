package image

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"

	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// Options control Build.
type Options struct {
	Compression compress.Format // of the main segment; "" means compress.Zstd
	Mtime       int64           // mtime of every entry: SOURCE_DATE_EPOCH, or 0
	Early       *fstree.Tree    // optional uncompressed segment written first (microcode, see MicrocodeTree)
	Sums        bool            // hash every file (SegmentStats.Sums), for an SBOM
	// Mode is the image file's permission bits for Build; 0 means 0600, as
	// dracut and initramfs-tools do: an image can carry keys (--include).
	Mode fs.FileMode
}

// DefaultMode is the image's mode when Options.Mode is 0.
const DefaultMode fs.FileMode = 0o600

// SegmentStats describes one segment written by Build.
type SegmentStats struct {
	ArchiveStats                 // entries and uncompressed archive length
	Offset       int64           // where the segment starts in the image
	Size         int64           // bytes it occupies in the image
	Compression  compress.Format // compress.None for the early segment
}

// Result describes the image written by Build.
type Result struct {
	Path     string         // where Build wrote it ("" from Write)
	Size     int64          // bytes of the image
	SHA256   string         // hex SHA-256 of the image
	Segments []SegmentStats // the early segment (if any), then the main one
}

// Build writes an initramfs image to path (see Write) with mode opts.Mode.
// The image is written to a temporary file next to path, synced and renamed
// over path; on any error or cancellation the temporary file is removed and
// path is left as it was.
func Build(ctx context.Context, path string, main *fstree.Tree, opts Options) (*Result, error) {
	mode := opts.Mode
	if mode == 0 {
		mode = DefaultMode
	}
	out, err := atomicfile.Create(path, mode)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", path, err)
	}
	defer out.Cleanup() // also runs on panic: nothing half-written survives
	res, err := Write(ctx, out, main, opts)
	if err != nil {
		return nil, fmt.Errorf("build %s: %w", path, err)
	}
	if err := out.Commit(); err != nil {
		return nil, fmt.Errorf("build %s: %w", path, err)
	}
	res.Path = path
	return res, nil
}

// Write writes an initramfs image to w: the early tree (if any) as an
// uncompressed cpio archive, then main as a cpio archive compressed with
// opts.Compression. It stops with the context's error when ctx is done.
func Write(ctx context.Context, w io.Writer, main *fstree.Tree, opts Options) (*Result, error) {
	if main == nil {
		return nil, errors.New("no tree")
	}
	comp, err := compress.ByName(string(opts.Compression))
	if err != nil {
		return nil, err
	}
	sum := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, sum), 1<<20)
	cw := &countingWriter{w: bw}
	res := &Result{}
	if opts.Early != nil && opts.Early.Len() > 0 {
		st, err := WriteArchive(ctx, cw, opts.Early, ArchiveOptions{Mtime: opts.Mtime, Sums: opts.Sums})
		if err != nil {
			return nil, fmt.Errorf("early segment: %w", err)
		}
		// The cpio writer pads to 4 bytes, so the main segment starts
		// aligned, as the kernel requires after an uncompressed archive.
		res.Segments = append(res.Segments, SegmentStats{ArchiveStats: st, Size: cw.n, Compression: compress.None})
	}
	start := cw.n
	zw, err := compress.NewWriter(comp, cw)
	if err != nil {
		return nil, err
	}
	st, err := WriteArchive(ctx, zw, main, ArchiveOptions{Mtime: opts.Mtime, Sums: opts.Sums})
	if cerr := zw.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("%s: %w", comp, cerr)
	}
	if err != nil {
		return nil, err
	}
	res.Segments = append(res.Segments, SegmentStats{ArchiveStats: st, Offset: start, Size: cw.n - start, Compression: comp})
	if err := bw.Flush(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res.Size = cw.n
	res.SHA256 = hex.EncodeToString(sum.Sum(nil))
	return res, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
