package pipeline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
	"github.com/pkginitrd/pkginitrd/stage0/keymap"
)

func TestHostKeymap(t *testing.T) {
	for _, tc := range []struct {
		name      string
		files     map[string]string
		wantName  string
		wantArg   string // relative to the root when it starts with etc/
		wantAbsIn bool
	}{
		{"vconsole.conf", map[string]string{"etc/vconsole.conf": "KEYMAP=de-latin1-nodeadkeys\nFONT=eurlatgr\n", "etc/default/keyboard": "XKBLAYOUT=\"fr\"\n"},
			"de-latin1-nodeadkeys", "de-latin1-nodeadkeys", false},
		{"console-setup", map[string]string{"etc/default/keyboard": "XKBMODEL=\"pc105\"\nXKBLAYOUT=\"fr\"\nXKBVARIANT=\"azerty\"\n", "etc/console-setup/cached_UTF-8_del.kmap.gz": "x"},
			"fr-azerty", "etc/console-setup/cached_UTF-8_del.kmap.gz", true},
		{"console-setup without a cached map", map[string]string{"etc/default/keyboard": "XKBLAYOUT=de\n"}, "de", "", false},
		{"nothing", nil, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			for p, data := range tc.files {
				p = filepath.Join(root, p)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want := tc.wantArg
			if tc.wantAbsIn {
				want = filepath.Join(root, want)
			}
			if name, arg := hostKeymap(root); name != tc.wantName || arg != want {
				t.Errorf("hostKeymap = %q, %q; want %q, %q", name, arg, tc.wantName, want)
			}
		})
	}
}

// TestCompileKeymap compiles a one-key keymap source with loadkeys -b.
func TestCompileKeymap(t *testing.T) {
	testenv.NeedTool(t, "loadkeys", "kbd")
	src := filepath.Join(t.TempDir(), "swap.map")
	if err := os.WriteFile(src, []byte("keymaps 0-1\nkeycode 16 = +a +A\nkeycode 30 = +q +Q\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	data, err := compileKeymap(src)
	if err != nil {
		t.Fatal(err)
	}
	m, err := keymap.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if a, q := m.Tables[0][16], m.Tables[1][30]; a != 0xb61 || q != 0xb51 {
		t.Errorf("compiled keys 16 and shift-30 = %#x %#x, want 0xb61 (a) 0xb51 (Q)", a, q)
	}
	if _, err := compileKeymap(filepath.Join(t.TempDir(), "missing.map")); err == nil {
		t.Error("compileKeymap(missing file) = nil error")
	}
}
