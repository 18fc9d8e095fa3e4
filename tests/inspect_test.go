package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestInspectReadsDracutImage checks that `pkginitrd inspect` reads an
// image made by the real dracut (Debian's dracut-core), for the kernel the
// other tests boot, and that --extract unpacks dracut's init.
func TestInspectReadsDracutImage(t *testing.T) {
	e := setup(t)
	if _, err := exec.LookPath("dracut"); err != nil {
		t.Fatal("this test needs dracut (dracut-core; the README's test command installs it)")
	}
	kernel, _ := buildImage(t, e, "--generic")
	kver := strings.TrimPrefix(filepath.Base(kernel), "vmlinuz-")
	// The kernel package's unpacked tree in the cache (trees/<archive sha256>/tree).
	m, _ := filepath.Glob(filepath.Join(e.cacheDir, "trees", "*", "tree", "lib", "modules", kver))
	if len(m) != 1 {
		t.Fatalf("no unpacked module tree for %s in the cache: %v", kver, m)
	}
	// dracut needs a depmod'ed tree: copy the modules and run depmod on the copy.
	base := t.TempDir()
	run(t, "mkdir", "-p", filepath.Join(base, "lib", "modules"))
	run(t, "cp", "-a", m[0], filepath.Join(base, "lib", "modules"))
	run(t, "depmod", "-b", base, kver)
	img := filepath.Join(t.TempDir(), "dracut.img")
	run(t, "dracut", "-q", "--force", "--no-hostonly", "--kver", kver, "--kmoddir", filepath.Join(base, "lib", "modules", kver), "--zstd", img)

	out := run(t, e.bin, "inspect", "--summary", img)
	if !strings.Contains(out, "zstd") {
		t.Errorf("inspect --summary %s = %q, want a zstd segment", img, out)
	}
	x := t.TempDir()
	run(t, e.bin, "inspect", "--extract", x, img)
	for _, p := range []string{"init", "usr/lib/dracut", "etc/initrd-release"} {
		if _, err := os.Lstat(filepath.Join(x, p)); err != nil {
			t.Errorf("extracted dracut image lacks %s: %v", p, err)
		}
	}
}
