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
	mt, err := modules.Load(ctx, k.ModulesDir, modules.LoadOptions{CacheDir: filepath.Join(opts.CacheDir, "modinfo"), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	mc := opts.Config.Modules
	sel := modules.Selection{Exclude: mc.Exclude, ForceLoad: mc.ForceLoad}
	if opts.Generic {
		sel.Include = append(append(sel.Include, mc.Generic...), mc.Include...)
	} else {
		host, err := hostModules(opts.ProcDir)
		if err != nil {
			return nil, err
		}
		sel.Include = append(append(sel.Include, host...), mc.Include...)
	}
	sel.Include = append(sel.Include, mc.ForceLoad...)
	set, err := modules.Resolve(ctx, mt, sel)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	if err := set.AddToTree(ctx, t, k.ImageDir(), modules.CopyOptions{CacheDir: filepath.Join(opts.CacheDir, "modules")}); err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	return set, nil
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
