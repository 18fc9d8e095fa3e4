package cli

import (
	"bytes"
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), Env{Args: append([]string{"pkginitrd"}, args...), Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }})
	return code, out.String(), errb.String()
}

func TestHelpIsComplete(t *testing.T) {
	code, out, _ := runCLI(t, "--help")
	if code != 0 {
		t.Fatalf("--help exit = %d, want 0", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out, c.name) {
			t.Errorf("pkginitrd --help does not list %s", c.name)
		}
		code, sub, _ := runCLI(t, c.name, "--help")
		if code != 0 || !strings.Contains(sub, "Usage: pkginitrd "+c.name) {
			t.Errorf("pkginitrd %s --help = %d %q, want usage", c.name, code, sub)
		}
	}
	_, out, _ = runCLI(t, "build", "--help")
	for _, flag := range []string{"kernel-version", "modules-dir", "generic", "output", "compression", "include", "package", "release", "mirror", "cache-dir", "kernel-package", "offline", "manifest", "sbom", "sbom-format", "mode", "SOURCE_DATE_EPOCH"} {
		if !strings.Contains(out, flag) {
			t.Errorf("build --help lacks %s", flag)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		{"frobnicate"},
		{"build", "--no-such-flag"},
		{"build", "extra-arg"},
		{"inspect"},
		{},
	} {
		if code, _, _ := runCLI(t, args...); code != 2 {
			t.Errorf("pkginitrd %v exit = %d, want 2", args, code)
		}
	}
}

func TestBuildErrorsNameTheInput(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "x.img")
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--compression", "brotli", "-o", img}, "brotli"},
		{[]string{"--mode", "0999", "-o", img}, "0999"},
		{[]string{"-o", dir}, dir + ": is a directory"},
		{[]string{"-o", filepath.Join(dir, "missing", "x.img")}, "missing does not exist"},
	}
	for _, tt := range tests {
		args := append([]string{"build", "--cache-dir", dir, "--modules-dir", dir}, tt.args...)
		code, _, stderr := runCLI(t, args...)
		if code != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("%s = %d %q, want exit 1 naming %q", strings.Join(args, " "), code, stderr, tt.want)
		}
	}
}

// TestNotifyContext checks that each signal that ends a build cancels its
// context (SIGHUP included: a closed terminal or ssh session).
func TestNotifyContext(t *testing.T) {
	sigs := []syscall.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP}
	// Keep the test process alive if a signal is not handled.
	guard := make(chan os.Signal, len(sigs))
	for _, sig := range sigs {
		signal.Notify(guard, sig)
	}
	defer signal.Stop(guard)
	for _, sig := range sigs {
		ctx, stop := NotifyContext(context.Background())
		if err := syscall.Kill(os.Getpid(), sig); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Errorf("%v did not cancel the context", sig)
		}
		stop()
	}
}

func TestInspectAndExtract(t *testing.T) {
	dir := t.TempDir()
	tree := fstree.New()
	for _, e := range []fstree.Entry{
		{Path: "etc/hello", Kind: fstree.File, Mode: 0o644, Data: []byte("hi\n"), Size: 3},
		{Path: "bin", Kind: fstree.Symlink, Mode: 0o777, Target: "usr/bin"},
	} {
		if err := tree.Add(e); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(dir, "initrd.img")
	if _, err := image.Build(context.Background(), img, tree, image.Options{Compression: compress.XZ}); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI(t, "inspect", img)
	if code != 0 {
		t.Fatalf("inspect = %d: %s", code, stderr)
	}
	for _, want := range []string{"xz", "etc/hello", "bin -> usr/bin"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect output lacks %q:\n%s", want, out)
		}
	}
	x := filepath.Join(dir, "x")
	if code, _, stderr := runCLI(t, "inspect", "--extract", x, img); code != 0 {
		t.Fatalf("inspect --extract = %d: %s", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(x, "etc", "hello")); err != nil || string(b) != "hi\n" {
		t.Errorf("extracted etc/hello = %q, %v", b, err)
	}
	if code, _, stderr := runCLI(t, "inspect", filepath.Join(dir, "missing.img")); code != 1 || !strings.Contains(stderr, "missing.img") {
		t.Errorf("inspect missing.img = %d %q, want exit 1 naming the file", code, stderr)
	}
}

// TestInspectNotAnImage checks that a file without any cpio archive is an
// error naming the file, not an empty listing.
func TestInspectNotAnImage(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name    string
		content []byte
		want    string
	}{
		{"empty.img", nil, "not an initramfs"},
		{"zeros.img", make([]byte, 4096), "not an initramfs"},
		{"text.img", []byte("hello world\n"), "invalid magic"},
	}
	for _, tt := range tests {
		p := filepath.Join(dir, tt.name)
		if err := os.WriteFile(p, tt.content, 0o644); err != nil {
			t.Fatal(err)
		}
		for _, args := range [][]string{{"inspect", p}, {"inspect", "--extract", filepath.Join(dir, "x"), p}} {
			code, _, stderr := runCLI(t, args...)
			if code != 1 || !strings.Contains(stderr, p) || !strings.Contains(stderr, tt.want) {
				t.Errorf("%s = %d %q, want exit 1 naming %s and %q", strings.Join(args, " "), code, stderr, p, tt.want)
			}
		}
	}
}

func TestConfigPrintsMerged(t *testing.T) {
	code, out, stderr := runCLI(t, "config")
	if code != 0 || !strings.Contains(out, "[distributions.debian]") || !strings.Contains(out, "generic") {
		t.Errorf("config = %d %q %q", code, out, stderr)
	}
	// Which distribution was detected from the host's os-release, and why.
	if !strings.Contains(out, "\n# distribution ") || !strings.Contains(out, "os-release") {
		t.Errorf("config does not say which distribution was detected and why:\n%s", out)
	}
}

func TestModulesExplains(t *testing.T) {
	root, kver := testdeb.Kernel(t)
	moddir := filepath.Join(root, "lib", "modules", kver)
	cache := t.TempDir()
	code, out, stderr := runCLI(t, "modules", "--generic", "--modules-dir", moddir, "--cache-dir", cache, "--why", "virtio_ring")
	if code != 0 || !strings.Contains(out, "dependency of virtio") {
		t.Errorf("modules --why virtio_ring = %d %q %q, want a dependency chain", code, out, stderr)
	}
	// Host-only from a recorded /proc: only what was loaded, plus its
	// dependencies and the root filesystem's module (the root device chain
	// is tested on recorded guests in tests/hostonly_test.go).
	sysroot := t.TempDir()
	proc := filepath.Join(sysroot, "proc")
	if err := os.MkdirAll(filepath.Join(proc, "self"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "modules"), []byte("virtio_blk 20480 2 - Live 0x0000000000000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "self", "mountinfo"), []byte("1 0 0:20 / / rw - squashfs rootfs ro\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runCLI(t, "modules", "--proc", proc, "--modules-dir", moddir, "--cache-dir", cache)
	if code != 0 || !strings.Contains(out, "virtio_blk") || !strings.Contains(out, "virtio_ring") || strings.Contains(out, "btrfs") ||
		!regexp.MustCompile(`(?m)^squashfs\s+\d+\s+root filesystem squashfs$`).MatchString(out) {
		t.Errorf("modules --proc (virtio_blk loaded, squashfs root) = %d %q %q", code, out, stderr)
	}
	code, out, stderr = runCLI(t, "modules", "--sysroot", sysroot, "--modules-dir", moddir, "--cache-dir", cache, "--why", "virtio_ring")
	if code != 0 || !strings.Contains(out, "← dependency of virtio_blk\n    ← loaded on host") {
		t.Errorf("modules --sysroot --why virtio_ring = %d %q %q, want the chain back to the host", code, out, stderr)
	}
	code, _, stderr = runCLI(t, "modules", "--proc", t.TempDir(), "--modules-dir", moddir, "--cache-dir", cache)
	if code != 1 || !strings.Contains(stderr, "--generic") {
		t.Errorf("modules with no /proc/modules = %d %q, want an error suggesting --generic", code, stderr)
	}
}

func TestCacheClean(t *testing.T) {
	_, out, _ := runCLI(t, "cache", "clean", "--help")
	for _, s := range []string{"Usage: pkginitrd cache clean", "-older-than", "-cache-dir", "max_size", "waits"} {
		if !strings.Contains(out, s) {
			t.Errorf("cache clean --help lacks %q:\n%s", s, out)
		}
	}
	if code, _, _ := runCLI(t, "cache"); code != 2 {
		t.Errorf("pkginitrd cache exit = %d, want 2 (no subcommand)", code)
	}

	dir := filepath.Join(t.TempDir(), "cache")
	for _, p := range []string{"trees/abc/tree/x", "apt/s/archives/x.deb"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if code, out, errs := runCLI(t, "cache", "clean", "--cache-dir", dir, "--older-than", "1h"); code != 0 || !strings.Contains(out, "removed 0 package trees") {
		t.Errorf("cache clean --older-than 1h = %d %q %q, want nothing removed", code, out, errs)
	}
	if code, out, errs := runCLI(t, "cache", "clean", "--cache-dir", dir); code != 0 || !strings.Contains(out, "removed 2 items") {
		t.Errorf("cache clean = %d %q %q, want 2 items removed", code, out, errs)
	}
	// A cache directory others can write is refused, by name.
	shared := filepath.Join(t.TempDir(), "shared")
	if err := os.Mkdir(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	if code, _, errs := runCLI(t, "cache", "clean", "--cache-dir", shared); code != 1 || !strings.Contains(errs, shared) || !strings.Contains(errs, "writable by group or others") {
		t.Errorf("cache clean of a world-writable directory = %d %q, want exit 1 naming it", code, errs)
	}
}
