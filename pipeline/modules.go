package pipeline

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/modules"
	"github.com/pkginitrd/pkginitrd/modules/hostinfo"
)

// ModuleFiles says how an image stores the modules a kernel ships
// compressed (.ko.xz, .ko.zst, .ko.gz).
type ModuleFiles uint8

const (
	// ModuleFilesAuto picks by the image's compression: see KeepModulesCompressed.
	ModuleFilesAuto ModuleFiles = iota
	// ModuleFilesCompressed stores them as shipped; stage0 loads them with
	// in-kernel decompression where the kernel has it, else decompresses them.
	ModuleFilesCompressed
	// ModuleFilesDecompressed stores them as plain .ko files.
	ModuleFilesDecompressed
)

// KeepModulesCompressed reports whether an image compressed with c stores
// the modules compressed as shipped. inKernel says whether the kernel
// decompresses their method itself (CONFIG_MODULE_DECOMPRESS with the same
// CONFIG_MODULE_COMPRESS_*, see kernelDecompresses); where it does not,
// stage0 decompresses each module at boot.
//
// Measured on trixie's generic module set (6.12, 108 .ko.xz modules,
// TestKeepModulesCompressedRule), image sizes kept vs decompressed: none
// 5.1 vs 29.3 MB, lz4 5.1 vs 9.6, gzip 5.0 vs 7.1, zstd 5.0 vs 6.8, xz 5.0
// vs 5.9 (the image's xz has a 1 MiB dictionary, too small to span many
// modules). Whole generic trixie images (with cryptsetup and lvm): none
// 35.4 vs 59.7 MB, lz4 20.1 vs 24.4, gzip 17.9 vs 20.0, zstd 17.3 vs 19.0,
// xz 16.1 vs 17.0. Kept is always smaller, so modules stay compressed
// whenever the kernel decompresses them. Where it does not, they stay
// compressed when that saves at least a fifth of the module set (every
// compression but xz); for an xz image they are decompressed at build
// time, which spares stage0 decompressing each module at every boot.
func KeepModulesCompressed(c compress.Format, inKernel bool) bool {
	if inKernel {
		return true
	}
	return c != compress.XZ
}

// kernelDecompresses reports whether the kernel, by its config, decompresses
// every compressed module of set in finit_module (MODULE_INIT_COMPRESSED_FILE):
// CONFIG_MODULE_DECOMPRESS=y and CONFIG_MODULE_COMPRESS_<the modules' method>=y.
func kernelDecompresses(cfg map[string]string, set *modules.Set) bool {
	if cfg["CONFIG_MODULE_DECOMPRESS"] != "y" {
		return false
	}
	var method compress.Format
	switch {
	case cfg["CONFIG_MODULE_COMPRESS_XZ"] == "y":
		method = compress.XZ
	case cfg["CONFIG_MODULE_COMPRESS_ZSTD"] == "y":
		method = compress.Zstd
	case cfg["CONFIG_MODULE_COMPRESS_GZIP"] == "y":
		method = compress.Gzip
	default:
		return false
	}
	for _, m := range set.Modules {
		if kmod.StripCompressionExt(m.Rel) != m.Rel && !strings.HasSuffix(m.Rel, method.Ext()) {
			return false
		}
	}
	return true
}

// moduleCopy says how addModules stores the module set.
type moduleCopy struct {
	keepCompressed bool   // store compressed modules as shipped
	cacheDir       string // the build's cache (decompressed modules and firmware live under modules/)
	firmwareDir    string // --firmware-dir ("" = /usr/lib/firmware)
}

// addModules copies set's modules of kernel k into the image tree with
// their index files, then the firmware they name.
func addModules(ctx context.Context, t *fstree.Tree, k kernel, set *modules.Set, mc moduleCopy, log *slog.Logger) error {
	co := modules.CopyOptions{CacheDir: filepath.Join(mc.cacheDir, "modules"), KeepCompressed: mc.keepCompressed, Logger: log}
	if err := set.AddToTree(ctx, t, k.ImageDir(), co); err != nil {
		return fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	log.Debug("modules added", "count", len(set.Modules), "keep_compressed", mc.keepCompressed)
	fo := modules.FirmwareOptions{Dirs: firmwareDirs(mc.firmwareDir, k), KernelReads: firmwareCompressions(k, log),
		CacheDir: co.CacheDir, Logger: log}
	fw, err := set.AddFirmware(t, "usr/lib/firmware", fo)
	if err != nil {
		return fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	log.Debug("firmware added", "files", len(fw), "named", len(set.Firmware), "dirs", fo.Dirs)
	return nil
}

// firmwareDirs lists where firmware is searched: --firmware-dir (default
// /usr/lib/firmware), then the kernel's own lib/firmware beside its
// module directory (a kernel package's), when different.
func firmwareDirs(main string, k kernel) []string {
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
// loader reads, from its config (see kernelConfig):
// CONFIG_FW_LOADER_COMPRESS_XZ and _ZSTD (before 5.19
// CONFIG_FW_LOADER_COMPRESS alone meant xz). No config: none, so compressed
// firmware is decompressed.
func firmwareCompressions(k kernel, log *slog.Logger) []compress.Format {
	cfg, ok := kernelConfig(k, log)
	if !ok {
		log.Debug("no kernel config: compressed firmware will be decompressed", "kernel", k.Version)
		return nil
	}
	return fwCompressions(cfg)
}

// kernelConfig reads the kernel's config: config-KVER beside its vmlinuz,
// else /boot/config-KVER. ok is false when there is none (or it is
// unreadable, with a warning).
func kernelConfig(k kernel, log *slog.Logger) (cfg map[string]string, ok bool) {
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
			log.Warn("kernel config unreadable", "file", p, "err", err)
			return nil, false
		}
		return cfg, true
	}
	log.Debug("no kernel config found", "tried", cands)
	return nil, false
}

func fwCompressions(cfg map[string]string) []compress.Format {
	if cfg["CONFIG_FW_LOADER_COMPRESS"] != "y" {
		return nil
	}
	_, hasXZ := cfg["CONFIG_FW_LOADER_COMPRESS_XZ"]
	_, hasZstd := cfg["CONFIG_FW_LOADER_COMPRESS_ZSTD"]
	if !hasXZ && !hasZstd {
		return []compress.Format{compress.XZ} // before Linux 5.19: xz only
	}
	var out []compress.Format
	if cfg["CONFIG_FW_LOADER_COMPRESS_XZ"] == "y" {
		out = append(out, compress.XZ)
	}
	if cfg["CONFIG_FW_LOADER_COMPRESS_ZSTD"] == "y" {
		out = append(out, compress.Zstd)
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

// imageForceLoad is what stage0 force-loads: the configured names, then
// the set's other force-loaded modules (those host-only detection found the
// root's dm-crypt and LVM layers need).
func imageForceLoad(configured []string, set *modules.Set) []string {
	out := append([]string(nil), configured...)
	have := map[string]bool{}
	for _, n := range configured {
		have[kmod.Normalize(strings.TrimSpace(n))] = true
	}
	for _, n := range set.ForceLoad {
		if !have[n] {
			have[n] = true
			out = append(out, n)
		}
	}
	return out
}

// moduleSelection is the module selection of an image: the generic set,
// or the host-only set of host (see hostWants), plus the configured
// includes and force-loads.
func moduleSelection(mc confd.Modules, generic bool, host *hostinfo.Host) modules.Selection {
	sel := modules.Selection{Exclude: mc.Exclude, ForceLoad: mc.ForceLoad}
	if generic {
		sel.Include = append(sel.Include, mc.Generic...)
	} else {
		sel.Wants = hostWants(host)
	}
	sel.Include = append(append(sel.Include, mc.Include...), mc.ForceLoad...)
	return sel
}

// resolveModules loads kernel k's module tree (its modinfo cached under
// cacheDir) and resolves sel against it.
func resolveModules(ctx context.Context, k kernel, sel modules.Selection, cacheDir string, log *slog.Logger) (*modules.Set, error) {
	mt, err := modules.Load(ctx, k.ModulesDir, modules.LoadOptions{CacheDir: filepath.Join(cacheDir, "modinfo"), Logger: log})
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	set, err := modules.Resolve(ctx, mt, sel)
	if err != nil {
		return nil, fmt.Errorf("kernel %s: %w", k.Version, err)
	}
	return set, nil
}
