package unpack

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// usrAlias reports whether first is a top-level directory that merged /usr turns into
// a symlink into usr/ (the image gets "bin -> usr/bin" and so on).
func usrAlias(first string) bool {
	switch first {
	case "bin", "sbin", "lib", "lib32", "lib64", "libx32":
		return true
	}
	return false
}

// Canonical maps a path as shipped by a package to its merged-/usr image
// path: "bin/sh" → "usr/bin/sh", "lib64/ld-linux-x86-64.so.2" →
// "usr/lib64/ld-linux-x86-64.so.2"; other paths are only cleaned.
func Canonical(p string) string {
	p = fstree.Clean(p)
	first, _, _ := strings.Cut(p, "/")
	if usrAlias(first) {
		return "usr/" + p
	}
	return p
}

// AddToTree adds the directory root, as it is on disk, to t: see
// (*Tree).AddTo.
func AddToTree(t *fstree.Tree, root, origin string, keep func(imagePath string) bool) error {
	tr, err := Scan(root)
	if err != nil {
		return fmt.Errorf("add %s to image: %w", origin, err)
	}
	return tr.AddTo(t, origin, keep)
}

// AddTo adds the tree to t with the merged-/usr layout (see Canonical),
// each entry marked with origin and with the mode its list records (a
// cached tree's setuid bits live only there). Hard links inside the
// package become fstree.Hardlink entries. keep (nil keeps everything)
// receives each canonical image path and drops the entry when it returns
// false. A path shipped by two packages is fine when both are directories,
// identical symlinks, or regular files with the same bytes; anything else
// is a *fstree.ConflictError naming both packages.
func (tr *Tree) AddTo(t *fstree.Tree, origin string, keep func(imagePath string) bool) error {
	a := &adder{t: t, origin: origin, keep: keep, links: map[string]string{}}
	for i := range tr.recs {
		r := &tr.recs[i]
		if err := a.add(filepath.Join(tr.Dir, filepath.FromSlash(r.Path)), r); err != nil {
			return fmt.Errorf("add %s to image: %w", origin, err)
		}
	}
	return nil
}

type adder struct {
	t      *fstree.Tree
	origin string
	keep   func(string) bool
	links  map[string]string // record.Link → first kept image path of that multiply-linked file
}

func (a *adder) add(src string, r *record) error {
	rel := r.Path
	if !strings.Contains(rel, "/") && usrAlias(rel) && r.Mode&fs.ModeSymlink != 0 {
		// The package ships the merged-/usr symlink itself ("bin -> usr/bin",
		// as in trixie's base-files). The image has it already; any other
		// target cannot be represented.
		if fstree.Clean(r.Target) != "usr/"+rel {
			return fmt.Errorf("/%s is a symlink to %s, not usr/%s: not a merged-/usr layout", rel, r.Target, rel)
		}
		return nil
	}
	dest := Canonical(rel)
	if a.keep != nil && !a.keep(dest) {
		return nil
	}
	e := fstree.Entry{Path: dest, Mode: r.Mode & (fs.ModePerm | specialBits), Origin: a.origin}
	switch m := r.Mode; {
	case m.IsDir():
		e.Kind = fstree.Dir
	case m.IsRegular():
		e.Kind, e.Source, e.Size = fstree.File, src, r.Size
	case m&fs.ModeSymlink != 0:
		e.Kind, e.Target = fstree.Symlink, r.Target
	default:
		return fmt.Errorf("%s: unsupported file type %s", src, m.Type())
	}
	if e.Kind == fstree.File && r.Link != "" {
		if first, ok := a.links[r.Link]; ok {
			e.Kind, e.Target, e.Source, e.Size = fstree.Hardlink, first, "", 0
		} else {
			a.links[r.Link] = e.Path
		}
	}
	old := a.t.Get(e.Path)
	if old != nil && old.Kind != fstree.Dir && e.Kind != fstree.Dir {
		same, err := sameFile(a.t, old, &e)
		if err != nil {
			return err
		}
		if same {
			return nil // the first package's copy stays
		}
	}
	return a.t.Add(e)
}

// sameFile reports whether a and b are regular files (or hard links to
// them) with the same contents.
func sameFile(t *fstree.Tree, a, b *fstree.Entry) (bool, error) {
	a, b = resolve(t, a), resolve(t, b)
	if a == nil || b == nil || a.Kind != fstree.File || b.Kind != fstree.File {
		return false, nil
	}
	if a.Size != b.Size {
		return false, nil
	}
	if a.Source != "" && a.Source == b.Source {
		return true, nil
	}
	ra, err := a.Open()
	if err != nil {
		return false, err
	}
	defer ra.Close()
	rb, err := b.Open()
	if err != nil {
		return false, err
	}
	defer rb.Close()
	return sameReader(ra, rb)
}

// resolve follows a Hardlink entry to the file it shares contents with.
func resolve(t *fstree.Tree, e *fstree.Entry) *fstree.Entry {
	for range 8 {
		if e == nil || e.Kind != fstree.Hardlink {
			return e
		}
		e = t.Get(path.Clean(e.Target))
	}
	return nil
}

func sameReader(a, b io.Reader) (bool, error) {
	bufA, bufB := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, errA := io.ReadFull(a, bufA)
		nb, errB := io.ReadFull(b, bufB)
		if !bytes.Equal(bufA[:na], bufB[:nb]) {
			return false, nil
		}
		doneA := errA == io.EOF || errA == io.ErrUnexpectedEOF
		doneB := errB == io.EOF || errB == io.ErrUnexpectedEOF
		switch {
		case errA != nil && !doneA:
			return false, errA
		case errB != nil && !doneB:
			return false, errB
		case doneA || doneB:
			return doneA && doneB, nil
		}
	}
}
