package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/pkginitrd/pkginitrd/backends/cache"
	confd "github.com/pkginitrd/pkginitrd/conf.d"
	kernelinstall "github.com/pkginitrd/pkginitrd/kernel-install"
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
image (e.g. /usr/lib/modules/KVER/initrd) is copied instead of building;
when the system configuration has an [extend] section (include, modules,
crypttab, cmdline: the flags of pkginitrd extend), the copy gets this
host's addition appended, as pkginitrd extend does.
remove does nothing: kernel-install deletes the entry directory.

With kernel-install's layout=uki (KERNEL_INSTALL_LAYOUT=uki) and
uki_generator= empty or pkginitrd, it writes a unified kernel image to
$KERNEL_INSTALL_STAGING_AREA/uki.efi instead (see build --uki), which
90-uki-copy.install installs as $BOOT/EFI/Linux/TOKEN-KVER.efi: the kernel
is KERNEL_IMAGE, the command line the configuration's [uki] cmdline, else
$KERNEL_INSTALL_CONF_ROOT/cmdline, /etc/kernel/cmdline or
/usr/lib/kernel/cmdline, and the stub the distribution's stub_package.
With another uki_generator (ukify) it writes the initrd that one uses.

The image is built for KVER from /usr/lib/modules/KVER with the system
configuration (/etc/pkginitrd/pkginitrd.toml, /etc/pkginitrd/conf.d/*.toml;
not the working directory's). With KERNEL_INSTALL_ROOT (kernel-install
--root=) modules and configuration are read below that root and the image is
generic: the machine running the build is not the one that boots it.
Where host-only detection cannot work (no /proc/modules, a chroot, a
container, or detection fails) the image is generic too, after one warning
line saying why.
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
	fs.StringVar(&h.cacheDir, "cache-dir", "", "package cache (default /var/cache/pkginitrd as root, else $XDG_CACHE_HOME/pkginitrd or ~/.cache/pkginitrd; must be yours, mode 0700)")
	fs.BoolVar(&h.offline, "offline", false, "never use the network: build from the cache only")
	fs.BoolVar(&h.verbose, "verbose", false, "log every step")
	fs.Var(&h.configs, "config", "extra TOML configuration file, read last (repeatable)")
}

func runKernelInstall(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "kernel-install", "[flags] add KVER ENTRY_DIR KERNEL_IMAGE [INITRD...] | remove KVER ENTRY_DIR", kernelInstallHelp)
	var h hookFlags
	h.register(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	req, err := kernelinstall.ParsePluginRequest(fs.Args(), env.Getenv, h.root)
	if err != nil {
		fmt.Fprintf(env.Stderr, "pkginitrd kernel-install: %v\n", err)
		return errUsage
	}
	p := kernelinstall.PlanPlugin(req)
	verbose := req.Verbose || h.verbose
	if verbose {
		fmt.Fprintf(env.Stdout, "pkginitrd: %s\n", p.Reason)
	}
	return execute(ctx, env, h, p, verbose)
}

// execute carries out a plan of the plugin or a hook: a build through the
// pipeline, anything else by the plan itself.
func execute(ctx context.Context, env Env, h hookFlags, p kernelinstall.Plan, verbose bool) error {
	if p.Kind != kernelinstall.Build && p.Kind != kernelinstall.Copy {
		return p.Apply()
	}
	cfg, read, err := confd.Load(confd.Sources{SystemDir: p.ConfigDir(), Files: h.configs})
	if err != nil {
		return err
	}
	if p.Kind == kernelinstall.Copy {
		if cfg.Extend.Empty() {
			return p.Apply()
		}
		p = p.Extended()
		if verbose {
			fmt.Fprintf(env.Stdout, "pkginitrd: %s\n", p.Reason)
		}
		return extendPrebuilt(ctx, env, p, cfg.Extend, newLogger(env.Stderr, h.verbose, false), verbose)
	}
	opts := pipeline.Options{
		Config:        cfg,
		KernelVersion: p.KVer,
		ModulesDir:    p.ModulesDir,
		Generic:       h.generic || cfg.Generic || p.Generic(),
		Output:        p.Output,
		CacheDir:      h.cacheDir,
		Offline:       h.offline,
		Stage0:        env.Executable,
		Version:       Version(),
		ProcDir:       "/proc",
		SysDir:        "/sys",
		Logger:        newLogger(env.Stderr, h.verbose, false),
	}
	if h.sysroot != "" {
		opts.ProcDir, opts.SysDir = filepath.Join(h.sysroot, "proc"), filepath.Join(h.sysroot, "sys")
	}
	if opts.CacheDir == "" {
		if opts.CacheDir, err = cache.Dir(env.Getenv); err != nil {
			return err
		}
	}
	if opts.Mtime, err = sourceDateEpoch(env.Getenv); err != nil {
		return err
	}
	root := "/"
	if h.sysroot != "" {
		root = h.sysroot
	}
	if why := kernelinstall.HostOnlyBlocker(root, opts.ProcDir); why != "" && !opts.Generic {
		fmt.Fprintf(env.Stderr, "pkginitrd: warning: host-only detection cannot work here: %s; building a generic image\n", why)
		opts.Generic = true
	}
	if p.UKI {
		cmdline := cfg.UKI.Cmdline
		if cmdline == "" {
			if cmdline, err = kernelinstall.Cmdline(p.Root, p.ConfRoot); err != nil {
				return err
			}
		}
		opts.UKI = &pipeline.UKI{KernelImage: p.KernelImage, Cmdline: cmdline}
	}
	if err := p.CheckModules(); err != nil {
		return err
	}
	res, err := pipeline.Run(ctx, opts)
	// A kernel hook must not fail the package manager for want of a host
	// description: a generic image boots this machine too.
	var he *pipeline.HostError
	if errors.As(err, &he) && !opts.Generic {
		fmt.Fprintf(env.Stderr, "pkginitrd: warning: %s; building a generic image\n", strings.ReplaceAll(he.Error(), "\n", " "))
		opts.Generic = true
		res, err = pipeline.Run(ctx, opts)
	}
	if err != nil {
		return fmt.Errorf("build %s for %s: %w", filepath.Base(p.Output), p.KVer, err)
	}
	if verbose {
		kind := "host-only"
		if opts.Generic {
			kind = "generic"
		}
		fmt.Fprintf(env.Stdout, "pkginitrd: wrote %s (%s, %d bytes, %d modules; configuration: built-in%s)\n",
			p.Output, kind, res.Manifest.Size, len(res.Manifest.Modules), prefixEach(read, " + "))
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
