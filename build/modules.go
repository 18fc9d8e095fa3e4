package build

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkginitrd/pkginitrd/fstree"
	"github.com/pkginitrd/pkginitrd/kmod"
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
	fo := modules.FirmwareOptions{Dirs: firmwareDirs(opts, k), KernelReads: firmwareCompressions(k, log),
		CacheDir: filepath.Join(opts.CacheDir, "modules"), Logger: log}
	fw, err := set.AddFirmware(t, "usr/lib/firmware", fo)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	log.Debug("firmware added", "files", len(fw), "named", len(set.Firmware), "dirs", fo.Dirs)
	return set, nil
}

// firmwareDirs lists where firmware is searched: --firmware-dir (default
// /usr/lib/firmware), then the kernel's own lib/firmware beside its
// module directory (a kernel package's), when different.
func firmwareDirs(opts Options, k kernel) []string {
	main := opts.FirmwareDir
	if main == "" {
		main = "/usr/lib/firmware"
	}
	dirs := []string{main}
	own := filepath.Join(filepath.Dir(filepath.Dir(filepath.Clean(k.ModulesDir))), "firmware")
	if st, err := os.Stat(own); err == nil && st.IsDir() && filepath.Clean(own) != filepath.Clean(main) {
		dirs = append(dirs, own)
	}
	return dirs
}

// firmwareCompressions returns the compressions the kernel's firmware
// loader reads, from its config (config-KVER beside its vmlinuz, else
// /boot/config-KVER): CONFIG_FW_LOADER_COMPRESS_XZ and _ZSTD (before 5.19
// CONFIG_FW_LOADER_COMPRESS alone meant xz). No config: none, so compressed
// firmware is decompressed.
func firmwareCompressions(k kernel, log *slog.Logger) []kmod.Compression {
	var cands []string
	if k.Vmlinuz != "" {
		cands = append(cands, filepath.Join(filepath.Dir(k.Vmlinuz), "config-"+k.Version))
	}
	cands = append(cands, filepath.Join("/boot", "config-"+k.Version))
	for _, p := range cands {
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		cfg, err := parseKernelConfig(f)
		f.Close()
		if err != nil {
			log.Warn("kernel config unreadable: compressed firmware will be decompressed", "file", p, "err", err)
			return nil
		}
		return fwCompressions(cfg)
	}
	log.Debug("no kernel config found: compressed firmware will be decompressed", "tried", cands)
	return nil
}

func fwCompressions(cfg map[string]string) []kmod.Compression {
	if cfg["CONFIG_FW_LOADER_COMPRESS"] != "y" {
		return nil
	}
	_, hasXZ := cfg["CONFIG_FW_LOADER_COMPRESS_XZ"]
	_, hasZstd := cfg["CONFIG_FW_LOADER_COMPRESS_ZSTD"]
	if !hasXZ && !hasZstd {
		return []kmod.Compression{kmod.XZ} // before Linux 5.19: xz only
	}
	var out []kmod.Compression
	if cfg["CONFIG_FW_LOADER_COMPRESS_XZ"] == "y" {
		out = append(out, kmod.XZ)
	}
	if cfg["CONFIG_FW_LOADER_COMPRESS_ZSTD"] == "y" {
		out = append(out, kmod.Zstd)
	}
	return out
}

// parseKernelConfig reads a kernel .config: CONFIG_X=value lines; "# CONFIG_X
// is not set" lines give "n".
func parseKernelConfig(r io.Reader) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if name, ok := strings.CutPrefix(line, "# "); ok {
			if name, ok = strings.CutSuffix(name, " is not set"); ok {
				out[name] = "n"
			}
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			out[k] = strings.Trim(v, `"`)
		}
	}
	return out, sc.Err()
}

// resolveModules computes the module set of an image: the generic set or
// the host-only set (see hostWants), plus the configured includes and
// force-loads.
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
		wants, err := hostWants(opts.ProcDir, opts.SysDir, log)
		if err != nil {
			return nil, err
		}
		sel.Wants = wants
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
