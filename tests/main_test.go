// Package tests holds pkginitrd's end-to-end tests: they build the
// pkginitrd binary, build images from Debian's packages and kernel with it,
// make fixture disks with code, boot them under qemu (TCG) and assert on what
// the fixture root's own init prints.
//
// They run when PKGINITRD_E2E=1 (the README's test command sets it); a plain
// `go test ./...` skips them.
package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// env is what every end-to-end test shares: the pkginitrd binary, the cache
// and the kernel fetched from the distribution.
type env struct {
	bin      string // static pkginitrd binary
	cacheDir string // pkginitrd --cache-dir shared by all builds
	workDir  string
}

func setup(t *testing.T) *env {
	t.Helper()
	if os.Getenv("PKGINITRD_E2E") != "1" {
		t.Skip("end-to-end test: set PKGINITRD_E2E=1 (the README's test command does)")
	}
	for tool, pkg := range map[string]string{"qemu-system-x86_64": "qemu-system-x86", "sgdisk": "gdisk", "mkfs.ext4": "e2fsprogs",
		"mkfs.xfs": "xfsprogs", "mkfs.btrfs": "btrfs-progs", "dpkg-deb": "dpkg", "apt-get": "apt"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("end-to-end tests need %s in PATH (Debian package %s; the README's test command installs it)", tool, pkg)
		}
	}
	return sharedEnv
}

// sharedEnv is built once in TestMain; tests only read it.
var sharedEnv *env //nolint:gochecknoglobals // set once by TestMain before any test runs

func TestMain(m *testing.M) {
	if os.Getenv("PKGINITRD_E2E") == "1" {
		e, cleanup, err := newEnv()
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e setup:", err)
			os.Exit(1)
		}
		sharedEnv = e
		code := m.Run()
		cleanup()
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func newEnv() (*env, func(), error) {
	work, err := os.MkdirTemp("", "pkginitrd-e2e-")
	if err != nil {
		return nil, nil, err
	}
	cleanup := func() { os.RemoveAll(work) }
	bin := filepath.Join(work, "pkginitrd")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "../cmd/pkginitrd")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		cleanup()
		return nil, nil, fmt.Errorf("go build: %v\n%s", err, out)
	}
	cache := os.Getenv("PKGINITRD_TEST_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "pkginitrd-test")
	}
	return &env{bin: bin, cacheDir: filepath.Join(cache, "pkgcache"), workDir: work}, cleanup, nil
}
