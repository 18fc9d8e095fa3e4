// Package build runs the whole `pkginitrd build` pipeline: configuration →
// package set → backend fetch and unpack → kernel modules → stage0 and its
// config → one streamed write of the compressed image, plus a manifest.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/backends/apt"
	"github.com/pkginitrd/pkginitrd/backends/unpack"
	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/modules/hostinfo"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
)

// Include copies a host file or directory into the image.
type Include struct {
	Src, Dest string
}

// ParseInclude parses the --include flag form "SRC:DEST" (DEST defaults to SRC).
func ParseInclude(s string) (Include, error) {
	src, dest, ok := strings.Cut(s, ":")
	if !ok {
		dest = src
	}
	if src == "" || dest == "" {
		return Include{}, fmt.Errorf("--include %q: want SRC:DEST", s)
	}
	return Include{Src: src, Dest: dest}, nil
}

// Options are the inputs of one build.
type Options struct {
	Config        *confd.Config
	KernelVersion string // "" = from --kernel-package or the newest under /usr/lib/modules
	ModulesDir    string // "" = /usr/lib/modules/KVER (or the kernel package's)
	KernelPackage string // distribution kernel package to take modules (and vmlinuz) from
	Generic       bool
	Output        string
	Manifest      string // optional path of the JSON manifest
	Includes      []Include
	Packages      []string // extra packages on top of the configuration
	CacheDir      string
	Offline       bool
	Mtime         int64  // SOURCE_DATE_EPOCH or 0
	Stage0        string // path of the static pkginitrd binary that becomes /init
	ProcDir       string // host /proc for host-only detection ("" = /proc)
	SysDir        string // host /sys for host-only detection ("" = /sys)
	FirmwareDir   string // firmware searched for the modules' firmware= files ("" = /usr/lib/firmware)
	Logger        *slog.Logger
	// ModuleFiles says how compressed modules are stored (default: by the
	// image compression and the kernel, see KeepModulesCompressed).
	ModuleFiles ModuleFiles
	// Backend overrides the configured package backend (tests).
	Backend backends.Backend
}

// Result describes a finished build.
type Result struct {
	Image    *image.Result
	Manifest *Manifest
	Vmlinuz  string // path of the kernel placed beside the image, if any
}

// Run performs a build. On failure nothing is left at opts.Output.
func Run(ctx context.Context, opts Options) (*Result, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Config == nil {
		return nil, errors.New("build: no configuration")
	}
	distro, err := opts.Config.Distro()
	if err != nil {
		return nil, err
	}
	comp, err := compress.ByName(opts.Config.Compression)
	if err != nil {
		return nil, fmt.Errorf("compression: %w", err)
	}
	if opts.Output == "" {
		opts.Output = "initrd.img"
	}
	if opts.CacheDir == "" {
		return nil, errors.New("build: no cache directory")
	}
	// Check the /init binary before any slow work.
	if err := checkStatic(opts.Stage0); err != nil {
		return nil, err
	}
	be := opts.Backend
	if be == nil {
		if be, err = newBackend(distro, log); err != nil {
			return nil, err
		}
	}
	start := time.Now()
	timings := map[string]time.Duration{}
	step := func(name string, t0 time.Time) {
		timings[name] = time.Since(t0)
		log.Debug("step done", "step", name, "took", time.Since(t0).Round(time.Millisecond))
	}

	features := enabledFeatures(opts, distro)
	var host *hostinfo.Host // host-only detection, read once (nil for --generic)
	if !opts.Generic {
		if host, err = detectHost(opts, log); err != nil {
			return nil, err
		}
		features = withHostFeatures(features, host, distro, log)
	}

	// Kernel: where its modules come from.
	t0 := time.Now()
	kern, err := locateKernel(ctx, opts, distro, be, log)
	if err != nil {
		return nil, err
	}
	step("kernel", t0)

	// Packages.
	t0 = time.Now()
	req := backends.Request{
		Packages: packageSet(opts, distro, features),
		Exclude:  distro.ExcludePackages,
		Release:  distro.Release,
		Mirror:   distro.Mirror,
		Arch:     opts.Config.Arch,
		CacheDir: opts.CacheDir,
		Offline:  opts.Offline,
	}
	log.Info("resolving packages", "backend", be.Name(), "release", req.Release, "packages", strings.Join(req.Packages, " "))
	pkgs, err := be.Fetch(ctx, req)
	if err != nil {
		return nil, err
	}
	step("fetch", t0)
	t0 = time.Now()
	roots, err := unpack.CachedAll(ctx, opts.CacheDir, pkgs, 0)
	if err != nil {
		return nil, err
	}
	step("unpack", t0)

	t0 = time.Now()
	tree := fstree.New()
	if err := addSkeleton(tree, distro.Release); err != nil {
		return nil, err
	}
	keep := func(p string) bool { return !unpack.Match(distro.Prune, p) }
	for i, p := range pkgs {
		if err := unpack.AddToTree(tree, roots[i], p.Name, keep); err != nil {
			return nil, fmt.Errorf("add package %s: %w", p.Name, err)
		}
	}
	if err := fixups(tree, distro); err != nil {
		return nil, err
	}
	step("tree", t0)

	// Modules.
	t0 = time.Now()
	modSet, err := addModules(ctx, tree, opts, kern, host, log)
	if err != nil {
		return nil, err
	}
	step("modules", t0)

	// Stage0 and its configuration.
	if err := addStage0(tree, opts.Stage0); err != nil {
		return nil, err
	}
	bc := bootconf.Config{
		KernelVersion: kern.Version,
		ModulesDir:    "/" + kern.ImageDir(),
		Generic:       opts.Generic,
		ForceLoad:     imageForceLoad(opts.Config.Modules.ForceLoad, modSet),
		Shell:         distro.Shell,
		Fsck:          presentFsck(tree, distro.Fsck),
		Features:      features,
	}
	if host != nil {
		bc.Root = hostRoot(host, opts.ProcDir, opts.SysDir)
		log.Info("host root", "device", bc.Root.Device, "fstype", bc.Root.FSType, "flags", bc.Root.Flags)
	}
	b, err := bootconf.Marshal(bc)
	if err != nil {
		return nil, err
	}
	if err := tree.Replace(fstree.Entry{Path: bootconf.Path, Kind: fstree.File, Mode: 0o644, Data: b, Size: int64(len(b)), Origin: "pkginitrd"}); err != nil {
		return nil, err
	}
	for _, inc := range opts.Includes {
		if err := tree.AddHostPath(inc.Src, inc.Dest, "include "+inc.Src); err != nil {
			return nil, err
		}
	}

	if err := dropUnusedLibraries(tree, log); err != nil {
		return nil, err
	}

	// Write.
	t0 = time.Now()
	res, err := image.Build(ctx, opts.Output, tree, image.Options{Compression: comp, Mtime: opts.Mtime})
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", opts.Output, err)
	}
	step("write", t0)
	out := &Result{Image: res}
	if kern.Vmlinuz != "" {
		dst := filepath.Join(filepath.Dir(opts.Output), "vmlinuz-"+kern.Version)
		if err := atomicfile.CopyFile(kern.Vmlinuz, dst, 0o644); err != nil {
			return nil, err
		}
		out.Vmlinuz = dst
	}
	out.Manifest = newManifest(opts, kern, pkgs, modSet, tree, res, timings, time.Since(start))
	if opts.Manifest != "" {
		if err := out.Manifest.WriteFile(opts.Manifest); err != nil {
			return nil, err
		}
	}
	log.Info("image written", "path", opts.Output, "size", res.Size, "took", time.Since(start).Round(time.Millisecond))
	return out, nil
}

func newBackend(d confd.Distribution, log *slog.Logger) (backends.Backend, error) {
	switch d.Backend {
	case "apt":
		return apt.New(apt.Options{Logger: log, Keyring: d.Keyring}), nil
	}
	return nil, fmt.Errorf("backend %q is not supported (supported: apt)", d.Backend)
}

// enabledFeatures is the configured features plus, for --generic images,
// the generic ones the distribution defines.
func enabledFeatures(opts Options, d confd.Distribution) []string {
	out := append([]string(nil), opts.Config.Features...)
	if opts.Generic {
		for _, f := range opts.Config.GenericFeatures {
			if _, ok := d.Features[f]; ok && !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

func packageSet(opts Options, d confd.Distribution, features []string) []string {
	seen := map[string]bool{}
	var out []string
	add := func(names ...string) {
		for _, n := range names {
			if n != "" && !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	add(d.Packages...)
	for _, f := range features {
		add(d.Features[f].Packages...)
	}
	add(opts.Config.Packages...)
	add(opts.Packages...)
	sort.Strings(out)
	return out
}

// presentFsck keeps the checkers that the packages actually put in the image.
func presentFsck(t *fstree.Tree, fsck map[string]string) map[string]string {
	out := map[string]string{}
	for fs, p := range fsck {
		if t.Get(p) != nil {
			out[fs] = p
		}
	}
	return out
}
