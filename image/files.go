package image

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/pkginitrd/pkginitrd/image/cpio"
)

// File is one path of an image as the kernel leaves it after unpacking
// every segment: a later entry for the same path replaces an earlier one.
type File struct {
	Path                 string // clean, relative to the root, no leading "/" or "./"
	Mode                 uint32 // type (cpio.TypeReg, ...) and permission bits
	UID, GID             uint32
	Size                 int64  // regular files
	SHA256               string // regular files: hex SHA-256 of the contents
	Linkname             string // symlinks
	RdevMajor, RdevMinor uint32 // device nodes
	Data                 []byte // regular files ReadFiles or Files was asked to keep: the contents
}

// maxKeep bounds the contents ReadFiles keeps of one file.
const maxKeep = 16 << 20

// ReadFiles reads every entry of every segment of an image and returns the
// files it unpacks to, sorted by path, with the hash of each regular file
// (hard-link groups share the contents their members carry, as in the
// kernel). The contents of the regular files named in keep are kept in
// File.Data. An image without any archive is ErrNoArchive.
func ReadFiles(ctx context.Context, r io.ReaderAt, size int64, keep ...string) ([]File, error) {
	files, _, err := readFiles(ctx, r, size, func(name string) bool { return slices.Contains(keep, name) })
	if err != nil {
		return nil, err
	}
	out := make([]File, 0, len(files))
	for _, f := range files {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// Files is ReadFiles by path, keeping the contents of the regular files
// keep accepts, with the image's segments (as Inspect gives them).
func Files(ctx context.Context, r io.ReaderAt, size int64, keep func(name string) bool) (map[string]File, []Segment, error) {
	files, segs, err := readFiles(ctx, r, size, keep)
	if err != nil {
		return nil, nil, err
	}
	out := make(map[string]File, len(files))
	for name, f := range files {
		out[name] = *f
	}
	return out, segs, nil
}

func readFiles(ctx context.Context, r io.ReaderAt, size int64, keep func(string) bool) (map[string]*File, []Segment, error) {
	if keep == nil {
		keep = func(string) bool { return false }
	}
	fr := &fileReader{files: map[string]*File{}, links: map[linkKey]*linkGroup{}, keep: keep}
	segs, err := walk(ctx, r, size, fr.entry)
	if err == nil && len(segs) == 0 {
		err = ErrNoArchive
	}
	if err != nil {
		return nil, nil, err
	}
	return fr.files, segs, nil
}

// Header is f as a cpio header (its type, mode and link target), for
// code that reads an image's entries that way.
func (f *File) Header() *cpio.Header {
	return &cpio.Header{Name: f.Path, Mode: f.Mode, Uid: f.UID, Gid: f.GID, Size: f.Size, Linkname: f.Linkname,
		RdevMajor: f.RdevMajor, RdevMinor: f.RdevMinor}
}

// linkGroup is the members of one inode in one archive.
type linkGroup struct {
	members []*File
	data    *File // the member that carried contents, if any
}

type fileReader struct {
	files map[string]*File
	links map[linkKey]*linkGroup // this archive's inodes with nlink ≥ 2
	keep  func(name string) bool
}

func (fr *fileReader) entry(h *cpio.Header, data io.Reader) error {
	if h == nil { // TRAILER!!!: the kernel forgets hard links here
		fr.endArchive()
		return nil
	}
	name, err := entryName(h.Name)
	if err != nil || name == "" {
		return err
	}
	f := &File{Path: name, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Linkname: h.Linkname, RdevMajor: h.RdevMajor, RdevMinor: h.RdevMinor}
	fr.files[name] = f
	if h.Type() != cpio.TypeReg {
		return nil
	}
	keep := fr.keep(name)
	if h.Nlink >= 2 {
		key := linkKey{h.DevMajor, h.DevMinor, h.Ino, h.Type()}
		g := fr.links[key]
		if g == nil {
			g = &linkGroup{}
			fr.links[key] = g
		}
		g.members = append(g.members, f)
		if h.Size > 0 || g.data == nil {
			g.data = f
		}
		// The contents usually come with the last member (GNU cpio):
		// keep them for a kept member met before.
		keep = keep || slices.ContainsFunc(g.members, func(m *File) bool { return fr.keep(m.Path) })
	}
	if err := fr.read(f, h, data, keep); err != nil {
		return fmt.Errorf("read %s: %w", name, err)
	}
	return nil
}

// read hashes (and keeps, if asked) the contents of a regular file.
func (fr *fileReader) read(f *File, h *cpio.Header, data io.Reader, keep bool) error {
	sum := sha256.New()
	var w io.Writer = sum
	var kept strings.Builder
	keep = keep && h.Size <= maxKeep
	if keep {
		w = io.MultiWriter(sum, &kept)
	}
	n, err := io.Copy(w, data)
	if err != nil {
		return err
	}
	f.Size, f.SHA256 = n, hex.EncodeToString(sum.Sum(nil))
	if keep {
		f.Data = []byte(kept.String())
	}
	return nil
}

// endArchive gives every member of a hard-link group the contents of the
// member that carried them.
func (fr *fileReader) endArchive() {
	for _, g := range fr.links {
		for _, m := range g.members {
			m.Size, m.SHA256, m.Data = g.data.Size, g.data.SHA256, g.data.Data
		}
	}
	clear(fr.links)
}
