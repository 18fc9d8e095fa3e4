package image

import (
	"bytes"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// toolPackage names the Debian package providing a system tool.
func toolPackage(name string) string {
	switch name {
	case "xz", "lzma":
		return "xz-utils"
	case "diff":
		return "diffutils"
	case "sh", "find", "sort", "sed", "cat":
		return "dash findutils coreutils sed"
	}
	return name // cpio, zstd, gzip, lz4, bzip2
}

// run runs a system tool with stdin and returns its stdout.
func run(t testing.TB, dir string, stdin []byte, name string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testenv.NeedTool(t, name, toolPackage(name)), args...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, errb.Bytes())
	}
	return out.Bytes()
}

// decompressCmd is the system command that decompresses c to stdout.
func decompressCmd(c compress.Format) (string, []string) {
	switch c {
	case compress.Zstd:
		return "zstd", []string{"-dc"}
	case compress.Gzip:
		return "gzip", []string{"-dc"}
	case compress.XZ:
		return "xz", []string{"-dc"}
	case compress.LZ4:
		return "lz4", []string{"-dc"}
	}
	return "cat", nil
}

// compressCmd is the system command that compresses to c as dracut would.
func compressCmd(c compress.Format) (string, []string) {
	switch c {
	case compress.Zstd:
		return "zstd", []string{"-q", "-c", "-15"}
	case compress.Gzip:
		return "gzip", []string{"-n", "-9", "-c"}
	case compress.XZ:
		return "xz", []string{"--check=crc32", "--lzma2=dict=1MiB", "-c"}
	case compress.LZ4:
		return "lz4", []string{"-l", "-9", "-c"}
	}
	return "cat", nil
}

// hostFiles creates a few host files and returns their directory.
func hostFiles(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 300<<10)
	for i := range random {
		random[i] = byte(rng.Uint32())
	}
	for name, data := range map[string][]byte{
		"busybox": random,
		"text":    bytes.Repeat([]byte("the quick brown fox jumps over the lazy dog\n"), 5000),
		"empty":   nil,
		"shared":  []byte("one inode, three names\n"),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// sampleTree returns a tree with every kind of entry, regular files
// pointing at files in src (see hostFiles).
func sampleTree(t testing.TB, src string) *fstree.Tree {
	t.Helper()
	tree := fstree.New()
	size := func(name string) int64 {
		st, err := os.Stat(filepath.Join(src, name))
		if err != nil {
			t.Fatal(err)
		}
		return st.Size()
	}
	long := strings.Repeat("deep/", 50) + strings.Repeat("x", 100)
	for _, e := range []fstree.Entry{
		{Path: "dev/console", Kind: fstree.CharDev, Mode: 0o600, Major: 5, Minor: 1},
		{Path: "dev/vda", Kind: fstree.BlockDev, Mode: 0o660, Major: 254, Minor: 0},
		{Path: "usr/bin/busybox", Kind: fstree.File, Mode: fs.ModeSetuid | 0o755, Source: filepath.Join(src, "busybox"), Size: size("busybox"), Origin: "busybox"},
		{Path: "usr/bin/sh", Kind: fstree.Symlink, Mode: 0o777, Target: "busybox", Origin: "busybox"},
		{Path: "bin", Kind: fstree.Symlink, Target: "usr/bin"},
		{Path: "usr/share/text", Kind: fstree.File, Mode: 0o644, Source: filepath.Join(src, "text"), Size: size("text"), Origin: "doc"},
		{Path: "etc/empty", Kind: fstree.File, Mode: 0o600, Source: filepath.Join(src, "empty"), Origin: "base"},
		{Path: "etc/inline", Kind: fstree.File, Mode: 0o640, Data: []byte("inline data\n"), Size: 12, Origin: "bootconf"},
		{Path: "usr/lib/a", Kind: fstree.File, Mode: 0o755, Source: filepath.Join(src, "shared"), Size: size("shared"), Origin: "pkg"},
		{Path: "usr/lib/b", Kind: fstree.Hardlink, Target: "usr/lib/a", Origin: "pkg"},
		{Path: "usr/lib/0", Kind: fstree.Hardlink, Target: "usr/lib/b", Origin: "pkg"}, // sorts first, links via b
		{Path: "run", Kind: fstree.Dir, Mode: 0o755},
		{Path: "tmp", Kind: fstree.Dir, Mode: fs.ModeSticky | 0o777},
		{Path: long, Kind: fstree.File, Mode: 0o644, Data: []byte("long\n"), Size: 5},
	} {
		if err := tree.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	return tree
}

// readEntries reads a whole uncompressed cpio archive with our reader.
type readEntry struct {
	h    cpio.Header
	data []byte
}

func readEntries(t testing.TB, archive []byte) []readEntry {
	t.Helper()
	r := cpio.NewReader(bytes.NewReader(archive))
	var out []readEntry
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("read archive: %v", err)
		}
		data, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("read %s: %v", h.Name, err)
		}
		out = append(out, readEntry{*h, data})
	}
	return out
}

func treePaths(tree *fstree.Tree) []string {
	var out []string
	for _, e := range tree.Sorted() {
		out = append(out, e.Path)
	}
	return out
}

func headerNames(hs []cpio.Header) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h.Name)
	}
	return out
}

// cpioList lists an uncompressed archive with the system cpio.
func cpioList(t testing.TB, archive []byte) []string {
	t.Helper()
	out := strings.TrimSuffix(string(run(t, "", archive, "cpio", "-it", "--quiet")), "\n")
	if out == "" {
		return nil
	}
	return strings.Split(out, "\n")
}

// dirEntries lists every path under dir, relative, sorted.
func dirEntries(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p != dir {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// gnuArchive runs "find . | cpio -o -H newc" in dir, as dracut and
// initramfs-tools do (names without "./").
func gnuArchive(t testing.TB, dir string) []byte {
	t.Helper()
	list := run(t, dir, nil, "sh", "-c", "find . -mindepth 1 | sed 's,^\\./,,' | LC_ALL=C sort")
	return run(t, dir, list, "cpio", "-o", "-H", "newc", "--quiet", "--reproducible", "-R", "0:0")
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// testData returns n bytes that compress like an initramfs: text, runs and
// incompressible stretches.
func testData(n int) []byte { return seededData(n, 7) }

// seededData is testData with another sequence for each seed.
func seededData(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 8))
	var b bytes.Buffer
	for b.Len() < n {
		switch rng.IntN(3) {
		case 0:
			for range rng.IntN(2000) {
				b.WriteByte(byte(rng.Uint32()))
			}
		case 1:
			b.WriteString(strings.Repeat("ELF module symbol table entry ", rng.IntN(300)))
		case 2:
			b.Write(make([]byte, rng.IntN(5000)))
		}
	}
	return b.Bytes()[:n]
}

// compressed returns data compressed with c by our compressor.
func compressed(t testing.TB, c compress.Format, data []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := compress.NewWriter(c, &out)
	if err != nil {
		t.Fatalf("NewWriter(%s) = %v", c, err)
	}
	if _, err := zw.Write(data); err != nil {
		t.Fatalf("%s: Write = %v", c, err)
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("%s: Close = %v", c, err)
	}
	return out.Bytes()
}
