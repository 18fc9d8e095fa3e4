package build

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkginitrd/pkginitrd/fstree"
	"github.com/pkginitrd/pkginitrd/modules"
)

func addModules(ctx context.Context, t *fstree.Tree, opts Options, k kernel, log *slog.Logger) (*modules.Set, error) {
	set, err := resolveModules(ctx, opts, k, log)
	if err != nil {
		return nil, err
	}
	if err := set.AddToTree(ctx, t, k.ImageDir(), modules.CopyOptions{CacheDir: filepath.Join(opts.CacheDir, "modules")}); err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	return set, nil
}

// resolveModules computes the module set of an image: the generic set or
// the host's loaded modules, plus the configured includes and force-loads.
func resolveModules(ctx context.Context, opts Options, k kernel, log *slog.Logger) (*modules.Set, error) {
	mt, err := modules.Load(ctx, k.ModulesDir, modules.LoadOptions{CacheDir: filepath.Join(opts.CacheDir, "modinfo"), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	mc := opts.Config.Modules
	sel := modules.Selection{Exclude: mc.Exclude, ForceLoad: mc.ForceLoad}
	if opts.Generic {
		sel.Include = append(sel.Include, mc.Generic...)
	} else {
		host, err := hostModules(opts.ProcDir)
		if err != nil {
			return nil, err
		}
		sel.Include = append(sel.Include, host...)
	}
	sel.Include = append(append(sel.Include, mc.Include...), mc.ForceLoad...)
	set, err := modules.Resolve(ctx, mt, sel)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	return set, nil
}

// Modules resolves the module set Run would put in the image, without
// building it, and returns it with the kernel version.
func Modules(ctx context.Context, opts Options) (*modules.Set, string, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	distro, err := opts.Config.Distro()
	if err != nil {
		return nil, "", err
	}
	be := opts.Backend
	if be == nil && opts.KernelPackage != "" {
		if be, err = newBackend(distro, log); err != nil {
			return nil, "", err
		}
	}
	k, err := locateKernel(ctx, opts, distro, be, log)
	if err != nil {
		return nil, "", err
	}
	set, err := resolveModules(ctx, opts, k, log)
	return set, k.Version, err
}

// hostModules lists the modules loaded on the host (first field of
// /proc/modules).
func hostModules(procDir string) ([]string, error) {
	if procDir == "" {
		procDir = "/proc"
	}
	p := filepath.Join(procDir, "modules")
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("host-only module detection: %w (build a generic image with --generic, or point --proc at a recorded /proc)", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if name, _, _ := strings.Cut(sc.Text(), " "); name != "" {
			out = append(out, name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return out, nil
}
