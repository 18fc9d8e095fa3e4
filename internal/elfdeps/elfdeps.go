// Package elfdeps finds the shared libraries of an image tree that no
// program in it loads. Packages bring whole library sets (glibc alone ships
// a dozen libraries an initramfs never uses); Unused walks DT_NEEDED and
// PT_INTERP from every ELF program in the tree, resolving names the way
// ld.so does in the image's own library directories, and returns the
// libraries the walk never reached.
package elfdeps

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// DlopenedLibraries are kept although no DT_NEEDED names them, because
// glibc loads them with dlopen: libgcc_s for pthread_cancel and unwinding.
func DlopenedLibraries() []string { return []string{"libgcc_s.so.1"} }

// Unused returns the image paths of the shared libraries directly inside
// the tree's library directories (and of the symlinks to them) that no ELF
// program's dependency closure reaches, sorted. Libraries whose base name
// is in keep, dynamic loaders and entries whose Origin starts with
// "include" are never returned. unresolved lists "program: NAME" for
// dependencies found nowhere in the tree.
func Unused(t *fstree.Tree, keep []string) (unused, unresolved []string, err error) {
	dirs := libraryDirs(t)
	var (
		candidates = map[string]bool{}     // libraries that may go
		infos      = map[string]*elfInfo{} // every ELF object, read once
		roots      []string
	)
	err = t.Walk(func(e *fstree.Entry) error {
		if e.Kind != fstree.File || strings.Contains(e.Path, ".ko") {
			return nil
		}
		info, err := readELF(e)
		if err != nil {
			return fmt.Errorf("%s (from %s): %w", e.Path, e.Origin, err)
		}
		if info == nil {
			return nil
		}
		infos[e.Path] = info
		base := path.Base(e.Path)
		if slices.Contains(dirs, path.Dir(e.Path)) && isLibraryName(base) && !slices.Contains(keep, base) &&
			!strings.HasPrefix(e.Origin, "include") {
			candidates[e.Path] = true
			return nil
		}
		roots = append(roots, e.Path)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	reached := map[string]bool{}
	todo := roots
	for len(todo) > 0 {
		p := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if reached[p] {
			continue
		}
		reached[p] = true
		info := infos[p]
		if info == nil {
			continue // not an ELF object (a script, a data file)
		}
		for _, name := range info.deps() {
			dep, ok := lookup(t, dirs, info.searchPath(p), name)
			if !ok {
				unresolved = append(unresolved, p+": "+name)
				continue
			}
			todo = append(todo, dep)
		}
	}
	gone := map[string]bool{}
	for p := range candidates {
		if !reached[p] {
			gone[p] = true
		}
	}
	err = t.Walk(func(e *fstree.Entry) error {
		if gone[e.Path] {
			unused = append(unused, e.Path)
		} else if e.Kind == fstree.Symlink || e.Kind == fstree.Hardlink {
			if target, ok := resolve(t, e.Path); ok && gone[target] {
				unused = append(unused, e.Path)
			}
		}
		return nil
	})
	slices.Sort(unused)
	return unused, unresolved, err
}

// isLibraryName matches the names of shared objects that programs link to
// (libfoo.so.N); dynamic loaders (ld-linux*.so.*) are never candidates.
func isLibraryName(base string) bool {
	return strings.HasPrefix(base, "lib") && strings.Contains(base, ".so")
}

// elfInfo is what the walk needs from one ELF file.
type elfInfo struct {
	interp  string   // PT_INTERP, for programs
	needed  []string // DT_NEEDED
	runpath []string // DT_RUNPATH, else DT_RPATH
}

func (i *elfInfo) deps() []string {
	if i.interp != "" {
		return append([]string{i.interp}, i.needed...)
	}
	return i.needed
}

// searchPath expands $ORIGIN in the run path of the object at p.
func (i *elfInfo) searchPath(p string) []string {
	var out []string
	for _, r := range i.runpath {
		r = strings.ReplaceAll(strings.ReplaceAll(r, "${ORIGIN}", "/"+path.Dir(p)), "$ORIGIN", "/"+path.Dir(p))
		out = append(out, fstree.Clean(r))
	}
	return out
}

// readELF returns the dynamic-linking facts of e, or nil when e is not an
// ELF executable or shared object.
func readELF(e *fstree.Entry) (*elfInfo, error) {
	if e == nil || e.Kind != fstree.File {
		return nil, nil
	}
	var r io.ReaderAt
	if e.Data != nil {
		r = bytes.NewReader(e.Data)
	} else {
		f, err := os.Open(e.Source)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	var magic [4]byte
	if _, err := r.ReadAt(magic[:], 0); err != nil || string(magic[:]) != elf.ELFMAG {
		return nil, nil
	}
	f, err := elf.NewFile(r)
	if err != nil {
		return nil, fmt.Errorf("read ELF: %w", err)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return nil, nil
	}
	info := &elfInfo{}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b, err := io.ReadAll(p.Open())
			if err != nil {
				return nil, fmt.Errorf("read PT_INTERP: %w", err)
			}
			info.interp = strings.TrimRight(string(b), "\x00")
		}
	}
	if f.Section(".dynamic") == nil {
		return info, nil
	}
	if info.needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return nil, fmt.Errorf("read DT_NEEDED: %w", err)
	}
	rp, _ := f.DynString(elf.DT_RUNPATH)
	if len(rp) == 0 {
		rp, _ = f.DynString(elf.DT_RPATH)
	}
	for _, s := range rp {
		info.runpath = append(info.runpath, strings.Split(s, ":")...)
	}
	return info, nil
}

// libraryDirs are the directories ld.so searches in the image: those of
// etc/ld.so.conf.d/*.conf, then the defaults, each resolved through the
// tree's symlinks (merged /usr: lib → usr/lib).
func libraryDirs(t *fstree.Tree) []string {
	var dirs []string
	add := func(d string) {
		if r, ok := resolve(t, fstree.Clean(d)); ok && !slices.Contains(dirs, r) {
			if e := t.Get(r); e != nil && e.Kind == fstree.Dir {
				dirs = append(dirs, r)
			}
		}
	}
	for _, e := range t.Sorted() {
		if path.Dir(e.Path) != "etc/ld.so.conf.d" || !strings.HasSuffix(e.Path, ".conf") || e.Kind != fstree.File {
			continue
		}
		rc, err := e.Open()
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		for _, line := range strings.Split(string(b), "\n") {
			if line = strings.TrimSpace(line); strings.HasPrefix(line, "/") {
				add(line)
			}
		}
	}
	for _, d := range []string{"lib", "lib64", "usr/lib", "usr/lib64"} {
		add(d)
	}
	return dirs
}

// lookup finds the library name the way ld.so does: a name with a slash
// is a path, else the run path, then the library directories.
func lookup(t *fstree.Tree, dirs, runpath []string, name string) (string, bool) {
	if strings.Contains(name, "/") {
		return resolve(t, fstree.Clean(name))
	}
	for _, d := range append(runpath, dirs...) {
		if p, ok := resolve(t, path.Join(d, name)); ok {
			return p, true
		}
	}
	return "", false
}

// errLoop ends a resolution through too many symlinks.
var errLoop = errors.New("too many levels of symbolic links")

// resolve follows symlinks and hardlinks in every component of the image
// path p and returns the path of the entry it ends at.
func resolve(t *fstree.Tree, p string) (string, bool) {
	r, err := resolveDepth(t, fstree.Clean(p), 0)
	return r, err == nil
}

func resolveDepth(t *fstree.Tree, p string, depth int) (string, error) {
	if depth > 40 {
		return "", errLoop
	}
	parts := strings.Split(p, "/")
	cur := ""
	for i, part := range parts {
		next := path.Join(cur, part)
		e := t.Get(next)
		if e == nil {
			return "", os.ErrNotExist
		}
		switch e.Kind {
		case fstree.Symlink:
			target := e.Target
			if !strings.HasPrefix(target, "/") {
				target = path.Join(cur, target)
			}
			rest := append([]string{fstree.Clean(target)}, parts[i+1:]...)
			return resolveDepth(t, fstree.Clean(path.Join(rest...)), depth+1)
		case fstree.Hardlink:
			rest := append([]string{e.Target}, parts[i+1:]...)
			return resolveDepth(t, fstree.Clean(path.Join(rest...)), depth+1)
		}
		cur = next
	}
	return cur, nil
}
