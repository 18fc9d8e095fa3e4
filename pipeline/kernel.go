package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/backends/unpack"
)

// kernel is the kernel an image is built for.
type kernel struct {
	Version    string
	ModulesDir string // host directory holding its modules
	Vmlinuz    string // kernel image from a kernel package, if any
}

// ImageDir is the module directory inside the image.
func (k kernel) ImageDir() string { return "usr/lib/modules/" + k.Version }

// kernelSource says where a build's kernel comes from (see the build
// command's help for the order).
type kernelSource struct {
	Package    string // distribution kernel package (fetched with fetch)
	Version    string // "" = the newest found
	ModulesDir string // module tree given on the command line
	CacheDir   string // the build's cache, where packages are unpacked
	Limits     unpack.Limits
}

// fetchFunc fetches packages through the build's backend.
type fetchFunc func(ctx context.Context, names ...string) ([]backends.Package, error)

// locateKernel finds the kernel of src: in its package (fetched with fetch),
// its module directory, or under /usr/lib/modules.
func locateKernel(ctx context.Context, src kernelSource, fetch fetchFunc, log *slog.Logger) (kernel, error) {
	if src.Package != "" {
		return kernelFromPackage(ctx, src, fetch, log)
	}
	if src.ModulesDir != "" {
		k := kernel{Version: src.Version, ModulesDir: src.ModulesDir}
		if k.Version == "" {
			k.Version = filepath.Base(filepath.Clean(src.ModulesDir))
		}
		if _, err := os.Stat(src.ModulesDir); err != nil {
			return kernel{}, fmt.Errorf("--modules-dir: %w", err)
		}
		return k, nil
	}
	const root = "/usr/lib/modules"
	found, _ := installedKernels(root)
	v := src.Version
	if v == "" {
		if len(found) == 0 {
			return kernel{}, fmt.Errorf("no kernel found under %s: pass --kernel-version with --modules-dir, or --kernel-package (e.g. linux-image-amd64)", root)
		}
		v = found[len(found)-1]
	}
	dir := filepath.Join(root, v)
	if _, err := os.Stat(dir); err != nil {
		return kernel{}, fmt.Errorf("kernel %s: no modules at %s (installed: %s); pass --modules-dir or --kernel-package", v, dir, listOrNone(found))
	}
	return kernel{Version: v, ModulesDir: dir}, nil
}

// installedKernels lists the kernel versions with a module tree under root,
// oldest first.
func installedKernels(root string) ([]string, error) {
	ents, err := os.ReadDir(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if _, err := os.Stat(filepath.Join(root, e.Name(), "kernel")); err == nil {
			out = append(out, e.Name())
		}
	}
	sort.Slice(out, func(i, j int) bool { return kernelVersionLess(out[i], out[j]) })
	return out, nil
}

func kernelFromPackage(ctx context.Context, src kernelSource, fetch fetchFunc, log *slog.Logger) (kernel, error) {
	images, err := kernelImages(ctx, src.Package, fetch, log)
	if err != nil {
		return kernel{}, err
	}
	c := unpack.Cache{Dir: src.CacheDir, Logger: log, Limits: src.Limits}
	trees, err := c.Trees(ctx, images, 0)
	if errors.Is(err, unpack.ErrChecksum) {
		// The unpacker removed the damaged archives: fetch them again, once.
		log.Warn("cached archives are damaged; fetching them again", "err", err)
		if images, err = kernelImages(ctx, src.Package, fetch, log); err == nil {
			trees, err = c.Trees(ctx, images, 0)
		}
	}
	if err != nil {
		return kernel{}, err
	}
	byVersion := map[string]kernel{}
	var versions []string
	for _, tr := range trees {
		root := tr.Dir
		for _, md := range []string{"lib/modules", "usr/lib/modules"} {
			vs, _ := installedKernels(filepath.Join(root, md))
			for _, v := range vs {
				k := kernel{Version: v, ModulesDir: filepath.Join(root, md, v)}
				for _, img := range []string{"boot/vmlinuz-" + v, md + "/" + v + "/vmlinuz"} {
					if _, err := os.Stat(filepath.Join(root, img)); err == nil {
						k.Vmlinuz = filepath.Join(root, img)
						break
					}
				}
				byVersion[v] = k
				versions = append(versions, v)
			}
		}
	}
	sort.Slice(versions, func(i, j int) bool { return kernelVersionLess(versions[i], versions[j]) })
	if len(versions) == 0 {
		return kernel{}, fmt.Errorf("kernel package %s: no module tree in %d linux-image packages", src.Package, len(images))
	}
	v := src.Version
	if v == "" {
		v = versions[len(versions)-1]
	}
	k, ok := byVersion[v]
	if !ok {
		return kernel{}, fmt.Errorf("kernel package %s has no kernel %s (it has: %s)", src.Package, v, strings.Join(versions, ", "))
	}
	if src.ModulesDir != "" {
		k.ModulesDir = src.ModulesDir
	}
	return k, nil
}

// kernelImages fetches the kernel package pkg and returns its linux-image
// packages.
func kernelImages(ctx context.Context, pkg string, fetch fetchFunc, log *slog.Logger) ([]backends.Package, error) {
	log.Info("fetching kernel package", "package", pkg)
	pkgs, err := fetch(ctx, pkg)
	if err != nil {
		return nil, fmt.Errorf("kernel package %s: %w", pkg, err)
	}
	var images []backends.Package
	for _, p := range pkgs {
		if strings.HasPrefix(p.Name, "linux-image-") {
			images = append(images, p)
		}
	}
	return images, nil
}

// kernelVersionLess orders kernel release strings the way people read them:
// runs of digits compare as numbers ("6.1.0-9" < "6.1.0-10"), the rest as text.
func kernelVersionLess(a, b string) bool {
	as, bs := splitVersion(a), splitVersion(b)
	for i := 0; i < len(as) && i < len(bs); i++ {
		x, y := as[i], bs[i]
		if x == y {
			continue
		}
		xn, xerr := strconv.Atoi(x)
		yn, yerr := strconv.Atoi(y)
		if xerr == nil && yerr == nil {
			return xn < yn
		}
		return x < y
	}
	return len(as) < len(bs)
}

func splitVersion(s string) []string {
	var out []string
	start := 0
	for i := 1; i <= len(s); i++ {
		if i == len(s) || isDigit(s[i]) != isDigit(s[i-1]) {
			out = append(out, s[start:i])
			start = i
		}
	}
	return out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
