package image

import (
	"context"
	"fmt"
	"io"

	"github.com/pkginitrd/pkginitrd/image/cpio"
)

// maxFileData bounds the contents Files keeps of one file: index and
// configuration files, not modules.
const maxFileData = 64 << 20

// File is one path of an image as the kernel leaves it after unpacking
// every segment: its last entry.
type File struct {
	Header cpio.Header
	Data   []byte // contents of a regular file that Files was asked for
}

// Files lists every path of the image (clean, relative to the root) with
// its last entry, since the kernel's unpacking lets a later entry of a name
// replace an earlier one, and keeps the contents of the regular files want
// accepts. It also returns the segments, as Inspect does.
func Files(ctx context.Context, r io.ReaderAt, size int64, want func(name string) bool) (map[string]File, []Segment, error) {
	files := map[string]File{}
	visit := func(h *cpio.Header, data io.Reader) error {
		if h == nil {
			return nil
		}
		name, err := entryName(h.Name)
		if err != nil || name == "" {
			return err
		}
		f := File{Header: *h}
		if h.Type() == cpio.TypeReg && h.Size > 0 && want != nil && want(name) {
			if h.Size > maxFileData {
				return fmt.Errorf("%s: %d bytes, more than the %d this reader keeps", name, h.Size, maxFileData)
			}
			if f.Data, err = io.ReadAll(data); err != nil {
				return fmt.Errorf("read %s: %w", name, err)
			}
		}
		files[name] = f
		return nil
	}
	segs, err := walk(ctx, r, size, visit)
	if err == nil && len(segs) == 0 {
		err = ErrNoArchive
	}
	if err != nil {
		return nil, segs, err
	}
	return files, segs, nil
}
