package cli

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/pkginitrd/pkginitrd/build"
	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/kmod"
	"github.com/pkginitrd/pkginitrd/modules"
)

func runModules(ctx context.Context, env Env, args []string) error {
	fs := newFlagSet(env, "modules", "[flags]", `
Print the kernel modules pkginitrd build would put in the image, each with
its size and why it is in the set (loaded on the host, root device chain,
root filesystem, include rule, dependency or softdep of another module,
force-load), and the builtin modules the rules named. --why NAME prints the
chains that bring one module in, back to what asked for it. The selection
flags mean what they mean for build.`)
	var (
		kver     = fs.String("kernel-version", "", "kernel version (default: the newest under /usr/lib/modules, or --modules-dir's)")
		modDir   = fs.String("modules-dir", "", "module tree of the kernel (default /usr/lib/modules/KVER)")
		kpkg     = fs.String("kernel-package", "", "take the modules from this distribution kernel package")
		generic  = fs.Bool("generic", false, "the generic set instead of the host's modules")
		procDir  = fs.String("proc", "/proc", "host /proc for host-only detection (a recorded copy works too)")
		sysDir   = fs.String("sys", "/sys", "host /sys for host-only detection of the root device chain")
		sysroot  = fs.String("sysroot", "", "read host-only detection from DIR/proc and DIR/sys (a recorded system); --proc and --sys override")
		why      = fs.String("why", "", "explain only why this module is in the set")
		cacheDir = fs.String("cache-dir", "", "pkginitrd cache directory (as for build)")
		configs  stringList
	)
	fs.Var(&configs, "config", "extra TOML configuration file, read last (repeatable)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	*procDir, *sysDir = hostDirs(fs, *sysroot, *procDir, *sysDir)
	cfg, _, err := confd.Load(confd.Sources{SystemDir: "/etc/pkginitrd", WorkDir: ".", Files: configs})
	if err != nil {
		return err
	}
	opts := build.Options{Config: cfg, KernelVersion: *kver, ModulesDir: *modDir, KernelPackage: *kpkg,
		Generic: *generic, ProcDir: *procDir, SysDir: *sysDir, CacheDir: *cacheDir, Logger: newLogger(env.Stderr, false, false)}
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
		lines, err := whyChains(set, kmod.Normalize(*why))
		if err != nil {
			return fmt.Errorf("%w for kernel %s", err, version)
		}
		fmt.Fprintln(env.Stdout, strings.Join(lines, "\n"))
		return nil
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
	fmt.Fprintf(env.Stdout, "kernel %s: %d modules, %d bytes; %d builtin; %d firmware files named\n", version, len(set.Modules), total, len(set.Builtins), len(set.Firmware))
	return nil
}

// hostDirs returns the /proc and /sys to detect from: --proc and --sys when
// given, else sysroot/proc and sysroot/sys when --sysroot is, else the
// flags' defaults.
func hostDirs(fs *flag.FlagSet, sysroot, proc, sys string) (string, string) {
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if sysroot != "" && !set["proc"] {
		proc = filepath.Join(sysroot, "proc")
	}
	if sysroot != "" && !set["sys"] {
		sys = filepath.Join(sysroot, "sys")
	}
	return proc, sys
}

// whyChains explains why module name is in set: its size and path, then
// each reason, with "dependency of X" and "softdep of X" reasons followed
// back (indented) to a module a rule or the host asked for.
func whyChains(set *modules.Set, name string) ([]string, error) {
	byName := map[string]*modules.Module{}
	for i := range set.Modules {
		byName[set.Modules[i].Name] = &set.Modules[i]
	}
	m := byName[name]
	if m == nil {
		for _, b := range set.Builtins {
			if b.Name == name {
				out := []string{fmt.Sprintf("%s is built into the kernel (not copied):", b.Name)}
				for _, r := range b.Reasons {
					out = append(out, "  "+r)
				}
				return out, nil
			}
		}
		return nil, fmt.Errorf("module %s is not in the set", name)
	}
	out := []string{fmt.Sprintf("%s (%s, %d bytes):", m.Name, m.Rel, m.Size)}
	var walk func(m *modules.Module, depth int, seen map[string]bool)
	walk = func(m *modules.Module, depth int, seen map[string]bool) {
		for _, r := range m.Reasons {
			out = append(out, strings.Repeat("  ", depth)+"← "+r)
			_, parent, ok := strings.Cut(r, " of ")
			if !ok || !(strings.HasPrefix(r, "dependency of ") || strings.HasPrefix(r, "softdep of ") || strings.HasPrefix(r, "weakdep of ")) {
				continue
			}
			if p := byName[parent]; p != nil && !seen[parent] {
				seen[parent] = true
				walk(p, depth+1, seen)
				delete(seen, parent)
			}
		}
	}
	walk(m, 1, map[string]bool{m.Name: true})
	return out, nil
}
