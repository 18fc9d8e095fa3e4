package extend

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"

	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/modules"
)

// addModules adds the modules of opts and the dependencies the base lacks
// to t under the base's module directory, with the union of the base's
// index files and theirs, and returns the modules added and the loadable
// modules stage0 is to load.
func addModules(ctx context.Context, t *fstree.Tree, b *base, opts Options) (added, forceLoad []string, err error) {
	if b.modDir == "" {
		return nil, nil, errors.New("it has no module directory, so its kernel version is unknown: modules cannot be added")
	}
	dir := opts.ModulesDir
	if dir == "" {
		dir = hostModulesDir(b.kver)
	}
	tree, err := modules.Load(ctx, dir, modules.LoadOptions{Logger: opts.Logger})
	if err != nil {
		return nil, nil, fmt.Errorf("modules for kernel %s: %w", b.kver, err)
	}
	if tree.Version != b.kver {
		return nil, nil, fmt.Errorf("module directory %s is for kernel %s, the image for %s", dir, tree.Version, b.kver)
	}
	set, err := modules.Resolve(ctx, tree, modules.Selection{ForceLoad: opts.Modules})
	if err != nil {
		return nil, nil, err
	}
	idx, err := b.index()
	if err != nil {
		return nil, nil, err
	}
	have := map[string]string{} // module → its path in the base's module directory
	for _, d := range idx.Dep {
		have[kmod.NameFromPath(d.Path)] = d.Path
	}
	for _, bi := range set.Builtins {
		opts.Logger.Info("module is built into the kernel: nothing to add", "module", bi.Name)
	}
	scratch := fstree.New()
	copyOpts := modules.CopyOptions{CacheDir: opts.CacheDir, KeepCompressed: opts.CacheDir == "" || keepsCompressed(idx.Dep), Logger: opts.Logger}
	if err := set.AddToTree(ctx, scratch, "m", copyOpts); err != nil {
		return nil, nil, err
	}
	theirs, err := scratchIndex(scratch)
	if err != nil {
		return nil, nil, err
	}
	for _, d := range theirs.Dep {
		name := kmod.NameFromPath(d.Path)
		if _, ok := have[name]; ok {
			continue
		}
		e := *scratch.Get(path.Join("m", d.Path))
		e.Path = path.Join(b.modDir, d.Path)
		if err := t.Add(e); err != nil {
			return nil, nil, err
		}
		added = append(added, name)
		idx.merge(theirs, d, have)
	}
	slices.Sort(added)
	for _, n := range added {
		have[n] = "" // added now: its dep line is in idx
	}
	for _, m := range set.ForceLoad {
		if _, ok := have[m]; ok {
			forceLoad = append(forceLoad, m)
		}
	}
	return added, forceLoad, idx.addTo(t, b.modDir, len(added) > 0)
}

// hostModulesDir is /usr/lib/modules/KVER, or /lib/modules/KVER on
// systems without merged /usr.
func hostModulesDir(kver string) string {
	usr := filepath.Join("/usr/lib/modules", kver)
	if _, err := os.Stat(usr); err != nil {
		if _, err := os.Stat(filepath.Join("/lib/modules", kver)); err == nil {
			return filepath.Join("/lib/modules", kver)
		}
	}
	return usr
}

// keepsCompressed reports whether the base stores its modules compressed.
func keepsCompressed(deps []kmod.Dep) bool {
	for _, d := range deps {
		if kmod.StripCompressionExt(d.Path) != d.Path {
			return true
		}
	}
	return false
}

// index is a module directory's text index, as kmod.IndexFiles.
type index struct{ kmod.IndexFiles }

// index parses the base's module index files.
func (b *base) index() (*index, error) {
	read := func(name string) []byte { return b.files[path.Join(b.modDir, name)].Data }
	return parseIndex(read)
}

// scratchIndex parses the index files AddToTree wrote under "m".
func scratchIndex(t *fstree.Tree) (*index, error) {
	return parseIndex(func(name string) []byte {
		if e := t.Get(path.Join("m", name)); e != nil {
			return e.Data
		}
		return nil
	})
}

func parseIndex(read func(name string) []byte) (*index, error) {
	var x index
	r := func(name string) io.Reader { return bytes.NewReader(read(name)) }
	var errs [5]error
	x.Dep, errs[0] = kmod.ParseDep(r(kmod.DepFile))
	x.Alias, errs[1] = kmod.ParseAlias(r(kmod.AliasFile))
	x.SoftDep, errs[2] = kmod.ParseSoftDep(r(kmod.SoftDepFile))
	x.WeakDep, errs[3] = kmod.ParseWeakDep(r(kmod.WeakDepFile))
	x.Order, errs[4] = kmod.ParseList(r(kmod.OrderFile))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("module index: %w", err)
	}
	return &x, nil
}

// merge adds the lines of one module of theirs, whose modules.dep line is
// d, with its dependencies named by their paths in the base when the base
// has them.
func (x *index) merge(theirs *index, d kmod.Dep, have map[string]string) {
	name := kmod.NameFromPath(d.Path)
	nd := kmod.Dep{Path: d.Path}
	for _, p := range d.Deps {
		if bp := have[kmod.NameFromPath(p)]; bp != "" {
			p = bp
		}
		nd.Deps = append(nd.Deps, p)
	}
	x.Dep = append(x.Dep, nd)
	x.Order = append(x.Order, d.Path)
	for _, a := range theirs.Alias {
		if a.Module == name {
			x.Alias = append(x.Alias, a)
		}
	}
	for _, s := range theirs.SoftDep {
		if s.Module == name {
			x.SoftDep = append(x.SoftDep, s)
		}
	}
	for _, w := range theirs.WeakDep {
		if w.Module == name {
			x.WeakDep = append(x.WeakDep, w)
		}
	}
}

// addTo writes the index files into t under modDir when changed.
func (x *index) addTo(t *fstree.Tree, modDir string, changed bool) error {
	if !changed {
		return nil
	}
	files := []struct {
		name  string
		write func(io.Writer) error
	}{
		{kmod.DepFile, func(w io.Writer) error { return kmod.WriteDep(w, x.Dep) }},
		{kmod.AliasFile, func(w io.Writer) error { return kmod.WriteAlias(w, x.Alias) }},
		{kmod.SoftDepFile, func(w io.Writer) error { return kmod.WriteSoftDep(w, x.SoftDep) }},
		{kmod.WeakDepFile, func(w io.Writer) error { return kmod.WriteWeakDep(w, x.WeakDep) }},
		{kmod.OrderFile, func(w io.Writer) error { return kmod.WriteList(w, x.Order) }},
	}
	for _, f := range files {
		var buf bytes.Buffer
		if err := f.write(&buf); err != nil {
			return fmt.Errorf("write %s: %w", f.name, err)
		}
		e := fstree.Entry{Path: path.Join(modDir, f.name), Kind: fstree.File, Mode: 0o644, Data: buf.Bytes(), Size: int64(buf.Len()), Origin: "pkginitrd extend"}
		if err := t.Replace(e); err != nil {
			return err
		}
	}
	return nil
}
