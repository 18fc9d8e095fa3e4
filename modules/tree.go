// Package modules is the kernel module resolver of the image generator: it
// describes a host module tree (Load), computes the set of modules an image
// needs from include/exclude rules with their dependencies, soft
// dependencies and firmware (Resolve), and adds that set with its index
// files to the image tree (Set.AddToTree).
package modules

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/pkginitrd/pkginitrd/internal/kmod"
)

// LoadOptions tune Load.
type LoadOptions struct {
	// CacheDir holds a metadata cache (one JSON file per module directory,
	// entries keyed by path, size and mtime) so that warm builds read no
	// module. Empty disables the cache.
	CacheDir string
	// Logger receives warnings and debug messages; nil discards them.
	Logger *slog.Logger
	// Jobs is how many modules are read in parallel; 0 means GOMAXPROCS.
	Jobs int
}

// Tree describes a host module directory (/usr/lib/modules/KVER, or
// lib/modules/KVER of an unpacked kernel package). It never writes into it.
// A Tree is safe for concurrent use.
type Tree struct {
	Dir     string // the module directory
	Version string // kernel version: the base name of Dir

	log  *slog.Logger
	jobs int

	mods           map[string]*module // by normalized name
	builtin        map[string]bool
	builtinPaths   []string     // modules.builtin
	builtinModInfo []byte       // modules.builtin.modinfo, raw
	builtinFields  []kmod.Field // parsed builtinModInfo
	order          map[string]int
	index          *kmod.Index // from the directory's modules.dep & co; nil if there is none
	hasWeakDepFile bool

	mu        sync.Mutex
	cache     *metaCache
	aliasIdx  *kmod.Index // lookups built from every module's .modinfo (when index is nil)
	aliasOnce sync.Once
	aliasErr  error
}

type module struct {
	name  string
	rel   string // path relative to Dir
	path  string // host path
	size  int64
	mtime int64         // ns
	info  *kmod.ModInfo // nil until read; guarded by Tree.mu
}

// skipDir reports whether a top directory of a module directory holds no
// modules: Debian's links to the kernel headers.
func skipDir(name string) bool { return name == "build" || name == "source" }

// Load describes the module directory dir: every module file under its
// subdirectories (kernel/, updates/, extra/, …; compressed or not), the
// builtins of modules.builtin and modules.builtin.modinfo, and, when dir has
// a modules.dep, the dependencies, soft dependencies and aliases depmod
// recorded. Module metadata that the index files do not give is read from
// each module's .modinfo when needed (see Resolve), or from the cache.
func Load(ctx context.Context, dir string, opts LoadOptions) (*Tree, error) {
	t := &Tree{
		Dir:     filepath.Clean(dir),
		Version: filepath.Base(filepath.Clean(dir)),
		log:     opts.Logger,
		jobs:    opts.Jobs,
		mods:    map[string]*module{},
		builtin: map[string]bool{},
		order:   map[string]int{},
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.jobs <= 0 {
		t.jobs = runtime.GOMAXPROCS(0)
	}
	if err := t.readIndexFiles(); err != nil {
		return nil, err
	}
	if err := t.walk(ctx); err != nil {
		return nil, err
	}
	if len(t.mods) == 0 && len(t.builtin) == 0 {
		return nil, fmt.Errorf("module directory %s: no modules and no modules.builtin", t.Dir)
	}
	t.cache = openCache(opts.CacheDir, t.Dir, t.log)
	byRel := make(map[string]bool, len(t.mods))
	for _, m := range t.mods {
		byRel[m.rel] = true
		if info, ok := t.cache.get(m.rel, m.size, m.mtime); ok {
			m.info = info
		}
	}
	t.cache.retain(func(rel string) bool { return byRel[rel] })
	return t, nil
}

func (t *Tree) readIndexFiles() error {
	read := func(name string) ([]byte, error) {
		data, err := os.ReadFile(filepath.Join(t.Dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return data, err
	}
	st, err := os.Stat(t.Dir)
	if err != nil {
		return fmt.Errorf("module directory: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("module directory %s: not a directory", t.Dir)
	}
	data, err := read(kmod.BuiltinFile)
	if err != nil {
		return err
	}
	if data == nil {
		t.log.Warn("module directory has no modules.builtin: no module is known to be built in", "dir", t.Dir)
	}
	if t.builtinPaths, err = kmod.ParseList(bytes.NewReader(data)); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(t.Dir, kmod.BuiltinFile), err)
	}
	for _, p := range t.builtinPaths {
		t.builtin[kmod.NameFromPath(p)] = true
	}
	if t.builtinModInfo, err = read(kmod.BuiltinModInfoFile); err != nil {
		return err
	}
	t.builtinFields = kmod.ParseBuiltinModInfo(t.builtinModInfo)
	for _, f := range t.builtinFields {
		t.builtin[f.Module] = true
	}
	if data, err = read(kmod.OrderFile); err != nil {
		return err
	}
	order, err := kmod.ParseList(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(t.Dir, kmod.OrderFile), err)
	}
	for i, p := range order {
		n := kmod.NameFromPath(p)
		if _, dup := t.order[n]; !dup {
			t.order[n] = i
		}
	}
	if _, err := os.Stat(filepath.Join(t.Dir, kmod.DepFile)); err == nil {
		if t.index, err = kmod.ReadIndex(t.Dir); err != nil {
			return err
		}
		_, err := os.Stat(filepath.Join(t.Dir, kmod.WeakDepFile))
		t.hasWeakDepFile = err == nil
	}
	return nil
}

// walk finds the module files under the subdirectories of t.Dir, following
// a subdirectory that is itself a symbolic link but no link below it.
func (t *Tree) walk(ctx context.Context) error {
	entries, err := os.ReadDir(t.Dir)
	if err != nil {
		return fmt.Errorf("module directory: %w", err)
	}
	for _, e := range entries {
		if skipDir(e.Name()) {
			continue
		}
		top := filepath.Join(t.Dir, e.Name())
		if st, err := os.Stat(top); err != nil || !st.IsDir() {
			continue
		}
		real, err := filepath.EvalSymlinks(top)
		if err != nil {
			return fmt.Errorf("module directory: %w", err)
		}
		err = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return fmt.Errorf("walk %s: %w", p, err)
			}
			if d.IsDir() {
				return ctx.Err()
			}
			if !d.Type().IsRegular() || !kmod.IsModuleFile(d.Name()) {
				return nil
			}
			info, err := d.Info()
			if err != nil {
				return fmt.Errorf("walk %s: %w", p, err)
			}
			r, _ := filepath.Rel(real, p)
			rel := filepath.ToSlash(filepath.Join(e.Name(), r))
			t.addModule(&module{
				name:  kmod.NameFromPath(rel),
				rel:   rel,
				path:  filepath.Join(top, r),
				size:  info.Size(),
				mtime: info.ModTime().UnixNano(),
			})
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// addModule records m unless a module of the same name with priority was
// seen: the one modules.dep names, else one under updates/ (depmod's
// default search order), else the first path in lexical order.
func (t *Tree) addModule(m *module) {
	old, ok := t.mods[m.name]
	if !ok {
		t.mods[m.name] = m
		return
	}
	rank := func(x *module) string {
		if t.index != nil {
			if p, ok := t.index.Path(x.name); ok && p == x.rel {
				return "0" + x.rel
			}
		}
		if strings.HasPrefix(x.rel, "updates/") {
			return "1" + x.rel
		}
		return "2" + x.rel
	}
	if rank(m) < rank(old) {
		old, t.mods[m.name] = m, m
	}
	t.log.Warn("module found twice, using one", "module", m.name, "used", t.mods[m.name].rel, "ignored", old.rel)
}

// Modules returns the names of the loadable modules of the tree, sorted.
func (t *Tree) Modules() []string {
	out := make([]string, 0, len(t.mods))
	for n := range t.mods {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Builtin reports whether module name is built into the kernel.
func (t *Tree) Builtin(name string) bool {
	return t.builtin[kmod.Normalize(name)]
}

// readInfos reads the .modinfo of the named modules that have none yet, in
// parallel.
func (t *Tree) readInfos(ctx context.Context, names []string) error {
	t.mu.Lock()
	var todo []*module
	seen := map[string]bool{}
	for _, n := range names {
		if m := t.mods[n]; m != nil && m.info == nil && !seen[n] {
			seen[n] = true
			todo = append(todo, m)
		}
	}
	t.mu.Unlock()
	if len(todo) == 0 {
		return nil
	}
	infos := make([]*kmod.ModInfo, len(todo))
	err := parallel(ctx, t.jobs, len(todo), func(i int) error {
		mi, err := kmod.ReadModInfo(todo[i].path)
		if err != nil {
			return err
		}
		infos[i] = &mi
		return nil
	})
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, m := range todo {
		m.info = infos[i]
		t.cache.put(m.rel, m.size, m.mtime, infos[i])
	}
	return nil
}

// info returns the metadata of a loadable module, reading it if needed.
func (t *Tree) info(ctx context.Context, name string) (*kmod.ModInfo, error) {
	if err := t.readInfos(ctx, []string{name}); err != nil {
		return nil, err
	}
	m := t.mods[name]
	if m == nil {
		return nil, fmt.Errorf("module %s: %w", name, fs.ErrNotExist)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return m.info, nil
}

// indexed reports whether the directory's index files describe module name.
func (t *Tree) indexed(name string) bool {
	m := t.mods[name]
	if t.index == nil || m == nil {
		return false
	}
	p, ok := t.index.Path(name)
	return ok && p == m.rel
}

// deps returns the hard dependencies of a loadable module.
func (t *Tree) deps(ctx context.Context, name string) ([]string, error) {
	if t.indexed(name) {
		return t.index.Deps(name), nil
	}
	mi, err := t.info(ctx, name)
	if err != nil {
		return nil, err
	}
	return mi.Depends, nil
}

// softDeps returns the names (module names or aliases, unresolved) of the
// soft pre/post and weak dependencies of a loadable module.
func (t *Tree) softDeps(ctx context.Context, name string) (pre, post, weak []string, err error) {
	if t.indexed(name) {
		pre, post = t.index.SoftDepNames(name)
		if t.hasWeakDepFile {
			return pre, post, t.index.WeakDepNames(name), nil
		}
	}
	mi, err := t.info(ctx, name)
	if err != nil {
		return nil, nil, nil, err
	}
	if !t.indexed(name) {
		pre, post = mi.SoftPre, mi.SoftPost
	}
	return pre, post, mi.Weak, nil
}

// lookup resolves a soft dependency name as modprobe would: a module name,
// else the modules with a matching alias, else a builtin.
func (t *Tree) lookup(ctx context.Context, name string) (mods []string, builtin bool, err error) {
	n := kmod.NormalizeAlias(name)
	if _, ok := t.mods[n]; ok {
		return []string{n}, false, nil
	}
	idx := t.index
	if idx == nil {
		if idx, err = t.aliasIndex(ctx); err != nil {
			return nil, false, err
		}
	}
	mods, builtin = idx.Lookup(n)
	// Only modules that are really in the tree (modules.dep may be stale).
	var out []string
	for _, m := range mods {
		if _, ok := t.mods[m]; ok {
			out = append(out, m)
		}
	}
	return out, builtin || t.builtin[n], nil
}

// aliasIndex builds, once, an Index of every module's aliases from the
// .modinfo of all modules (read in parallel, or from the cache).
func (t *Tree) aliasIndex(ctx context.Context) (*kmod.Index, error) {
	t.aliasOnce.Do(func() {
		names := t.Modules()
		if t.aliasErr = t.readInfos(ctx, names); t.aliasErr != nil {
			return
		}
		f := kmod.IndexFiles{Builtin: t.builtinPaths, BuiltinModInfo: t.builtinFields}
		t.mu.Lock()
		for _, n := range names {
			m := t.mods[n]
			f.Dep = append(f.Dep, kmod.Dep{Path: m.rel})
			for _, a := range m.info.Aliases {
				f.Alias = append(f.Alias, kmod.Alias{Pattern: a, Module: n})
			}
		}
		t.mu.Unlock()
		t.aliasIdx = kmod.NewIndex(f)
	})
	return t.aliasIdx, t.aliasErr
}

// SaveCache writes the metadata cache if anything was read since Load.
// Resolve calls it; errors only mean the next build is slower.
func (t *Tree) SaveCache() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cache.save()
}

// parallel runs fn(0..n-1) on up to jobs goroutines and returns the first
// error; it stops early when ctx is done.
func parallel(ctx context.Context, jobs, n int, fn func(i int) error) error {
	if jobs > n {
		jobs = n
	}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := first != nil
				mu.Unlock()
				if stop || i >= n {
					return
				}
				err := ctx.Err()
				if err == nil {
					err = fn(i)
				}
				if err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
	wg.Wait()
	return first
}
