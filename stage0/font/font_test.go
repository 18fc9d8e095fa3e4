package font

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// psf2 builds a PSF2 font of n glyphs of w×h pixels whose every byte is
// the glyph's number, with a Unicode table mapping glyph g to the runes
// in table[g] (no table when table is nil).
func psf2(w, h, n int, table map[int]string) []byte {
	var b bytes.Buffer
	rb := (w + 7) / 8
	flags := uint32(0)
	if table != nil {
		flags = psf2HasTable
	}
	binary.Write(&b, binary.LittleEndian, []uint32{0x864ab572, 0, psf2HeaderLen, flags, uint32(n), uint32(h * rb), uint32(h), uint32(w)}) //nolint:errcheck // bytes.Buffer
	for g := 0; g < n; g++ {
		b.Write(bytes.Repeat([]byte{byte(g)}, h*rb))
	}
	if table != nil {
		for g := 0; g < n; g++ {
			b.WriteString(table[g])
			b.WriteByte(psf2Separator)
		}
	}
	return b.Bytes()
}

// psf1 builds a PSF1 font (8 pixels wide) of 256 or 512 glyphs, with an
// optional table as in psf2.
func psf1(h, n int, table map[int][]uint16) []byte {
	mode := byte(0)
	if n == 512 {
		mode |= psf1Mode512
	}
	if table != nil {
		mode |= psf1ModeTab
	}
	b := bytes.NewBuffer([]byte{0x36, 0x04, mode, byte(h)})
	for g := 0; g < n; g++ {
		b.Write(bytes.Repeat([]byte{byte(g)}, h))
	}
	if table != nil {
		for g := 0; g < n; g++ {
			binary.Write(b, binary.LittleEndian, append(table[g], psf1Separator)) //nolint:errcheck // bytes.Buffer
		}
	}
	return b.Bytes()
}

func TestParse(t *testing.T) {
	tests := []struct {
		name                string
		data                []byte
		w, h, n             int
		pairs               []Pair
		glyphRow, glyphWant int // the first byte of glyph glyphRow is glyphWant
	}{
		{"psf2 8x16 with a table and a sequence", psf2(8, 16, 256, map[int]string{65: "AÀ", 66: "B\xfeB\u0301"}), 8, 16, 256,
			[]Pair{{'A', 65}, {'À', 65}, {'B', 66}}, 66, 66},
		{"psf2 12x22 without a table", psf2(12, 22, 512, nil), 12, 22, 512, nil, 300, 300 % 256},
		{"psf1 512 with a table and a sequence", psf1(14, 512, map[int][]uint16{1: {0x263a}, 300: {'x', psf1StartSeq, 'y', 'z'}}), 8, 14, 512,
			[]Pair{{0x263a, 1}, {'x', 300}}, 511, 511 % 256},
		{"psf1 256 without a table", psf1(8, 256, nil), 8, 8, 256, nil, 7, 7},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := Parse(tc.data)
			if err != nil {
				t.Fatal(err)
			}
			if f.Width != tc.w || f.Height != tc.h || f.Count != tc.n {
				t.Errorf("Parse = %s, want %d glyphs of %dx%d", f, tc.n, tc.w, tc.h)
			}
			if p := f.Pairs(); len(p) != len(tc.pairs) || (len(p) > 0 && !equalPairs(p, tc.pairs)) {
				t.Errorf("Pairs = %v, want %v", p, tc.pairs)
			}
			kd := f.KernelData()
			rb := (tc.w + 7) / 8
			g := kd[tc.glyphRow*MaxHeight*rb:]
			if len(kd) != tc.n*MaxHeight*rb || g[0] != byte(tc.glyphWant) || g[tc.h*rb-1] != byte(tc.glyphWant) || g[tc.h*rb] != 0 {
				t.Errorf("KernelData: %d bytes, glyph %d starts %d, ends %d, pads with %d", len(kd), tc.glyphRow, g[0], g[tc.h*rb-1], g[tc.h*rb])
			}
		})
	}
}

func equalPairs(a, b []Pair) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestParseRejects(t *testing.T) {
	good := psf2(8, 16, 256, map[int]string{})
	tooTall := psf2(8, 40, 256, nil)
	tooMany := psf2(8, 16, 1024, nil)
	badUTF8 := psf2(8, 16, 256, map[int]string{3: "\xc3"})
	for name, data := range map[string][]byte{
		"empty":         nil,
		"not a font":    []byte("bkeymap"),
		"psf2 cut":      good[:100],
		"table cut":     good[:len(good)-1],
		"psf1 cut":      psf1(16, 512, nil)[:600],
		"too tall":      tooTall,
		"too many":      tooMany,
		"bad utf-8":     badUTF8,
		"psf1 0 height": psf1(0, 256, nil),
	} {
		if f, err := Parse(data); err == nil {
			t.Errorf("%s: Parse = %s, want an error", name, f)
		}
	}
	if _, err := Parse([]byte("hello, world")); !errors.Is(err, ErrFormat) {
		t.Errorf("Parse(text) = %v, want ErrFormat", err)
	}
}

// TestParseInstalledFonts parses the console fonts the build host has
// (kbd and console-setup ship PSF1 and PSF2 fonts, gzip-compressed).
func TestParseInstalledFonts(t *testing.T) {
	var files []string
	for _, dir := range []string{"/usr/share/consolefonts", "/usr/share/kbd/consolefonts", "/usr/lib/kbd/consolefonts"} {
		m, _ := filepath.Glob(filepath.Join(dir, "*.psf*"))
		files = append(files, m...)
	}
	if len(files) == 0 {
		t.Skip("no console fonts installed (packages kbd, console-setup)")
	}
	withTable := 0
	for _, name := range files {
		data, err := readMaybeGzip(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(data)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(f.Pairs()) > 0 {
			withTable++
		}
	}
	if withTable == 0 {
		t.Errorf("none of %d installed fonts has a Unicode table", len(files))
	}
	t.Logf("parsed %d fonts, %d with a Unicode table", len(files), withTable)
}

func readMaybeGzip(name string) ([]byte, error) {
	data, err := os.ReadFile(name)
	if err != nil || !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		return data, err
	}
	z, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(z)
}

// TestTableMatchesKbd compares the Unicode tables Parse reads with what
// kbd's psfgettable extracts from the same installed fonts.
func TestTableMatchesKbd(t *testing.T) {
	tool, err := exec.LookPath("psfgettable")
	if err != nil {
		t.Skip("psfgettable not installed (package kbd)")
	}
	files, _ := filepath.Glob("/usr/share/consolefonts/*.psf.gz")
	if len(files) == 0 {
		t.Skip("no fonts in /usr/share/consolefonts (package console-setup)")
	}
	for i, name := range files {
		if i%10 != 0 { // a sample: every tenth font
			continue
		}
		data, err := readMaybeGzip(name)
		if err != nil {
			t.Fatal(err)
		}
		f, err := Parse(data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		plain := filepath.Join(t.TempDir(), "font.psf")
		if err := os.WriteFile(plain, data, 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(tool, plain, "-").Output()
		if err != nil {
			t.Fatalf("psfgettable %s: %v", name, err)
		}
		var want []string
		for _, line := range strings.Split(string(out), "\n") {
			fields := strings.Fields(line)
			if len(fields) < 2 || strings.HasPrefix(line, "#") {
				continue
			}
			g, err := strconv.ParseUint(fields[0], 0, 16)
			if err != nil {
				t.Fatalf("psfgettable %s: line %q", name, line)
			}
			for _, u := range fields[1:] {
				if r, err := strconv.ParseUint(strings.TrimPrefix(u, "U+"), 16, 32); err == nil && r <= 0xFFFF {
					want = append(want, fmt.Sprint(Pair{uint16(r), uint16(g)}))
				}
			}
		}
		var got []string
		for _, p := range f.Pairs() {
			got = append(got, fmt.Sprint(p))
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s: %d pairs, psfgettable %d", name, len(got), len(want))
		}
	}
}
