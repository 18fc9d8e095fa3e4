package modules

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/kmod"
)

// Selection says which modules go into an image.
//
// Include and Exclude rules take three forms, told apart by their characters:
//   - a rule containing '/' is a path rule: it matches the modules whose
//     path in the module directory, with or without the leading "kernel/",
//     is the rule or lies below it: "kernel/drivers/ata/", "fs/btrfs",
//     "kernel/fs/ext4/ext4.ko";
//   - a rule made only of letters, digits, '_' and '-' is a module name;
//   - anything else is a regular expression (Go RE2 syntax) that must match
//     the whole module name: "dm_.*", "virtio.*", "(ahci|nvme)".
//
// Names and regular expressions are normalized like module names ('-'
// becomes '_', except inside [...]) before matching normalized names.
type Selection struct {
	Include []string
	// Exclude wins over Include, and a module excluded is never in the set.
	// A module whose hard dependency is excluded cannot load, so it is left
	// out too: that is an error when an Include or ForceLoad rule names the
	// module, a warning when a regular expression or path rule matched it,
	// and silent for soft dependencies.
	Exclude []string
	// ForceLoad names modules that stage0 loads at boot whatever devices it
	// finds; they are included like Include names.
	ForceLoad []string
	// Wants are modules a detector (host-only detection) found the image
	// needs, each with its own reason; they are included like Include names.
	Wants []Want
}

// Missing says what a Want that resolves to nothing is.
type Missing uint8

const (
	MissingError  Missing = iota // an error naming the Want and its reason
	MissingWarn                  // a warning (e.g. a module loaded on a host running another kernel)
	MissingIgnore                // a debug message (e.g. a device modalias no module matches)
)

// Want is one module an image needs, found by a detector rather than
// written by a user.
type Want struct {
	// Name is a module name or an alias (a device modalias, "fs-ext4",
	// "md-raid1"), resolved as modprobe does: the module of that name, else
	// every module with a matching alias, else a builtin.
	Name      string
	Reason    Reason // HostLoaded or RootDevice, with the detector's description as Rule
	IfMissing Missing
	// ForceLoad makes the modules Name resolves to Set.ForceLoad entries:
	// modules the kernel would request_module() itself (crypto
	// algorithms, device-mapper targets), which the image has no modprobe
	// for, so stage0 loads them at boot.
	ForceLoad bool
}

// Module is one loadable module of a Set.
type Module struct {
	Name     string   // normalized
	Path     string   // host path
	Rel      string   // path relative to the module directory, as on the host (maybe compressed)
	Size     int64    // size of the host file
	Firmware []string // firmware= of the module
	Reasons  []Reason // why it is in the set, each once: an include rule, a Want, a dependency, …
}

// Builtin is a module built into the kernel that a rule or a dependency
// asked for; it needs nothing in the image.
type Builtin struct {
	Name    string
	Reasons []Reason
}

// Set is the result of Resolve.
type Set struct {
	Modules   []Module  // sorted by name
	Builtins  []Builtin // sorted by name
	Firmware  []string  // firmware= of all Modules, sorted, each once
	ForceLoad []string  // ForceLoad names, then the modules of ForceLoad Wants, that are loadable modules of the set

	tree  *Tree
	deps  map[string][]string // hard dependencies of each module
	infos map[string]*kmod.ModInfo
}

type ruleKind uint8

const (
	nameRule ruleKind = iota
	regexRule
	pathRule
)

type rule struct {
	text string
	kind ruleKind
	name string         // nameRule: normalized name
	re   *regexp.Regexp // regexRule
	path string         // pathRule: without leading or trailing '/'
}

func parseRule(s string) (rule, error) {
	r := rule{text: s}
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return r, fmt.Errorf("empty module rule")
	case strings.Contains(s, "/"):
		r.kind, r.path = pathRule, strings.Trim(s, "/")
	case isName(s):
		r.kind, r.name = nameRule, kmod.Normalize(s)
	default:
		re, err := regexp.Compile("^(?:" + kmod.NormalizeAlias(s) + ")$")
		if err != nil {
			return r, fmt.Errorf("module rule %q: %w", s, err)
		}
		r.kind, r.re = regexRule, re
	}
	return r, nil
}

func isName(s string) bool {
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// match reports whether the rule matches a module by name and relative path.
func (r *rule) match(name, rel string) bool {
	switch r.kind {
	case nameRule:
		return name == r.name
	case regexRule:
		return r.re.MatchString(name)
	}
	under := func(p string) bool {
		return p == r.path || strings.HasPrefix(p, r.path+"/") || kmod.StripCompressionExt(p) == r.path
	}
	return under(rel) || under(strings.TrimPrefix(rel, "kernel/"))
}

func parseRules(list []string) ([]rule, error) {
	var out []rule
	var errs []error
	for _, s := range list {
		r, err := parseRule(s)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, r)
	}
	return out, errors.Join(errs...)
}

type itemKind uint8

const (
	explicit itemKind = iota // named by Include or ForceLoad
	matched                  // matched by a regular expression or path rule
	hardDep                  // hard dependency of a module in the set
	softDep                  // softdep or weakdep of a module in the set
)

type item struct {
	name   string
	reason Reason
	kind   itemKind
}

type resolver struct {
	t        *Tree
	log      *slog.Logger
	exclude  []rule
	set      map[string]*Module
	builtins map[string]*Builtin
	deps     map[string][]string
	blocked  map[string]string // module → excluded module it needs ("" if none)
	forced   []string          // modules of ForceLoad Wants, in order
	queue    []item
	errs     []error
}

// Resolve computes the modules an image needs: those the Include and
// ForceLoad rules select, plus, transitively, their hard dependencies, soft
// dependencies (pre and post) and weak dependencies. A soft or weak
// dependency naming nothing loadable (missing or builtin) is skipped. An
// Include or ForceLoad name that is neither a module nor a builtin is an
// error naming it; a regular expression or path rule matching nothing is a
// warning. Builtins are never copied and are listed in Set.Builtins. See
// Selection for exclusion. Metadata read from modules goes to the cache.
func Resolve(ctx context.Context, t *Tree, sel Selection) (*Set, error) {
	include, err1 := parseRules(sel.Include)
	exclude, err2 := parseRules(sel.Exclude)
	if err := errors.Join(err1, err2); err != nil {
		return nil, err
	}
	r := &resolver{
		t:        t,
		log:      t.log,
		exclude:  exclude,
		set:      map[string]*Module{},
		builtins: map[string]*Builtin{},
		deps:     map[string][]string{},
		blocked:  map[string]string{},
	}
	r.roots(include, sel.ForceLoad)
	if err := r.wants(ctx, sel.Wants); err != nil {
		return nil, err
	}
	if err := r.closure(ctx); err != nil {
		return nil, err
	}
	if err := errors.Join(r.errs...); err != nil {
		return nil, err
	}
	set, err := r.finish(ctx, sel.ForceLoad)
	if err != nil {
		return nil, err
	}
	if err := t.SaveCache(); err != nil {
		t.log.Warn("cannot save the module metadata cache", "err", err)
	}
	return set, nil
}

func (r *resolver) addBuiltin(name string, reason Reason) {
	b := r.builtins[name]
	if b == nil {
		b = &Builtin{Name: name}
		r.builtins[name] = b
	}
	if !slices.Contains(b.Reasons, reason) {
		b.Reasons = append(b.Reasons, reason)
	}
}

// roots queues what the rules select.
func (r *resolver) roots(include []rule, forceLoad []string) {
	t := r.t
	for i := range include {
		ru := &include[i]
		reason := Reason{Kind: Included, Rule: ru.text}
		if ru.kind == nameRule {
			switch {
			case t.mods[ru.name] != nil:
				r.queue = append(r.queue, item{ru.name, reason, explicit})
			case t.builtin[ru.name]:
				r.addBuiltin(ru.name, reason)
			default:
				r.errs = append(r.errs, fmt.Errorf("include %s: no module or builtin of that name in %s: %w", ru.text, t.Dir, fs.ErrNotExist))
			}
			continue
		}
		n := 0
		for _, name := range t.Modules() {
			if ru.match(name, t.mods[name].rel) {
				r.queue = append(r.queue, item{name, reason, matched})
				n++
			}
		}
		for _, p := range t.builtinPaths {
			if name := kmod.NameFromPath(p); ru.match(name, p) {
				r.addBuiltin(name, reason)
				n++
			}
		}
		if ru.kind == regexRule {
			for _, f := range t.builtinFields {
				if _, seen := r.builtins[f.Module]; !seen && ru.match(f.Module, "") {
					r.addBuiltin(f.Module, reason)
					n++
				}
			}
		}
		if n == 0 {
			r.log.Warn("module rule matches nothing", "rule", ru.text, "dir", t.Dir)
		}
	}
	for _, s := range forceLoad {
		name := kmod.Normalize(strings.TrimSpace(s))
		switch {
		case !isName(name) || name == "":
			r.errs = append(r.errs, fmt.Errorf("force-load %q: not a module name", s))
		case t.mods[name] != nil:
			r.queue = append(r.queue, item{name, Reason{Kind: ForceLoaded, Rule: s}, explicit})
		case t.builtin[name]:
			r.addBuiltin(name, Reason{Kind: ForceLoaded, Rule: s})
		default:
			r.errs = append(r.errs, fmt.Errorf("force-load %s: no module or builtin of that name in %s: %w", s, t.Dir, fs.ErrNotExist))
		}
	}
}

// wants queues the modules the Wants resolve to.
func (r *resolver) wants(ctx context.Context, wants []Want) error {
	for _, w := range wants {
		name := strings.TrimSpace(w.Name)
		if name == "" {
			r.errs = append(r.errs, fmt.Errorf("module wanted (%s): empty name", w.Reason))
			continue
		}
		mods, builtin, err := r.t.lookup(ctx, name)
		if err != nil {
			return err
		}
		for _, m := range mods {
			r.queue = append(r.queue, item{m, w.Reason, explicit})
			if w.ForceLoad && !slices.Contains(r.forced, m) {
				r.forced = append(r.forced, m)
			}
		}
		switch {
		case len(mods) > 0:
		case builtin:
			n := kmod.NormalizeAlias(name)
			if !r.t.builtin[n] {
				n = "alias " + n
			}
			r.addBuiltin(n, w.Reason)
		case w.IfMissing == MissingWarn:
			r.log.Warn("no module or builtin of that name in the kernel's tree, skipped", "name", name, "reason", w.Reason.String(), "dir", r.t.Dir)
		case w.IfMissing == MissingIgnore:
			r.log.Debug("no module matches, skipped", "name", name, "reason", w.Reason.String())
		default:
			r.errs = append(r.errs, fmt.Errorf("%s: no module, alias or builtin %s in %s: %w", w.Reason, name, r.t.Dir, fs.ErrNotExist))
		}
	}
	return nil
}

// closure processes the queue in waves; each wave's metadata is read in
// parallel first.
func (r *resolver) closure(ctx context.Context) error {
	for len(r.queue) > 0 {
		wave := r.queue
		r.queue = nil
		names := make([]string, 0, len(wave))
		for _, it := range wave {
			if r.set[it.name] == nil {
				names = append(names, it.name)
			}
		}
		if err := r.t.readInfos(ctx, names); err != nil {
			return err
		}
		for _, it := range wave {
			if err := r.process(ctx, it); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *resolver) process(ctx context.Context, it item) error {
	if m := r.set[it.name]; m != nil {
		if !slices.Contains(m.Reasons, it.reason) {
			m.Reasons = append(m.Reasons, it.reason)
		}
		return nil
	}
	tm := r.t.mods[it.name]
	if tm == nil {
		// A dependency named by .modinfo or modules.dep that is not there.
		r.errs = append(r.errs, fmt.Errorf("module %s (%s): not in %s: %w", it.name, it.reason, r.t.Dir, fs.ErrNotExist))
		return nil
	}
	culprit, err := r.blockedBy(ctx, it.name)
	if err != nil {
		return err
	}
	if culprit != "" {
		r.skip(it, culprit)
		return nil
	}
	r.set[it.name] = &Module{Name: it.name, Path: tm.path, Rel: tm.rel, Size: tm.size, Reasons: []Reason{it.reason}}
	deps, err := r.t.deps(ctx, it.name)
	if err != nil {
		return err
	}
	r.deps[it.name] = deps
	for _, d := range deps {
		r.queue = append(r.queue, item{d, Reason{Kind: Dependency, Parent: it.name}, hardDep})
	}
	pre, post, weak, err := r.t.softDeps(ctx, it.name)
	if err != nil {
		return err
	}
	for _, l := range []struct {
		names []string
		kind  ReasonKind
	}{{pre, SoftdepPre}, {post, SoftdepPost}, {weak, Weakdep}} {
		reason := Reason{Kind: l.kind, Parent: it.name}
		for _, s := range l.names {
			mods, builtin, err := r.t.lookup(ctx, s)
			if err != nil {
				return err
			}
			for _, m := range mods {
				r.queue = append(r.queue, item{m, reason, softDep})
			}
			switch {
			case len(mods) > 0:
			case builtin:
				if n := kmod.Normalize(s); r.t.builtin[n] {
					r.addBuiltin(n, reason)
				}
			default:
				r.log.Debug("soft dependency not found, skipped", "module", it.name, "name", s)
			}
		}
	}
	return nil
}

// skip reports a module left out because it, or a hard dependency of it,
// is excluded.
func (r *resolver) skip(it item, culprit string) {
	switch {
	case it.kind == explicit && culprit != it.name:
		r.errs = append(r.errs, fmt.Errorf("module %s (%s) needs %s, which is excluded", it.name, it.reason, culprit))
	case it.kind == explicit:
		r.log.Warn("module is both included and excluded: excluded", "module", it.name, "reason", it.reason.String())
	case it.kind == matched && culprit != it.name:
		r.log.Warn("module left out: it needs an excluded module", "module", it.name, "reason", it.reason.String(), "excluded", culprit)
	case it.kind == hardDep:
		// Cannot happen: the dependent would have been blocked.
		r.errs = append(r.errs, fmt.Errorf("module %s (%s) is excluded", it.name, it.reason))
	default:
		r.log.Debug("module excluded", "module", it.name, "reason", it.reason.String())
	}
}

// blockedBy returns the excluded module that name is or needs, or "".
func (r *resolver) blockedBy(ctx context.Context, name string) (string, error) {
	if len(r.exclude) == 0 {
		return "", nil
	}
	if c, ok := r.blocked[name]; ok {
		return c, nil
	}
	r.blocked[name] = "" // breaks cycles, which depmod does not allow anyway
	culprit := ""
	for i := range r.exclude {
		if r.exclude[i].match(name, r.t.mods[name].rel) {
			culprit = name
			break
		}
	}
	if culprit == "" {
		deps, err := r.t.deps(ctx, name)
		if err != nil {
			return "", err
		}
		for _, d := range deps {
			if r.t.mods[d] == nil {
				continue // reported when d is processed
			}
			c, err := r.blockedBy(ctx, d)
			if err != nil {
				return "", err
			}
			if c != "" {
				culprit = c
				break
			}
		}
	}
	r.blocked[name] = culprit
	return culprit, nil
}

// finish reads the metadata of every module of the set (for firmware and
// the image's index files) and builds the Set.
func (r *resolver) finish(ctx context.Context, forceLoad []string) (*Set, error) {
	names := make([]string, 0, len(r.set))
	for n := range r.set {
		names = append(names, n)
	}
	sort.Strings(names)
	if err := r.t.readInfos(ctx, names); err != nil {
		return nil, err
	}
	s := &Set{tree: r.t, deps: r.deps, infos: map[string]*kmod.ModInfo{}}
	fw := map[string]bool{}
	for _, n := range names {
		mi, err := r.t.info(ctx, n)
		if err != nil {
			return nil, err
		}
		s.infos[n] = mi
		m := r.set[n]
		m.Firmware = mi.Firmware
		for _, f := range mi.Firmware {
			fw[f] = true
		}
		for _, d := range r.deps[n] {
			if r.set[d] == nil {
				return nil, fmt.Errorf("module %s: dependency %s: %w", n, d, fs.ErrNotExist)
			}
		}
		s.Modules = append(s.Modules, *m)
	}
	for f := range fw {
		s.Firmware = append(s.Firmware, f)
	}
	sort.Strings(s.Firmware)
	for _, b := range r.builtins {
		s.Builtins = append(s.Builtins, *b)
	}
	sort.Slice(s.Builtins, func(i, j int) bool { return s.Builtins[i].Name < s.Builtins[j].Name })
	for _, f := range forceLoad {
		if n := kmod.Normalize(strings.TrimSpace(f)); r.set[n] != nil && !slices.Contains(s.ForceLoad, n) {
			s.ForceLoad = append(s.ForceLoad, n)
		}
	}
	for _, n := range r.forced {
		if r.set[n] != nil && !slices.Contains(s.ForceLoad, n) {
			s.ForceLoad = append(s.ForceLoad, n)
		}
	}
	return s, nil
}
