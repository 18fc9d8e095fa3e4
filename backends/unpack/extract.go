package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
)

// extractor writes archive entries below an os.Root. os.Root already keeps
// every operation inside the root; the extractor additionally never writes
// through a symbolic link, by checking each parent directory once with
// Lstat before using it. It counts what it writes against its limits.
type extractor struct {
	root    *os.Root
	lim     Limits
	entries int             // entries read so far
	size    int64           // logical size of the regular files so far
	dirs    map[string]bool // paths known to be real directories
	files   map[string]bool // regular files written by this archive (hard-link targets)
	modes   map[string]fs.FileMode
	buf     []byte
	zero    []byte // sparseBlock zeros to compare with
}

// sparseBlock is the unit of hole detection: a file block of zeros is
// skipped with Seek instead of written. 4 KiB is the block size of the
// common filesystems; a smaller hole saves no disk space.
const sparseBlock = 4 << 10

func newExtractor(root *os.Root, lim Limits) *extractor {
	return &extractor{
		root:  root,
		lim:   lim,
		dirs:  map[string]bool{".": true},
		files: map[string]bool{},
		modes: map[string]fs.FileMode{},
		buf:   make([]byte, 128<<10),
		zero:  make([]byte, sparseBlock),
	}
}

// extract writes all entries, then applies directory modes (deepest first,
// so that a read-only directory does not block writing its children).
func (x *extractor) extract(ctx context.Context, ents entries) error {
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := ents.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		if x.entries++; x.entries > x.lim.MaxEntries {
			return fmt.Errorf("%s: %w: more than %d entries (max_entries)", hdr.Name, ErrLimit, x.lim.MaxEntries)
		}
		if err := x.entry(hdr, ents); err != nil {
			return fmt.Errorf("%s: %w", hdr.Name, err)
		}
	}
	dirs := make([]string, 0, len(x.modes))
	for d := range x.modes {
		dirs = append(dirs, d)
	}
	slices.SortFunc(dirs, func(a, b string) int { return strings.Compare(b, a) })
	for _, d := range dirs {
		if err := x.root.Chmod(d, x.modes[d]); err != nil {
			return fmt.Errorf("%s: %w", d, err)
		}
	}
	return nil
}

// entryName validates an archive path and returns it relative to the root
// ("." for the root itself).
func entryName(name string) (string, error) {
	if path.IsAbs(name) {
		return "", fmt.Errorf("%w: absolute path %q", ErrUnsafePath, name)
	}
	n := path.Clean(name)
	if n == ".." || strings.HasPrefix(n, "../") {
		return "", fmt.Errorf("%w: %q leaves the destination", ErrUnsafePath, name)
	}
	return n, nil
}

// mode converts a tar mode to permission bits plus setuid/setgid/sticky.
func mode(hdr *tar.Header) fs.FileMode {
	m := fs.FileMode(hdr.Mode) & fs.ModePerm
	if hdr.Mode&0o4000 != 0 {
		m |= fs.ModeSetuid
	}
	if hdr.Mode&0o2000 != 0 {
		m |= fs.ModeSetgid
	}
	if hdr.Mode&0o1000 != 0 {
		m |= fs.ModeSticky
	}
	return m
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	name, err := entryName(hdr.Name)
	if err != nil {
		return err
	}
	if name == "." {
		return nil // the destination itself; its mode is the caller's
	}
	if err := x.mkdirs(path.Dir(name)); err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := x.mkdirs(name); err != nil {
			return err
		}
		x.modes[name] = mode(hdr)
		return nil
	case tar.TypeReg, tar.TypeGNUSparse: // tar.Reader reports TypeRegA as TypeReg and expands sparse entries
		if err := x.count(hdr.Size); err != nil {
			return err
		}
		return x.file(name, mode(hdr), r)
	case tar.TypeSymlink:
		if err := x.clear(name); err != nil {
			return err
		}
		return x.root.Symlink(hdr.Linkname, name)
	case tar.TypeLink:
		target, err := entryName(hdr.Linkname)
		if err != nil {
			return fmt.Errorf("hard link target: %w", err)
		}
		if !x.files[target] {
			return fmt.Errorf("%w: hard link to %q, which is not a regular file earlier in the archive", ErrUnsafePath, hdr.Linkname)
		}
		if err := x.clear(name); err != nil {
			return err
		}
		if err := x.root.Link(target, name); err != nil {
			return err
		}
		x.files[name] = true
		return nil
	}
	return fmt.Errorf("%w: %s", ErrUnsupported, kind(hdr.Typeflag))
}

// kind names an entry type the extractor refuses.
func kind(typ byte) string {
	switch typ {
	case tar.TypeChar:
		return "character device"
	case tar.TypeBlock:
		return "block device"
	case tar.TypeFifo:
		return "FIFO"
	}
	return fmt.Sprintf("unknown entry type %q", typ)
}

// count adds a regular file of size bytes (its logical size: holes count)
// to the package's total and checks both size limits before it is written.
func (x *extractor) count(size int64) error {
	if size > x.lim.MaxFileSize {
		return fmt.Errorf("%w: file of %s, more than max_file_size %s", ErrLimit, iec(size), iec(x.lim.MaxFileSize))
	}
	x.size += size
	if x.size > x.lim.MaxPackageSize {
		return fmt.Errorf("%w: package unpacks to more than max_package_size %s", ErrLimit, iec(x.lim.MaxPackageSize))
	}
	return nil
}

// iec formats a byte count for messages: "512 MiB", "389.6 MiB", "100 bytes".
func iec(n int64) string {
	units := []string{"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	if n < 1<<10 {
		return fmt.Sprintf("%d bytes", n)
	}
	f, u := float64(n)/(1<<10), 0
	for f >= 1<<10 && u < len(units)-1 {
		f, u = f/(1<<10), u+1
	}
	return fmt.Sprintf("%.4g %s", f, units[u])
}

// file writes a regular file with exactly mode m (the umask does not apply).
func (x *extractor) file(name string, m fs.FileMode, r io.Reader) error {
	if err := x.clear(name); err != nil {
		return err
	}
	// O_EXCL: after clear, anything at name (a symlink planted meanwhile)
	// makes the create fail instead of being followed.
	f, err := x.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	err = x.copySparse(f, r)
	if err == nil {
		err = f.Chmod(m)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	x.files[name] = true
	return nil
}

// copySparse copies r to f, seeking over every block of zeros instead of
// writing it: tar's sparse entries (which tar.Reader expands to zeros) and
// long runs of zeros in regular entries take no disk space.
func (x *extractor) copySparse(f *os.File, r io.Reader) error {
	var pos, hole int64 // bytes read; zeros at their end not yet written
	for {
		n, rerr := r.Read(x.buf)
		buf := x.buf[:n]
		w := 0 // start of the data in buf not yet written
		for i := 0; i < n; {
			k := min(n-i, sparseBlock-int((pos+int64(i))%sparseBlock))
			switch {
			case bytes.Equal(buf[i:i+k], x.zero[:k]):
				if err := write(f, buf[w:i]); err != nil {
					return err
				}
				hole += int64(k)
				w = i + k
			case hole > 0: // w == i: the data before the hole is written
				if _, err := f.Seek(hole, io.SeekCurrent); err != nil {
					return err
				}
				hole = 0
			}
			i += k
		}
		if err := write(f, buf[w:]); err != nil {
			return err
		}
		pos += int64(n)
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return rerr
		}
	}
	if hole > 0 { // a trailing hole: only the size records it
		return f.Truncate(pos)
	}
	return nil
}

// write writes b to f, skipping the system call when b is empty.
func write(f *os.File, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	_, err := f.Write(b)
	return err
}

// clear removes a non-directory that an earlier entry of the same archive
// put at name (tar semantics: the later entry wins).
func (x *extractor) clear(name string) error {
	if x.dirs[name] {
		return fmt.Errorf("replaces a directory")
	}
	fi, err := x.root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("replaces a directory")
	}
	delete(x.files, name)
	return x.root.Remove(name)
}

// mkdirs makes sure dir and its parents are real directories, creating the
// missing ones, and refuses to descend through anything else (a symlink
// shipped earlier in the archive, say).
func (x *extractor) mkdirs(dir string) error {
	if x.dirs[dir] {
		return nil
	}
	if err := x.mkdirs(path.Dir(dir)); err != nil {
		return err
	}
	fi, err := x.root.Lstat(dir)
	switch {
	case err == nil && fi.IsDir():
	case err == nil && fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("%w: parent %s is a symlink", ErrUnsafePath, dir)
	case err == nil:
		return fmt.Errorf("parent %s is not a directory (%s)", dir, fi.Mode().Type())
	case errors.Is(err, fs.ErrNotExist):
		// The archive's own mode (maybe read-only) is applied after all
		// children are written; directories it does not list keep 0755.
		if err := x.root.Mkdir(dir, 0o755); err != nil {
			return err
		}
		x.modes[dir] = 0o755 // exactly, whatever the umask
	default:
		return err
	}
	x.dirs[dir] = true
	return nil
}
