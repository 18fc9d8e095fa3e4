package modules

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/internal/kmod/kmodtest"
)

func imageModDir(kver string) string { return "usr/lib/modules/" + kver }

func addToTree(t testing.TB, s *Set, opts CopyOptions) *fstree.Tree {
	t.Helper()
	ft := fstree.New()
	if err := s.AddToTree(context.Background(), ft, imageModDir(s.tree.Version), opts); err != nil {
		t.Fatalf("AddToTree: %v", err)
	}
	return ft
}

// checkLoadOrder verifies an order from the image's index: each module
// once, after its hard dependencies.
func checkLoadOrder(t *testing.T, idx *kmod.Index, order []string) {
	t.Helper()
	pos := map[string]int{}
	for i, m := range order {
		if _, dup := pos[m]; dup {
			t.Errorf("load order %q has %s twice", order, m)
		}
		pos[m] = i
	}
	for i, m := range order {
		for _, d := range idx.Deps(m) {
			if j, ok := pos[d]; !ok || j > i {
				t.Errorf("load order %q: %s before (or without) its dependency %s", order, m, d)
			}
		}
	}
}

func TestAddToTree(t *testing.T) {
	real := load(t, realDir(t), LoadOptions{})
	kver := real.Version
	s := resolve(t, real, Selection{Include: genericSet()})
	ft := addToTree(t, s, CopyOptions{})

	dir := imageModDir(kver)
	for _, m := range s.Modules {
		e := ft.Get(path.Join(dir, m.Rel))
		if e == nil || e.Kind != fstree.File || e.Source != m.Path || e.Size != m.Size || e.Data != nil || e.Origin != Origin {
			t.Errorf("entry of %s = %+v, want a file from %s of %d bytes", m.Name, e, m.Path, m.Size)
		}
	}
	for _, f := range []string{kmod.DepFile, kmod.AliasFile, kmod.SoftDepFile, kmod.WeakDepFile, kmod.OrderFile, kmod.BuiltinFile, kmod.BuiltinModInfoFile} {
		if e := ft.Get(path.Join(dir, f)); e == nil || e.Data == nil || e.Size != int64(len(e.Data)) {
			t.Errorf("index file %s = %+v, want a Data entry", f, e)
		}
	}
	if err := s.AddToTree(context.Background(), ft, dir, CopyOptions{}); err == nil {
		t.Errorf("AddToTree twice into the same tree succeeded, want a conflict")
	}

	// stage0's view of the image.
	root := t.TempDir()
	materialize(t, ft, root)
	imgDir := filepath.Join(root, dir)
	idx, err := kmod.ReadIndex(imgDir)
	if err != nil {
		t.Fatal(err)
	}
	if got := idx.Modules(); !reflect.DeepEqual(got, names(s)) {
		t.Errorf("image index modules = %q, want %q", got, names(s))
	}
	order, err := idx.LoadOrder("virtio_blk")
	if err != nil || len(order) != 3 || order[2] != "virtio_blk" || !slices.Contains(order, "virtio") || !slices.Contains(order, "virtio_ring") {
		t.Errorf("image LoadOrder(virtio_blk) = %q, %v, want virtio and virtio_ring, then virtio_blk", order, err)
	}
	all, err := idx.LoadOrder(names(s)...)
	if err != nil || len(all) != len(s.Modules) {
		t.Errorf("image LoadOrder(all %d) = %d modules, %v", len(s.Modules), len(all), err)
	}
	checkLoadOrder(t, idx, all)
	for modalias, want := range map[string][]string{
		"virtio:d00000002v00001AF4":                             {"virtio_blk"},
		"pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01": {"ahci"},
		"pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02": {"nvme"},
		"pci:v000010ECd00008168sv000010ECsd00008168bc02sc00i00": nil, // r8169: not in the set
	} {
		if got := idx.Match(modalias); !reflect.DeepEqual(got, want) {
			t.Errorf("image Match(%q) = %q, want %q", modalias, got, want)
		}
	}
	if pre, _ := idx.SoftDeps("ext4"); !slices.Contains(pre, "crc32c_generic") || !slices.Contains(pre, "crc32c_intel") {
		t.Errorf("image SoftDeps(ext4) pre = %q, want the crc32c modules", pre)
	}
	if !idx.Builtin("unix") || !idx.Builtin("sha256_generic") {
		t.Errorf("image index does not know the builtins")
	}

	// depmod on the image gives the same dependencies and aliases, and
	// modprobe then loads what the host view would.
	ours := readIndexFiles(t, imgDir)
	kmodtest.Depmod(t, filepath.Join(root, "usr"), kver)
	kmodtest.MergeSoftDeps(t, imgDir)
	theirs := readIndexFiles(t, imgDir)
	if !reflect.DeepEqual(ours.deps, theirs.deps) {
		t.Errorf("modules.dep differs from depmod's:\nours   %q\ndepmod %q", ours.deps, theirs.deps)
	}
	if !reflect.DeepEqual(ours.aliases, theirs.aliases) {
		t.Errorf("modules.alias differs from depmod's")
	}
	if !reflect.DeepEqual(ours.soft, theirs.soft) {
		t.Errorf("modules.softdep differs from depmod's:\nours   %q\ndepmod %q", ours.soft, theirs.soft)
	}
	base, _ := kmodtest.DepmodView(t, real.Dir)
	for _, name := range []string{"ext4", "btrfs", "dm_crypt", "uas"} {
		got, _ := kmodtest.ShowDepends(t, filepath.Join(root, "usr"), kver, name)
		want, _ := kmodtest.ShowDepends(t, base, kver, name)
		if !reflect.DeepEqual(sorted(got), sorted(want)) {
			t.Errorf("modprobe --show-depends %s in the image = %q, on the host tree %q", name, got, want)
		}
	}
}

type parsedIndex struct {
	deps    map[string][]string // path → sorted dep paths
	aliases []string            // sorted "pattern module"
	soft    map[string][2][]string
}

func readIndexFiles(t *testing.T, dir string) parsedIndex {
	t.Helper()
	read := func(name string) *bytes.Reader {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return bytes.NewReader(data)
	}
	p := parsedIndex{deps: map[string][]string{}, soft: map[string][2][]string{}}
	deps, err := kmod.ParseDep(read(kmod.DepFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range deps {
		p.deps[d.Path] = sorted(d.Deps)
	}
	aliases, err := kmod.ParseAlias(read(kmod.AliasFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range aliases {
		p.aliases = append(p.aliases, a.Pattern+" "+a.Module)
	}
	p.aliases = sorted(p.aliases)
	soft, err := kmod.ParseSoftDep(read(kmod.SoftDepFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range soft {
		p.soft[s.Module] = [2][]string{s.Pre, s.Post}
	}
	return p
}

func sha(t *testing.T, file string) [32]byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(data)
}

// TestCompressedTree builds a tree of xz (and a few zstd and gzip) modules
// from real ones and checks that it resolves like the original and is
// decompressed into the image.
func TestCompressedTree(t *testing.T) {
	real := load(t, realDir(t), LoadOptions{})
	sel := Selection{Include: []string{"ext4", "virtio_blk", "btrfs", "dm_crypt"}}
	want := resolve(t, real, sel)
	comp := func(n string) compress.Format {
		switch n {
		case "virtio_ring":
			return compress.Zstd
		case "jbd2":
			return compress.Gzip
		}
		return compress.XZ
	}
	// Debian 12's depmod cannot read gzip modules (kmod built without
	// zlib): check the index path before jbd2 becomes a .ko.gz.
	dir := smallTree(t, real, names(want), func(n string) compress.Format {
		if c := comp(n); c != compress.Gzip {
			return c
		}
		return compress.XZ
	})
	_, view := kmodtest.DepmodView(t, dir)
	if si := resolve(t, load(t, view, LoadOptions{}), sel); !reflect.DeepEqual(names(si), names(want)) {
		t.Errorf("compressed tree via modules.dep: Resolve = %q, want %q", names(si), names(want))
	}
	jbd2 := filepath.Join(dir, real.mods["jbd2"].rel)
	if err := os.Remove(jbd2 + ".xz"); err != nil {
		t.Fatal(err)
	}
	compressFile(t, compress.Gzip, real.mods["jbd2"].path, jbd2+".gz")

	tr := load(t, dir, LoadOptions{})
	s := resolve(t, tr, sel)
	if !reflect.DeepEqual(names(s), names(want)) || !reflect.DeepEqual(s.Firmware, want.Firmware) {
		t.Fatalf("compressed tree: Resolve = %q, the original %q", names(s), names(want))
	}
	for _, m := range s.Modules {
		if !strings.HasSuffix(m.Rel, ".ko"+comp(m.Name).Ext()) {
			t.Errorf("compressed tree: module %s at %s, want a %s file", m.Name, m.Rel, comp(m.Name))
		}
	}

	cache := t.TempDir()
	ft := addToTree(t, s, CopyOptions{CacheDir: cache})
	imgDir := imageModDir(tr.Version)
	for _, m := range want.Modules {
		e := ft.Get(path.Join(imgDir, m.Rel)) // the original's .ko path
		if e == nil || !strings.HasPrefix(e.Source, cache) || e.Size != m.Size {
			t.Fatalf("image entry for %s = %+v, want a decompressed copy in %s of %d bytes", m.Name, e, cache, m.Size)
		}
		if sha(t, e.Source) != sha(t, m.Path) {
			t.Errorf("decompressed %s differs from the original %s", e.Source, m.Path)
		}
	}
	root := t.TempDir()
	materialize(t, ft, root)
	idx, err := kmod.ReadIndex(filepath.Join(root, imgDir))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := idx.Path("ext4"); p != "kernel/fs/ext4/ext4.ko" {
		t.Errorf("image index path of ext4 = %q, want kernel/fs/ext4/ext4.ko", p)
	}
	order, err := idx.LoadOrder("virtio_blk", "ext4")
	if err != nil {
		t.Fatal(err)
	}
	checkLoadOrder(t, idx, order)

	// A second build reuses the decompressed copies.
	e := ft.Get(path.Join(imgDir, "kernel/fs/btrfs/btrfs.ko"))
	st, err := os.Stat(e.Source)
	if err != nil {
		t.Fatal(err)
	}
	old := st.ModTime().Add(-time.Hour)
	os.Chtimes(e.Source, old, old)
	ft2 := addToTree(t, s, CopyOptions{CacheDir: cache})
	if e2 := ft2.Get(e.Path); e2.Source != e.Source {
		t.Errorf("second AddToTree: btrfs from %s, first from %s", e2.Source, e.Source)
	}
	if st, _ := os.Stat(e.Source); !st.ModTime().Equal(old) {
		t.Errorf("second AddToTree rewrote %s", e.Source)
	}

	if err := s.AddToTree(context.Background(), fstree.New(), imgDir, CopyOptions{}); err == nil || !strings.Contains(err.Error(), "CacheDir") {
		t.Errorf("AddToTree(compressed, no cache) = %v, want an error about CacheDir", err)
	}
	ft = addToTree(t, s, CopyOptions{KeepCompressed: true})
	m := findModule(s, "btrfs")
	if e := ft.Get(path.Join(imgDir, m.Rel)); e == nil || e.Source != m.Path || !strings.HasSuffix(e.Path, ".ko.xz") {
		t.Errorf("KeepCompressed: btrfs entry = %+v, want %s as is", e, m.Path)
	}
	dep := ft.Get(path.Join(imgDir, kmod.DepFile))
	if !strings.Contains(string(dep.Data), "kernel/fs/btrfs/btrfs.ko.xz:") {
		t.Errorf("KeepCompressed: modules.dep does not name btrfs.ko.xz:\n%s", dep.Data)
	}
}

// TestMetadataCache checks that a warm Load serves metadata from the cache
// (even when the module file changed behind its back with the same size and
// mtime) and that a changed mtime invalidates the entry.
func TestMetadataCache(t *testing.T) {
	real := load(t, realDir(t), LoadOptions{})
	sel := Selection{Include: []string{"ext4"}}
	want := resolve(t, real, sel)
	dir := smallTree(t, real, names(want), func(string) compress.Format { return compress.None })
	cache := t.TempDir()
	cold := resolve(t, load(t, dir, LoadOptions{CacheDir: cache}), sel)
	if files, _ := filepath.Glob(filepath.Join(cache, "modinfo-*.json")); len(files) != 1 {
		t.Fatalf("cache dir holds %q, want one modinfo-*.json", files)
	}

	// Overwrite ext4.ko with garbage of the same size and mtime.
	file := filepath.Join(dir, findModule(cold, "ext4").Rel)
	st, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, make([]byte, st.Size()), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(file, st.ModTime(), st.ModTime())
	warm := resolve(t, load(t, dir, LoadOptions{CacheDir: cache}), sel)
	if !reflect.DeepEqual(names(warm), names(cold)) {
		t.Errorf("warm Resolve = %q, cold %q", names(warm), names(cold))
	}
	if _, err := Resolve(context.Background(), load(t, dir, LoadOptions{}), sel); err == nil || !strings.Contains(err.Error(), file) {
		t.Errorf("Resolve without cache on the garbage module = %v, want an error naming %s", err, file)
	}
	later := st.ModTime().Add(time.Second)
	os.Chtimes(file, later, later)
	if _, err := Resolve(context.Background(), load(t, dir, LoadOptions{CacheDir: cache}), sel); err == nil {
		t.Errorf("Resolve with a changed mtime used the stale cache entry, want a read (and an error)")
	}

	// A corrupt cache file is ignored with a warning.
	files, _ := filepath.Glob(filepath.Join(cache, "modinfo-*.json"))
	os.WriteFile(files[0], []byte("{"), 0o644)
	os.WriteFile(file, mustRead(t, findModule(want, "ext4").Path), 0o644)
	var logs bytes.Buffer
	if s := resolve(t, load(t, dir, LoadOptions{CacheDir: cache, Logger: testLogger(&logs)}), sel); !reflect.DeepEqual(names(s), names(cold)) {
		t.Errorf("Resolve with a corrupt cache = %q, want %q", names(s), names(cold))
	}
	if !strings.Contains(logs.String(), "cache invalid") {
		t.Errorf("no warning about the corrupt cache in:\n%s", logs.String())
	}
}

func mustRead(t *testing.T, file string) []byte {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// BenchmarkResolveGeneric is the modules step of a warm build on the real
// Debian trees (bookworm's plain modules, trixie's .ko.xz): Load with a warm
// metadata cache, Resolve the generic set and add it to an image tree, the
// compressed modules from the decompressed-copy cache (decompressed) or as
// shipped (keep).
func BenchmarkResolveGeneric(b *testing.B) {
	for _, rt := range realTrees() {
		for _, keep := range []bool{false, true} {
			name := rt.name + "/decompressed"
			if keep {
				name = rt.name + "/keep"
			}
			b.Run(name, func(b *testing.B) { benchmarkResolveGeneric(b, rt.dir(b), keep) })
		}
	}
}

func benchmarkResolveGeneric(b *testing.B, dir string, keep bool) {
	cache := b.TempDir()
	opts := LoadOptions{CacheDir: cache}
	sel := Selection{Include: genericSet()}
	co := CopyOptions{CacheDir: cache, KeepCompressed: keep}
	s := resolve(b, load(b, dir, opts), sel) // warm the metadata cache
	addToTree(b, s, co)                      // and the decompressed copies
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		tr, err := Load(ctx, dir, opts)
		if err != nil {
			b.Fatal(err)
		}
		s, err := Resolve(ctx, tr, sel)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.AddToTree(ctx, fstree.New(), imageModDir(tr.Version), co); err != nil {
			b.Fatal(err)
		}
	}
}
