// Package image writes and reads whole initramfs images: a deterministic
// newc cpio archive of an fstree.Tree, compressed the way the kernel can
// unpack it, optionally behind an uncompressed early segment (microcode);
// and, for inspect, a reader that walks an image segment by segment as the
// kernel does.
package image

import (
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"path"

	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// The kernel skips (silently) names and symlink targets longer than
// PATH_MAX, counting the name's NUL (init/initramfs.c do_name, do_symlink).
const pathMax = 4096

// ArchiveOptions are the fixed metadata of every entry.
type ArchiveOptions struct {
	Mtime int64 // mtime of every entry: SOURCE_DATE_EPOCH, or 0
	Sums  bool  // hash every regular file into ArchiveStats.Sums (for an SBOM)
}

// ArchiveStats describes a written cpio archive.
type ArchiveStats struct {
	Entries int   // entries written, the trailer not counted
	Bytes   int64 // length of the uncompressed archive, trailer and padding included
	// Sums holds the checksums of each regular file and hard link by path,
	// when ArchiveOptions.Sums asked for them.
	Sums map[string]Sum
}

// Sum is the checksums of one file's contents (hex). SPDX 2.3 requires
// SHA-1 for files besides any other algorithm.
type Sum struct {
	SHA1, SHA256 string
}

// copyBufSize is the buffer WriteArchive reuses for every file.
const copyBufSize = 256 << 10

// WriteArchive writes t as one newc cpio archive (ending with TRAILER!!!)
// to w in a single streamed pass over t.Sorted(). The output depends only on
// the tree and opts: inode numbers follow path order, uid/gid are 0, every
// mtime is opts.Mtime. A Hardlink entry shares the inode of the File it
// (transitively) names; the group's data goes with its last member in path
// order, as GNU cpio does. Each File is read through Entry.Open and must
// yield exactly Entry.Size bytes. ctx is checked between entries.
func WriteArchive(ctx context.Context, w io.Writer, t *fstree.Tree, opts ArchiveOptions) (ArchiveStats, error) {
	entries := t.Sorted()
	plan, err := planInodes(t, entries)
	if err != nil {
		return ArchiveStats{}, err
	}
	cw := cpio.NewWriter(w)
	buf := make([]byte, copyBufSize)
	var stats ArchiveStats
	var hashes *fileHashes
	if opts.Sums {
		hashes = &fileHashes{sha1: sha1.New(), sha256: sha256.New()}
		stats.Sums = map[string]Sum{}
	}
	for i, e := range entries {
		if err := ctx.Err(); err != nil {
			return stats, fmt.Errorf("write archive: %w", err)
		}
		h, data, err := header(e, plan[i], opts)
		if err != nil {
			return stats, err
		}
		if err := cw.WriteHeader(&h); err != nil {
			return stats, fmt.Errorf("write %s (from %s): %w", e.Path, origin(e), err)
		}
		if data != nil {
			var dst io.Writer = cw
			if hashes != nil {
				dst = hashes.reset(cw)
			}
			if err := copyFile(dst, data, buf); err != nil {
				return stats, err
			}
			if hashes != nil {
				stats.Sums[data.Path] = hashes.sum()
			}
		}
		stats.Entries++
	}
	if hashes != nil {
		// Every member of a hard-link group has the contents of its File.
		for i, e := range entries {
			if f := plan[i].file; f != nil && f != e {
				stats.Sums[e.Path] = stats.Sums[f.Path]
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return stats, fmt.Errorf("write archive: %w", err)
	}
	if err := cw.Close(); err != nil {
		return stats, fmt.Errorf("write archive trailer: %w", err)
	}
	stats.Bytes = cw.Offset()
	return stats, nil
}

// inode is what planInodes decides for one entry.
type inode struct {
	ino   uint32
	nlink uint32
	file  *fstree.Entry // regular files: the File holding the inode's contents
	data  bool          // this entry carries the contents (last member of its group)
}

// planInodes numbers inodes in path order and resolves hard-link groups.
func planInodes(t *fstree.Tree, entries []*fstree.Entry) ([]inode, error) {
	plan := make([]inode, len(entries))
	last := map[*fstree.Entry]int{}       // File → index of its last member
	members := map[*fstree.Entry]uint32{} // File → group size
	subdirs := map[string]uint32{}        // directory → number of subdirectories
	for i, e := range entries {
		switch e.Kind {
		case fstree.File:
			plan[i].file = e
		case fstree.Hardlink:
			f, err := resolveHardlink(t, e)
			if err != nil {
				return nil, err
			}
			plan[i].file = f
		case fstree.Dir:
			if dir := path.Dir(e.Path); dir != "." {
				subdirs[dir]++
			}
		}
		if f := plan[i].file; f != nil {
			last[f] = i
			members[f]++
		}
	}
	inoOf := map[*fstree.Entry]uint32{}
	next := uint32(1)
	for i, e := range entries {
		p := &plan[i]
		switch {
		case p.file != nil:
			if ino, ok := inoOf[p.file]; ok {
				p.ino = ino
			} else {
				p.ino, inoOf[p.file] = next, next
				next++
			}
			p.nlink = members[p.file]
			p.data = last[p.file] == i
		case e.Kind == fstree.Dir:
			// Like the kernel's own view: "." plus ".." of each subdirectory.
			p.ino, p.nlink = next, 2+subdirs[e.Path]
			next++
		default:
			p.ino, p.nlink = next, 1
			next++
		}
	}
	return plan, nil
}

func resolveHardlink(t *fstree.Tree, e *fstree.Entry) (*fstree.Entry, error) {
	cur := e
	for range t.Len() + 1 {
		target := t.Get(cur.Target)
		switch {
		case target == nil:
			return nil, fmt.Errorf("hard link %s (from %s): target %q is not in the image", e.Path, origin(e), cur.Target)
		case target.Kind == fstree.File:
			return target, nil
		case target.Kind != fstree.Hardlink:
			return nil, fmt.Errorf("hard link %s (from %s): target %q is a %s, not a regular file", e.Path, origin(e), cur.Target, target.Kind)
		}
		cur = target
	}
	return nil, fmt.Errorf("hard link %s (from %s): link cycle", e.Path, origin(e))
}

// perm converts the permission, setuid, setgid and sticky bits of m.
func perm(m fs.FileMode) uint32 {
	return cpio.ModeFromFileMode(m&^fs.ModeType) &^ cpio.TypeMask
}

// header builds the cpio header of e; data is the File whose contents
// follow the header, or nil.
func header(e *fstree.Entry, in inode, opts ArchiveOptions) (h cpio.Header, data *fstree.Entry, err error) {
	h = cpio.Header{Name: e.Path, Nlink: in.nlink, Ino: in.ino, Mtime: opts.Mtime}
	if len(h.Name)+1 > pathMax {
		return h, nil, fmt.Errorf("write %s (from %s): name longer than the kernel's PATH_MAX (%d)", e.Path, origin(e), pathMax)
	}
	switch e.Kind {
	case fstree.Dir:
		h.Mode = cpio.TypeDir | perm(e.Mode)
	case fstree.File, fstree.Hardlink:
		// Members of a hard-link group share one inode, hence the File's mode.
		h.Mode = cpio.TypeReg | perm(in.file.Mode)
		if in.data {
			h.Size, data = in.file.Size, in.file
		}
	case fstree.Symlink:
		h.Mode = cpio.TypeSymlink | 0o777 // Linux ignores a symlink's mode; fixed for determinism
		h.Linkname = e.Target
		if e.Target == "" || len(e.Target) > pathMax {
			return h, nil, fmt.Errorf("write %s (from %s): symlink target must be 1 to %d bytes, is %d", e.Path, origin(e), pathMax, len(e.Target))
		}
	case fstree.CharDev:
		h.Mode = cpio.TypeChar | perm(e.Mode)
		h.RdevMajor, h.RdevMinor = e.Major, e.Minor
	case fstree.BlockDev:
		h.Mode = cpio.TypeBlock | perm(e.Mode)
		h.RdevMajor, h.RdevMinor = e.Major, e.Minor
	default:
		return h, nil, fmt.Errorf("write %s (from %s): unsupported entry kind %s", e.Path, origin(e), e.Kind)
	}
	return h, data, nil
}

// fileHashes computes the Sum of one file at a time.
type fileHashes struct {
	sha1, sha256 hash.Hash
}

// reset starts a new file, returning a writer that writes to w and hashes.
func (h *fileHashes) reset(w io.Writer) io.Writer {
	h.sha1.Reset()
	h.sha256.Reset()
	return io.MultiWriter(w, h.sha1, h.sha256)
}

func (h *fileHashes) sum() Sum {
	return Sum{SHA1: hex.EncodeToString(h.sha1.Sum(nil)), SHA256: hex.EncodeToString(h.sha256.Sum(nil))}
}

// copyFile copies f's contents into cw, checking that the source holds
// exactly f.Size bytes.
func copyFile(cw io.Writer, f *fstree.Entry, buf []byte) (err error) {
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("write %s (from %s): %w", f.Path, origin(f), err)
	}
	defer func() {
		if cerr := rc.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("write %s: close %s: %w", f.Path, source(f), cerr)
		}
	}()
	var n int64
	for n < f.Size {
		chunk := buf[:min(int64(len(buf)), f.Size-n)]
		m, rerr := rc.Read(chunk)
		if m > 0 {
			if _, err := cw.Write(chunk[:m]); err != nil {
				return fmt.Errorf("write %s (from %s): %w", f.Path, origin(f), err)
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			return fmt.Errorf("write %s: %s shrank while being read: %d bytes, expected %d (from %s)", f.Path, source(f), n, f.Size, origin(f))
		}
		if rerr != nil {
			return fmt.Errorf("write %s: read %s: %w", f.Path, source(f), rerr)
		}
	}
	// The file must end here: a file that grew since the tree was made
	// would be silently truncated otherwise.
	var one [1]byte
	for {
		m, rerr := rc.Read(one[:])
		if m > 0 {
			return fmt.Errorf("write %s: %s grew while being read: more than %d bytes (from %s)", f.Path, source(f), f.Size, origin(f))
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return fmt.Errorf("write %s: read %s: %w", f.Path, source(f), rerr)
		}
	}
}

func origin(e *fstree.Entry) string {
	if e.Origin == "" {
		return "unknown origin"
	}
	return e.Origin
}

func source(e *fstree.Entry) string {
	if e.Source == "" || e.Data != nil {
		return "in-memory data"
	}
	return e.Source
}
