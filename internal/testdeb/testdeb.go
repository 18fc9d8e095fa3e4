// Package testdeb fetches real Debian packages for tests: single .deb files
// through the host's apt ("apt-get download") and the current Debian kernel's
// module tree, unpacked once into a cache shared by all test runs.
//
// The cache lives in $PKGINITRD_TEST_CACHE (default ~/.cache/pkginitrd-test).
// Tests that need these files are skipped when apt, dpkg-deb or the network
// cannot provide them, and fail under PKGINITRD_E2E=1 (see testenv): the
// README's test command installs and updates apt first.
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
	"syscall"
	"testing"
	"time"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
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
	aptGet := testenv.NeedTool(t, "apt-get", "apt")
	return download(t, pkg, func(dir string) {
		cmd := exec.Command(aptGet, "download", pkg)
		cmd.Dir = dir
		if out, err := cmd.CombinedOutput(); err != nil {
			testenv.Missing(t, "apt-get download %s: %v\n%s(needs the network; run apt-get update first)", pkg, err, out)
		}
	})
}

// download returns the cached .deb of pkg, calling get to download it into
// an empty directory on first use.
func download(t testing.TB, pkg string, get func(dir string)) string {
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
	get(tmp)
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
	out, err := exec.Command(testenv.NeedTool(t, "apt-cache", "apt"), "depends", "linux-image-amd64").Output()
	if err != nil {
		testenv.Missing(t, "apt-cache depends linux-image-amd64: %v (run apt-get update first)", err)
	}
	m := kernelDep.FindSubmatch(out)
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
	return unpackKernel(t, pkg, Deb(t, pkg))
}

// ReleaseKernel is Kernel for another Debian release than the host's (e.g.
// "trixie", whose 6.12 modules ship .ko.xz): the package that release's
// linux-image-amd64 depends on, found and downloaded with apt-get on a
// private state under the cache (Debian's mirror and keyring from pkginitrd's
// shipped configuration), its lists refreshed daily. The module tree is at
// root/lib/modules/KVER or root/usr/lib/modules/KVER (see ModulesDir).
func ReleaseKernel(t testing.TB, release string) (root, kver string) {
	t.Helper()
	a := releaseApt(t, release)
	out := a.run(t, "", "apt-cache", "depends", "linux-image-amd64")
	m := kernelDep.FindSubmatch(out)
	if m == nil {
		t.Fatalf("%s: apt-cache depends linux-image-amd64: no linux-image-KVER dependency in:\n%s", release, out)
	}
	pkg := string(m[1])
	deb := download(t, pkg, func(dir string) { a.run(t, dir, "apt-get", "download", pkg) })
	return unpackKernel(t, pkg, deb)
}

// ModulesDir returns the module directory of a kernel unpacked by Kernel or
// ReleaseKernel.
func ModulesDir(t testing.TB, root, kver string) string {
	t.Helper()
	for _, d := range []string{"lib/modules", "usr/lib/modules"} {
		p := filepath.Join(root, d, kver)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Fatalf("kernel %s unpacked at %s has no module directory", kver, root)
	return ""
}

var kernelDep = regexp.MustCompile(`Depends: (linux-image-[0-9][^\s]*-amd64)\b`) //nolint:gochecknoglobals // constant pattern

// privateApt runs apt on a private state for one release.
type privateApt struct {
	release string
	opts    []string
}

// releaseApt prepares (and refreshes once a day) the private apt state of release.
func releaseApt(t testing.TB, release string) privateApt {
	t.Helper()
	cfg, _, err := confd.Load(confd.Sources{})
	if err != nil {
		t.Fatalf("pkginitrd's shipped configuration: %v", err)
	}
	d, ok := cfg.Distributions["debian"]
	if !ok || d.Mirror == "" {
		t.Fatalf("pkginitrd's shipped configuration has no debian mirror")
	}
	dir := filepath.Join(CacheDir(t), "apt-"+release)
	for _, sub := range []string{"lists/partial", "archives/partial", "parts"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"sources.list": fmt.Sprintf("deb [signed-by=%s] %s %s main\n", d.Keyring, d.Mirror, release),
		"status":       "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	a := privateApt{release: release, opts: []string{
		"-o", "Dir::Etc::SourceList=" + filepath.Join(dir, "sources.list"),
		"-o", "Dir::Etc::SourceParts=" + filepath.Join(dir, "parts"),
		"-o", "Dir::Etc::PreferencesParts=" + filepath.Join(dir, "parts"),
		"-o", "Dir::State::Lists=" + filepath.Join(dir, "lists"),
		"-o", "Dir::State::status=" + filepath.Join(dir, "status"),
		"-o", "Dir::Cache=" + filepath.Join(dir, "cache"),
		"-o", "Dir::Cache::Archives=" + filepath.Join(dir, "archives"),
		"-o", "APT::Architecture=amd64", "-o", "APT::Architectures=amd64",
		"-o", "APT::Sandbox::User=root", "-o", "Debug::NoLocking=1",
	}}
	mu.Lock()
	defer mu.Unlock()
	defer lockFile(t, filepath.Join(dir, "lock"))()
	stamp := filepath.Join(dir, "updated")
	if st, err := os.Stat(stamp); err == nil && time.Since(st.ModTime()) < 24*time.Hour {
		return a
	}
	a.run(t, "", "apt-get", "-q", "update")
	if err := os.WriteFile(stamp, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return a
}

// run runs tool (apt-get or apt-cache); failing, it skips t (see
// testenv.Missing): it needs the network.
func (a privateApt) run(t testing.TB, dir, tool string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(testenv.NeedTool(t, tool, "apt"), append(append([]string(nil), a.opts...), args...)...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		testenv.Missing(t, "%s (%s, private state, needs the network): %s %s: %v\n%s", tool, a.release, tool, strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// unpackKernel unpacks the kernel package deb once into the cache.
func unpackKernel(t testing.TB, pkg, deb string) (root, kver string) {
	t.Helper()
	kver = strings.TrimPrefix(pkg, "linux-image-")
	mu.Lock()
	defer mu.Unlock()
	root = filepath.Join(CacheDir(t), "kernel", strings.TrimSuffix(filepath.Base(deb), ".deb"))
	if err := os.MkdirAll(filepath.Dir(root), 0o755); err != nil {
		t.Fatal(err)
	}
	// go test runs packages in parallel processes: one unpacks, the others wait.
	defer lockFile(t, root+".lock")()
	if _, err := os.Stat(filepath.Join(root, ".complete")); err == nil {
		return root, kver
	}
	tmp := root + ".tmp"
	os.RemoveAll(tmp)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(testenv.NeedTool(t, "dpkg-deb", "dpkg"), "-x", deb, tmp)
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
	found := false
	for _, d := range []string{"lib/modules", "usr/lib/modules"} {
		if _, err := os.Stat(filepath.Join(root, d, kver)); err == nil {
			found = true
		}
	}
	if !found {
		t.Fatalf("kernel package %s has no module tree %s", pkg, kver)
	}
	return root, kver
}

// lockFile takes an exclusive flock on file (created if needed), shared by
// all test processes, and returns its release.
func lockFile(t testing.TB, file string) func() {
	t.Helper()
	f, err := os.OpenFile(file, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatalf("lock %s: %v", file, err)
	}
	return func() { f.Close() }
}
