package modules

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"

	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/kmod"
)

// Origin is the fstree.Entry origin of everything AddToTree adds.
const Origin = "modules"

// CopyOptions tune Set.AddToTree.
type CopyOptions struct {
	// CacheDir holds decompressed copies of compressed modules, named after
	// a hash of the source path, size and mtime. Required when the set has
	// compressed modules and KeepCompressed is false.
	CacheDir string
	// KeepCompressed stores compressed modules as they are (.ko.xz …)
	// instead of decompressing them; the image is compressed as a whole, so
	// decompressed modules usually give a smaller image.
	KeepCompressed bool
	// Jobs is how many modules are decompressed in parallel; 0 means GOMAXPROCS.
	Jobs int
	// Logger receives debug messages; nil discards them.
	Logger *slog.Logger
}

// AddToTree adds the modules of s to the image tree under imageModDir (the
// image's module directory, e.g. "usr/lib/modules/6.1.0-26-amd64") at their
// relative paths, compressed modules decompressed to a .ko through the
// cache; then the index files modules.dep, modules.alias, modules.softdep,
// modules.weakdep and modules.order covering exactly these modules, and the
// kernel's modules.builtin and modules.builtin.modinfo, in the text formats
// of depmod, for kmod.ReadIndex and busybox-style modprobe. (kmod's modprobe
// needs depmod's binary .bin indexes on top.) Module contents are never held
// in memory.
func (s *Set) AddToTree(ctx context.Context, t *fstree.Tree, imageModDir string, opts CopyOptions) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	jobs := opts.Jobs
	if jobs <= 0 {
		jobs = s.tree.jobs
	}
	entries := make([]fstree.Entry, len(s.Modules))
	rels := make(map[string]string, len(s.Modules)) // module → path in the image's module dir
	err := parallel(ctx, jobs, len(s.Modules), func(i int) error {
		m := &s.Modules[i]
		e, err := moduleEntry(m, opts, log)
		if err != nil {
			return err
		}
		entries[i] = e
		return nil
	})
	if err != nil {
		return err
	}
	for i, m := range s.Modules {
		rel := entries[i].Path
		rels[m.Name] = rel
		entries[i].Path = path.Join(imageModDir, rel)
		if err := t.Add(entries[i]); err != nil {
			return fmt.Errorf("add module %s: %w", m.Name, err)
		}
	}
	files, err := s.indexFiles(rels)
	if err != nil {
		return err
	}
	for _, f := range files {
		e := fstree.Entry{Path: path.Join(imageModDir, f.name), Kind: fstree.File, Mode: 0o644,
			Data: f.data, Size: int64(len(f.data)), Origin: Origin}
		if err := t.Add(e); err != nil {
			return fmt.Errorf("add %s: %w", f.name, err)
		}
	}
	return nil
}

// moduleEntry returns the entry of one module, its Path relative to the
// image's module directory.
func moduleEntry(m *Module, opts CopyOptions, log *slog.Logger) (fstree.Entry, error) {
	e := fstree.Entry{Path: m.Rel, Kind: fstree.File, Mode: 0o644, Source: m.Path, Size: m.Size, Origin: Origin}
	if opts.KeepCompressed {
		return e, nil
	}
	e.Path = kmod.StripCompressionExt(m.Rel)
	f, err := os.Open(m.Path)
	if err != nil {
		return e, fmt.Errorf("module %s: %w", m.Name, err)
	}
	defer f.Close()
	var head [compress.MagicSize]byte
	n, _ := io.ReadFull(f, head[:])
	if compress.Detect(head[:n]) == compress.None {
		return e, nil
	}
	if opts.CacheDir == "" {
		return e, fmt.Errorf("module %s is compressed (%s): decompressing needs CopyOptions.CacheDir", m.Name, m.Path)
	}
	st, err := f.Stat()
	if err != nil {
		return e, fmt.Errorf("module %s: %w", m.Name, err)
	}
	key := sha256.Sum256([]byte(m.Path + "\x00" + strconv.FormatInt(st.Size(), 10) + "\x00" + strconv.FormatInt(st.ModTime().UnixNano(), 10)))
	dst := filepath.Join(opts.CacheDir, "ko", hex.EncodeToString(key[:16])+".ko")
	if st, err := os.Stat(dst); err == nil && st.Mode().IsRegular() {
		e.Source, e.Size = dst, st.Size()
		return e, nil
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return e, fmt.Errorf("module %s: %w", m.Name, err)
	}
	size, err := decompressTo(f, dst)
	if err != nil {
		return e, fmt.Errorf("decompress module %s (%s): %w", m.Name, m.Path, err)
	}
	log.Debug("decompressed module", "module", m.Name, "from", m.Path, "to", dst)
	e.Source, e.Size = dst, size
	return e, nil
}

// decompressTo decompresses r into file, atomically.
func decompressTo(r io.Reader, file string) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return 0, err
	}
	zr, _, err := compress.DetectReader(r)
	if err != nil {
		return 0, err
	}
	defer zr.Close()
	cr := &countingReader{r: zr}
	if err := atomicfile.Write(file, cr, 0o644); err != nil {
		return 0, err
	}
	return cr.n, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type indexFile struct {
	name string
	data []byte
}

// indexFiles renders the index files for the modules of s, whose paths in
// the image's module directory are rels.
func (s *Set) indexFiles(rels map[string]string) ([]indexFile, error) {
	// Modules in the kernel's modules.order order, the others after by name.
	names := make([]string, len(s.Modules))
	for i, m := range s.Modules {
		names[i] = m.Name
	}
	sort.SliceStable(names, func(i, j int) bool {
		oi, iok := s.tree.order[names[i]]
		oj, jok := s.tree.order[names[j]]
		if iok != jok {
			return iok
		}
		return iok && oi < oj
	})

	var deps []kmod.Dep
	topo := s.topoOrder()
	for _, n := range names {
		d := kmod.Dep{Path: rels[n]}
		need := map[string]bool{}
		s.collectDeps(n, need)
		// depmod's order: loading the list from last to first works.
		for i := len(topo) - 1; i >= 0; i-- {
			if need[topo[i]] {
				d.Deps = append(d.Deps, rels[topo[i]])
			}
		}
		deps = append(deps, d)
	}
	var aliases []kmod.Alias
	var soft []kmod.SoftDep
	var weak []kmod.WeakDep
	var order []string
	for _, n := range names {
		mi := s.infos[n]
		for _, a := range mi.Aliases {
			aliases = append(aliases, kmod.Alias{Pattern: a, Module: n})
		}
		// One line per module: kmod's modprobe reads only a module's first.
		soft = append(soft, kmod.SoftDep{Module: n, Pre: mi.SoftPre, Post: mi.SoftPost})
		if len(mi.Weak) > 0 {
			weak = append(weak, kmod.WeakDep{Module: n, Deps: mi.Weak})
		}
		order = append(order, rels[n])
	}

	var files []indexFile
	add := func(name string, write func(io.Writer) error) error {
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
		files = append(files, indexFile{name, buf.Bytes()})
		return nil
	}
	err := errors.Join(
		add(kmod.DepFile, func(w io.Writer) error { return kmod.WriteDep(w, deps) }),
		add(kmod.AliasFile, func(w io.Writer) error { return kmod.WriteAlias(w, aliases) }),
		add(kmod.SoftDepFile, func(w io.Writer) error { return kmod.WriteSoftDep(w, soft) }),
		add(kmod.WeakDepFile, func(w io.Writer) error { return kmod.WriteWeakDep(w, weak) }),
		add(kmod.OrderFile, func(w io.Writer) error { return kmod.WriteList(w, order) }),
		add(kmod.BuiltinFile, func(w io.Writer) error { return kmod.WriteList(w, s.tree.builtinPaths) }),
		add(kmod.BuiltinModInfoFile, func(w io.Writer) error { _, err := w.Write(s.tree.builtinModInfo); return err }),
	)
	return files, err
}

// collectDeps adds the hard dependencies of n, transitively, to need.
func (s *Set) collectDeps(n string, need map[string]bool) {
	for _, d := range s.deps[n] {
		if !need[d] {
			need[d] = true
			s.collectDeps(d, need)
		}
	}
}

// topoOrder lists the modules of s with every module after its hard
// dependencies, deterministically.
func (s *Set) topoOrder() []string {
	names := make([]string, len(s.Modules))
	for i, m := range s.Modules {
		names[i] = m.Name
	}
	return kmod.DepOrder(names, func(n string) []string {
		return slices.Sorted(slices.Values(s.deps[n]))
	}, nil)
}
