package cli

import (
	"flag"
	"path/filepath"

	"github.com/pkginitrd/pkginitrd/backends/cache"
	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/pipeline"
)

// selection holds the flags build and modules share: which configuration,
// which kernel, which module set and where host-only detection looks.
type selection struct {
	kver, modDir, kpkg       string
	generic                  bool
	procDir, sysDir, sysroot string
	cacheDir                 string
	configs                  stringList
}

func (s *selection) register(fs *flag.FlagSet) {
	fs.StringVar(&s.kver, "kernel-version", "", "kernel version (default: from --kernel-package, --modules-dir, or the newest under /usr/lib/modules)")
	fs.StringVar(&s.modDir, "modules-dir", "", "module tree of the kernel (default /usr/lib/modules/KVER)")
	fs.StringVar(&s.kpkg, "kernel-package", "", "take modules (and for build, vmlinuz) from this distribution kernel package, e.g. linux-image-amd64")
	fs.BoolVar(&s.generic, "generic", false, "generic image: the documented module set, no host detection")
	fs.StringVar(&s.procDir, "proc", "/proc", "host /proc for host-only module detection (a recorded copy works too)")
	fs.StringVar(&s.sysDir, "sys", "/sys", "host /sys for host-only detection of the root device chain (a recorded copy works too)")
	fs.StringVar(&s.sysroot, "sysroot", "", "read host-only detection from DIR/proc and DIR/sys (a recorded system); --proc and --sys override")
	fs.StringVar(&s.cacheDir, "cache-dir", "", "cache for package metadata, archives and unpacked trees (default /var/cache/pkginitrd as root, else $XDG_CACHE_HOME/pkginitrd or ~/.cache/pkginitrd; must be yours, mode 0700)")
	fs.Var(&s.configs, "config", "extra TOML configuration file, read last (repeatable)")
}

// options loads the configuration and returns build options filled from
// the shared flags; fs must be parsed.
func (s *selection) options(env Env, fs *flag.FlagSet) (pipeline.Options, error) {
	cfg, _, err := confd.Load(confd.Sources{SystemDir: "/etc/pkginitrd", WorkDir: ".", Files: s.configs})
	if err != nil {
		return pipeline.Options{}, err
	}
	proc, sys := s.procDir, s.sysDir
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if s.sysroot != "" && !set["proc"] {
		proc = filepath.Join(s.sysroot, "proc")
	}
	if s.sysroot != "" && !set["sys"] {
		sys = filepath.Join(s.sysroot, "sys")
	}
	generic := cfg.Generic // `generic = true` in the configuration
	if set["generic"] {
		generic = s.generic // --generic or --generic=false wins
	}
	opts := pipeline.Options{Config: cfg, KernelVersion: s.kver, ModulesDir: s.modDir, KernelPackage: s.kpkg,
		Generic: generic, ProcDir: proc, SysDir: sys, CacheDir: s.cacheDir, Version: Version()}
	if opts.CacheDir == "" {
		dir, err := cache.Dir(env.Getenv)
		if err != nil {
			return pipeline.Options{}, err
		}
		opts.CacheDir = dir
	}
	return opts, nil
}
