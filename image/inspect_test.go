package image

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/internal/compress"
)

// gnuTrees creates the directories of a typical image: an early microcode
// tree as dracut lays it out, and a small main tree.
func gnuTrees(t *testing.T) (early, main string) {
	t.Helper()
	early, main = t.TempDir(), t.TempDir()
	writeFiles(t, early, map[string]string{
		"early_cpio":                            "1\n",
		"kernel/x86/microcode/GenuineIntel.bin": strings.Repeat("intel microcode ", 1000),
	})
	writeFiles(t, main, map[string]string{
		"init":              "#!/bin/sh\nexec /sbin/init\n",
		"usr/bin/busybox":   string(testData(200 << 10)),
		"etc/fstab":         "",
		"usr/lib/modules/x": strings.Repeat("module ", 10000),
	})
	if err := os.Symlink("usr/bin", filepath.Join(main, "bin")); err != nil {
		t.Fatal(err)
	}
	return early, main
}

// pad4 appends NULs up to a multiple of 4, plus extra more.
func pad4(b []byte, extra int) []byte {
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return append(b, make([]byte, extra)...)
}

func inspect(t *testing.T, img []byte) []Segment {
	t.Helper()
	segs, err := Inspect(bytes.NewReader(img), int64(len(img)))
	if err != nil {
		t.Fatalf("Inspect() = %v (segments so far: %s)", err, summary(segs))
	}
	return segs
}

type wantSeg struct {
	offset   int64
	comp     string
	archives int
	names    []string // entry names of all archives
}

func checkSegments(t *testing.T, segs []Segment, want []wantSeg) {
	t.Helper()
	if len(segs) != len(want) {
		t.Fatalf("Inspect() = %s; want %d segments", summary(segs), len(want))
	}
	for i, w := range want {
		s := segs[i]
		if s.Offset != w.offset || s.Compression != w.comp || s.Archives != w.archives {
			t.Errorf("segment %d = %s@%d with %d archives, want %s@%d with %d", i, s.Compression, s.Offset, s.Archives, w.comp, w.offset, w.archives)
		}
		if got, want := strings.Join(headerNames(s.Entries), " "), strings.Join(w.names, " "); got != want {
			t.Errorf("segment %d entries\n%s\nwant\n%s", i, got, want)
		}
	}
}

// TestInspectDracutStyle reads images laid out as dracut writes them: an
// uncompressed early cpio (padded to 512 bytes by GNU cpio) with the
// early_cpio marker and microcode, then the compressed main archive.
func TestInspectDracutStyle(t *testing.T) {
	earlyDir, mainDir := gnuTrees(t)
	early, main := gnuArchive(t, earlyDir), gnuArchive(t, mainDir)
	earlyNames, mainNames := cpioList(t, early), cpioList(t, main)
	for _, c := range []compress.Format{compress.Zstd, compress.Gzip, compress.XZ, compress.LZ4} {
		t.Run(string(c), func(t *testing.T) {
			name, args := compressCmd(c)
			img := append(append([]byte{}, early...), run(t, "", main, name, args...)...)
			checkSegments(t, inspect(t, img), []wantSeg{
				{0, "none", 1, earlyNames},
				{int64(len(early)), string(c), 1, mainNames},
			})
		})
	}
}

// TestInspectInitramfsToolsStyle reads images laid out as initramfs-tools
// writes them: one early cpio per microcode vendor, then a compressed
// stream that holds several cpio archives back to back.
func TestInspectInitramfsToolsStyle(t *testing.T) {
	earlyDir, mainDir := gnuTrees(t)
	amdDir := t.TempDir()
	writeFiles(t, amdDir, map[string]string{"kernel/x86/microcode/AuthenticAMD.bin": "amd microcode"})
	amd, intel, main := gnuArchive(t, amdDir), gnuArchive(t, earlyDir), gnuArchive(t, mainDir)
	extraDir := t.TempDir()
	writeFiles(t, extraDir, map[string]string{"conf/conf.d/resume": "RESUME=none\n"})
	extra := gnuArchive(t, extraDir)
	inner := append(append([]byte{}, main...), extra...)
	for _, c := range []compress.Format{compress.Gzip, compress.Zstd, compress.LZ4, compress.XZ} {
		t.Run(string(c), func(t *testing.T) {
			name, args := compressCmd(c)
			img := append(append(append([]byte{}, amd...), intel...), run(t, "", inner, name, args...)...)
			checkSegments(t, inspect(t, img), []wantSeg{
				{0, "none", 1, cpioList(t, amd)},
				{int64(len(amd)), "none", 1, cpioList(t, intel)},
				{int64(len(amd) + len(intel)), string(c), 2, append(cpioList(t, main), cpioList(t, extra)...)},
			})
		})
	}
}

// TestInspectAfterCompressed puts segments after each compressed stream,
// so Inspect must find exactly where the stream ends (as the kernel does).
func TestInspectAfterCompressed(t *testing.T) {
	_, mainDir := gnuTrees(t)
	main := gnuArchive(t, mainDir)
	mainNames := cpioList(t, main)
	tail := writeOurArchive(t, cpio.Header{Name: "late", Mode: cpio.TypeReg | 0o644, Nlink: 1, Size: 4}, "late")
	for _, c := range []compress.Format{compress.Gzip, compress.Zstd, compress.XZ, compress.LZ4} {
		for _, tool := range []string{"system", "ours"} {
			t.Run(string(c)+"-"+tool, func(t *testing.T) {
				var z []byte
				if tool == "system" {
					name, args := compressCmd(c)
					z = run(t, "", main, name, args...)
				} else {
					z = compressed(t, c, main)
				}
				gz := run(t, "", main, "gzip", "-c")
				// compressed, NUL padding, uncompressed cpio, gzip
				img := pad4(append([]byte{}, z...), 8)
				tailOff := len(img)
				img = append(img, tail...)
				gzOff := len(img)
				img = append(img, gz...)
				checkSegments(t, inspect(t, img), []wantSeg{
					{0, string(c), 1, mainNames},
					{int64(tailOff), "none", 1, []string{"late"}},
					{int64(gzOff), "gzip", 1, mainNames},
				})
			})
		}
	}
}

// TestInspectLastOnly reads bzip2 and lzma, which the kernel accepts but
// whose end Inspect cannot find: they must be the last segment.
func TestInspectLastOnly(t *testing.T) {
	earlyDir, mainDir := gnuTrees(t)
	early, main := gnuArchive(t, earlyDir), gnuArchive(t, mainDir)
	for _, c := range []struct{ name, tool string }{{"bzip2", "bzip2"}, {"lzma", "lzma"}} {
		t.Run(c.name, func(t *testing.T) {
			img := append(append([]byte{}, early...), run(t, "", main, c.tool, "-c")...)
			img = append(img, make([]byte, 100)...) // trailing padding is ignored
			checkSegments(t, inspect(t, img), []wantSeg{
				{0, "none", 1, cpioList(t, early)},
				{int64(len(early)), c.name, 1, cpioList(t, main)},
			})
		})
	}
}

func writeOurArchive(t *testing.T, h cpio.Header, data string) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := cpio.NewWriter(&buf)
	if err := w.WriteHeader(&h); err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(data))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestInspectErrors(t *testing.T) {
	_, mainDir := gnuTrees(t)
	main := gnuArchive(t, mainDir)
	zst := run(t, "", main, "zstd", "-q", "-c")
	corrupt := append([]byte{}, main...)
	copy(corrupt[6:], "zz") // c_ino of the first entry
	tests := []struct {
		name string
		img  []byte
		want []string
	}{
		{"unknown magic", []byte("hello world"), []string{"offset 0", "invalid magic"}},
		{"lz4 frame format", run(t, "", main, "lz4", "-c"), []string{"legacy"}},
		{"lzo", []byte("\x89LZO\x00\r\n\x1a\n"), []string{"lzo"}},
		{"unaligned cpio", append([]byte{0, 0}, main...), []string{"offset 2", "unaligned"}},
		{"truncated zstd", zst[:len(zst)-10], []string{"zstd", "unexpected EOF"}},
		{"corrupt cpio in gzip", run(t, "", corrupt, "gzip", "-c"), []string{"gzip", "cpio: offset"}},
		{"odc cpio", run(t, mainDir, []byte("init\n"), "cpio", "-o", "-H", "odc", "--quiet"), []string{"odc"}},
		{"truncated early", main[:len(main)-600], []string{"none", "unexpected EOF"}},
	}
	for _, tt := range tests {
		_, err := Inspect(bytes.NewReader(tt.img), int64(len(tt.img)))
		if err == nil {
			t.Errorf("%s: Inspect() = nil error", tt.name)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Inspect() = %v, want it to mention %q", tt.name, err, w)
			}
		}
	}
	// A truncated cpio stays recognisable as such.
	_, err := Inspect(bytes.NewReader(main[:len(main)-600]), int64(len(main)-600))
	var fe *cpio.FormatError
	if !errors.As(err, &fe) {
		t.Errorf("Inspect(truncated) = %v, want a *cpio.FormatError inside", err)
	}
}

func TestInspectEmptyAndPadding(t *testing.T) {
	for _, img := range [][]byte{nil, make([]byte, 1000)} {
		segs, err := Inspect(bytes.NewReader(img), int64(len(img)))
		if err != nil || len(segs) != 0 {
			t.Errorf("Inspect(%d NULs) = %v, %v; want no segments", len(img), summary(segs), err)
		}
	}
}

// TestInspectLastOnlyEndingInZero covers a bzip2/lzma stream whose own last
// byte is 0 followed by NUL padding: the padding must not be mistaken for
// (or trimmed together with) the end of the stream.
func TestInspectLastOnlyEndingInZero(t *testing.T) {
	for _, c := range []struct{ name, tool string }{{"bzip2", "bzip2"}, {"lzma", "lzma"}} {
		t.Run(c.name, func(t *testing.T) {
			var z []byte
			var names []string
			for i := 0; i < 4000 && (len(z) == 0 || z[len(z)-1] != 0); i++ {
				arc := writeOurArchive(t, cpio.Header{Name: "f", Mode: cpio.TypeReg | 0o644, Nlink: 1, Size: int64(len(fmt.Sprint(i)))}, fmt.Sprint(i))
				z = run(t, "", arc, c.tool, "-c")
				names = []string{"f"}
			}
			if z[len(z)-1] != 0 {
				t.Fatalf("no %s stream ending in a zero byte found", c.name)
			}
			img := append(append([]byte{}, z...), make([]byte, 100)...)
			checkSegments(t, inspect(t, img), []wantSeg{{0, c.name, 1, names}})
		})
	}
}
