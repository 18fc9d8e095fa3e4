package pipeline

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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
		{"console-setup: the map its script loads, not an older one", map[string]string{"etc/default/keyboard": "XKBLAYOUT=fr\n",
			"etc/console-setup/cached_UTF-8_del.kmap.gz": "x", "etc/console-setup/cached_ISO-8859-1_del.kmap.gz": "old",
			"etc/console-setup/cached_setup_keyboard.sh": "#!/bin/sh\nkbd_mode '-u' < '/dev/tty1'\nloadkeys '/etc/console-setup/cached_UTF-8_del.kmap.gz' > '/dev/null'\n"},
			"fr", "etc/console-setup/cached_UTF-8_del.kmap.gz", true},
		{"console-setup without a cached map", map[string]string{"etc/default/keyboard": "XKBLAYOUT=de\n"}, "de", "", false},
		{"nothing", nil, "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fileTree(t, tc.files)
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
	data, err := compileKeymap(context.Background(), src)
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
	if _, err := compileKeymap(context.Background(), filepath.Join(t.TempDir(), "missing.map")); err == nil {
		t.Error("compileKeymap(missing file) = nil error")
	}
}

// psf2Font is a PSF2 font of 256 blank 8x16 glyphs without a table.
func psf2Font() []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, []uint32{0x864ab572, 0, 32, 0, 256, 16, 16, 8}) //nolint:errcheck // bytes.Buffer
	b.Write(make([]byte, 256*16))
	return b.Bytes()
}

func gzipped(data []byte) []byte {
	var b bytes.Buffer
	z := gzip.NewWriter(&b)
	z.Write(data) //nolint:errcheck // bytes.Buffer
	z.Close()     //nolint:errcheck // bytes.Buffer
	return b.Bytes()
}

func TestHostFont(t *testing.T) {
	font := string(gzipped(psf2Font()))
	for _, tc := range []struct {
		name     string
		files    map[string]string
		wantName string
		wantFile string // relative to the root
	}{
		{"vconsole.conf, Debian's directory", map[string]string{"etc/vconsole.conf": "KEYMAP=de\nFONT=eurlatgr\n", "usr/share/consolefonts/eurlatgr.psfu.gz": font, "etc/console-setup/cached_Uni2-Fixed16.psf.gz": font},
			"eurlatgr", "usr/share/consolefonts/eurlatgr.psfu.gz"},
		{"vconsole.conf, Fedora's directory", map[string]string{"etc/vconsole.conf": "FONT=\"eurlatgr\"\n", "usr/lib/kbd/consolefonts/eurlatgr.psfu.gz": font},
			"eurlatgr", "usr/lib/kbd/consolefonts/eurlatgr.psfu.gz"},
		{"vconsole.conf, Arch's directory and a name with its suffix", map[string]string{"etc/vconsole.conf": "FONT=ter-v16n.psf.gz\n", "usr/share/kbd/consolefonts/ter-v16n.psf.gz": font},
			"ter-v16n.psf.gz", "usr/share/kbd/consolefonts/ter-v16n.psf.gz"},
		{"vconsole.conf names a font that is not installed", map[string]string{"etc/vconsole.conf": "FONT=ter-v32n\n"}, "ter-v32n", ""},
		{"console-setup's cached font", map[string]string{"etc/default/console-setup": "FONTFACE=Fixed\n", "etc/console-setup/cached_Uni2-Fixed16.psf.gz": font},
			"Uni2-Fixed16", "etc/console-setup/cached_Uni2-Fixed16.psf.gz"},
		{"console-setup: the font its script loads, not an older one", map[string]string{"etc/console-setup/cached_Lat15-Fixed16.psf.gz": font,
			"etc/console-setup/cached_Uni2-Fixed16.psf.gz": font, "etc/console-setup/cached_setup_font.sh": "#!/bin/sh\nsetfont '/etc/console-setup/cached_Uni2-Fixed16.psf.gz'\n"},
			"Uni2-Fixed16", "etc/console-setup/cached_Uni2-Fixed16.psf.gz"},
		{"nothing", nil, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fileTree(t, tc.files)
			want := ""
			if tc.wantFile != "" {
				want = filepath.Join(root, tc.wantFile)
			}
			if name, file := hostFont(root); name != tc.wantName || file != want {
				t.Errorf("hostFont = %q, %q; want %q, %q", name, file, tc.wantName, want)
			}
		})
	}
}

func TestReadFont(t *testing.T) {
	dir := t.TempDir()
	plain, gz, bad := filepath.Join(dir, "f.psf"), filepath.Join(dir, "f.psf.gz"), filepath.Join(dir, "bad.psf.gz")
	for p, data := range map[string][]byte{plain: psf2Font(), gz: gzipped(psf2Font()), bad: gzipped([]byte("bkeymap"))} {
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{plain, gz} {
		data, f, err := readFont(p)
		if err != nil || !bytes.Equal(data, psf2Font()) || f.Count != 256 {
			t.Errorf("readFont(%s) = %d bytes, %v, %v; want the plain font", p, len(data), f, err)
		}
	}
	for _, p := range []string{bad, filepath.Join(dir, "missing.psf")} {
		if _, _, err := readFont(p); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("readFont(%s) = %v, want an error naming the file", p, err)
		}
	}
}

// TestKeymapSetCache: a generic image's keymap set is compiled once and
// then read from the cache, and a changed set of names compiles again.
func TestKeymapSetCache(t *testing.T) {
	if _, err := exec.LookPath("loadkeys"); err != nil {
		t.Skip("loadkeys not installed (package kbd)")
	}
	cache := t.TempDir()
	b := &build{log: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	names := []string{"us", "no-such-keymap"}
	k := startKeymapSet(ctx, cache, names)
	if k.save == "" {
		t.Fatal("first build: the set was read from an empty cache")
	}
	first := k.wait(ctx, b)
	if len(first) != 2 || len(first[0].Data) == 0 || first[0].Err != "" || first[1].Err == "" {
		t.Fatalf("compiled set = %+v, want us compiled and no-such-keymap failed", first)
	}
	k = startKeymapSet(ctx, cache, names)
	if k.save != "" {
		t.Fatal("second build: the set was compiled again")
	}
	if again := k.wait(ctx, b); !bytes.Equal(again[0].Data, first[0].Data) || again[1].Err != first[1].Err {
		t.Errorf("cached set = %+v, want %+v", again, first)
	}
	k = startKeymapSet(ctx, cache, names[:1])
	if k.save == "" {
		t.Fatal("a different set of names was read from the cache")
	}
	k.wait(ctx, b)
	if sets, _ := filepath.Glob(filepath.Join(cache, keymapSetDir, "*.json")); len(sets) != 1 {
		t.Errorf("cache holds %d keymap sets, want the newest only", len(sets))
	}
}
