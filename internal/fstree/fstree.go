// Package fstree describes the file tree of an initramfs image before it is
// written: which paths exist, their type and mode, and where a regular file's
// bytes come from (a file on the host or a byte slice). Contents are never
// loaded into the tree, so a tree of a whole image costs only its metadata.
package fstree

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
)

// Kind is the type of a tree entry.
type Kind uint8

// Entry kinds. Hardlink is a regular file that shares its inode with the
// entry named by Target.
const (
	Dir Kind = iota + 1
	File
	Symlink
	Hardlink
	CharDev
	BlockDev
)

func (k Kind) String() string {
	switch k {
	case Dir:
		return "dir"
	case File:
		return "file"
	case Symlink:
		return "symlink"
	case Hardlink:
		return "hardlink"
	case CharDev:
		return "chardev"
	case BlockDev:
		return "blockdev"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Entry is one path in the image.
type Entry struct {
	Path   string      // clean, relative to the image root, no leading slash ("usr/bin/busybox")
	Kind   Kind        // type of the entry
	Mode   fs.FileMode // permission bits, plus fs.ModeSetuid/ModeSetgid/ModeSticky
	Source string      // File: host path holding the contents (used when Data is nil)
	Data   []byte      // File: contents held in memory
	Size   int64       // File: size in bytes
	Target string      // Symlink: link target; Hardlink: path of the entry it links to
	Major  uint32      // CharDev/BlockDev: device numbers
	Minor  uint32
	Origin string // who put it there (package name, "modules", "stage0", "include"), for errors and the manifest
}

// Open returns the contents of a File entry.
func (e *Entry) Open() (io.ReadCloser, error) {
	if e.Kind != File {
		return nil, fmt.Errorf("open %s: not a regular file (%s)", e.Path, e.Kind)
	}
	if e.Data != nil || e.Source == "" {
		return io.NopCloser(strings.NewReader(string(e.Data))), nil
	}
	f, err := os.Open(e.Source)
	if err != nil {
		return nil, fmt.Errorf("open %s (for %s): %w", e.Source, e.Path, err)
	}
	return f, nil
}

// ErrConflict reports that two different entries claim the same path.
var ErrConflict = errors.New("fstree: conflicting entries")

// ConflictError names both owners of a path claimed twice.
type ConflictError struct {
	Path       string
	Old, New   string // origins
	OldK, NewK Kind
}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("%s: claimed by %s (%s) and %s (%s)", e.Path, e.Old, e.OldK, e.New, e.NewK)
}

func (e *ConflictError) Unwrap() error { return ErrConflict }

// Tree is a set of entries keyed by path. The zero value is not usable; call New.
type Tree struct {
	entries map[string]*Entry
}

// New returns an empty tree.
func New() *Tree { return &Tree{entries: map[string]*Entry{}} }

// Clean turns an image path ("/usr/bin/x", "./usr//bin/x") into the tree's
// canonical relative form ("usr/bin/x"); the root is "".
func Clean(p string) string {
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

// Get returns the entry at p, or nil.
func (t *Tree) Get(p string) *Entry { return t.entries[Clean(p)] }

// Len returns the number of entries.
func (t *Tree) Len() int { return len(t.entries) }

// Add inserts e, creating missing parent directories (mode 0755). Adding a
// directory where one exists is a no-op. Adding an identical symlink is a
// no-op. Any other second claim on a path returns a *ConflictError, unless
// replace is set by Replace.
func (t *Tree) Add(e Entry) error {
	return t.add(e, false)
}

// Replace inserts e, overwriting whatever non-directory was at its path.
func (t *Tree) Replace(e Entry) error {
	return t.add(e, true)
}

func (t *Tree) add(e Entry, replace bool) error {
	e.Path = Clean(e.Path)
	if e.Path == "" {
		return nil // the root always exists
	}
	if e.Kind == 0 {
		return fmt.Errorf("add %s: entry has no kind", e.Path)
	}
	if e.Kind == Hardlink {
		e.Target = Clean(e.Target)
	}
	if err := t.mkdirAll(path.Dir(e.Path), e.Origin); err != nil {
		return err
	}
	if old, ok := t.entries[e.Path]; ok {
		switch {
		case old.Kind == Dir && e.Kind == Dir:
			return nil
		case old.Kind == Symlink && e.Kind == Symlink && old.Target == e.Target:
			return nil
		case replace && old.Kind != Dir && e.Kind != Dir:
		default:
			return &ConflictError{Path: e.Path, Old: old.Origin, New: e.Origin, OldK: old.Kind, NewK: e.Kind}
		}
	}
	t.entries[e.Path] = &e
	return nil
}

func (t *Tree) mkdirAll(dir, origin string) error {
	dir = Clean(dir)
	if dir == "" {
		return nil
	}
	if old, ok := t.entries[dir]; ok {
		if old.Kind != Dir {
			return &ConflictError{Path: dir, Old: old.Origin, New: origin, OldK: old.Kind, NewK: Dir}
		}
		return nil
	}
	if err := t.mkdirAll(path.Dir(dir), origin); err != nil {
		return err
	}
	t.entries[dir] = &Entry{Path: dir, Kind: Dir, Mode: 0o755, Origin: origin}
	return nil
}

// Remove deletes p and, if it is a directory, everything below it.
func (t *Tree) Remove(p string) {
	p = Clean(p)
	delete(t.entries, p)
	prefix := p + "/"
	for k := range t.entries {
		if strings.HasPrefix(k, prefix) {
			delete(t.entries, k)
		}
	}
}

// Sorted returns all entries ordered by path bytes, so that every directory
// comes before what it contains (the order the kernel's unpacker needs).
func (t *Tree) Sorted() []*Entry {
	out := make([]*Entry, 0, len(t.entries))
	for _, e := range t.entries {
		out = append(out, e)
	}
	// Compare component-wise: "a/b" must sort before "a-c" is irrelevant for
	// correctness, but "a" must precede "a/…", which byte order guarantees.
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out
}

// Walk calls fn for every entry in Sorted order.
func (t *Tree) Walk(fn func(*Entry) error) error {
	for _, e := range t.Sorted() {
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

// AddHostPath copies the metadata of a host file or directory tree at src into
// the tree at dest (contents are referenced, not read). Symlinks are kept as
// symlinks. Device nodes are kept as devices.
func (t *Tree) AddHostPath(src, dest, origin string) error {
	info, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("include %s: %w", src, err)
	}
	if !info.IsDir() {
		return t.addHostEntry(src, dest, info, origin)
	}
	return fsWalk(src, func(p string, info fs.FileInfo) error {
		rel := strings.TrimPrefix(strings.TrimPrefix(p, src), "/")
		return t.addHostEntry(p, path.Join(dest, rel), info, origin)
	})
}

func (t *Tree) addHostEntry(src, dest string, info fs.FileInfo, origin string) error {
	e, err := EntryFromHost(src, dest, info)
	if err != nil {
		return err
	}
	e.Origin = origin
	return t.Replace(e)
}
