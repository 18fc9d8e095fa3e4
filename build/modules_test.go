package build

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testdeb"
	"github.com/pkginitrd/pkginitrd/kmod"
)

func TestFirmwareCompressions(t *testing.T) {
	for _, tc := range []struct {
		config string
		want   []kmod.Compression
	}{
		{"CONFIG_FW_LOADER=y\n# CONFIG_FW_LOADER_COMPRESS is not set\n", nil},
		{"CONFIG_FW_LOADER_COMPRESS=y\n", []kmod.Compression{kmod.XZ}},
		{"CONFIG_FW_LOADER_COMPRESS=y\nCONFIG_FW_LOADER_COMPRESS_XZ=y\n# CONFIG_FW_LOADER_COMPRESS_ZSTD is not set\n", []kmod.Compression{kmod.XZ}},
		{"CONFIG_FW_LOADER_COMPRESS=y\nCONFIG_FW_LOADER_COMPRESS_XZ=y\nCONFIG_FW_LOADER_COMPRESS_ZSTD=y\n", []kmod.Compression{kmod.XZ, kmod.Zstd}},
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
	want := []kmod.Compression{}
	if strings.Contains(string(data), "\nCONFIG_FW_LOADER_COMPRESS_XZ=y\n") {
		want = append(want, kmod.XZ)
	}
	if strings.Contains(string(data), "\nCONFIG_FW_LOADER_COMPRESS_ZSTD=y\n") {
		want = append(want, kmod.Zstd)
	}
	if got := firmwareCompressions(k, slog.New(slog.DiscardHandler)); !slices.Equal(got, want) || len(got) == 0 {
		t.Errorf("firmwareCompressions(Debian %s) = %v, want %v (from its config)", kver, got, want)
	}
}
