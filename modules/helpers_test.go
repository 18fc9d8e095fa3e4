package modules

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// genericSet is the test stand-in for the lead's default generic set.
func genericSet() []string {
	return []string{
		"virtio_blk", "virtio_scsi", "virtio_pci", "ahci", "nvme", "sd_mod", "sr_mod",
		"usb_storage", "uas", "xhci_pci", "ehci_pci", "mmc_block", "sdhci_pci",
		"ext4", "xfs", "btrfs", "vfat", "isofs", "squashfs", "overlay", "loop",
		"dm_mod", "dm_crypt", "dm_.*",
	}
}

// realDir returns the module directory of the cached Debian kernel (as
// shipped: no modules.dep).
func realDir(t testing.TB) string {
	t.Helper()
	root, kver := testdeb.Kernel(t)
	return filepath.Join(root, "lib", "modules", kver)
}

// trixieDir returns the module directory of trixie's kernel (6.12, every
// module .ko.xz; as shipped: no modules.dep).
func trixieDir(t testing.TB) string {
	t.Helper()
	root, kver := testdeb.ReleaseKernel(t, "trixie")
	return testdeb.ModulesDir(t, root, kver)
}

// realTree is one real Debian module tree the tests run over.
type realTree struct {
	name string
	dir  func(testing.TB) string
}

// realTrees are bookworm's 6.1 (plain .ko) and trixie's 6.12 (.ko.xz).
func realTrees() []realTree {
	return []realTree{{"bookworm-6.1", realDir}, {"trixie-6.12", trixieDir}}
}

// testLogger returns a logger writing into buf.
func testLogger(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func load(t testing.TB, dir string, opts LoadOptions) *Tree {
	t.Helper()
	tr, err := Load(context.Background(), dir, opts)
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	return tr
}

func resolve(t testing.TB, tr *Tree, sel Selection) *Set {
	t.Helper()
	s, err := Resolve(context.Background(), tr, sel)
	if err != nil {
		t.Fatalf("Resolve(%s, %+v): %v", tr.Dir, sel, err)
	}
	return s
}

func names(s *Set) []string {
	out := make([]string, len(s.Modules))
	for i, m := range s.Modules {
		out[i] = m.Name
	}
	return out
}

func sorted(l []string) []string {
	l = slices.Clone(l)
	sort.Strings(l)
	return l
}

func findModule(s *Set, name string) *Module {
	return s.Module(name)
}

// reasonTexts is what `pkginitrd modules` prints for reasons.
func reasonTexts(rs []Reason) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.String())
	}
	return out
}

// copyFile copies src to dst, creating dst's directory.
func copyFile(t testing.TB, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// compressFile compresses src into dst with the system tool, the way the
// kernel's build compresses modules.
func compressFile(t testing.TB, c compress.Format, src, dst string) {
	t.Helper()
	var args []string
	switch c {
	case compress.XZ:
		args = []string{testenv.NeedTool(t, "xz", "xz-utils"), "--check=crc32", "--lzma2=dict=1MiB", "-c", src}
	case compress.Zstd:
		args = []string{testenv.NeedTool(t, "zstd", "zstd"), "-q", "-c", src}
	case compress.Gzip:
		args = []string{testenv.NeedTool(t, "gzip", "gzip"), "-n", "-c", src}
	}
	out, err := exec.Command(args[0], args[1:]...).Output()
	if err != nil {
		t.Fatalf("%s: %v (install Debian packages xz-utils, zstd and gzip)", strings.Join(args, " "), err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// smallTree makes a module directory holding the given modules of the real
// tree, compressed with comp(name) (compress.None: copied), plus the real
// modules.builtin, modules.builtin.modinfo and modules.order.
func smallTree(t testing.TB, real *Tree, mods []string, comp func(name string) compress.Format) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "lib", "modules", real.Version)
	for _, n := range mods {
		m := real.mods[n]
		if m == nil {
			t.Fatalf("smallTree: no module %s in %s", n, real.Dir)
		}
		c := comp(n)
		dst := filepath.Join(dir, m.rel+c.Ext())
		if c == compress.None {
			copyFile(t, m.path, dst)
		} else {
			compressFile(t, c, m.path, dst)
		}
	}
	for _, f := range []string{kmod.BuiltinFile, kmod.BuiltinModInfoFile, kmod.OrderFile} {
		copyFile(t, filepath.Join(real.Dir, f), filepath.Join(dir, f))
	}
	return dir
}

// materialize writes the entries of an image tree under dir: Data entries
// as files, Source entries copied.
func materialize(t testing.TB, ft *fstree.Tree, dir string) {
	t.Helper()
	err := ft.Walk(func(e *fstree.Entry) error {
		p := filepath.Join(dir, e.Path)
		switch e.Kind {
		case fstree.Dir:
			return os.MkdirAll(p, 0o755)
		case fstree.File:
			rc, err := e.Open()
			if err != nil {
				return err
			}
			defer rc.Close()
			f, err := os.Create(p)
			if err != nil {
				return err
			}
			n, err := io.Copy(f, rc)
			if err2 := f.Close(); err == nil {
				err = err2
			}
			if err == nil && n != e.Size {
				t.Errorf("entry %s: %d bytes, Size says %d", e.Path, n, e.Size)
			}
			return err
		}
		t.Errorf("unexpected entry %s of kind %s", e.Path, e.Kind)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
