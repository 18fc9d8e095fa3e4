package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
	"github.com/pkginitrd/pkginitrd/pipeline"
)

const kernelInstallHelp = `
The kernel-install(8) plugin (installed as
/usr/lib/kernel/install.d/50-pkginitrd.install). kernel-install runs it as
  add KVER ENTRY_DIR KERNEL_IMAGE [INITRD...]
  remove KVER ENTRY_DIR

For add it writes the initrd to $KERNEL_INSTALL_STAGING_AREA/initrd (or
ENTRY_DIR/initrd with a kernel-install older than 251). It steps aside,
exiting 0, when initrds were given, when KERNEL_INSTALL_IMAGE_TYPE=uki, when
KERNEL_INSTALL_INITRD_GENERATOR (install.conf's initrd_generator=) names
another generator (empty means pkginitrd), and on Debian when
/boot/initrd.img-KVER exists and 55-/85-initrd.install stages it (the
/etc/kernel/postinst.d hook built it). A prebuilt initrd next to the kernel
image (e.g. /usr/lib/modules/KVER/initrd) is copied instead of building.
remove does nothing: kernel-install deletes the entry directory.

The image is built for KVER from /usr/lib/modules/KVER with the system
configuration (/etc/pkginitrd/pkginitrd.toml, /etc/pkginitrd/conf.d/*.toml;
not the working directory's). With KERNEL_INSTALL_ROOT (kernel-install
--root=) modules and configuration are read below that root and the image is
generic: the machine running the build is not the one that boots it.
KERNEL_INSTALL_VERBOSE=1 says what the plugin does and why.
SOURCE_DATE_EPOCH sets every file's mtime, as for build.

The installed plugin passes no flags; to add some (e.g. --generic), put a
copy with them in /etc/kernel/install.d/50-pkginitrd.install, which
overrides the one in /usr/lib. --root overrides KERNEL_INSTALL_ROOT.
`

// hookFlags are the flags the kernel-install plugin and the Debian hooks
// accept before their verb (the installed scripts pass none).
type hookFlags struct {
	generic  bool
	root     string
	sysroot  string
	cacheDir string
	offline  bool
	verbose  bool
	configs  stringList
}

func (h *hookFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&h.generic, "generic", false, "generic image: the documented module set, no host detection")
	fs.StringVar(&h.root, "root", "", "build for the system installed at DIR: configuration and modules below DIR; implies --generic")
	fs.StringVar(&h.sysroot, "sysroot", "", "read host-only detection from DIR/proc and DIR/sys (a recorded system)")
	fs.StringVar(&h.cacheDir, "cache-dir", "", "package cache (default /var/cache/pkginitrd as root, else ~/.cache/pkginitrd)")
	fs.BoolVar(&h.offline, "offline", false, "never use the network: build from the cache only")
	fs.BoolVar(&h.verbose, "verbose", false, "log every step")
	fs.Var(&h.configs, "config", "extra TOML configuration file, read last (repeatable)")
}

// pluginRequest is what kernel-install hands a plugin: its argv and the
// KERNEL_INSTALL_* environment.
type pluginRequest struct {
	verb, kver, entryDir, kernelImage string
	initrds                           []string
	verbose                           bool
	imageType                         string // KERNEL_INSTALL_IMAGE_TYPE
	generator                         string // KERNEL_INSTALL_INITRD_GENERATOR
	staging                           string // KERNEL_INSTALL_STAGING_AREA
	root                              string // KERNEL_INSTALL_ROOT, "" for /
	plugins                           string // KERNEL_INSTALL_PLUGINS when the caller set it
}

// parsePluginRequest reads the plugin's positional arguments and environment.
func parsePluginRequest(args []string, getenv func(string) string) (pluginRequest, error) {
	if len(args) == 0 {
		return pluginRequest{}, errors.New("missing verb: want add KVER ENTRY_DIR KERNEL_IMAGE [INITRD...] or remove KVER ENTRY_DIR")
	}
	r := pluginRequest{
		verb:      args[0],
		verbose:   getenv("KERNEL_INSTALL_VERBOSE") == "1",
		imageType: getenv("KERNEL_INSTALL_IMAGE_TYPE"),
		generator: getenv("KERNEL_INSTALL_INITRD_GENERATOR"),
		staging:   getenv("KERNEL_INSTALL_STAGING_AREA"),
		root:      normRoot(getenv("KERNEL_INSTALL_ROOT")),
		plugins:   getenv("KERNEL_INSTALL_PLUGINS"),
	}
	if r.verb != "add" {
		if len(args) > 1 {
			r.kver = args[1]
		}
		return r, nil
	}
	if len(args) < 4 {
		return pluginRequest{}, fmt.Errorf("add: want KVER ENTRY_DIR KERNEL_IMAGE [INITRD...], got %d arguments", len(args)-1)
	}
	r.kver, r.entryDir, r.kernelImage, r.initrds = args[1], args[2], args[3], args[4:]
	if r.kver == "" || strings.Contains(r.kver, "/") {
		return pluginRequest{}, fmt.Errorf("add: bad kernel version %q", r.kver)
	}
	return r, nil
}

func normRoot(r string) string {
	if r == "" || filepath.Clean(r) == "/" {
		return ""
	}
	return filepath.Clean(r)
}

// planKind says what the plugin or a hook does.
type planKind int

const (
	planSkip   planKind = iota // step aside, say why
	planCopy                   // copy a prebuilt initrd
	planBuild                  // build an image
	planRemove                 // remove an image (Debian postrm)
)

// plan is a decision of the plugin or a hook.
type plan struct {
	kind       planKind
	reason     string // why (skip) or what (others), one line
	src        string // planCopy: the prebuilt initrd
	output     string // planCopy, planBuild, planRemove: the image path
	modulesDir string // planBuild
	root       string // planBuild: system root ("" = /), for the configuration
}

// planPlugin decides what `kernel-install add|remove` asks of pkginitrd.
// It reads the filesystem only to find a prebuilt initrd, the entry
// directory, Debian's initrd and its staging plugin and the module tree.
func planPlugin(r pluginRequest) plan {
	switch {
	case r.verb == "remove":
		return plan{kind: planSkip, reason: "remove: nothing to do, kernel-install removes the entry directory"}
	case r.verb != "add":
		return plan{kind: planSkip, reason: fmt.Sprintf("%s: nothing to do", r.verb)}
	case len(r.initrds) > 0:
		return plan{kind: planSkip, reason: fmt.Sprintf("initrds were given (%s): not generating one", strings.Join(r.initrds, " "))}
	case r.imageType == "uki":
		return plan{kind: planSkip, reason: "the kernel image is a UKI and carries its own initrd"}
	case r.generator != "" && r.generator != "pkginitrd":
		return plan{kind: planSkip, reason: fmt.Sprintf("KERNEL_INSTALL_INITRD_GENERATOR=%s: another initrd generator is selected", r.generator)}
	}
	var output string
	switch {
	case r.staging != "":
		output = filepath.Join(r.staging, "initrd")
	case isDir(r.entryDir):
		output = filepath.Join(r.entryDir, "initrd")
	default:
		return plan{kind: planSkip, reason: fmt.Sprintf("no staging area and no entry directory %s: kernel-install does not use a BLS layout here", r.entryDir)}
	}
	debInitrd := filepath.Join(inRoot(r.root, "/boot"), "initrd.img-"+r.kver)
	if isFile(debInitrd) {
		if stager := debianStager(r.root, r.plugins); stager != "" {
			return plan{kind: planSkip, reason: fmt.Sprintf("%s exists (made by a Debian kernel hook, such as pkginitrd's postinst.d one) and %s stages it", debInitrd, stager)}
		}
	}
	if pre := filepath.Join(filepath.Dir(r.kernelImage), "initrd"); r.kernelImage != "" && isFile(pre) {
		return plan{kind: planCopy, reason: fmt.Sprintf("using the prebuilt %s", pre), src: pre, output: output}
	}
	return plan{kind: planBuild, reason: fmt.Sprintf("building the initrd for %s", r.kver), output: output,
		modulesDir: modulesDir(r.root, r.kver), root: r.root}
}

// debianStager returns the name of the Debian kernel-install plugin that
// stages /boot/initrd.img-KVER (55-initrd.install, 85-initrd.install in
// bookworm) if one will run, else "". plugins is KERNEL_INSTALL_PLUGINS,
// which replaces the plugin directories when set.
func debianStager(root, plugins string) string {
	names := []string{"55-initrd.install", "85-initrd.install"}
	if strings.TrimSpace(plugins) != "" {
		for _, p := range strings.Fields(plugins) {
			for _, n := range names {
				if filepath.Base(p) == n {
					return n
				}
			}
		}
		return ""
	}
	for _, n := range names {
		etc := filepath.Join(inRoot(root, "/etc/kernel/install.d"), n)
		if fi, err := os.Lstat(etc); err == nil {
			if fi.Mode()&fs.ModeSymlink != 0 {
				if t, _ := os.Readlink(etc); t == "/dev/null" {
					continue // masked
				}
			}
			return n
		}
		if isFile(filepath.Join(inRoot(root, "/usr/lib/kernel/install.d"), n)) {
			return n
		}
	}
	return ""
}

// modulesDir is the module tree of kver below root: /usr/lib/modules, or
// /lib/modules on systems without merged /usr.
func modulesDir(root, kver string) string {
	usr := filepath.Join(inRoot(root, "/usr/lib/modules"), kver)
	if lib := filepath.Join(inRoot(root, "/lib/modules"), kver); !isDir(usr) && isDir(lib) {
		return lib
	}
	return usr
}

func inRoot(root, p string) string {
	if root == "" {
		return p
	}
	return filepath.Join(root, p)
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

func runKernelInstall(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "kernel-install", "[flags] add KVER ENTRY_DIR KERNEL_IMAGE [INITRD...] | remove KVER ENTRY_DIR", kernelInstallHelp)
	var h hookFlags
	h.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	req, err := parsePluginRequest(fs.Args(), env.Getenv)
	if err != nil {
		fmt.Fprintf(env.Stderr, "pkginitrd kernel-install: %v\n", err)
		return errUsage
	}
	if h.root != "" {
		req.root = normRoot(h.root)
	}
	p := planPlugin(req)
	verbose := req.verbose || h.verbose
	if verbose {
		fmt.Fprintf(env.Stdout, "pkginitrd: %s\n", p.reason)
	}
	return execute(ctx, env, h, req.kver, p, verbose)
}

// execute carries out a plan of the plugin or a hook.
func execute(ctx context.Context, env Env, h hookFlags, kver string, p plan, verbose bool) error {
	switch p.kind {
	case planSkip:
		return nil
	case planCopy:
		return atomicfile.CopyFile(p.src, p.output, 0o600)
	case planRemove:
		if err := os.Remove(p.output); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove %s: %w", p.output, err)
		}
		return nil
	}
	cfg, read, err := confd.Load(confd.Sources{SystemDir: inRoot(p.root, "/etc/pkginitrd"), Files: h.configs})
	if err != nil {
		return err
	}
	opts := pipeline.Options{
		Config:        cfg,
		KernelVersion: kver,
		ModulesDir:    p.modulesDir,
		Generic:       h.generic || cfg.Generic || p.root != "",
		Output:        p.output,
		CacheDir:      h.cacheDir,
		Offline:       h.offline,
		Stage0:        env.Executable,
		ProcDir:       "/proc",
		SysDir:        "/sys",
		Logger:        newLogger(env.Stderr, h.verbose, false),
	}
	if h.sysroot != "" {
		opts.ProcDir, opts.SysDir = filepath.Join(h.sysroot, "proc"), filepath.Join(h.sysroot, "sys")
	}
	if opts.CacheDir == "" {
		opts.CacheDir = defaultCacheDir(env.Getenv)
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return fmt.Errorf("cache directory: %w", err)
	}
	if v := env.Getenv("SOURCE_DATE_EPOCH"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return fmt.Errorf("SOURCE_DATE_EPOCH=%q: want a non-negative number of seconds", v)
		}
		opts.Mtime = n
	}
	if !isDir(p.modulesDir) {
		return fmt.Errorf("kernel %s: no modules at %s", kver, p.modulesDir)
	}
	res, err := pipeline.Run(ctx, opts)
	if err != nil {
		return fmt.Errorf("build initrd for %s: %w", kver, err)
	}
	if verbose {
		kind := "host-only"
		if opts.Generic {
			kind = "generic"
		}
		fmt.Fprintf(env.Stdout, "pkginitrd: wrote %s (%s, %d bytes, %d modules; configuration: built-in%s)\n",
			p.output, kind, res.Manifest.Size, len(res.Manifest.Modules), prefixEach(read, " + "))
	}
	return nil
}

func prefixEach(list []string, sep string) string {
	var b strings.Builder
	for _, s := range list {
		b.WriteString(sep + s)
	}
	return b.String()
}
