package shutdown

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestInstall(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "init")
	prog := bytes.Repeat([]byte("\x7fELF static stage0 "), 50000) // about 1 MB
	if err := os.WriteFile(exe, prog, 0o700); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "run", "initramfs")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// boot.log is already there and must stay; an older program is replaced.
	if err := os.WriteFile(filepath.Join(dir, "boot.log"), []byte("log\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, Program), []byte("old"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := Install(dir, exe); err != nil {
		t.Fatalf("Install = %v", err)
	}
	st, err := os.Stat(filepath.Join(dir, Program))
	if err != nil || st.Mode().Perm() != 0o755 || !st.Mode().IsRegular() {
		t.Fatalf("Install: %s = %v, %v; want a regular file with mode 0755", Program, st, err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, Program)); !bytes.Equal(got, prog) {
		t.Errorf("Install: %s differs from the executable (%d bytes, want %d)", Program, len(got), len(prog))
	}
	for _, d := range PivotDirs() {
		if st, err := os.Stat(filepath.Join(dir, d)); err != nil || !st.IsDir() {
			t.Errorf("Install: %s/%s = %v; want a directory", dir, d, err)
		}
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if len(ents) != len(PivotDirs())+2 {
		t.Errorf("Install left %q in %s; want boot.log, %s and the pivot directories only", names, dir, Program)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "boot.log")); string(b) != "log\n" {
		t.Errorf("Install changed boot.log to %q", b)
	}

	if err := Install(dir, filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Errorf("Install(missing executable) = nil, want an error")
	}
	if ents2, _ := os.ReadDir(dir); len(ents2) != len(ents) {
		t.Errorf("a failed Install left files behind: %d entries, want %d", len(ents2), len(ents))
	}
}
