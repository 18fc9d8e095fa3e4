package diff

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/image/manifest"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// base is the tree every case starts from.
func base() []fstree.Entry {
	return []fstree.Entry{
		{Path: "usr/bin/busybox", Kind: fstree.File, Mode: 0o755, Data: []byte("busybox 1.35\n"), Size: 13},
		{Path: "usr/bin/sh", Kind: fstree.Symlink, Target: "busybox"},
		{Path: "etc/fstab", Kind: fstree.File, Mode: 0o644, Data: []byte("# none\n"), Size: 7},
		{Path: "usr/lib/a", Kind: fstree.File, Mode: 0o644, Data: []byte("shared\n"), Size: 7},
		{Path: "usr/lib/b", Kind: fstree.Hardlink, Target: "usr/lib/a"},
		{Path: "dev/console", Kind: fstree.CharDev, Mode: 0o600, Major: 5, Minor: 1},
	}
}

func baseManifest() *manifest.Manifest {
	return &manifest.Manifest{
		Format: manifest.Format, Generator: "pkginitrd test", KernelVersion: "6.1.0-26-amd64",
		Options:  manifest.Options{Distribution: "debian", Release: "bookworm", Compression: "zstd"},
		Packages: []manifest.Package{{Name: "busybox", Version: "1:1.35.0-4+b3", Arch: "amd64"}, {Name: "libc6", Version: "2.36-9", Arch: "amd64"}},
		Modules:  []string{"ext4", "virtio_blk"},
	}
}

// load builds an image of entries (with m as its manifest, if not nil)
// and loads it as Compare's input.
func load(t *testing.T, entries []fstree.Entry, m *manifest.Manifest) *Image {
	t.Helper()
	tree := fstree.New()
	for _, e := range entries {
		if err := tree.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	if m != nil {
		data, err := manifest.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := tree.Add(fstree.Entry{Path: manifest.Path, Kind: fstree.File, Mode: 0o644, Data: data, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
	}
	var b bytes.Buffer
	if _, err := image.Write(context.Background(), &b, tree, image.Options{}); err != nil {
		t.Fatal(err)
	}
	img, err := Load(context.Background(), bytes.NewReader(b.Bytes()), int64(b.Len()))
	if err != nil {
		t.Fatalf("Load = %v", err)
	}
	return img
}

// edit returns base() changed by fn.
func edit(fn func(map[string]*fstree.Entry)) []fstree.Entry {
	es := base()
	byPath := map[string]*fstree.Entry{}
	for i := range es {
		byPath[es[i].Path] = &es[i]
	}
	fn(byPath)
	var out []fstree.Entry
	for _, e := range es {
		if e.Path != "" {
			out = append(out, e)
		}
	}
	return out
}

func TestCompare(t *testing.T) {
	type fileWant struct {
		path, kind string
		fields     []string
	}
	tests := []struct {
		name     string
		entries  []fstree.Entry
		manifest func(*manifest.Manifest)
		files    []fileWant
		packages []Change
		modules  []Change
		build    []Change
	}{
		{name: "identical", entries: base()},
		{
			name:    "symlink target",
			entries: edit(func(m map[string]*fstree.Entry) { m["usr/bin/sh"].Target = "/usr/bin/busybox" }),
			files:   []fileWant{{"usr/bin/sh", "changed", []string{FieldTarget}}},
		},
		{
			name:    "mode",
			entries: edit(func(m map[string]*fstree.Entry) { m["etc/fstab"].Mode = 0o600 }),
			files:   []fileWant{{"etc/fstab", "changed", []string{FieldMode}}},
		},
		{
			name: "contents and size",
			entries: edit(func(m map[string]*fstree.Entry) {
				m["usr/bin/busybox"].Data, m["usr/bin/busybox"].Size = []byte("busybox 1.36.1\n"), 15
			}),
			files: []fileWant{{"usr/bin/busybox", "changed", []string{FieldSize, FieldHash}}},
		},
		{
			name: "hard-linked contents change every member",
			entries: edit(func(m map[string]*fstree.Entry) {
				m["usr/lib/a"].Data = []byte("SHARED\n")
			}),
			files: []fileWant{{"usr/lib/a", "changed", []string{FieldHash}}, {"usr/lib/b", "changed", []string{FieldHash}}},
		},
		{
			name: "type and device",
			entries: edit(func(m map[string]*fstree.Entry) {
				*m["dev/console"] = fstree.Entry{Path: "dev/console", Kind: fstree.BlockDev, Mode: 0o600, Major: 5, Minor: 2}
			}),
			files: []fileWant{{"dev/console", "changed", []string{FieldType, FieldDevice}}},
		},
		{
			name: "added and removed",
			entries: append(edit(func(m map[string]*fstree.Entry) { m["etc/fstab"].Path = "" }),
				fstree.Entry{Path: "etc/crypttab", Kind: fstree.File, Mode: 0o600, Data: []byte("x\n"), Size: 2}),
			files: []fileWant{{"etc/crypttab", "added", nil}, {"etc/fstab", "removed", nil}},
		},
		{
			name:    "package version, module and build option",
			entries: base(),
			manifest: func(m *manifest.Manifest) {
				m.Packages[0].Version = "1:1.36.1-1"
				m.Packages = append(m.Packages, manifest.Package{Name: "kmod", Version: "30+20221128-1", Arch: "amd64"})
				m.Modules = []string{"ext4", "nvme"}
				m.Options.Compression = "xz"
			},
			files:    []fileWant{{manifest.Path, "changed", []string{FieldSize, FieldHash}}},
			packages: []Change{{"busybox", "1:1.35.0-4+b3", "1:1.36.1-1"}, {"kmod", "", "30+20221128-1"}},
			modules:  []Change{{"nvme", "", "6.1.0-26-amd64"}, {"virtio_blk", "6.1.0-26-amd64", ""}},
			build:    []Change{{"compression", "zstd", "xz"}},
		},
	}
	old := load(t, base(), baseManifest())
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := baseManifest()
			if tt.manifest != nil {
				tt.manifest(m)
			}
			res := Compare(old, load(t, tt.entries, m))
			var got []fileWant
			for _, c := range res.Files {
				got = append(got, fileWant{c.Path, c.Kind(), c.Fields})
			}
			if !slices.EqualFunc(got, tt.files, func(a, b fileWant) bool {
				return a.path == b.path && a.kind == b.kind && slices.Equal(a.fields, b.fields)
			}) {
				t.Errorf("files = %v, want %v", got, tt.files)
			}
			for _, l := range []struct {
				name      string
				got, want []Change
			}{{"packages", res.Packages, tt.packages}, {"modules", res.Modules, tt.modules}, {"build", res.Build, tt.build}} {
				if !slices.Equal(l.got, l.want) {
					t.Errorf("%s = %v, want %v", l.name, l.got, l.want)
				}
			}
			if same := len(tt.files) == 0; res.Same() != same {
				t.Errorf("Same() = %v, want %v", res.Same(), same)
			}
		})
	}
}

// TestCompareForeign compares images that carry no manifest, written by
// another cpio writer (owners other than root, hard links as GNU cpio
// writes them, "./" names): only files are compared.
func TestCompareForeign(t *testing.T) {
	archive := func(uid uint32, data string) *Image {
		var b bytes.Buffer
		w := cpio.NewWriter(&b)
		for _, e := range []struct {
			h    cpio.Header
			data string
		}{
			{cpio.Header{Name: "./etc", Mode: cpio.TypeDir | 0o755, Nlink: 2, Ino: 1}, ""},
			{cpio.Header{Name: "./etc/a", Mode: cpio.TypeReg | 0o644, Uid: uid, Nlink: 2, Ino: 2}, ""},
			{cpio.Header{Name: "./etc/b", Mode: cpio.TypeReg | 0o644, Uid: uid, Nlink: 2, Ino: 2, Size: int64(len(data))}, data},
		} {
			if err := w.WriteHeader(&e.h); err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write([]byte(e.data)); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		img, err := Load(context.Background(), bytes.NewReader(b.Bytes()), int64(b.Len()))
		if err != nil {
			t.Fatalf("Load = %v", err)
		}
		return img
	}
	a := archive(0, "data\n")
	sum := sha256.Sum256([]byte("data\n"))
	if a.Manifest != nil || len(a.Files) != 3 || a.Files[1].Path != "etc/a" || a.Files[1].SHA256 != hex.EncodeToString(sum[:]) || a.Files[1].Size != 5 {
		t.Fatalf("Load = %+v, want etc, etc/a and etc/b, etc/a with the data of its hard link", a)
	}
	res := Compare(a, archive(1000, "data\n"))
	if len(res.Files) != 2 || !slices.Equal(res.Files[0].Fields, []string{FieldOwner}) || res.Packages != nil {
		t.Errorf("Compare = %+v, want etc/a and etc/b with another owner", res)
	}
	if res := Compare(a, archive(0, "data\n")); !res.Same() {
		t.Errorf("Compare of equal images = %+v, want the same", res)
	}
}
