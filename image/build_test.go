package image

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
)

func buildImage(t *testing.T, tree *fstree.Tree, opts Options) (string, *Result, []byte) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "initrd.img")
	res, err := Build(context.Background(), out, tree, opts)
	if err != nil {
		t.Fatalf("Build(%+v) = %v", opts, err)
	}
	img, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(img)
	if res.Size != int64(len(img)) || res.SHA256 != hex.EncodeToString(sum[:]) || res.Path != out {
		t.Errorf("Build() result = %+v, want size %d, sha256 %x, path %s", res, len(img), sum, out)
	}
	want := opts.Mode
	if want == 0 {
		want = 0o600 // an image can carry keys: not readable by others by default
	}
	if st, _ := os.Stat(out); st.Mode().Perm() != want {
		t.Errorf("image mode %v, want %v", st.Mode(), want)
	}
	return out, res, img
}

// TestBuildCompressions builds an image with each compression, unpacks it
// with the system tools and with Inspect.
func TestBuildCompressions(t *testing.T) {
	tree := sampleTree(t, hostFiles(t))
	for _, c := range compress.Writable() {
		t.Run(string(c), func(t *testing.T) {
			_, res, img := buildImage(t, tree, Options{Compression: c, Mtime: 42})
			if len(res.Segments) != 1 {
				t.Fatalf("Build() segments = %+v, want one", res.Segments)
			}
			seg := res.Segments[0]
			if seg.Offset != 0 || seg.Size != res.Size || seg.Entries != tree.Len() || seg.Compression != c {
				t.Errorf("segment = %+v, want offset 0, size %d, %d entries, %s", seg, res.Size, tree.Len(), c)
			}
			name, args := decompressCmd(c)
			archive := run(t, "", img, name, args...)
			if int64(len(archive)) != seg.Bytes {
				t.Errorf("%s: %d uncompressed bytes, Build reported %d", name, len(archive), seg.Bytes)
			}
			if got, want := strings.Join(cpioList(t, archive), " "), strings.Join(treePaths(tree), " "); got != want {
				t.Errorf("cpio -it lists\n%s\nwant\n%s", got, want)
			}

			segs, err := Inspect(bytes.NewReader(img), int64(len(img)))
			if err != nil {
				t.Fatalf("Inspect() = %v", err)
			}
			if len(segs) != 1 {
				t.Fatalf("Inspect() found %d segments, want 1", len(segs))
			}
			s := segs[0]
			if s.Offset != 0 || s.Size != res.Size || s.Compression != string(c) || s.Archives != 1 || s.Bytes != seg.Bytes {
				t.Errorf("Inspect() segment = {%d %d %s %d archives %d bytes}, want {0 %d %s 1 archive %d bytes}",
					s.Offset, s.Size, s.Compression, s.Archives, s.Bytes, res.Size, c, seg.Bytes)
			}
			if got, want := strings.Join(headerNames(s.Entries), " "), strings.Join(treePaths(tree), " "); got != want {
				t.Errorf("Inspect() entries\n%s\nwant\n%s", got, want)
			}
		})
	}
}

// TestBuildMode checks the image file's mode: 0600 unless Options.Mode
// says otherwise (buildImage checks it).
func TestBuildMode(t *testing.T) {
	tree := sampleTree(t, hostFiles(t))
	for _, mode := range []os.FileMode{0, 0o600, 0o644, 0o640} {
		buildImage(t, tree, Options{Compression: compress.Gzip, Mode: mode})
	}
}

func TestBuildDeterministic(t *testing.T) {
	src := hostFiles(t)
	for _, c := range compress.Writable() {
		_, a, imgA := buildImage(t, sampleTree(t, src), Options{Compression: c, Mtime: 1700000000})
		_, b, imgB := buildImage(t, sampleTree(t, src), Options{Compression: c, Mtime: 1700000000})
		if !bytes.Equal(imgA, imgB) || a.SHA256 != b.SHA256 {
			t.Errorf("%s: two builds of the same tree differ (%s, %s)", c, a.SHA256, b.SHA256)
		}
		_, other, _ := buildImage(t, sampleTree(t, src), Options{Compression: c, Mtime: 1700000001})
		if other.SHA256 == a.SHA256 {
			t.Errorf("%s: builds with different Mtime are identical", c)
		}
	}
}

// TestBuildFailureLeavesNothing checks that a failed or cancelled build
// leaves the previous image untouched and no temporary file behind.
func TestBuildFailureLeavesNothing(t *testing.T) {
	src := hostFiles(t)
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name  string
		ctx   context.Context
		tree  func() *fstree.Tree
		opts  Options
		want  string
		early bool
	}{
		{"vanished source", context.Background(), func() *fstree.Tree {
			tree := sampleTree(t, src)
			tree.Add(fstree.Entry{Path: "usr/lib/gone.so", Kind: fstree.File, Source: filepath.Join(src, "gone"), Size: 10, Origin: "libgone"})
			return tree
		}, Options{}, "usr/lib/gone.so", false},
		{"vanished source in early", context.Background(), func() *fstree.Tree { return sampleTree(t, src) }, Options{Compression: compress.XZ}, "early segment", true},
		{"cancelled", cancelled, func() *fstree.Tree { return sampleTree(t, src) }, Options{Compression: compress.Gzip}, "context canceled", false},
		{"bad compression", context.Background(), func() *fstree.Tree { return sampleTree(t, src) }, Options{Compression: "zip"}, "unknown compression", false},
	}
	for _, tt := range tests {
		for _, previous := range []bool{true, false} {
			dir := t.TempDir()
			out := filepath.Join(dir, "initrd.img")
			if previous {
				if err := os.WriteFile(out, []byte("previous image"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			opts := tt.opts
			if tt.early {
				opts.Early = fstree.New()
				opts.Early.Add(fstree.Entry{Path: "kernel/x86/microcode/GenuineIntel.bin", Kind: fstree.File, Source: filepath.Join(src, "gone"), Size: 1})
			}
			_, err := Build(tt.ctx, out, tt.tree(), opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%s: Build() = %v, want error containing %q", tt.name, err, tt.want)
			}
			want := []string{}
			if previous {
				want = []string{"initrd.img"}
				if b, _ := os.ReadFile(out); string(b) != "previous image" {
					t.Errorf("%s: the previous image was changed to %d bytes", tt.name, len(b))
				}
			}
			if got := dirEntries(t, dir); len(got) != len(want) {
				t.Errorf("%s: directory holds %v after the failed build, want %v", tt.name, got, want)
			}
		}
	}
}

// TestBuildCancelMidway cancels the context while a file is being read
// (its source is a FIFO the test feeds): the build must stop at the next
// entry and leave nothing behind.
func TestBuildCancelMidway(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tree := fstree.New()
	tree.Add(fstree.Entry{Path: "a", Kind: fstree.File, Source: fifo, Size: 6})
	tree.Add(fstree.Entry{Path: "b", Kind: fstree.File, Data: []byte("b"), Size: 1})
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		f.Write([]byte("abc"))
		cancel()
		f.Write([]byte("def"))
		f.Close()
	}()
	out := filepath.Join(dir, "out", "initrd.img")
	os.Mkdir(filepath.Dir(out), 0o755)
	_, err := Build(ctx, out, tree, Options{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Build() cancelled midway = %v, want context.Canceled", err)
	}
	if got := dirEntries(t, filepath.Dir(out)); len(got) != 0 {
		t.Errorf("output directory holds %v after a cancelled build", got)
	}
}

// fakeFirmware creates a firmware tree with Intel and AMD microcode.
func fakeFirmware(t *testing.T, prefix string) string {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		prefix + "/intel-ucode/06-8e-0a":                    "intel-8e-0a;",
		prefix + "/intel-ucode/06-55-04":                    "intel-55-04;",
		prefix + "/amd-ucode/microcode_amd_fam19h.bin":      "amd-19;",
		prefix + "/amd-ucode/microcode_amd.bin":             "amd-old;",
		prefix + "/amd-ucode/microcode_amd_fam17h.bin.asc":  "signature",
		prefix + "/amd-ucode/README":                        "not microcode",
		prefix + "/other-firmware/iwlwifi-8000C-36.ucode":   "wifi",
		prefix + "/intel-ucode/.hidden-not-microcode-state": "x",
	})
	return root
}

// TestBuildEarly builds an image with a microcode segment and checks its
// layout: uncompressed cpio first, the compressed one 4-byte aligned after.
func TestBuildEarly(t *testing.T) {
	early, err := MicrocodeTree(fakeFirmware(t, "usr/lib/firmware"))
	if err != nil || early == nil {
		t.Fatalf("MicrocodeTree() = %v, %v", early, err)
	}
	main := sampleTree(t, hostFiles(t))
	for _, c := range []compress.Format{compress.Zstd, compress.XZ, compress.None} {
		t.Run(string(c), func(t *testing.T) {
			_, res, img := buildImage(t, main, Options{Compression: c, Early: early})
			if len(res.Segments) != 2 {
				t.Fatalf("Build() segments = %+v, want 2", res.Segments)
			}
			e, m := res.Segments[0], res.Segments[1]
			if e.Offset != 0 || e.Compression != compress.None || e.Size%4 != 0 || e.Size != e.Bytes || e.Entries != early.Len() {
				t.Errorf("early segment = %+v, want uncompressed at 0, aligned, %d entries", e, early.Len())
			}
			if m.Offset != e.Size || m.Offset+m.Size != res.Size || m.Compression != c {
				t.Errorf("main segment = %+v, want %s at %d up to %d", m, c, e.Size, res.Size)
			}
			// The kernel's early loader scans from the first byte.
			if !bytes.HasPrefix(img, []byte("070701")) {
				t.Errorf("image starts with %q, want a newc header", img[:6])
			}
			// GNU cpio reads the early archive and stops at its trailer.
			wantEarly := "early_cpio kernel kernel/x86 kernel/x86/microcode kernel/x86/microcode/AuthenticAMD.bin kernel/x86/microcode/GenuineIntel.bin"
			if got := strings.Join(cpioList(t, img), " "); got != wantEarly {
				t.Errorf("cpio -it of the image = %s, want %s", got, wantEarly)
			}
			name, args := decompressCmd(c)
			if got, want := strings.Join(cpioList(t, run(t, "", img[m.Offset:], name, args...)), " "), strings.Join(treePaths(main), " "); got != want {
				t.Errorf("main segment lists\n%s\nwant\n%s", got, want)
			}
			segs, err := Inspect(bytes.NewReader(img), int64(len(img)))
			if err != nil {
				t.Fatalf("Inspect() = %v", err)
			}
			if len(segs) != 2 || segs[0].Compression != "none" || segs[0].Size != e.Size || segs[1].Offset != m.Offset || segs[1].Compression != string(c) {
				t.Fatalf("Inspect() = %v, want none at 0 (%d bytes), %s at %d", summary(segs), e.Size, c, m.Offset)
			}
			if got := strings.Join(headerNames(segs[0].Entries), " "); got != wantEarly {
				t.Errorf("Inspect() early entries = %s, want %s", got, wantEarly)
			}
		})
	}
}

// TestBuildRealModules packs real Debian kernel modules and compares what
// GNU cpio unpacks from each compression with the originals.
func TestBuildRealModules(t *testing.T) {
	root, kver := testdeb.Kernel(t)
	tree := fstree.New()
	for _, sub := range []string{"drivers/md", "drivers/block", "crypto"} {
		src := filepath.Join(root, "lib/modules", kver, "kernel", sub)
		if err := tree.AddHostPath(src, filepath.Join("usr/lib/modules", kver, "kernel", sub), "linux-image"); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []compress.Format{compress.Zstd, compress.Gzip, compress.XZ, compress.LZ4} {
		t.Run(string(c), func(t *testing.T) {
			_, _, img := buildImage(t, tree, Options{Compression: c})
			name, args := decompressCmd(c)
			dir := t.TempDir()
			run(t, dir, run(t, "", img, name, args...), "cpio", "-idm", "--quiet")
			got := filepath.Join(dir, "usr/lib/modules", kver, "kernel")
			for _, sub := range []string{"drivers/md", "drivers/block", "crypto"} {
				run(t, "", nil, "diff", "-r", filepath.Join(root, "lib/modules", kver, "kernel", sub), filepath.Join(got, sub))
			}
		})
	}
}

func summary(segs []Segment) string {
	var b strings.Builder
	for _, s := range segs {
		fmt.Fprintf(&b, "%s@%d+%d(%d archives, %d entries) ", s.Compression, s.Offset, s.Size, s.Archives, len(s.Entries))
	}
	return b.String()
}
