package testdeb

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestKernel(t *testing.T) {
	root, kver := Kernel(t)
	for _, p := range []string{
		filepath.Join(root, "boot", "vmlinuz-"+kver),
		filepath.Join(root, "lib", "modules", kver, "modules.builtin"),
	} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("Kernel() tree lacks %s: %v", p, err)
		}
	}
}

func TestReleaseKernel(t *testing.T) {
	root, kver := ReleaseKernel(t, "trixie")
	if !strings.Contains(kver, "+deb13") {
		t.Errorf("ReleaseKernel(trixie) = %s, want a +deb13 kernel", kver)
	}
	dir := ModulesDir(t, root, kver)
	xz, _ := filepath.Glob(filepath.Join(dir, "kernel", "fs", "ext4", "ext4.ko.xz"))
	if len(xz) != 1 {
		t.Errorf("ReleaseKernel(trixie): %s has no kernel/fs/ext4/ext4.ko.xz", dir)
	}
	if _, err := os.Stat(filepath.Join(root, "boot", "vmlinuz-"+kver)); err != nil {
		t.Errorf("ReleaseKernel(trixie) tree lacks its vmlinuz: %v", err)
	}
}
