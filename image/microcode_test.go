package image

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

func TestMicrocodeTree(t *testing.T) {
	compressed := func(t *testing.T) string {
		root := t.TempDir()
		dir := filepath.Join(root, "usr/lib/firmware/amd-ucode")
		writeFiles(t, dir, map[string]string{
			"microcode_amd_fam17h.bin": "amd-17 from xz;",
			"microcode_amd_fam19h.bin": "amd-19 plain;",
			"microcode_amd_fam1ah.bin": "amd-1a from zst;",
		})
		run(t, dir, nil, "xz", "--check=crc32", "microcode_amd_fam17h.bin")
		run(t, dir, nil, "zstd", "-q", "--rm", "microcode_amd_fam1ah.bin")
		// A stale compressed copy next to the plain file is ignored.
		run(t, dir, nil, "zstd", "-q", "-k", "microcode_amd_fam19h.bin")
		os.WriteFile(filepath.Join(dir, "microcode_amd_fam19h.bin"), []byte("amd-19 plain;"), 0o644)
		return root
	}
	tests := []struct {
		name        string
		root        func(t *testing.T) string
		intel, amd  string // "" = absent
		wantNilTree bool
	}{
		{"merged usr", func(t *testing.T) string { return fakeFirmware(t, "usr/lib/firmware") }, "intel-55-04;intel-8e-0a;", "amd-old;amd-19;", false},
		{"lib/firmware", func(t *testing.T) string { return fakeFirmware(t, "lib/firmware") }, "intel-55-04;intel-8e-0a;", "amd-old;amd-19;", false},
		{"intel only", func(t *testing.T) string {
			root := t.TempDir()
			writeFiles(t, root, map[string]string{"usr/lib/firmware/intel-ucode/06-9e-0d": "intel-9e;"})
			return root
		}, "intel-9e;", "", false},
		{"compressed amd", compressed, "", "amd-17 from xz;amd-19 plain;amd-1a from zst;", false},
		{"no microcode dirs", func(t *testing.T) string {
			root := t.TempDir()
			writeFiles(t, root, map[string]string{"usr/lib/firmware/iwlwifi.ucode": "x"})
			return root
		}, "", "", true},
		{"empty vendor dirs", func(t *testing.T) string {
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, "usr/lib/firmware/intel-ucode"), 0o755)
			writeFiles(t, root, map[string]string{"usr/lib/firmware/amd-ucode/README": "x"})
			return root
		}, "", "", true},
		{"missing root", func(t *testing.T) string { return filepath.Join(t.TempDir(), "nope") }, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree, err := MicrocodeTree(tt.root(t))
			if err != nil {
				t.Fatalf("MicrocodeTree() = %v", err)
			}
			if tt.wantNilTree {
				if tree != nil {
					t.Fatalf("MicrocodeTree() = tree with %v, want nil", treePaths(tree))
				}
				return
			}
			if tree == nil {
				t.Fatal("MicrocodeTree() = nil")
			}
			for path, want := range map[string]string{IntelMicrocodePath: tt.intel, AMDMicrocodePath: tt.amd, EarlyCpioMarker: "1\n"} {
				e := tree.Get(path)
				switch {
				case want == "" && e != nil:
					t.Errorf("%s present, want absent", path)
				case want == "":
				case e == nil:
					t.Errorf("%s absent, want %q", path, want)
				case e.Kind != fstree.File || string(e.Data) != want || e.Size != int64(len(want)):
					t.Errorf("%s = %s %q (size %d), want file %q", path, e.Kind, e.Data, e.Size, want)
				}
			}
			for _, p := range treePaths(tree) {
				if p != EarlyCpioMarker && !strings.HasPrefix(p, "kernel") {
					t.Errorf("unexpected entry %s", p)
				}
			}
		})
	}
}
