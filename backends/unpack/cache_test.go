package unpack

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
)

// unpackedNames lists cacheDir/unpacked, temporary directories included.
func unpackedNames(t *testing.T, cacheDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(cacheDir, "unpacked"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func TestCached(t *testing.T) {
	cache := t.TempDir()
	deb := testdeb.Deb(t, "busybox")
	p := backends.Package{Name: "busybox", Path: deb}
	dir, err := Cached(context.Background(), cache, p, Limits{})
	if err != nil {
		t.Fatalf("Cached(busybox) = %v", err)
	}
	wantDir := filepath.Join(cache, "unpacked", strings.TrimSuffix(filepath.Base(deb), ".deb"))
	if dir != wantDir {
		t.Errorf("Cached(busybox) = %s, want %s", dir, wantDir)
	}
	compareTrees(t, "Cached(busybox)", describe(t, dir), describe(t, dpkgExtract(t, deb)))
	// A second call trusts the complete tree and does not unpack again: a
	// marker file added to the tree survives.
	marker := filepath.Join(dir, "marker")
	must(t, os.WriteFile(marker, nil, 0o644))
	again, err := Cached(context.Background(), cache, p, Limits{})
	if err != nil || again != dir {
		t.Fatalf("second Cached(busybox) = %s, %v, want %s, nil", again, err, dir)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("second Cached(busybox) unpacked again: %v", err)
	}
	if names := unpackedNames(t, cache); len(names) != 1 {
		t.Errorf("cache holds %v, want only %s", names, filepath.Base(dir))
	}
}

func TestCachedInterrupted(t *testing.T) {
	// A data.tar that fails after some files were written (an entry type the
	// unpacker refuses), and a valid archive unpacked with a cancelled
	// context: neither may leave a directory a later run would trust.
	failing := filepath.Join(t.TempDir(), "failing_1.0_all.deb")
	debWithData(t, failing, "data.tar", makeTar(t,
		tarEntry{name: "./usr/bin/a", typ: tar.TypeReg, body: "a\n"},
		tarEntry{name: "./usr/bin/b", typ: tar.TypeReg, body: "b\n"},
		tarEntry{name: "./dev/null", typ: tar.TypeChar}))
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		deb  string
		want error
	}{
		{"failing archive", context.Background(), failing, ErrUnsupported},
		{"cancelled", cancelled, testdeb.Deb(t, "e2fsprogs"), context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cache := t.TempDir()
			_, err := Cached(tt.ctx, cache, backends.Package{Name: "x", Path: tt.deb}, Limits{})
			if !errors.Is(err, tt.want) {
				t.Errorf("Cached(%s) = %v, want %v", tt.name, err, tt.want)
			}
			if names := unpackedNames(t, cache); len(names) != 0 {
				t.Errorf("after a failed Cached(%s) the cache holds %v, want nothing", tt.name, names)
			}
			// The next run with a working context unpacks normally.
			if tt.ctx.Err() != nil {
				if _, err := Cached(context.Background(), cache, backends.Package{Name: "x", Path: tt.deb}, Limits{}); err != nil {
					t.Errorf("Cached after cancellation = %v", err)
				}
			}
		})
	}
}

func TestCachedRace(t *testing.T) {
	cache := t.TempDir()
	deb := testdeb.Deb(t, "e2fsprogs")
	const n = 4
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			dirs[i], errs[i] = Cached(context.Background(), cache, backends.Package{Name: "e2fsprogs", Path: deb}, Limits{})
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Errorf("racing Cached #%d = %s, %v, want %s, nil", i, dirs[i], errs[i], dirs[0])
		}
	}
	if names := unpackedNames(t, cache); len(names) != 1 {
		t.Errorf("after racing unpacks the cache holds %v, want one directory", names)
	}
	compareTrees(t, "racing Cached(e2fsprogs)", describe(t, dirs[0]), describe(t, dpkgExtract(t, deb)))
}

func TestCachedAll(t *testing.T) {
	cache := t.TempDir()
	var pkgs []backends.Package
	for _, name := range realDebs {
		pkgs = append(pkgs, backends.Package{Name: name, Path: testdeb.Deb(t, name)})
	}
	roots, err := CachedAll(context.Background(), cache, pkgs, Limits{}, 2)
	if err != nil {
		t.Fatalf("CachedAll(%v) = %v", realDebs, err)
	}
	for i, p := range pkgs {
		want := filepath.Join(cache, "unpacked", strings.TrimSuffix(filepath.Base(p.Path), ".deb"))
		if roots[i] != want {
			t.Errorf("CachedAll root[%d] = %s, want %s", i, roots[i], want)
		}
	}

	broken := filepath.Join(t.TempDir(), "broken_1_all.deb")
	must(t, os.WriteFile(broken, []byte("!<arch>\ngarbage"), 0o644))
	cache2 := t.TempDir()
	_, err = CachedAll(context.Background(), cache2, append(pkgs, backends.Package{Name: "broken", Path: broken}), Limits{}, 2)
	if err == nil || !strings.Contains(err.Error(), broken) {
		t.Errorf("CachedAll with a broken archive = %v, want an error naming %s", err, broken)
	}
	for _, name := range unpackedNames(t, cache2) {
		if strings.HasPrefix(name, ".") {
			t.Errorf("CachedAll left temporary directory %s", name)
		}
	}
}

func TestArchiveBase(t *testing.T) {
	tests := map[string]string{
		"/c/busybox_1%3a1.35.0-4+b3_amd64.deb":   "busybox_1%3a1.35.0-4+b3_amd64",
		"bash-5.2.26-3.fc40.x86_64.rpm":          "bash-5.2.26-3.fc40.x86_64",
		"/x/busybox-1.36.1-2-x86_64.pkg.tar.zst": "busybox-1.36.1-2-x86_64",
		"/x/glibc-2.39-1-x86_64.pkg.tar.xz":      "glibc-2.39-1-x86_64",
	}
	for in, want := range tests {
		if got := archiveBase(in); got != want {
			t.Errorf("archiveBase(%q) = %q, want %q", in, got, want)
		}
	}
}
