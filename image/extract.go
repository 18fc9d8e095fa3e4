package image

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
	"time"

	"github.com/pkginitrd/pkginitrd/image/cpio"
)

// Extract unpacks every segment of the image into dir, which must exist.
// Like the kernel, later entries replace earlier ones of the same path
// (a directory only when it is empty) and hard links are recreated per
// archive. It never writes outside dir: names escaping it are an error,
// and all paths are resolved within dir (os.Root), so a symlink in the
// image cannot redirect a write elsewhere; an existing entry is removed
// before its replacement is created, never written through. Ownership is
// restored when running as root. Device nodes that cannot be created
// (not root) are skipped and returned. An image without any cpio archive
// is an error, ErrNoArchive.
func Extract(ctx context.Context, r io.ReaderAt, size int64, dir string) (skipped []string, err error) {
	x := &extractor{asRoot: os.Geteuid() == 0, mknodat: syscall.Mknodat}
	return x.run(ctx, r, size, dir)
}

func (x *extractor) run(ctx context.Context, r io.ReaderAt, size int64, dir string) ([]string, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("extract: %w", err)
	}
	defer root.Close()
	x.root, x.links, x.buf = root, map[linkKey]string{}, make([]byte, copyBufSize)
	segs, err := walk(ctx, r, size, x.entry)
	if err == nil && len(segs) == 0 {
		err = ErrNoArchive
	}
	if err != nil {
		return x.skipped, fmt.Errorf("extract to %s: %w", dir, err)
	}
	// Directory modes and mtimes last, deepest first: a read-only
	// directory must still take its contents, and adding them changes the
	// mtime. A directory replaced by a later entry is no longer there.
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		if st, err := root.Lstat(d.name); err != nil || !st.IsDir() {
			continue
		}
		if err := root.Chmod(d.name, d.mode); err != nil {
			return x.skipped, fmt.Errorf("extract to %s: %w", dir, err)
		}
		if err := root.Chtimes(d.name, d.mtime, d.mtime); err != nil {
			return x.skipped, fmt.Errorf("extract to %s: %w", dir, err)
		}
	}
	return x.skipped, nil
}

const permBits = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// linkKey identifies an inode as the kernel's hard-link table does.
type linkKey struct {
	major, minor, ino, typ uint32
}

type dirAttrs struct {
	name  string
	mode  fs.FileMode
	mtime time.Time
}

type extractor struct {
	asRoot  bool // restore ownership
	mknodat func(dirfd int, name string, mode uint32, dev int) error

	root    *os.Root
	links   map[linkKey]string // inode → first name extracted, for this archive
	skipped []string
	dirs    []dirAttrs
	buf     []byte
}

// entryName turns an archive name into a clean path relative to the root,
// or "" for the root itself.
func entryName(name string) (string, error) {
	clean := path.Clean(strings.TrimLeft(name, "/"))
	switch {
	case clean == ".":
		return "", nil
	case clean == ".." || strings.HasPrefix(clean, "../"):
		return "", fmt.Errorf("entry %q escapes the destination", name)
	}
	return clean, nil
}

func (x *extractor) entry(h *cpio.Header, data io.Reader) error {
	if h == nil { // TRAILER!!!: the kernel forgets hard links here
		clear(x.links)
		return nil
	}
	name, err := entryName(h.Name)
	if err != nil {
		return err
	}
	if name == "" {
		return nil // the destination itself: leave it alone
	}
	if err := x.create(name, h, data); err != nil {
		return fmt.Errorf("extract %s: %w", name, err)
	}
	return nil
}

func (x *extractor) create(name string, h *cpio.Header, data io.Reader) error {
	if dir := path.Dir(name); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	mode := h.FileMode()
	old, err := x.root.Lstat(name)
	switch {
	case err == nil && old.IsDir() && h.Type() == cpio.TypeDir:
		// Keep the directory and its contents; the mode is updated below.
	case err == nil:
		// Replace, never write through: the old entry may be a symlink.
		if err := x.root.Remove(name); err != nil {
			return fmt.Errorf("replace existing %s: %w", old.Mode().Type(), err)
		}
		fallthrough
	case errors.Is(err, fs.ErrNotExist):
		if h.Type() == cpio.TypeDir {
			if err := x.root.Mkdir(name, 0o700); err != nil {
				return err
			}
		}
	default:
		return err
	}
	mtime := time.Unix(h.Mtime, 0)
	switch h.Type() {
	case cpio.TypeDir:
		x.dirs = append(x.dirs, dirAttrs{name, mode & permBits, mtime})
		return x.chown(name, h)
	case cpio.TypeReg:
		if err := x.regular(name, h, data); err != nil {
			return err
		}
		return x.root.Chtimes(name, mtime, mtime)
	case cpio.TypeSymlink:
		if err := x.root.Symlink(h.Linkname, name); err != nil {
			return err
		}
		return x.chown(name, h)
	case cpio.TypeChar, cpio.TypeBlock, cpio.TypeFifo, cpio.TypeSocket:
		if err := x.mknod(name, h); err != nil {
			if errors.Is(err, syscall.EPERM) && (h.Type() == cpio.TypeChar || h.Type() == cpio.TypeBlock) {
				x.skipped = append(x.skipped, name)
				return nil
			}
			return err
		}
		if err := x.chown(name, h); err != nil {
			return err
		}
		return x.root.Chmod(name, mode&permBits)
	}
	return fmt.Errorf("unsupported file type %#o", h.Type())
}

// regular creates a regular file, or a hard link to an earlier member of
// its inode, and writes the data that comes with this entry.
func (x *extractor) regular(name string, h *cpio.Header, data io.Reader) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if h.Nlink >= 2 {
		key := linkKey{h.DevMajor, h.DevMinor, h.Ino, h.Type()}
		if first, ok := x.links[key]; ok {
			if err := x.root.Link(first, name); err != nil {
				return err
			}
			if h.Size == 0 {
				return nil // the data comes with another member
			}
			flags = os.O_WRONLY | os.O_TRUNC
		} else {
			x.links[key] = name
		}
	}
	f, err := x.root.OpenFile(name, flags, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.CopyBuffer(onlyWriter{f}, data, x.buf); err != nil {
		return err
	}
	if x.asRoot {
		if err := f.Chown(int(h.Uid), int(h.Gid)); err != nil {
			return err
		}
	}
	// After chown, which clears setuid/setgid.
	if err := f.Chmod(h.FileMode() & permBits); err != nil {
		return err
	}
	return f.Close()
}

// onlyWriter hides *os.File's ReadFrom so that CopyBuffer uses our buffer.
type onlyWriter struct{ io.Writer }

func (x *extractor) chown(name string, h *cpio.Header) error {
	if !x.asRoot {
		return nil
	}
	return x.root.Lchown(name, int(h.Uid), int(h.Gid))
}

// mknod creates a device, FIFO or socket node. os.Root has no Mknod, so the
// node is made relative to its parent directory opened through the root.
func (x *extractor) mknod(name string, h *cpio.Header) error {
	parent, err := x.root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer parent.Close()
	dev := uint64(h.RdevMinor&0xff) | uint64(h.RdevMajor&0xfff)<<8 | uint64(h.RdevMinor&^0xff)<<12 | uint64(h.RdevMajor&^0xfff)<<32
	err = x.mknodat(int(parent.Fd()), path.Base(name), h.Mode&(cpio.TypeMask|cpio.ModePerm), int(dev))
	if err != nil {
		return &os.PathError{Op: "mknod", Path: name, Err: err}
	}
	return nil
}
