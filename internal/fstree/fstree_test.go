package fstree

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestAddCreatesParentsAndDetectsConflicts(t *testing.T) {
	tr := New()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(tr.Add(Entry{Path: "/usr/bin/busybox", Kind: File, Mode: 0o755, Data: []byte("x"), Size: 1, Origin: "busybox"}))
	must(tr.Add(Entry{Path: "usr/bin", Kind: Dir, Mode: 0o755, Origin: "other"}))     // dir twice: fine
	must(tr.Add(Entry{Path: "bin", Kind: Symlink, Target: "usr/bin", Origin: "a"}))   // symlink
	must(tr.Add(Entry{Path: "./bin", Kind: Symlink, Target: "usr/bin", Origin: "b"})) // same symlink: fine
	if e := tr.Get("usr"); e == nil || e.Kind != Dir {
		t.Errorf("Get(usr) = %v, want an implied directory", e)
	}
	var ce *ConflictError
	err := tr.Add(Entry{Path: "usr/bin/busybox", Kind: File, Data: []byte("y"), Size: 1, Origin: "busybox-static"})
	if !errors.As(err, &ce) || !errors.Is(err, ErrConflict) || ce.Old != "busybox" || ce.New != "busybox-static" {
		t.Errorf("second file at the same path: err = %v, want a ConflictError naming both origins", err)
	}
	if err := tr.Add(Entry{Path: "bin/sh", Kind: File, Origin: "c"}); !errors.Is(err, ErrConflict) {
		t.Errorf("file below a symlink: err = %v, want ErrConflict", err)
	}
	must(tr.Replace(Entry{Path: "usr/bin/busybox", Kind: File, Data: []byte("z"), Size: 1, Origin: "new"}))
	if got := tr.Get("usr/bin/busybox").Origin; got != "new" {
		t.Errorf("after Replace origin = %q, want new", got)
	}
	tr.Remove("usr")
	var paths []string
	for _, e := range tr.Sorted() {
		paths = append(paths, e.Path)
	}
	if want := []string{"bin"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("after Remove(usr): %v, want %v", paths, want)
	}
}

func TestSortedPutsDirectoriesFirst(t *testing.T) {
	tr := New()
	for _, p := range []string{"a-b/x", "a/b/c", "a/b.txt", "z"} {
		if err := tr.Add(Entry{Path: p, Kind: File}); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	for _, e := range tr.Sorted() {
		if dir := filepath.Dir(e.Path); dir != "." && !seen[dir] {
			t.Errorf("%s comes before its directory %s", e.Path, dir)
		}
		seen[e.Path] = true
	}
}

func TestAddHostPath(t *testing.T) {
	src := t.TempDir()
	if err := os.MkdirAll(filepath.Join(src, "d"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(src, "d", "f"), []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("d/f", filepath.Join(src, "l")); err != nil {
		t.Fatal(err)
	}
	tr := New()
	if err := tr.AddHostPath(src, "/etc/x", "include"); err != nil {
		t.Fatal(err)
	}
	f := tr.Get("etc/x/d/f")
	if f == nil || f.Kind != File || f.Size != 5 || f.Mode != 0o600 || f.Source != filepath.Join(src, "d", "f") {
		t.Fatalf("etc/x/d/f = %+v", f)
	}
	if d := tr.Get("etc/x/d"); d == nil || d.Mode != 0o750 {
		t.Errorf("etc/x/d = %+v, want mode 0750", d)
	}
	if l := tr.Get("etc/x/l"); l == nil || l.Kind != Symlink || l.Target != "d/f" {
		t.Errorf("etc/x/l = %+v, want symlink to d/f", l)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if err := tr.AddHostPath("/dev/null", "dev/null", "include"); err != nil {
		t.Fatal(err)
	}
	if n := tr.Get("dev/null"); n.Kind != CharDev || n.Major != 1 || n.Minor != 3 {
		t.Errorf("dev/null = %+v, want chardev 1,3", n)
	}
	if err := tr.AddHostPath(filepath.Join(src, "missing"), "x", "include"); err == nil {
		t.Error("AddHostPath(missing) = nil error")
	}
}
