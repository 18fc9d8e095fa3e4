package pipeline

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
	"github.com/pkginitrd/pkginitrd/modules"
)

func TestFirmwareCompressions(t *testing.T) {
	for _, tc := range []struct {
		config string
		want   []compress.Format
	}{
		{"CONFIG_FW_LOADER=y\n# CONFIG_FW_LOADER_COMPRESS is not set\n", nil},
		{"CONFIG_FW_LOADER_COMPRESS=y\n", []compress.Format{compress.XZ}},
		{"CONFIG_FW_LOADER_COMPRESS=y\nCONFIG_FW_LOADER_COMPRESS_XZ=y\n# CONFIG_FW_LOADER_COMPRESS_ZSTD is not set\n", []compress.Format{compress.XZ}},
		{"CONFIG_FW_LOADER_COMPRESS=y\nCONFIG_FW_LOADER_COMPRESS_XZ=y\nCONFIG_FW_LOADER_COMPRESS_ZSTD=y\n", []compress.Format{compress.XZ, compress.Zstd}},
	} {
		cfg, err := parseKernelConfig(strings.NewReader(tc.config))
		if got := fwCompressions(cfg); err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("fwCompressions(%q) = %v, %v, want %v", tc.config, got, err, tc.want)
		}
	}
	// The real Debian kernel: its config beside its vmlinuz.
	root, kver := testdeb.Kernel(t)
	k := kernel{Version: kver, ModulesDir: filepath.Join(root, "lib", "modules", kver), Vmlinuz: filepath.Join(root, "boot", "vmlinuz-"+kver)}
	data, err := os.ReadFile(filepath.Join(root, "boot", "config-"+kver))
	if err != nil {
		t.Fatal(err)
	}
	want := []compress.Format{}
	if strings.Contains(string(data), "\nCONFIG_FW_LOADER_COMPRESS_XZ=y\n") {
		want = append(want, compress.XZ)
	}
	if strings.Contains(string(data), "\nCONFIG_FW_LOADER_COMPRESS_ZSTD=y\n") {
		want = append(want, compress.Zstd)
	}
	if got := firmwareCompressions(k, slog.New(slog.DiscardHandler)); !slices.Equal(got, want) || len(got) == 0 {
		t.Errorf("firmwareCompressions(Debian %s) = %v, want %v (from its config)", kver, got, want)
	}
}

// TestKeepModulesCompressedRule builds the module part of trixie's generic
// image (6.12, .ko.xz modules, the shipped generic set) with every image
// compression, modules kept as shipped and decompressed, and checks that
// KeepModulesCompressed picks the smaller image for each.
func TestKeepModulesCompressedRule(t *testing.T) {
	ctx := context.Background()
	cfg, _, err := confd.Load(confd.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	root, kver := testdeb.ReleaseKernel(t, "trixie")
	tr, err := modules.Load(ctx, testdeb.ModulesDir(t, root, kver), modules.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	set, err := modules.Resolve(ctx, tr, modules.Selection{Include: cfg.Modules.Generic})
	if err != nil {
		t.Fatal(err)
	}
	cache, out := t.TempDir(), t.TempDir()
	trees := map[bool]*fstree.Tree{}
	for _, keep := range []bool{false, true} {
		trees[keep] = fstree.New()
		if err := set.AddToTree(ctx, trees[keep], "usr/lib/modules/"+kver, modules.CopyOptions{CacheDir: cache, KeepCompressed: keep}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range compress.Writable() {
		size := map[bool]int64{}
		for keep, ft := range trees {
			res, err := image.Build(ctx, filepath.Join(out, fmt.Sprintf("%s-%v.img", c, keep)), ft, image.Options{Compression: c})
			if err != nil {
				t.Fatal(err)
			}
			size[keep] = res.Size
		}
		t.Logf("%-4s: %d modules, kept compressed %9d bytes, decompressed %9d bytes (%+.0f%% kept)",
			c, len(set.Modules), size[true], size[false], 100*float64(size[true]-size[false])/float64(size[false]))
		// The kernel decompresses them: keep them wherever that is smaller.
		if got, want := KeepModulesCompressed(c, true), size[true] < size[false]; got != want {
			t.Errorf("KeepModulesCompressed(%s, in kernel) = %v, but kept %d bytes, decompressed %d bytes", c, got, size[true], size[false])
		}
		// It does not: keep them only where that saves at least a fifth.
		if got, want := KeepModulesCompressed(c, false), size[true] < size[false]*4/5; got != want {
			t.Errorf("KeepModulesCompressed(%s, not in kernel) = %v, but kept %d bytes, decompressed %d bytes", c, got, size[true], size[false])
		}
	}
	data, err := os.ReadFile(filepath.Join(root, "boot", "config-"+kver))
	if err != nil {
		t.Fatal(err)
	}
	kcfg, err := parseKernelConfig(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !kernelDecompresses(kcfg, set) {
		t.Errorf("kernelDecompresses(trixie %s config) = false, want true (CONFIG_MODULE_DECOMPRESS=y, xz)", kver)
	}
	kcfg["CONFIG_MODULE_COMPRESS_XZ"], kcfg["CONFIG_MODULE_COMPRESS_ZSTD"] = "n", "y"
	if kernelDecompresses(kcfg, set) {
		t.Errorf("kernelDecompresses(zstd config, .ko.xz modules) = true, want false")
	}
	kcfg["CONFIG_MODULE_DECOMPRESS"] = "n"
	if kernelDecompresses(kcfg, set) {
		t.Errorf("kernelDecompresses(no CONFIG_MODULE_DECOMPRESS) = true, want false")
	}
}

// TestRunFirmware builds an image whose module set has isci (Intel C600
// SAS), whose modinfo names isci/isci_firmware.bin, with Debian's
// firmware-linux-free unpacked as the firmware directory: the file lands
// in the image byte for byte where the kernel's loader looks (/lib is
// usr/lib).
func TestRunFirmware(t *testing.T) {
	opts := testOptions(t)
	opts.Config.Modules.Generic = append(opts.Config.Modules.Generic, "isci")
	fw := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", testdeb.Deb(t, "firmware-linux-free"), fw).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x firmware-linux-free: %v\n%s", err, out)
	}
	opts.FirmwareDir = filepath.Join(fw, "lib", "firmware")
	if _, err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	x := extractImage(t, opts.Output)
	want, err := os.ReadFile(filepath.Join(opts.FirmwareDir, "isci", "isci_firmware.bin"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(x, "lib", "firmware", "isci", "isci_firmware.bin"))
	if err != nil || !bytes.Equal(got, want) {
		t.Errorf("image /lib/firmware/isci/isci_firmware.bin: %d bytes, %v; want the %d bytes of firmware-linux-free's", len(got), err, len(want))
	}
	// Only the firmware the modules name.
	var files []string
	filepath.WalkDir(filepath.Join(x, "usr", "lib", "firmware"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, strings.TrimPrefix(p, x+"/"))
		}
		return nil
	})
	if !slices.Equal(files, []string{"usr/lib/firmware/isci/isci_firmware.bin"}) {
		t.Errorf("image firmware files = %q, want only isci's", files)
	}
}

// BenchmarkRunGeneric is a warm build (metadata and decompressed-module
// caches filled) of the shipped generic module set on bookworm's 6.1 tree
// and trixie's 6.12 tree (.ko.xz kept, by the default zstd rule), with the
// test packages (busybox, libc6): it reports the modules step and its
// share of the whole build from the manifest's timings.
func BenchmarkRunGeneric(b *testing.B) {
	trees := []struct {
		name string
		dir  func(testing.TB) string
	}{
		{"bookworm-6.1", func(t testing.TB) string {
			root, kver := testdeb.Kernel(t)
			return testdeb.ModulesDir(t, root, kver)
		}},
		{"trixie-6.12", func(t testing.TB) string {
			root, kver := testdeb.ReleaseKernel(t, "trixie")
			return testdeb.ModulesDir(t, root, kver)
		}},
	}
	for _, tr := range trees {
		b.Run(tr.name, func(b *testing.B) {
			opts := testOptions(b)
			opts.ModulesDir = tr.dir(b)
			cfg, _, err := confd.Load(confd.Sources{})
			if err != nil {
				b.Fatal(err)
			}
			opts.Config.Modules.Generic = cfg.Modules.Generic
			if _, err := Run(context.Background(), opts); err != nil { // warm the caches
				b.Fatal(err)
			}
			var modMS, totalMS int64
			for b.Loop() {
				res, err := Run(context.Background(), opts)
				if err != nil {
					b.Fatal(err)
				}
				modMS += res.Manifest.Timings["modules"]
				totalMS += res.Manifest.Timings["total"]
			}
			b.ReportMetric(float64(modMS)/float64(b.N), "modules-ms/op")
			b.ReportMetric(100*float64(modMS)/float64(max(totalMS, 1)), "modules-%")
		})
	}
}

// extractImage unpacks the image at path into a temporary directory.
func extractImage(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	x := t.TempDir()
	if _, err := image.Extract(context.Background(), f, st.Size(), x); err != nil {
		t.Fatalf("extract %s: %v", path, err)
	}
	return x
}
