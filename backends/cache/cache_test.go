package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestDirFor(t *testing.T) {
	tests := []struct {
		name string
		uid  int
		env  map[string]string
		want string // "" = an error
	}{
		{"root", 0, map[string]string{"HOME": "/root", "XDG_CACHE_HOME": "/x"}, "/var/cache/pkginitrd"},
		{"XDG first", 1000, map[string]string{"HOME": "/home/u", "XDG_CACHE_HOME": "/x"}, "/x/pkginitrd"},
		{"relative XDG ignored", 1000, map[string]string{"HOME": "/home/u", "XDG_CACHE_HOME": "x"}, "/home/u/.cache/pkginitrd"},
		{"HOME", 1000, map[string]string{"HOME": "/home/u"}, "/home/u/.cache/pkginitrd"},
		// Issue 10: no HOME fell back to the shared $TMPDIR/pkginitrd-cache.
		{"neither", 1000, map[string]string{"TMPDIR": "/tmp"}, ""},
	}
	for _, tt := range tests {
		got, err := dirFor(tt.uid, func(k string) string { return tt.env[k] })
		if tt.want == "" {
			if err == nil || !strings.Contains(err.Error(), "--cache-dir") {
				t.Errorf("dirFor(%s) = %q, %v, want an error suggesting --cache-dir", tt.name, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("dirFor(%s) = %q, %v, want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestPrepare(t *testing.T) {
	uid := os.Geteuid()
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
		uid   int
		want  string // error substring; "" = accepted, mode 0700
	}{
		{"created", func(*testing.T, string) {}, uid, ""},
		{"0755 narrowed", func(t *testing.T, dir string) { mkdir(t, dir, 0o755) }, uid, ""},
		{"writable by others", func(t *testing.T, dir string) { mkdir(t, dir, 0o777) }, uid, "writable by group or others"},
		{"writable by group", func(t *testing.T, dir string) { mkdir(t, dir, 0o770) }, uid, "writable by group or others"},
		{"another owner", func(t *testing.T, dir string) { mkdir(t, dir, 0o700) }, uid + 1, "owned by uid"},
		{"a file", func(t *testing.T, dir string) {
			if err := os.WriteFile(dir, nil, 0o600); err != nil {
				t.Fatal(err)
			}
		}, uid, "not a directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "cache")
			tt.setup(t, dir)
			err := prepare(dir, tt.uid)
			if tt.want != "" {
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), dir) {
					t.Errorf("prepare(%s) = %v, want an error naming %s and saying %q", tt.name, err, dir, tt.want)
				}
				return
			}
			fi, serr := os.Stat(dir)
			if err != nil || serr != nil || fi.Mode().Perm() != 0o700 {
				t.Errorf("prepare(%s) = %v; mode %v (%v), want nil and 0700", tt.name, err, fi.Mode(), serr)
			}
		})
	}
}

func mkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil { // whatever the umask
		t.Fatal(err)
	}
}

// writeFiles creates files (relative path → size) below dir.
func writeFiles(t *testing.T, dir string, files map[string]int) {
	t.Helper()
	for p, n := range files {
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func TestOpenRemovesStale(t *testing.T) {
	for _, other := range []bool{false, true} {
		dir := t.TempDir()
		if other { // another build runs: nothing may go
			c, err := Open(context.Background(), dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
		}
		writeFiles(t, dir, map[string]int{
			"trees/.tmp-123/tree/usr/bin/x":  10, // a killed unpack
			"trees/abc/tree/usr/bin/x":       10, // a complete entry
			"apt/bookworm/download-9/x.deb":  10, // a killed download
			"apt/bookworm/archives/x.deb":    10,
			"unpacked/busybox_1_amd64/bin/x": 10, // trees keyed by file name
			"mytmp-1":                        10, // not ours
		})
		c, err := Open(context.Background(), dir, Options{})
		if err != nil {
			t.Fatalf("Open = %v", err)
		}
		for p, stale := range map[string]bool{"trees/.tmp-123": true, "apt/bookworm/download-9": true, "unpacked": true,
			"trees/abc": false, "apt/bookworm/archives/x.deb": false, "mytmp-1": false} {
			if removed := !exists(filepath.Join(dir, p)); removed != (stale && !other) {
				t.Errorf("Open (another build running: %v): %s removed = %v, want %v", other, p, removed, stale && !other)
			}
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close = %v", err)
		}
	}
}

// entries makes trees entries of size bytes each, last used in the order
// given (the first longest ago).
func entries(t *testing.T, dir string, size int, names ...string) {
	t.Helper()
	for i, n := range names {
		writeFiles(t, filepath.Join(dir, TreesDir, n), map[string]int{"tree/f": size, "index": 1})
		used := time.Now().Add(time.Duration(i-len(names)) * time.Hour)
		if err := os.Chtimes(filepath.Join(dir, TreesDir, n), used, used); err != nil {
			t.Fatal(err)
		}
	}
}

func treeNames(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Join(dir, TreesDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func TestCloseCollects(t *testing.T) {
	dir := t.TempDir()
	const mib = 1 << 20
	entries(t, dir, mib, "oldest", "old", "recent", "newest")
	// Another build holds the lock: this build must not collect.
	other, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(context.Background(), dir, Options{MaxSize: 2*mib + mib/2})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got := treeNames(t, dir); len(got) != 4 {
		t.Errorf("Close while another build runs left %v, want all 4 trees", got)
	}
	other.Close()
	c, err = Open(context.Background(), dir, Options{MaxSize: 2*mib + mib/2})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := treeNames(t, dir), []string{"newest", "recent"}; !slices.Equal(got, want) {
		t.Errorf("Close with a 2.5 MiB cap left %v, want %v (least recently used removed first)", got, want)
	}
}

func TestClean(t *testing.T) {
	dir := t.TempDir()
	entries(t, dir, 1000, "a", "b", "c") // used 3, 2 and 1 hours ago
	writeFiles(t, dir, map[string]int{"apt/s/archives/x.deb": 10})

	// A running build makes Clean wait.
	c, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if _, err := Clean(ctx, dir, 0, nil); !errors.Is(err, context.DeadlineExceeded) || len(treeNames(t, dir)) != 3 {
		t.Errorf("Clean during a build = %v, trees %v; want it to wait (deadline) and remove nothing", err, treeNames(t, dir))
	}
	c.Close()

	r, err := Clean(context.Background(), dir, 90*time.Minute, nil)
	if got := treeNames(t, dir); err != nil || r.Entries != 2 || !slices.Equal(got, []string{"c"}) {
		t.Errorf("Clean(older than 90m) = %+v, %v, left %v; want 2 removed, [c] left", r, err, got)
	}
	if _, err := Clean(context.Background(), dir, 0, nil); err != nil {
		t.Fatalf("Clean(all) = %v", err)
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 1 || des[0].Name() != "lock" {
		t.Errorf("Clean(all) left %v, want only the lock", des)
	}
	if r, err := Clean(context.Background(), filepath.Join(dir, "missing"), 0, nil); err != nil || r.Entries != 0 {
		t.Errorf("Clean(missing dir) = %+v, %v, want nothing, nil", r, err)
	}
}
