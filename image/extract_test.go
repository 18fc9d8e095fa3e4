package image

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

func extract(t *testing.T, img []byte, dir string) []string {
	t.Helper()
	skipped, err := Extract(context.Background(), bytes.NewReader(img), int64(len(img)), dir)
	if err != nil {
		t.Fatalf("Extract() = %v", err)
	}
	return skipped
}

// TestExtract unpacks a built image (early + main) and compares the result
// with the trees it was built from.
func TestExtract(t *testing.T) {
	testenv.NeedRoot(t, "creating device nodes")
	early, err := MicrocodeTree(fakeFirmware(t, "usr/lib/firmware"))
	if err != nil {
		t.Fatal(err)
	}
	main := sampleTree(t, hostFiles(t))
	for _, c := range []compress.Format{compress.Zstd, compress.LZ4} {
		_, _, img := buildImage(t, main, Options{Compression: c, Early: early, Mtime: 1600000000})
		dir := t.TempDir()
		if skipped := extract(t, img, dir); len(skipped) != 0 {
			t.Errorf("%s: Extract() as root skipped %v", c, skipped)
		}
		checkExtractedTree(t, dir, main, true)
		if b, _ := os.ReadFile(filepath.Join(dir, IntelMicrocodePath)); string(b) != "intel-55-04;intel-8e-0a;" {
			t.Errorf("%s: %s = %q", c, IntelMicrocodePath, b)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, "usr/share"), &st); err != nil || st.Mtim.Sec != 1600000000 {
			t.Errorf("%s: usr/share mtime = %d (%v), want 1600000000", c, st.Mtim.Sec, err)
		}
	}
}

// TestExtractSystemImage unpacks an initramfs-tools style image made with
// the system tools.
func TestExtractSystemImage(t *testing.T) {
	earlyDir, mainDir := gnuTrees(t)
	name, args := compressCmd(compress.XZ)
	img := append(gnuArchive(t, earlyDir), run(t, "", gnuArchive(t, mainDir), name, args...)...)
	dir := t.TempDir()
	extract(t, img, dir)
	want := append(dirEntries(t, earlyDir), dirEntries(t, mainDir)...)
	slices.Sort(want)
	if got := dirEntries(t, dir); !slices.Equal(got, want) {
		t.Errorf("extracted %v, want %v", got, want)
	}
	run(t, "", nil, "diff", "-r", "--no-dereference", mainDir+"/usr", dir+"/usr")
}

// archive builds an uncompressed cpio archive from headers and data.
func archive(t *testing.T, entries ...any) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := cpio.NewWriter(&buf)
	for _, e := range entries {
		switch e := e.(type) {
		case cpio.Header:
			if err := w.WriteHeader(&e); err != nil {
				t.Fatal(err)
			}
		case string:
			w.Write([]byte(e))
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func reg(name string, data string) []any {
	return []any{cpio.Header{Name: name, Mode: cpio.TypeReg | 0o644, Nlink: 1, Size: int64(len(data))}, data}
}

// TestExtractOverride checks the kernel's rule that later entries replace
// earlier ones, and that a replaced symlink is never written through.
func TestExtractOverride(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "victim")
	if err := os.WriteFile(victim, []byte("untouched"), 0o644); err != nil {
		t.Fatal(err)
	}
	first := archive(t, slices.Concat(
		reg("etc/x", "old"),
		[]any{cpio.Header{Name: "etc/link", Mode: cpio.TypeSymlink | 0o777, Linkname: victim}},
		[]any{cpio.Header{Name: "d", Mode: cpio.TypeDir | 0o755}},
		reg("f-to-dir", "file"),
		[]any{cpio.Header{Name: "s", Mode: cpio.TypeSymlink | 0o777, Linkname: "etc"}},
	)...)
	second := archive(t, slices.Concat(
		reg("etc/x", "new"),
		reg("etc/link", "replaced the symlink"),
		reg("d", "dir became a file"),
		[]any{cpio.Header{Name: "f-to-dir", Mode: cpio.TypeDir | 0o700}},
		[]any{cpio.Header{Name: "s", Mode: cpio.TypeSymlink | 0o777, Linkname: "usr"}},
	)...)
	img := append(pad4(first, 12), run(t, "", second, "gzip", "-c")...)
	dir := t.TempDir()
	extract(t, img, dir)
	for name, want := range map[string]string{"etc/x": "new", "etc/link": "replaced the symlink", "d": "dir became a file"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); string(b) != want {
			t.Errorf("%s = %q (%v), want %q", name, b, err, want)
		}
	}
	if st, err := os.Lstat(filepath.Join(dir, "etc/link")); err != nil || !st.Mode().IsRegular() {
		t.Errorf("etc/link is %v (%v), want a regular file", st.Mode(), err)
	}
	if st, err := os.Lstat(filepath.Join(dir, "f-to-dir")); err != nil || st.Mode() != os.ModeDir|0o700 {
		t.Errorf("f-to-dir = %v (%v), want a 0700 directory", st.Mode(), err)
	}
	if l, _ := os.Readlink(filepath.Join(dir, "s")); l != "usr" {
		t.Errorf("s -> %q, want usr", l)
	}
	if b, _ := os.ReadFile(victim); string(b) != "untouched" {
		t.Errorf("file outside the destination changed to %q", b)
	}
}

// TestExtractEscapes feeds hostile names: none may create or change
// anything outside the destination.
func TestExtractEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries func(outside string) []any
	}{
		{"dot-dot", func(string) []any { return reg("../escaped", "x") }},
		{"dot-dot inside", func(string) []any { return reg("a/../../escaped", "x") }},
		{"absolute symlink parent", func(outside string) []any {
			return append([]any{cpio.Header{Name: "lnk", Mode: cpio.TypeSymlink | 0o777, Linkname: outside}}, reg("lnk/escaped", "x")...)
		}},
		{"relative symlink parent", func(outside string) []any {
			return append([]any{cpio.Header{Name: "lnk", Mode: cpio.TypeSymlink | 0o777, Linkname: "../" + filepath.Base(outside)}}, reg("lnk/escaped", "x")...)
		}},
		{"symlink parent for a device", func(outside string) []any {
			return []any{
				cpio.Header{Name: "lnk", Mode: cpio.TypeSymlink | 0o777, Linkname: outside},
				cpio.Header{Name: "lnk/escaped", Mode: cpio.TypeFifo | 0o644},
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dir, outside := filepath.Join(parent, "dest"), filepath.Join(parent, "outside")
			os.Mkdir(dir, 0o755)
			os.Mkdir(outside, 0o755)
			img := archive(t, tt.entries(outside)...)
			_, err := Extract(context.Background(), bytes.NewReader(img), int64(len(img)), dir)
			if err == nil {
				t.Error("Extract() = nil error")
			}
			for _, p := range []string{filepath.Join(parent, "escaped"), filepath.Join(outside, "escaped")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was created outside the destination", p)
				}
			}
		})
	}
}

// TestExtractSkipsDevices runs the extractor as if unprivileged: mknod of
// devices fails with EPERM, and those entries are skipped and reported.
func TestExtractSkipsDevices(t *testing.T) {
	img := archive(t, slices.Concat(
		[]any{cpio.Header{Name: "dev", Mode: cpio.TypeDir | 0o755}},
		[]any{cpio.Header{Name: "dev/console", Mode: cpio.TypeChar | 0o600, RdevMajor: 5, RdevMinor: 1}},
		[]any{cpio.Header{Name: "dev/vda", Mode: cpio.TypeBlock | 0o600, RdevMajor: 254}},
		[]any{cpio.Header{Name: "dev/initctl", Mode: cpio.TypeFifo | 0o600}},
		reg("init", "#!/bin/sh\n"),
	)...)
	x := &extractor{mknodat: func(fd int, name string, mode uint32, dev int) error {
		if mode&cpio.TypeMask == cpio.TypeChar || mode&cpio.TypeMask == cpio.TypeBlock {
			return syscall.EPERM
		}
		return syscall.Mknodat(fd, name, mode, dev)
	}}
	dir := t.TempDir()
	skipped, err := x.run(context.Background(), bytes.NewReader(img), int64(len(img)), dir)
	if err != nil {
		t.Fatalf("Extract() = %v", err)
	}
	if !slices.Equal(skipped, []string{"dev/console", "dev/vda"}) {
		t.Errorf("Extract() skipped %v, want [dev/console dev/vda]", skipped)
	}
	if st, err := os.Lstat(filepath.Join(dir, "dev/initctl")); err != nil || st.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("dev/initctl = %v, %v; want a FIFO", st, err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "init")); string(b) != "#!/bin/sh\n" {
		t.Errorf("init = %q", b)
	}
}

func TestExtractCancelled(t *testing.T) {
	img := archive(t, reg("a", "a")...)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Extract(ctx, bytes.NewReader(img), int64(len(img)), t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Errorf("Extract(cancelled) = %v, want context.Canceled", err)
	}
}

// TestExtractHardLinksPerArchive checks that, as in the kernel, the
// trailer ends hard-link groups: the same inode number in the next archive
// is a new file.
func TestExtractHardLinksPerArchive(t *testing.T) {
	link := func(name string, size int64) cpio.Header {
		return cpio.Header{Name: name, Mode: cpio.TypeReg | 0o644, Nlink: 2, Ino: 7, Size: size}
	}
	img := append(archive(t, link("a", 0), link("b", 3), "abc"), archive(t, link("c", 0), link("d", 3), "xyz")...)
	dir := t.TempDir()
	extract(t, img, dir)
	ino := func(name string) uint64 {
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, name), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	if ino("a") != ino("b") || ino("c") != ino("d") || ino("a") == ino("c") {
		t.Errorf("inodes a b c d = %d %d %d %d, want a=b, c=d, a≠c", ino("a"), ino("b"), ino("c"), ino("d"))
	}
	for name, want := range map[string]string{"a": "abc", "c": "xyz"} {
		if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != want {
			t.Errorf("%s = %q, want %q", name, b, want)
		}
	}
}
