package testdeb

import (
	"os"
	"path/filepath"
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
