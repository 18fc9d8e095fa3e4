package kmod

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
)

// IndexFiles holds the parsed text index files of a module directory.
type IndexFiles struct {
	Dep            []Dep
	Alias          []Alias
	SoftDep        []SoftDep
	WeakDep        []WeakDep
	Builtin        []string // modules.builtin paths
	BuiltinModInfo []Field
	Order          []string // modules.order paths
}

// Index answers which modules a device or a name needs and in which order
// to load them. It is read-only once built and safe for concurrent use.
type Index struct {
	paths          map[string]string   // module → path relative to the module directory
	deps           map[string][]string // module → hard dependencies, in modules.dep order
	soft           map[string]SoftDep  // module → all its soft dependencies, merged
	weak           map[string][]string // module → weak dependency names
	aliases        []pattern
	builtin        map[string]bool
	builtinAliases []pattern
}

type pattern struct {
	pat    string // normalized pattern
	prefix string // literal prefix of pat
	module string
}

func newPattern(pat, module string) pattern {
	pat = NormalizeAlias(pat)
	return pattern{pat: pat, prefix: literalPrefix(pat), module: module}
}

// NewIndex builds an Index from parsed index files. A module's softdep lines
// are merged (kmod's modprobe would honour only the first).
func NewIndex(f IndexFiles) *Index {
	x := &Index{
		paths:   make(map[string]string, len(f.Dep)),
		deps:    make(map[string][]string, len(f.Dep)),
		soft:    map[string]SoftDep{},
		weak:    map[string][]string{},
		builtin: make(map[string]bool, len(f.Builtin)),
	}
	for _, d := range f.Dep {
		n := NameFromPath(d.Path)
		x.paths[n] = d.Path
		if len(d.Deps) > 0 {
			names := make([]string, len(d.Deps))
			for i, p := range d.Deps {
				names[i] = NameFromPath(p)
			}
			x.deps[n] = names
		}
	}
	x.aliases = make([]pattern, 0, len(f.Alias))
	for _, a := range f.Alias {
		x.aliases = append(x.aliases, newPattern(a.Pattern, Normalize(a.Module)))
	}
	for _, s := range f.SoftDep {
		n := Normalize(s.Module)
		m := x.soft[n]
		m.Module = n
		m.Pre = appendNew(m.Pre, s.Pre...)
		m.Post = appendNew(m.Post, s.Post...)
		x.soft[n] = m
	}
	for _, w := range f.WeakDep {
		n := Normalize(w.Module)
		x.weak[n] = appendNew(x.weak[n], w.Deps...)
	}
	for _, p := range f.Builtin {
		x.builtin[NameFromPath(p)] = true
	}
	for _, fl := range f.BuiltinModInfo {
		// modules.builtin.modinfo names every builtin, also those
		// modules.builtin lacks on some kernels.
		x.builtin[fl.Module] = true
		if fl.Key == "alias" && fl.Value != "" {
			x.builtinAliases = append(x.builtinAliases, newPattern(fl.Value, fl.Module))
		}
	}
	return x
}

func appendNew(list []string, names ...string) []string {
	for _, n := range names {
		if !slices.Contains(list, n) {
			list = append(list, n)
		}
	}
	return list
}

// ReadIndex reads the text index files of the module directory dir
// (/usr/lib/modules/KVER). modules.dep is required; the others are optional.
func ReadIndex(dir string) (*Index, error) {
	x, err := ReadIndexFS(os.DirFS(dir))
	if err != nil {
		return nil, fmt.Errorf("read module index in %s: %w", dir, err)
	}
	return x, nil
}

// ReadIndexFS is ReadIndex on a file system whose root is the module directory.
func ReadIndexFS(fsys fs.FS) (*Index, error) {
	var f IndexFiles
	read := func(name string, required bool, parse func([]byte) error) error {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			if !required && errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		return parse(data)
	}
	err := errors.Join(
		read(DepFile, true, func(b []byte) (err error) { f.Dep, err = ParseDep(bytes.NewReader(b)); return }),
		read(AliasFile, false, func(b []byte) (err error) { f.Alias, err = ParseAlias(bytes.NewReader(b)); return }),
		read(SoftDepFile, false, func(b []byte) (err error) { f.SoftDep, err = ParseSoftDep(bytes.NewReader(b)); return }),
		read(WeakDepFile, false, func(b []byte) (err error) { f.WeakDep, err = ParseWeakDep(bytes.NewReader(b)); return }),
		read(BuiltinFile, false, func(b []byte) (err error) { f.Builtin, err = ParseList(bytes.NewReader(b)); return }),
		read(BuiltinModInfoFile, false, func(b []byte) error { f.BuiltinModInfo = ParseBuiltinModInfo(b); return nil }),
	)
	if err != nil {
		return nil, err
	}
	return NewIndex(f), nil
}

// Modules returns the names of all loadable modules, sorted.
func (x *Index) Modules() []string {
	out := make([]string, 0, len(x.paths))
	for n := range x.paths {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Path returns the path of module name relative to the module directory.
func (x *Index) Path(name string) (string, bool) {
	p, ok := x.paths[Normalize(name)]
	return p, ok
}

// Builtin reports whether module name is built into the kernel.
func (x *Index) Builtin(name string) bool {
	return x.builtin[Normalize(name)]
}

// Deps returns the hard dependencies of module name as modules.dep lists
// them: all of them, transitively when depmod wrote the file, so that each
// must be loaded before name.
func (x *Index) Deps(name string) []string {
	return x.deps[Normalize(name)]
}

// SoftDeps returns the loadable modules module name wants loaded before
// (pre) and after (post) itself; names that resolve to nothing or to
// builtins are left out.
func (x *Index) SoftDeps(name string) (pre, post []string) {
	s := x.soft[Normalize(name)]
	return x.resolve(s.Pre), x.resolve(s.Post)
}

// SoftDepNames returns the soft dependencies of module name as the index
// files give them, unresolved (module names or aliases).
func (x *Index) SoftDepNames(name string) (pre, post []string) {
	s := x.soft[Normalize(name)]
	return s.Pre, s.Post
}

// WeakDepNames returns the weak dependencies of module name, unresolved.
func (x *Index) WeakDepNames(name string) []string {
	return x.weak[Normalize(name)]
}

// WeakDeps returns the loadable modules that module name may request at
// run time (weakdep), resolved like SoftDeps.
func (x *Index) WeakDeps(name string) []string {
	return x.resolve(x.weak[Normalize(name)])
}

func (x *Index) resolve(names []string) []string {
	var out []string
	for _, n := range names {
		mods, _ := x.Lookup(n)
		out = appendNew(out, mods...)
	}
	return out
}

// Match returns the loadable modules with an alias pattern matching
// modalias (as read from a device's uevent or modalias file), sorted.
func (x *Index) Match(modalias string) []string {
	return matchPatterns(x.aliases, NormalizeAlias(modalias))
}

func matchPatterns(pats []pattern, s string) []string {
	var out []string
	for i := range pats {
		p := &pats[i]
		if strings.HasPrefix(s, p.prefix) && MatchPattern(p.pat, s) && !slices.Contains(out, p.module) {
			out = append(out, p.module)
		}
	}
	sort.Strings(out)
	return out
}

// Lookup resolves a name the way modprobe does: a loadable module's name
// gives that module; otherwise every loadable module with a matching alias;
// otherwise builtin reports whether the name or an alias of it is built in.
func (x *Index) Lookup(name string) (modules []string, builtin bool) {
	n := NormalizeAlias(name)
	if _, ok := x.paths[n]; ok {
		return []string{n}, false
	}
	if mods := matchPatterns(x.aliases, n); len(mods) > 0 {
		return mods, false
	}
	if x.builtin[n] {
		return nil, true
	}
	return nil, len(matchPatterns(x.builtinAliases, n)) > 0
}

// Step is one module of a load plan.
type Step struct {
	Name  string
	Path  string   // relative to the module directory
	After []string // modules of the plan that must be loaded (or have failed) first
}

// LoadPlan returns the modules to load for the given names (module names or
// aliases) in a valid order, each once, with what each must wait for, so
// that independent modules can be loaded in parallel. Soft "pre"
// dependencies come before a module, hard dependencies before their
// dependents, soft "post" dependencies after; builtins are skipped. A name
// that resolves to nothing, or a missing hard dependency, is an error
// wrapping fs.ErrNotExist. Soft dependencies that cannot be loaded are left
// out.
func (x *Index) LoadPlan(names ...string) ([]Step, error) {
	p := planner{x: x, ok: map[string]error{}}
	var roots []string
	for _, name := range names {
		mods, builtin := x.Lookup(name)
		if len(mods) == 0 {
			if builtin {
				continue
			}
			return nil, fmt.Errorf("module %s: %w", name, fs.ErrNotExist)
		}
		for _, m := range mods {
			if err := p.loadable(m); err != nil {
				return nil, err
			}
		}
		roots = append(roots, mods...)
	}
	p.order = DepOrder(roots, p.before, p.after)
	return p.steps(), nil
}

// LoadOrder is LoadPlan reduced to the module names in load order.
func (x *Index) LoadOrder(names ...string) ([]string, error) {
	plan, err := x.LoadPlan(names...)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(plan))
	for i, s := range plan {
		out[i] = s.Name
	}
	return out, nil
}

type planner struct {
	x     *Index
	ok    map[string]error // memo of loadable
	order []string
}

// DepOrder lists roots and, transitively, what they need, each once, depth
// first: a module comes after the modules before(m) names and ahead of those
// after(m) names (after may be nil). A cycle is cut where it closes.
func DepOrder(roots []string, before, after func(m string) []string) []string {
	var out []string
	seen := map[string]bool{}
	var visit func(m string)
	visit = func(m string) {
		if seen[m] {
			return
		}
		seen[m] = true
		for _, d := range before(m) {
			visit(d)
		}
		out = append(out, m)
		if after != nil {
			for _, d := range after(m) {
				visit(d)
			}
		}
	}
	for _, m := range roots {
		visit(m)
	}
	return out
}

// loadable checks that m and all its hard dependencies, transitively, are
// in the index.
func (p *planner) loadable(m string) error {
	if err, seen := p.ok[m]; seen {
		return err
	}
	p.ok[m] = nil // a cycle is not this check's business
	var err error
	if _, ok := p.x.paths[m]; !ok {
		err = fmt.Errorf("module %s: %w", m, fs.ErrNotExist)
	} else {
		for _, d := range p.x.deps[m] {
			if err = p.loadable(d); err != nil {
				err = fmt.Errorf("module %s: dependency %w", m, err)
				break
			}
		}
	}
	p.ok[m] = err
	return err
}

// before lists what must load ahead of m: its loadable soft "pre"
// dependencies, then its hard dependencies (modules.dep lists them to be
// loaded last to first).
func (p *planner) before(m string) []string {
	pre, _ := p.x.SoftDeps(m)
	out := p.loadableOnly(pre)
	deps := p.x.deps[m]
	for i := len(deps) - 1; i >= 0; i-- {
		out = append(out, deps[i])
	}
	return out
}

// after lists m's loadable soft "post" dependencies.
func (p *planner) after(m string) []string {
	_, post := p.x.SoftDeps(m)
	return p.loadableOnly(post)
}

func (p *planner) loadableOnly(names []string) []string {
	var out []string
	for _, s := range names {
		if p.loadable(s) == nil {
			out = append(out, s)
		}
	}
	return out
}

// steps turns the order into a plan. Every After edge points to an earlier
// step, so the plan has no cycles even when soft dependencies do.
func (p *planner) steps() []Step {
	pos := make(map[string]int, len(p.order))
	for i, m := range p.order {
		pos[m] = i
	}
	after := make([][]string, len(p.order))
	add := func(i int, dep string) {
		if j, ok := pos[dep]; ok && j < i && !slices.Contains(after[i], dep) {
			after[i] = append(after[i], dep)
		}
	}
	for i, m := range p.order {
		pre, post := p.x.SoftDeps(m)
		for _, d := range p.x.deps[m] {
			add(i, d)
		}
		for _, d := range pre {
			add(i, d)
		}
		for _, d := range post {
			if j, ok := pos[d]; ok {
				add(j, m)
			}
		}
	}
	out := make([]Step, len(p.order))
	for i, m := range p.order {
		sort.Strings(after[i])
		out[i] = Step{Name: m, Path: p.x.paths[m], After: after[i]}
	}
	return out
}
