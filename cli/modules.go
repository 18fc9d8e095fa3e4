package cli

import (
	"context"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/pkginitrd/pkginitrd/build"
	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/kmod"
)

func runModules(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "modules", "[flags]", `
Print the kernel modules pkginitrd build would put in the image, each with
its size and why it is in the set (loaded on the host, include rule,
dependency or softdep of another module, force-load), and the builtin
modules the rules named. The selection flags mean what they mean for build.`)
	var (
		kver     = fs.String("kernel-version", "", "kernel version (default: the newest under /usr/lib/modules, or --modules-dir's)")
		modDir   = fs.String("modules-dir", "", "module tree of the kernel (default /usr/lib/modules/KVER)")
		kpkg     = fs.String("kernel-package", "", "take the modules from this distribution kernel package")
		generic  = fs.Bool("generic", false, "the generic set instead of the host's modules")
		procDir  = fs.String("proc", "/proc", "host /proc for host-only detection (a recorded copy works too)")
		why      = fs.String("why", "", "explain only why this module is in the set")
		cacheDir = fs.String("cache-dir", "", "pkginitrd cache directory (as for build)")
		configs  stringList
	)
	fs.Var(&configs, "config", "extra TOML configuration file, read last (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, _, err := confd.Load(confd.Sources{SystemDir: "/etc/pkginitrd", WorkDir: ".", Files: configs})
	if err != nil {
		return err
	}
	opts := build.Options{Config: cfg, KernelVersion: *kver, ModulesDir: *modDir, KernelPackage: *kpkg,
		Generic: *generic, ProcDir: *procDir, CacheDir: *cacheDir, Logger: newLogger(env.Stderr, false, false)}
	if opts.CacheDir == "" {
		opts.CacheDir = defaultCacheDir(env.Getenv)
	}
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return fmt.Errorf("--cache-dir: %w", err)
	}
	set, version, err := build.Modules(ctx, opts)
	if err != nil {
		return err
	}
	if *why != "" {
		name := kmod.Normalize(*why)
		for _, m := range set.Modules {
			if m.Name == name {
				fmt.Fprintf(env.Stdout, "%s (%s, %d bytes):\n  %s\n", m.Name, m.Rel, m.Size, strings.Join(m.Reasons, "\n  "))
				return nil
			}
		}
		for _, b := range set.Builtins {
			if b.Name == name {
				fmt.Fprintf(env.Stdout, "%s is built into kernel %s (not copied):\n  %s\n", b.Name, version, strings.Join(b.Reasons, "\n  "))
				return nil
			}
		}
		return fmt.Errorf("module %s is not in the set for kernel %s", *why, version)
	}
	w := tabwriter.NewWriter(env.Stdout, 0, 8, 2, ' ', 0)
	fmt.Fprintf(w, "MODULE\tSIZE\tWHY\n")
	var total int64
	for _, m := range set.Modules {
		total += m.Size
		fmt.Fprintf(w, "%s\t%d\t%s\n", m.Name, m.Size, strings.Join(m.Reasons, "; "))
	}
	for _, b := range set.Builtins {
		fmt.Fprintf(w, "%s\tbuiltin\t%s\n", b.Name, strings.Join(b.Reasons, "; "))
	}
	w.Flush()
	fmt.Fprintf(env.Stdout, "kernel %s: %d modules, %d bytes; %d builtin\n", version, len(set.Modules), total, len(set.Builtins))
	return nil
}
