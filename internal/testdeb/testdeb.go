// Package testdeb fetches real Debian packages for tests: single .deb files
// through the host's apt ("apt-get download") and the current Debian kernel's
// module tree, unpacked once into a cache shared by all test runs.
//
// The cache lives in $PKGINITRD_TEST_CACHE (default ~/.cache/pkginitrd-test).
// Tests that need these files fail (not skip) when apt cannot provide them:
// the README's test command installs and updates apt first.
package testdeb

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// CacheDir returns the shared test cache directory, creating it.
func CacheDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("PKGINITRD_TEST_CACHE")
	if dir == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatalf("no home directory for the test cache: %v", err)
		}
		dir = filepath.Join(home, ".cache", "pkginitrd-test")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create test cache: %v", err)
	}
	return dir
}

// mu serialises downloads within one test binary; separate binaries are
// protected by writing to temporary names and renaming.
var mu sync.Mutex //nolint:gochecknoglobals // process-wide lock for a shared on-disk cache

// Deb returns the path of the .deb of package pkg (any name apt-get download
// accepts, e.g. "busybox" or "linux-image-6.1.0-26-amd64"), downloading it
// into the cache on first use.
func Deb(t testing.TB, pkg string) string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	dir := filepath.Join(CacheDir(t), "debs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb")); len(m) > 0 {
		return m[len(m)-1]
	}
	tmp, err := os.MkdirTemp(dir, ".dl-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	cmd := exec.Command("apt-get", "download", pkg)
	cmd.Dir = tmp
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get download %s: %v\n%s(run apt-get update first)", pkg, err, out)
	}
	m, _ := filepath.Glob(filepath.Join(tmp, "*.deb"))
	if len(m) != 1 {
		t.Fatalf("apt-get download %s produced %v", pkg, m)
	}
	dst := filepath.Join(dir, filepath.Base(m[0]))
	if err := os.Rename(m[0], dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

// KernelPackage returns the name of the kernel image package that the
// metapackage linux-image-amd64 currently depends on, e.g.
// "linux-image-6.1.0-26-amd64", as known to the host's apt.
func KernelPackage(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("apt-cache", "depends", "linux-image-amd64").Output()
	if err != nil {
		t.Fatalf("apt-cache depends linux-image-amd64: %v", err)
	}
	m := regexp.MustCompile(`Depends: (linux-image-[0-9][^\s]*-amd64)\b`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("apt-cache depends linux-image-amd64: no linux-image-KVER dependency in:\n%s", out)
	}
	return string(m[1])
}

// Kernel unpacks the current Debian kernel image package (see KernelPackage)
// into the cache and returns the unpacked root and the kernel version. The
// module tree is at root/lib/modules/KVER (as shipped: no modules.dep) and
// the kernel image at root/boot/vmlinuz-KVER.
func Kernel(t testing.TB) (root, kver string) {
	t.Helper()
	pkg := KernelPackage(t)
	kver = strings.TrimPrefix(pkg, "linux-image-")
	deb := Deb(t, pkg)
	mu.Lock()
	defer mu.Unlock()
	root = filepath.Join(CacheDir(t), "kernel", strings.TrimSuffix(filepath.Base(deb), ".deb"))
	if _, err := os.Stat(filepath.Join(root, ".complete")); err == nil {
		return root, kver
	}
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("dpkg-deb", "-x", deb, tmp)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v: %s", deb, err, stderr.String())
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(root)
	if err := os.Rename(tmp, root); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "lib", "modules", kver)); err != nil {
		t.Fatalf("kernel package %s has no module tree: %v", pkg, fmt.Errorf("%w", err))
	}
	return root, kver
}
