package unpack

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/backends/cache"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
)

// treeNames lists cacheDir/trees, temporary directories included.
func treeNames(t *testing.T, cacheDir string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(cacheDir, cache.TreesDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// sha256Hex is the hex SHA256 of the file at p.
func sha256Hex(t testing.TB, p string) string {
	t.Helper()
	sum, err := hashFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(sum[:])
}

// entryTree is where the cache keeps the unpacked tree of archive deb.
func entryTree(t testing.TB, cacheDir, deb string) string {
	return filepath.Join(cacheDir, cache.TreesDir, sha256Hex(t, deb), "tree")
}

func TestCacheTree(t *testing.T) {
	cacheDir := t.TempDir()
	deb := testdeb.Deb(t, "busybox")
	p := backends.Package{Name: "busybox", Path: deb}
	tr, err := Cache{Dir: cacheDir}.Tree(context.Background(), p)
	if err != nil {
		t.Fatalf("Tree(busybox) = %v", err)
	}
	if want := entryTree(t, cacheDir, deb); tr.Dir != want {
		t.Errorf("Tree(busybox) = %s, want %s", tr.Dir, want)
	}
	compareTrees(t, "Tree(busybox)", describe(t, tr.Dir), describe(t, dpkgExtract(t, deb)))
	// A second call trusts the complete tree and does not unpack again: a
	// marker file added to the tree survives (and is not in the list).
	marker := filepath.Join(tr.Dir, "marker")
	must(t, os.WriteFile(marker, nil, 0o644))
	again, err := Cache{Dir: cacheDir}.Tree(context.Background(), p)
	if err != nil || again.Dir != tr.Dir {
		t.Fatalf("second Tree(busybox) = %v, %v, want %s, nil", again, err, tr.Dir)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("second Tree(busybox) unpacked again: %v", err)
	}
	if names := treeNames(t, cacheDir); len(names) != 1 {
		t.Errorf("cache holds %v, want only %s", names, filepath.Base(filepath.Dir(tr.Dir)))
	}
}

func TestCacheTreeInterrupted(t *testing.T) {
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
			c := Cache{Dir: t.TempDir()}
			_, err := c.Tree(tt.ctx, backends.Package{Name: "x", Path: tt.deb})
			if !errors.Is(err, tt.want) {
				t.Errorf("Tree(%s) = %v, want %v", tt.name, err, tt.want)
			}
			if names := treeNames(t, c.Dir); len(names) != 0 {
				t.Errorf("after a failed Tree(%s) the cache holds %v, want nothing", tt.name, names)
			}
			// The next run with a working context unpacks normally.
			if tt.ctx.Err() != nil {
				if _, err := c.Tree(context.Background(), backends.Package{Name: "x", Path: tt.deb}); err != nil {
					t.Errorf("Tree after cancellation = %v", err)
				}
			}
		})
	}
}

func TestCacheTreeRace(t *testing.T) {
	c := Cache{Dir: t.TempDir()}
	deb := testdeb.Deb(t, "e2fsprogs")
	const n = 4
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			tr, err := c.Tree(context.Background(), backends.Package{Name: "e2fsprogs", Path: deb})
			errs[i] = err
			if err == nil {
				dirs[i] = tr.Dir
			}
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil || dirs[i] != dirs[0] {
			t.Errorf("racing Tree #%d = %s, %v, want %s, nil", i, dirs[i], errs[i], dirs[0])
		}
	}
	if names := treeNames(t, c.Dir); len(names) != 1 {
		t.Errorf("after racing unpacks the cache holds %v, want one directory", names)
	}
	compareTrees(t, "racing Tree(e2fsprogs)", describe(t, dirs[0]), describe(t, dpkgExtract(t, deb)))
}

func TestCacheTrees(t *testing.T) {
	c := Cache{Dir: t.TempDir()}
	var pkgs []backends.Package
	for _, name := range realDebs {
		pkgs = append(pkgs, backends.Package{Name: name, Path: testdeb.Deb(t, name)})
	}
	trees, err := c.Trees(context.Background(), pkgs, 2)
	if err != nil {
		t.Fatalf("Trees(%v) = %v", realDebs, err)
	}
	for i, p := range pkgs {
		if want := entryTree(t, c.Dir, p.Path); trees[i].Dir != want {
			t.Errorf("Trees tree[%d] = %s, want %s", i, trees[i].Dir, want)
		}
	}

	broken := filepath.Join(t.TempDir(), "broken_1_all.deb")
	must(t, os.WriteFile(broken, []byte("!<arch>\ngarbage"), 0o644))
	c2 := Cache{Dir: t.TempDir()}
	_, err = c2.Trees(context.Background(), append(pkgs, backends.Package{Name: "broken", Path: broken}), 2)
	if err == nil || !strings.Contains(err.Error(), broken) {
		t.Errorf("Trees with a broken archive = %v, want an error naming %s", err, broken)
	}
	for _, name := range treeNames(t, c2.Dir) {
		if strings.HasPrefix(name, ".") {
			t.Errorf("Trees left temporary directory %s", name)
		}
	}
}

// TestCacheTreeSameName is the poisoned cache of issue 10: an archive of
// the same file name but other contents (another mirror, a forged
// repository) was unpacked first, and the cache served its tree for the
// real package. Entries are now keyed by content.
func TestCacheTreeSameName(t *testing.T) {
	const name = "busybox_1.0_amd64.deb"
	fake := filepath.Join(t.TempDir(), name)
	real := filepath.Join(t.TempDir(), name)
	copyFile(t, testdeb.Deb(t, "e2fsprogs"), fake)
	copyFile(t, testdeb.Deb(t, "busybox"), real)
	c := Cache{Dir: t.TempDir()}
	if _, err := c.Tree(context.Background(), backends.Package{Name: "busybox", Path: fake}); err != nil {
		t.Fatal(err)
	}
	// The fake archive where apt verified the real one: refused, the fake
	// tree never served.
	_, err := c.Tree(context.Background(), backends.Package{Name: "busybox", Path: fake, SHA256: sha256Hex(t, real)})
	if !errors.Is(err, ErrChecksum) {
		t.Errorf("Tree(fake archive, real SHA256) = %v, want ErrChecksum", err)
	}
	for _, p := range []backends.Package{
		{Name: "busybox", Path: real},                             // hash computed
		{Name: "busybox", Path: real, SHA256: sha256Hex(t, real)}, // hash from the backend
	} {
		tr, err := c.Tree(context.Background(), p)
		if err != nil {
			t.Fatalf("Tree(%+v) = %v", p, err)
		}
		compareTrees(t, "Tree(real busybox after a fake one)", describe(t, tr.Dir), describe(t, dpkgExtract(t, real)))
	}
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	must(t, os.WriteFile(dst, data, 0o644))
}

// TestCacheTreeDamaged: a damaged entry is named in a warning and unpacked
// again, never used; a file only touched (same contents) is kept.
func TestCacheTreeDamaged(t *testing.T) {
	const libc = "lib/x86_64-linux-gnu/libc.so.6"
	deb := testdeb.Deb(t, "libc6")
	tests := []struct {
		name   string
		damage func(t *testing.T, entry string)
		warn   string // "" = no warning, the entry is kept as it is
	}{
		{"file deleted", func(t *testing.T, entry string) {
			must(t, os.Remove(filepath.Join(entry, "tree", libc)))
		}, libc},
		{"same size and mtime, other bytes", func(t *testing.T, entry string) {
			p := filepath.Join(entry, "tree", libc)
			fi, err := os.Stat(p)
			must(t, err)
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			must(t, err)
			_, err = f.WriteAt([]byte("XXXX"), 4096)
			must(t, err)
			must(t, f.Close())
			must(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
		}, libc},
		{"mode changed", func(t *testing.T, entry string) {
			must(t, os.Chmod(filepath.Join(entry, "tree", libc), 0o777))
		}, libc},
		{"file replaced by a symlink", func(t *testing.T, entry string) {
			p := filepath.Join(entry, "tree", libc)
			must(t, os.Remove(p))
			must(t, os.Symlink("/nonexistent", p))
		}, libc},
		{"list missing", func(t *testing.T, entry string) {
			must(t, os.Remove(filepath.Join(entry, "index")))
		}, "stored list"},
		{"list garbled", func(t *testing.T, entry string) {
			must(t, os.WriteFile(filepath.Join(entry, "index"), []byte("garbage"), 0o600))
		}, "stored list"},
		{"touched only", func(t *testing.T, entry string) {
			now := time.Now().Add(time.Hour)
			must(t, os.Chtimes(filepath.Join(entry, "tree", libc), now, now))
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			c := Cache{Dir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(&logs, nil))}
			p := backends.Package{Name: "libc6", Path: deb}
			tr, err := c.Tree(context.Background(), p)
			must(t, err)
			want := describe(t, tr.Dir)
			marker := filepath.Join(tr.Dir, "marker") // survives only if the entry is kept
			must(t, os.WriteFile(marker, nil, 0o644))
			tt.damage(t, filepath.Dir(tr.Dir))
			again, err := c.Tree(context.Background(), p)
			if err != nil {
				t.Fatalf("Tree(libc6) after %s = %v, want a rebuilt tree", tt.name, err)
			}
			_, markerErr := os.Stat(marker)
			if tt.warn == "" {
				if logs.Len() > 0 || markerErr != nil {
					t.Errorf("Tree(libc6) after %s: warned %q / unpacked again (%v), want the entry kept", tt.name, logs.String(), markerErr)
				}
				return
			}
			if l := logs.String(); !strings.Contains(l, "damaged") || !strings.Contains(l, "libc6") || !strings.Contains(l, tt.warn) {
				t.Errorf("Tree(libc6) after %s logged %q, want a warning naming libc6 and %s", tt.name, l, tt.warn)
			}
			if markerErr == nil {
				t.Errorf("Tree(libc6) after %s kept the damaged entry", tt.name)
			}
			compareTrees(t, "Tree(libc6) after "+tt.name, describe(t, again.Dir), want)
		})
	}
}

// TestCacheTreeCorruptArchive: an archive corrupted with its size and mtime
// unchanged (which the backend's stat check trusts) is detected before it
// is unpacked and, inside the cache, removed so that fetching replaces it.
func TestCacheTreeCorruptArchive(t *testing.T) {
	good := testdeb.Deb(t, "busybox")
	for _, inCache := range []bool{true, false} {
		c := Cache{Dir: t.TempDir()}
		dir := t.TempDir()
		if inCache {
			dir = filepath.Join(c.Dir, "apt", "state", "archives")
			must(t, os.MkdirAll(dir, 0o700))
		}
		deb := filepath.Join(dir, filepath.Base(good))
		copyFile(t, good, deb)
		fi, err := os.Stat(deb)
		must(t, err)
		f, err := os.OpenFile(deb, os.O_WRONLY, 0)
		must(t, err)
		_, err = f.WriteAt([]byte("corrupt!"), fi.Size()/2)
		must(t, err)
		must(t, f.Close())
		must(t, os.Chtimes(deb, fi.ModTime(), fi.ModTime()))

		_, err = c.Tree(context.Background(), backends.Package{Name: "busybox", Path: deb, SHA256: sha256Hex(t, good)})
		if !errors.Is(err, ErrChecksum) || !strings.Contains(err.Error(), deb) {
			t.Errorf("Tree(corrupt archive, in cache %v) = %v, want ErrChecksum naming %s", inCache, err, deb)
		}
		_, statErr := os.Stat(deb)
		if removed := errors.Is(statErr, fs.ErrNotExist); removed != inCache {
			t.Errorf("Tree(corrupt archive, in cache %v): archive removed = %v, want %v", inCache, removed, inCache)
		}
		if names := treeNames(t, c.Dir); len(names) != 0 {
			t.Errorf("Tree(corrupt archive) left %v in the cache", names)
		}
	}
}

// TestCacheTreeSpecialBits: setuid and setgid bits are never on disk in
// the cache, but the image tree has them, exactly as when the package is
// added from a plain unpacked directory (the image stays byte-identical).
func TestCacheTreeSpecialBits(t *testing.T) {
	deb := filepath.Join(t.TempDir(), "test_1.0_all.deb")
	run(t, "", "dpkg-deb", "--root-owner-group", "-Zgzip", "--build", buildTree(t), deb)
	tr, err := Cache{Dir: tempDir(t)}.Tree(context.Background(), backends.Package{Name: "test", Path: deb})
	must(t, err)
	for _, f := range []string{"usr/bin/suid", "usr/bin/sgid"} {
		fi, err := os.Lstat(filepath.Join(tr.Dir, f))
		must(t, err)
		if fi.Mode()&specialBits != 0 {
			t.Errorf("cached %s has mode %s, want no setuid/setgid bits on disk", f, fi.Mode())
		}
	}
	plain := tempDir(t)
	must(t, Unpack(context.Background(), deb, plain, Limits{}))
	want, got := fstree.New(), fstree.New()
	must(t, AddToTree(want, plain, "test", nil))
	must(t, tr.AddTo(got, "test", nil))
	we, ge := want.Sorted(), got.Sorted()
	if len(we) != len(ge) {
		t.Fatalf("cached tree has %d entries, plain %d", len(ge), len(we))
	}
	for i := range we {
		w, g := *we[i], *ge[i]
		w.Source, g.Source = "", ""
		if !reflect.DeepEqual(w, g) {
			t.Errorf("image entry from the cache = %+v, want %+v", g, w)
		}
	}
	if e := got.Get("usr/bin/suid"); e == nil || e.Mode != 0o755|os.ModeSetuid {
		t.Errorf("image usr/bin/suid = %+v, want mode setuid 0755", e)
	}
}

// BenchmarkCheck measures what a warm build spends on its cached trees
// (reading each stored list and the stat pass, see (*Tree).check) and, for
// comparison, hashing every file.
func BenchmarkCheck(b *testing.B) {
	c := Cache{Dir: b.TempDir()}
	var trees []*Tree
	files, size := 0, int64(0)
	for _, name := range []string{"busybox", "e2fsprogs", "libc6", "linux-image-6.1.0-57-amd64"} {
		tr, err := c.Tree(context.Background(), backends.Package{Name: name, Path: testdeb.Deb(b, name)})
		if err != nil {
			b.Fatal(err)
		}
		trees = append(trees, tr)
		for _, r := range tr.recs {
			files++
			size += r.Size
		}
	}
	b.Logf("%d entries, %d MB", files, size>>20)
	b.Run("stat", func(b *testing.B) {
		for b.Loop() {
			for _, tr := range trees {
				if got, err := c.stored(filepath.Dir(tr.Dir)); got == nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("hash", func(b *testing.B) {
		for b.Loop() {
			for _, tr := range trees {
				for _, r := range tr.recs {
					if r.Mode.IsRegular() {
						if _, err := hashFile(filepath.Join(tr.Dir, r.Path)); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
		}
	})
}
