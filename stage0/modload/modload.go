// Package modload loads kernel modules the way modprobe would, without
// modprobe: it plans with a kmod.Index (dependencies and soft dependencies
// first, builtins skipped), loads each module once with finit_module(2),
// runs independent modules in parallel, and finds the modules the present
// hardware needs by matching the modalias files in sysfs (coldplug).
package modload

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

// Loader loads modules from one module directory. It remembers every module
// it tried, so each is loaded at most once however often it is asked for.
// It is safe for concurrent use (coldplug and hotplug share one Loader).
type Loader struct {
	index *kmod.Index
	dir   string
	sys   machine.Machine
	log   *slog.Logger
	// params returns the options for a module (from the command line).
	params func(module string) string
	// blacklisted reports modules never to load on request or by alias.
	blacklisted func(module string) bool
	sem         chan struct{}

	mu    sync.Mutex
	state map[string]*entry
	order []string // modules in the order their loads finished
}

type entry struct {
	done chan struct{}
	err  error
	dur  time.Duration
}

// Config holds a Loader's settings.
type Config struct {
	Index *kmod.Index
	Dir   string          // module directory, e.g. /usr/lib/modules/KVER
	Sys   machine.Machine // its LoadModule loads the module files
	Log   *slog.Logger
	// Params returns the finit_module parameters of a module; nil means none.
	Params func(module string) string
	// Blacklisted reports whether a module must not be loaded by name or
	// alias (module_blacklist=, rd.driver.blacklist=); nil means none are.
	// Dependencies of other modules are still loaded, as modprobe does.
	Blacklisted func(module string) bool
	// Parallel is how many modules may load at once; 0 means 4.
	Parallel int
}

// New returns a Loader.
func New(c Config) *Loader {
	if c.Params == nil {
		c.Params = func(string) string { return "" }
	}
	if c.Blacklisted == nil {
		c.Blacklisted = func(string) bool { return false }
	}
	if c.Parallel <= 0 {
		c.Parallel = 4
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return &Loader{
		index: c.Index, dir: c.Dir, sys: c.Sys, log: c.Log,
		params: c.Params, blacklisted: c.Blacklisted,
		sem:   make(chan struct{}, c.Parallel),
		state: map[string]*entry{},
	}
}

// ModuleError reports a module that failed to load.
type ModuleError struct {
	Module string
	Err    error
}

func (e *ModuleError) Error() string { return fmt.Sprintf("load module %s: %v", e.Module, e.Err) }
func (e *ModuleError) Unwrap() error { return e.Err }

// Load loads the named modules (names or aliases, as modprobe takes them)
// and what they need, and waits until all of them are done. Blacklisted
// names are skipped. The error joins one error per name that cannot be
// planned and per module that failed.
func (l *Loader) Load(ctx context.Context, names ...string) error {
	var errs []error
	var steps []kmod.Step
	for _, name := range names {
		if l.blacklisted(kmod.Normalize(name)) {
			l.log.Info("module blacklisted, not loading", "module", name)
			continue
		}
		plan, err := l.index.LoadPlan(name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		steps = append(steps, plan...)
	}
	return errors.Join(append(errs, l.run(ctx, steps))...)
}

// LoadForAliases loads the modules whose aliases match the given modalias
// strings (from sysfs or uevents), minus blacklisted ones.
func (l *Loader) LoadForAliases(ctx context.Context, modaliases ...string) error {
	var names []string
	seen := map[string]bool{}
	for _, a := range modaliases {
		for _, m := range l.index.Match(a) {
			if seen[m] {
				continue
			}
			seen[m] = true
			if l.blacklisted(m) {
				l.log.Info("module blacklisted, not loading", "module", m, "modalias", a)
				continue
			}
			names = append(names, m)
		}
	}
	if len(names) == 0 {
		return nil
	}
	return l.Load(ctx, names...)
}

// run starts every step not started before (by this or another call),
// each once its After modules are done, and waits for all steps.
func (l *Loader) run(ctx context.Context, steps []kmod.Step) error {
	var wait []*entry
	var names []string
	l.mu.Lock()
	for _, s := range steps {
		e, ok := l.state[s.Name]
		if !ok {
			e = &entry{done: make(chan struct{})}
			l.state[s.Name] = e
			// After always names earlier steps of the plan, whose
			// entries exist by now.
			after := make([]*entry, 0, len(s.After))
			for _, a := range s.After {
				after = append(after, l.state[a])
			}
			go l.load(ctx, s, e, after)
		}
		if !containsEntry(wait, e) {
			wait = append(wait, e)
			names = append(names, s.Name)
		}
	}
	l.mu.Unlock()
	var errs []error
	for i, e := range wait {
		select {
		case <-e.done:
			if e.err != nil {
				errs = append(errs, &ModuleError{Module: names[i], Err: e.err})
			}
		case <-ctx.Done():
			return fmt.Errorf("load modules: %w", ctx.Err())
		}
	}
	return errors.Join(errs...)
}

func containsEntry(list []*entry, e *entry) bool {
	for _, x := range list {
		if x == e {
			return true
		}
	}
	return false
}

func (l *Loader) load(ctx context.Context, s kmod.Step, e *entry, after []*entry) {
	defer close(e.done)
	for _, a := range after {
		select {
		case <-a.done:
			// Loaded or failed: modprobe would go on either way; the
			// kernel reports missing symbols itself.
		case <-ctx.Done():
			e.err = ctx.Err()
			return
		}
	}
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		e.err = ctx.Err()
		return
	}
	defer func() { <-l.sem }()
	path := filepath.Join(l.dir, s.Path)
	params := l.params(s.Name)
	start := time.Now()
	err := l.sys.LoadModule(path, params)
	e.dur = time.Since(start)
	switch {
	case err == nil && params != "":
		l.log.Info("loaded module", "module", s.Name, "file", s.Path, "params", params, "took", e.dur.Round(time.Millisecond))
	case err == nil:
		l.log.Info("loaded module", "module", s.Name, "file", s.Path, "took", e.dur.Round(time.Millisecond))
	case isExist(err):
		l.log.Debug("module already loaded", "module", s.Name)
	case isNoDevice(err):
		// The module refused to load because the hardware it drives
		// is absent (crc32c-intel without SSE4.2, a matched driver
		// whose probe failed): normal when loading by alias.
		e.err = err
		l.log.Info("module found nothing to drive", "module", s.Name, "err", err)
	default:
		e.err = err
		l.log.Warn("module failed to load", "module", s.Name, "path", path, "err", err)
	}
	l.mu.Lock()
	l.order = append(l.order, s.Name)
	l.mu.Unlock()
}

// Loaded returns the modules tried so far, in the order they finished.
func (l *Loader) Loaded() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.order...)
}

// Failed returns the modules that failed to load, with their errors, sorted
// by name.
func (l *Loader) Failed() []ModuleError {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []ModuleError
	for name, e := range l.state {
		select {
		case <-e.done:
			if e.err != nil {
				out = append(out, ModuleError{Module: name, Err: e.err})
			}
		default:
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Module < out[j].Module })
	return out
}
