package unpack

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
)

func TestCanonical(t *testing.T) {
	tests := map[string]string{
		"bin/sh":                         "usr/bin/sh",
		"/sbin/e2fsck":                   "usr/sbin/e2fsck",
		"./lib/x86_64-linux-gnu/libc.so": "usr/lib/x86_64-linux-gnu/libc.so",
		"lib64/ld-linux-x86-64.so.2":     "usr/lib64/ld-linux-x86-64.so.2",
		"lib32/x":                        "usr/lib32/x",
		"libx32":                         "usr/libx32",
		"usr/bin/sh":                     "usr/bin/sh",
		"etc/passwd":                     "etc/passwd",
		"binaries/x":                     "binaries/x",
		"library":                        "library",
	}
	for in, want := range tests {
		if got := Canonical(in); got != want {
			t.Errorf("Canonical(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestAddToTreeMergedUsr(t *testing.T) {
	cacheDir := t.TempDir()
	tree := fstree.New()
	for _, name := range []string{"libc6", "busybox", "e2fsprogs"} {
		root, err := Cache{Dir: cacheDir}.Tree(context.Background(), backends.Package{Name: name, Path: testdeb.Deb(t, name)})
		if err != nil {
			t.Fatal(err)
		}
		keep := func(p string) bool { return !fstree.Match([]string{"usr/share/doc/**", "usr/share/man/**"}, p) }
		if err := root.AddTo(tree, name, keep); err != nil {
			t.Fatalf("AddToTree(%s) = %v", name, err)
		}
	}
	for _, e := range tree.Sorted() {
		first, _, _ := strings.Cut(e.Path, "/")
		if usrAlias(first) {
			t.Errorf("AddToTree left %s outside usr/", e.Path)
		}
		if strings.HasPrefix(e.Path, "usr/share/doc/") || strings.HasPrefix(e.Path, "usr/share/man/") {
			t.Errorf("AddToTree kept %s, which keep drops", e.Path)
		}
	}
	tests := []struct {
		path   string
		kind   fstree.Kind
		target string
		origin string
	}{
		{"usr/lib64/ld-linux-x86-64.so.2", fstree.Symlink, "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", "libc6"},
		{"usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", fstree.File, "", "libc6"},
		{"usr/lib/x86_64-linux-gnu/libc.so.6", fstree.File, "", "libc6"},
		{"usr/bin/busybox", fstree.File, "", "busybox"},
		{"usr/sbin/e2fsck", fstree.File, "", "e2fsprogs"},
		{"usr/share/doc", 0, "", ""},
	}
	for _, tt := range tests {
		e := tree.Get(tt.path)
		if tt.kind == 0 {
			if e != nil {
				t.Errorf("tree has %s (%s), want it pruned", tt.path, e.Kind)
			}
			continue
		}
		if e == nil {
			t.Errorf("tree has no %s", tt.path)
			continue
		}
		if e.Kind != tt.kind || e.Target != tt.target || e.Origin != tt.origin {
			t.Errorf("tree %s = %s -> %q from %s, want %s -> %q from %s", tt.path, e.Kind, e.Target, e.Origin, tt.kind, tt.target, tt.origin)
		}
		if e.Kind == fstree.File {
			fi, err := os.Stat(e.Source)
			if err != nil || fi.Size() != e.Size || e.Mode != fi.Mode().Perm() {
				t.Errorf("tree %s: source %s size %d mode %v, want the file's (%v)", tt.path, e.Source, e.Size, e.Mode, err)
			}
		}
	}
}

// writeTree creates files (body) and symlinks ("-> target") under a new
// temporary directory.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, body := range files {
		full := filepath.Join(root, p)
		must(t, os.MkdirAll(filepath.Dir(full), 0o755))
		if target, ok := strings.CutPrefix(body, "-> "); ok {
			must(t, os.Symlink(target, full))
		} else if body == "/" {
			must(t, os.MkdirAll(full, 0o755))
		} else {
			must(t, os.WriteFile(full, []byte(body), 0o644))
		}
	}
	return root
}

func TestAddToTreeConflicts(t *testing.T) {
	tests := []struct {
		name     string
		a, b     map[string]string
		conflict string // path of the expected conflict, "" for none
	}{
		{"identical files", map[string]string{"usr/share/x": "same"}, map[string]string{"usr/share/x": "same"}, ""},
		{"identical after merged usr", map[string]string{"bin/x": "same"}, map[string]string{"usr/bin/x": "same"}, ""},
		{"identical symlinks", map[string]string{"usr/bin/sh": "-> dash"}, map[string]string{"usr/bin/sh": "-> dash"}, ""},
		{"shared directories", map[string]string{"etc/d/a": "a"}, map[string]string{"etc/d/b": "b"}, ""},
		{"different contents", map[string]string{"usr/share/x": "one"}, map[string]string{"usr/share/x": "two"}, "usr/share/x"},
		{"same size different bytes", map[string]string{"usr/share/x": "abc"}, map[string]string{"usr/share/x": "abd"}, "usr/share/x"},
		{"different symlinks", map[string]string{"usr/bin/sh": "-> dash"}, map[string]string{"usr/bin/sh": "-> bash"}, "usr/bin/sh"},
		{"file and symlink", map[string]string{"sbin/init": "binary"}, map[string]string{"usr/sbin/init": "-> ../lib/systemd/systemd"}, "usr/sbin/init"},
		{"file and directory", map[string]string{"etc/x": "file"}, map[string]string{"etc/x/y": "file"}, "etc/x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree := fstree.New()
			if err := AddToTree(tree, writeTree(t, tt.a), "pkg-a", nil); err != nil {
				t.Fatalf("AddToTree(pkg-a) = %v", err)
			}
			err := AddToTree(tree, writeTree(t, tt.b), "pkg-b", nil)
			if tt.conflict == "" {
				if err != nil {
					t.Errorf("AddToTree(pkg-b) = %v, want nil", err)
				}
				return
			}
			var ce *fstree.ConflictError
			if !errors.As(err, &ce) || ce.Path != tt.conflict || ce.Old != "pkg-a" || ce.New != "pkg-b" {
				t.Errorf("AddToTree(pkg-b) = %v, want a conflict on %s between pkg-a and pkg-b", err, tt.conflict)
			}
		})
	}
}

func TestAddToTreeHardlinksAndKeep(t *testing.T) {
	tree := buildTree(t)
	deb := filepath.Join(t.TempDir(), "test_1.0_all.deb")
	run(t, "", "dpkg-deb", "--root-owner-group", "-Zgzip", "--build", tree, deb)
	root, err := Cache{Dir: tempDir(t)}.Tree(context.Background(), backends.Package{Name: "test", Path: deb})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		keep   func(string) bool
		path   string
		kind   fstree.Kind
		target string
	}{
		{"all", nil, "usr/bin/prog", fstree.File, ""},
		{"all", nil, "usr/bin/prog-hardlink", fstree.Hardlink, "usr/bin/prog"},
		{"all", nil, "usr/bin/suid", fstree.File, ""},
		{"first link dropped", func(p string) bool { return p != "usr/bin/prog" }, "usr/bin/prog-hardlink", fstree.File, ""},
		{"first link dropped", func(p string) bool { return p != "usr/bin/prog" }, "usr/bin/prog", 0, ""},
		{"dir dropped", func(p string) bool { return !fstree.Match([]string{"usr/share/pkg/**"}, p) }, "usr/share/pkg", 0, ""},
		{"dir dropped", func(p string) bool { return !fstree.Match([]string{"usr/share/pkg/**"}, p) }, "usr/share/pkg/big", 0, ""},
	}
	for _, tt := range tests {
		tr := fstree.New()
		if err := root.AddTo(tr, "test", tt.keep); err != nil {
			t.Fatalf("AddToTree(%s) = %v", tt.name, err)
		}
		e := tr.Get(tt.path)
		switch {
		case tt.kind == 0 && e != nil:
			t.Errorf("AddToTree(%s): %s is %s, want dropped", tt.name, tt.path, e.Kind)
		case tt.kind != 0 && e == nil:
			t.Errorf("AddToTree(%s): no %s, want %s", tt.name, tt.path, tt.kind)
		case tt.kind != 0 && (e.Kind != tt.kind || e.Target != tt.target):
			t.Errorf("AddToTree(%s): %s = %s -> %q, want %s -> %q", tt.name, tt.path, e.Kind, e.Target, tt.kind, tt.target)
		}
	}
	tr := fstree.New()
	if err := root.AddTo(tr, "test", nil); err != nil {
		t.Fatal(err)
	}
	if e := tr.Get("usr/bin/suid"); e == nil || e.Mode != 0o755|os.ModeSetuid {
		t.Errorf("AddToTree: usr/bin/suid = %+v, want mode setuid 0755", e)
	}
}

func TestAddToTreeUsrSymlinks(t *testing.T) {
	// trixie's base-files ships the merged-/usr symlinks itself.
	tree := fstree.New()
	root := writeTree(t, map[string]string{"bin": "-> usr/bin", "lib64": "-> usr/lib64", "usr/bin/x": "x"})
	if err := AddToTree(tree, root, "base-files", nil); err != nil {
		t.Fatalf("AddToTree(merged-usr symlinks) = %v", err)
	}
	if e := tree.Get("usr/bin"); e == nil || e.Kind != fstree.Dir {
		t.Errorf("AddToTree(merged-usr symlinks): usr/bin = %+v, want a directory", e)
	}
	bad := writeTree(t, map[string]string{"bin": "-> opt/bin"})
	if err := AddToTree(fstree.New(), bad, "weird", nil); err == nil || !strings.Contains(err.Error(), "weird") {
		t.Errorf("AddToTree(bin -> opt/bin) = %v, want an error naming the package", err)
	}
}

func BenchmarkAddToTree(b *testing.B) {
	root, err := Cache{Dir: b.TempDir()}.Tree(context.Background(), backends.Package{Name: "libc6", Path: testdeb.Deb(b, "libc6")})
	if err != nil {
		b.Fatal(err)
	}
	m, err := fstree.NewMatcher([]string{"usr/share/doc/**", "usr/share/man/**", "usr/share/locale/**", "usr/share/lintian/**", "usr/lib/*-linux-gnu/gconv/**"})
	if err != nil {
		b.Fatal(err)
	}
	keep := func(p string) bool { return !m.Match(p) }
	for b.Loop() {
		if err := root.AddTo(fstree.New(), "libc6", keep); err != nil {
			b.Fatal(err)
		}
	}
}
