package switchroot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// newRoot builds a merged-/usr root like Debian's:
//
//	bin -> usr/bin, sbin -> usr/sbin, lib -> usr/lib
//	usr/sbin/init -> /lib/systemd/systemd (absolute)
//	usr/lib/systemd/systemd (executable)
func newRoot(t *testing.T) string {
	t.Helper()
	r := t.TempDir()
	for _, d := range []string{"usr/bin", "usr/sbin", "usr/lib/systemd", "etc"} {
		if err := os.MkdirAll(filepath.Join(r, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	links := map[string]string{
		"bin": "usr/bin", "sbin": "usr/sbin", "lib": "usr/lib",
		"usr/sbin/init":  "/lib/systemd/systemd",
		"usr/bin/loop1":  "loop2",
		"usr/bin/loop2":  "loop1",
		"usr/bin/escape": "../../../../../../bin/sh",
		"usr/bin/hostsh": "/bin/sh",
	}
	for l, target := range links {
		if err := os.Symlink(target, filepath.Join(r, l)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(r, "usr/lib/systemd/systemd"), []byte("#!"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r, "usr/bin/sh"), []byte("#!"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r, "etc/init"), []byte("data"), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestResolveInit(t *testing.T) {
	r := newRoot(t)
	for _, tc := range []struct {
		candidates []string
		want       string
	}{
		{[]string{"/sbin/init"}, "/usr/lib/systemd/systemd"},
		{[]string{"", "/sbin/init"}, "/usr/lib/systemd/systemd"},
		{[]string{"/bin/sh"}, "/usr/bin/sh"},
		{[]string{"/nonexistent", "/etc/init", "/bin/sh"}, "/usr/bin/sh"},
		{[]string{"/usr/bin/escape"}, "/usr/bin/sh"}, // ".." stops at the new root
		{[]string{"/usr/bin/hostsh"}, "/usr/bin/sh"}, // absolute targets are inside the new root
		{[]string{"bin/../sbin/init"}, "/usr/lib/systemd/systemd"},
	} {
		got, err := ResolveInit(r, tc.candidates...)
		if err != nil || got != tc.want {
			t.Errorf("ResolveInit(%q) = %q, %v; want %q", tc.candidates, got, err, tc.want)
		}
	}
	for _, bad := range [][]string{{"/etc/init"}, {"/usr/bin/loop1"}, {"/missing"}, {"/usr"}, nil} {
		if got, err := ResolveInit(r, bad...); err == nil {
			t.Errorf("ResolveInit(%q) = %q, want an error", bad, got)
		}
	}
	_, err := ResolveInit(r, "/missing")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "/missing") {
		t.Errorf("ResolveInit(/missing) error = %v, want ErrNotExist naming the path", err)
	}
}

func TestDeleteContents(t *testing.T) {
	r := newRoot(t)
	var st unix.Stat_t
	if err := unix.Stat(r, &st); err != nil {
		t.Fatal(err)
	}
	open := func() int {
		fd, err := unix.Open(r, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
	// Everything on another device is left alone: here, all of it.
	if n, err := deleteContents(open(), st.Dev+1); n != 0 || err != nil {
		t.Fatalf("deleteContents(other device) = %d, %v; want 0, nil", n, err)
	}
	if _, err := os.Stat(filepath.Join(r, "usr/lib/systemd/systemd")); err != nil {
		t.Fatalf("deleteContents(other device) deleted files: %v", err)
	}
	n, err := deleteContents(open(), st.Dev)
	if err != nil {
		t.Fatalf("deleteContents = %v", err)
	}
	left, _ := os.ReadDir(r)
	if len(left) != 0 {
		t.Errorf("deleteContents left %v", left)
	}
	// 6 directories, 8 symlinks, 3 files
	if n != 17 {
		t.Errorf("deleteContents removed %d entries, want 17", n)
	}
}
