// Package build runs the whole `pkginitrd build` pipeline: configuration →
// package set → backend fetch and unpack → kernel modules → stage0 and its
// config → one streamed write of the compressed image, plus a manifest.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"time"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/backends/apt"
	"github.com/pkginitrd/pkginitrd/backends/cache"
	"github.com/pkginitrd/pkginitrd/backends/dnf"
	"github.com/pkginitrd/pkginitrd/backends/pacman"
	"github.com/pkginitrd/pkginitrd/backends/unpack"
	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/image/sbom"
	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/modules"
	"github.com/pkginitrd/pkginitrd/modules/hostinfo"
	"github.com/pkginitrd/pkginitrd/resolver"
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

// includeOrigin starts the origin of the tree entries from --include.
const includeOrigin = "include "

// Options are the inputs of one build.
type Options struct {
	Config        *confd.Config
	KernelVersion string // "" = from --kernel-package or the newest under /usr/lib/modules
	ModulesDir    string // "" = /usr/lib/modules/KVER (or the kernel package's)
	KernelPackage string // distribution kernel package to take modules (and vmlinuz) from
	Generic       bool
	Output        string
	Manifest      string // optional path of the JSON manifest
	SBOM          string // optional path of the SBOM
	SBOMFormat    string // sbom.SPDX (default) or sbom.CycloneDX
	Version       string // pkginitrd's version, recorded in the image's manifest and the SBOM
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
	// OSReleaseRoot is where the host's os-release is read for distribution
	// detection ("" = /).
	OSReleaseRoot string
	// Keymap is the console keymap to compile into the image (a name or
	// file for loadkeys); "" = the host's in host-only images, "none" = none.
	Keymap string
	// Font is the console font to put into the image (a name in the
	// build host's console font directories or a file; "none"), else the
	// host's for a host-only image.
	Font string
	// UKI, when set, makes Output a unified kernel image holding the kernel
	// and the image (build --uki).
	UKI *UKI
}

// Result describes a finished build.
type Result struct {
	Image    *image.Result
	Manifest *Manifest
	Vmlinuz  string // path of the kernel placed beside the image, if any
	UKI      bool   // Output is a unified kernel image holding Image
}

// Run performs a build: the steps of buildSteps in order. The outputs (the
// image, the kernel beside it, the manifest) are prepared as temporary
// files and renamed into place together at the end: on failure or
// cancellation the previous outputs are untouched and no temporary remains.
func Run(ctx context.Context, opts Options) (*Result, error) {
	b, err := newBuild(opts)
	if err != nil {
		return nil, err
	}
	return b.build(ctx, buildSteps())
}

// build runs steps as a build writing outputs, after checking the inputs
// and the output paths before any slow work.
func (b *build) build(ctx context.Context, steps []step) (*Result, error) {
	opts := b.opts
	if _, err := opts.Config.Distro(); err != nil {
		return nil, err
	}
	if _, err := compress.ByName(opts.Config.Compression); err != nil {
		return nil, fmt.Errorf("compression: %w", err)
	}
	if err := sbom.CheckFormat(opts.SBOMFormat); err != nil {
		return nil, err
	}
	for _, p := range []string{opts.Output, opts.Manifest, opts.SBOM} {
		if p == "" {
			continue
		}
		if err := atomicfile.CheckTarget(p); err != nil {
			return nil, err
		}
	}
	mode, err := imageMode(opts.Config.ImageMode, opts.Output)
	if err != nil {
		return nil, err
	}
	b.mode = mode
	if err := checkStatic(opts.Stage0); err != nil {
		return nil, err
	}
	defer b.lockOutputs()()
	defer b.out.Cleanup()
	if opts.Generic {
		// Compiled while the other steps run; stopped when the build ends.
		kctx, cancel := context.WithCancel(ctx)
		b.keymaps = startKeymapSet(kctx, opts.CacheDir, opts.Config.Console.GenericKeymaps)
		defer b.keymaps.wg.Wait()
		defer cancel()
	}
	if err := b.run(ctx, steps); err != nil {
		return nil, err
	}
	b.log.Info("image written", "path", opts.Output, "size", b.result.Image.Size, "mode", fmt.Sprintf("%04o", b.mode), "took", time.Since(b.start).Round(time.Millisecond))
	return b.result, nil
}

// Modules resolves the module set Run would put in the image, without
// building it, and returns it with the kernel version: the same steps as
// Run up to the module set.
func Modules(ctx context.Context, opts Options) (*modules.Set, string, error) {
	b, err := newBuild(opts)
	if err != nil {
		return nil, "", err
	}
	// The steps of a build up to the kernel, then only the module set.
	steps := append(buildSteps()[:3:3], step{"modules", "resolve the module set", (*build).resolveModules})
	if err := b.run(ctx, steps); err != nil {
		return nil, "", err
	}
	return b.modSet, b.kern.Version, nil
}

// A step is one named stage of a build. Each reads what earlier steps left
// in the build and adds its own result; its duration is logged and kept in
// the manifest's timings under its name.
type step struct {
	name string
	doc  string
	run  func(*build, context.Context) error
}

func (s step) String() string { return s.name + ": " + s.doc }

// buildSteps is the whole build, in order.
func buildSteps() []step {
	return []step{
		{"host", "detect the host's loaded modules and root chain (host-only images)", (*build).detectHost},
		{"resolve", "compute the package set and stage0 features", (*build).resolve},
		{"kernel", "locate the kernel and its module tree", (*build).locateKernel},
		{"stub", "find the UKI's systemd-stub, kernel and signing key (--uki)", (*build).findUKIInputs},
		{"fetch", "resolve and download the packages with the distribution's package manager", (*build).fetch},
		{"unpack", "unpack the packages into the cache", (*build).unpack},
		{"tree", "lay out the image tree: skeleton, packages minus the prune rules, fixups", (*build).layTree},
		{"modules", "copy the kernel modules and their firmware", (*build).addModules},
		{"stage0", "add /init, its configuration and the included files", (*build).addStage0},
		{"describe", "record the packages, modules and build options in the image", (*build).describe},
		{"write", "write the compressed image", (*build).write},
		{"uki", "combine stub, kernel, image, command line and os-release into a UKI and sign it (--uki)", (*build).assembleUKI},
		{"outputs", "place the kernel, the manifest and the SBOM beside the image", (*build).outputs},
	}
}

// build is the state of one build as its steps fill it in.
type build struct {
	opts    Options
	log     *slog.Logger
	timings map[string]time.Duration
	start   time.Time

	be     backends.Backend    // created on first use
	osr    *resolver.Detection // the host's distribution (nil: not detected)
	host   *hostinfo.Host      // host-only detection, read once (nil for --generic)
	plan   *resolver.Plan
	kern   kernel
	pkgs   []backends.Package
	roots  []*unpack.Tree // unpacked tree of each package in pkgs
	tree   *fstree.Tree
	modSet *modules.Set
	result *Result

	mode fs.FileMode    // of the image file
	out  atomicfile.Set // the outputs, committed together by the last step
	uki  ukiInputs

	keymaps *keymapSet // a generic image's keymap set, compiled while the build goes on
}

func newBuild(opts Options) (*build, error) {
	if opts.Config == nil {
		return nil, errors.New("build: no configuration")
	}
	if opts.CacheDir == "" {
		return nil, errors.New("build: no cache directory")
	}
	if opts.Output == "" {
		opts.Output = "initrd.img"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	root := opts.OSReleaseRoot
	if root == "" {
		root = "/"
	}
	// Fills in opts.Config's distribution (and release) when none is set.
	det, err := resolver.SelectDistribution(opts.Config, root)
	if err != nil {
		return nil, err
	}
	if det != nil {
		log.Debug("host distribution detected", "distribution", det.Distribution, "release", det.Release, "reason", det.Reason)
	}
	return &build{opts: opts, log: log, timings: map[string]time.Duration{}, be: opts.Backend, osr: det}, nil
}

func (b *build) run(ctx context.Context, steps []step) error {
	b.start = time.Now()
	// The cache's shared lock, held until the image is written, keeps
	// cleaning away from the trees this build reads.
	c, err := cache.Open(ctx, b.opts.CacheDir, cache.Options{MaxSize: int64(b.opts.Config.Cache.MaxSize), Logger: b.log})
	if err != nil {
		return err
	}
	defer func() {
		if err := c.Close(); err != nil {
			b.log.Warn("cleaning the cache failed", "err", err)
		}
	}()
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		b.log.Debug("step", "step", s.String())
		t0 := time.Now()
		if err := s.run(b, ctx); err != nil {
			return err
		}
		b.timings[s.name] = time.Since(t0)
		b.log.Debug("step done", "step", s.name, "took", b.timings[s.name].Round(time.Millisecond))
	}
	return nil
}

func (b *build) backend() (backends.Backend, error) {
	if b.be == nil {
		be, err := newBackend(b.plan.Distribution, b.log)
		if err != nil {
			return nil, err
		}
		b.be = be
	}
	return b.be, nil
}

// backendName names the backend that resolved the packages ("" before one was made).
func (b *build) backendName() string {
	if b.be == nil {
		return ""
	}
	return b.be.Name()
}

func (b *build) detectHost(ctx context.Context) error {
	if b.opts.Generic {
		return nil
	}
	h, err := detectHost(b.opts.ProcDir, b.opts.SysDir, b.log)
	b.host = h
	return err
}

func (b *build) resolve(context.Context) error {
	plan, err := resolver.Resolve(resolver.Input{Config: b.opts.Config, Generic: b.opts.Generic, Host: b.host, Extra: b.opts.Packages, Logger: b.log})
	b.plan = plan
	return err
}

func (b *build) locateKernel(ctx context.Context) error {
	var fetch fetchFunc
	if b.opts.KernelPackage != "" {
		be, err := b.backend()
		if err != nil {
			return err
		}
		fetch = func(ctx context.Context, names ...string) ([]backends.Package, error) {
			return be.Fetch(ctx, b.request(names))
		}
	}
	k, err := locateKernel(ctx, kernelSource{Package: b.opts.KernelPackage, Version: b.opts.KernelVersion, ModulesDir: b.opts.ModulesDir, CacheDir: b.opts.CacheDir, Limits: unpackLimits(b.opts.Config.Unpack)}, fetch, b.log)
	b.kern = k
	if err == nil && k.Vmlinuz != "" {
		err = atomicfile.CheckTarget(b.vmlinuzPath())
	}
	return err
}

// request asks the backend for packages of the plan's distribution.
func (b *build) request(names []string) backends.Request {
	d := b.plan.Distribution
	return backends.Request{
		Packages:     names,
		Exclude:      d.ExcludePackages,
		Release:      d.Release,
		Repositories: b.plan.Sources.Repositories,
		Mirror:       d.Mirror,
		Proxies:      b.plan.Sources.Proxies,
		Arch:         b.opts.Config.Arch,
		CacheDir:     b.opts.CacheDir,
		Offline:      b.opts.Offline,
		// The host's own distribution and release: its repositories and package cache serve.
		HostRelease: b.osr.HostRelease(b.plan.Name, d.Release),
	}
}

func (b *build) fetch(ctx context.Context) error {
	be, err := b.backend()
	if err != nil {
		return err
	}
	req := b.request(b.plan.Packages)
	b.log.Info("resolving packages", "backend", be.Name(), "release", req.Release, "packages", strings.Join(req.Packages, " "))
	b.pkgs, err = be.Fetch(ctx, req)
	return err
}

func (b *build) unpack(ctx context.Context) error {
	c := unpack.Cache{Dir: b.opts.CacheDir, Logger: b.log, Limits: unpackLimits(b.opts.Config.Unpack)}
	trees, err := c.Trees(ctx, b.pkgs, 0)
	if errors.Is(err, unpack.ErrChecksum) {
		// The unpacker removed the damaged archives: fetch them again, once.
		b.log.Warn("cached archives are damaged; fetching them again", "err", err)
		if err = b.fetch(ctx); err == nil {
			trees, err = c.Trees(ctx, b.pkgs, 0)
		}
	}
	b.roots = trees
	return err
}

// unpackLimits converts the configuration's [unpack] table.
func unpackLimits(c confd.UnpackLimits) unpack.Limits {
	return unpack.Limits{MaxPackageSize: int64(c.MaxPackageSize), MaxFileSize: int64(c.MaxFileSize), MaxEntries: c.MaxEntries}
}

func (b *build) layTree(context.Context) error {
	d := b.plan.Distribution
	b.tree = fstree.New()
	if err := addSkeleton(b.tree, d.Release); err != nil {
		return err
	}
	keep := func(p string) bool { return !fstree.Match(d.Prune, p) }
	for i, p := range b.pkgs {
		if err := b.roots[i].AddTo(b.tree, p.Name, keep); err != nil {
			return fmt.Errorf("add package %s: %w", p.Name, err)
		}
	}
	return fixups(b.tree, b.plan.Name, d)
}

func (b *build) resolveModules(ctx context.Context) error {
	sel := moduleSelection(b.opts.Config.Modules, b.opts.Generic, b.host)
	set, err := resolveModules(ctx, b.kern, sel, b.opts.CacheDir, b.log)
	b.modSet = set
	return err
}

func (b *build) addModules(ctx context.Context) error {
	if err := b.resolveModules(ctx); err != nil {
		return err
	}
	keep := b.opts.ModuleFiles == ModuleFilesCompressed
	if b.opts.ModuleFiles == ModuleFilesAuto {
		comp, err := compress.ByName(b.opts.Config.Compression)
		if err != nil {
			return fmt.Errorf("compression: %w", err)
		}
		cfg, _ := kernelConfig(b.kern, b.log)
		keep = KeepModulesCompressed(comp, kernelDecompresses(cfg, b.modSet))
	}
	return addModules(ctx, b.tree, b.kern, b.modSet, moduleCopy{keepCompressed: keep, cacheDir: b.opts.CacheDir, firmwareDir: b.opts.FirmwareDir}, b.log)
}

// addStage0 adds /init, the generated stage0 configuration and the
// --include files, then drops the libraries nothing loads.
func (b *build) addStage0(ctx context.Context) error {
	if err := addStage0(b.tree, b.opts.Stage0); err != nil {
		return err
	}
	bc := bootconf.Config{
		KernelVersion: b.kern.Version,
		ModulesDir:    "/" + b.kern.ImageDir(),
		Generic:       b.opts.Generic,
		ForceLoad:     imageForceLoad(b.opts.Config.Modules.ForceLoad, b.modSet),
		Shell:         b.plan.Distribution.Shell,
		Fsck:          presentFsck(b.tree, b.plan.Distribution.Fsck),
		Features:      b.plan.Features,
	}
	if b.host != nil {
		bc.Root = hostRoot(b.host, b.opts.ProcDir, b.opts.SysDir)
		b.log.Info("host root", "device", bc.Root.Device, "fstype", bc.Root.FSType, "flags", bc.Root.Flags)
		bc.Resume = b.hostResume()
	}
	if err := b.addVconsole(ctx, &bc); err != nil {
		return err
	}
	data, err := bootconf.Marshal(bc)
	if err != nil {
		return err
	}
	if err := b.tree.Replace(fstree.Entry{Path: bootconf.Path, Kind: fstree.File, Mode: 0o644, Data: data, Size: int64(len(data)), Origin: "pkginitrd"}); err != nil {
		return err
	}
	for _, inc := range b.opts.Includes {
		if err := b.tree.AddHostPath(inc.Src, inc.Dest, includeOrigin+inc.Src); err != nil {
			return err
		}
	}
	return dropUnusedLibraries(b.tree, b.log)
}

func newBackend(d confd.Distribution, log *slog.Logger) (backends.Backend, error) {
	switch d.Backend {
	case "apt":
		return apt.New(apt.Options{Logger: log}), nil
	case "dnf":
		return dnf.New(dnf.Options{Logger: log, Keyring: d.Keyring, Repositories: d.Repositories}), nil
	case "pacman":
		// The host's pacman.conf is used only when it declares repositories
		// (an Arch host); pacman verifies what it takes from the host's cache.
		return pacman.New(pacman.Options{Logger: log, Repositories: d.Repositories,
			HostConfig: "/etc/pacman.conf", HostCaches: []string{"/var/cache/pacman/pkg"}}), nil
	}
	return nil, fmt.Errorf("backend %q is not supported (supported: apt, dnf, pacman)", d.Backend)
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
