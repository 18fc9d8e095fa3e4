package shutdown

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
)

// Program is the name systemd-shutdown execs inside the shutdown root.
const Program = "shutdown"

// PivotDirs are the directories systemd-shutdown expects in the shutdown
// root: the API filesystems are moved onto dev, proc and sys, and the old
// root is put at oldroot.
func PivotDirs() []string { return []string{"dev", "proc", "sys", "run", "oldroot"} }

// Install prepares dir (normally /run/initramfs) as the shutdown root of
// the exitrd protocol: it creates PivotDirs and copies the executable exe
// (stage0 itself, a static binary that needs no other file) to
// dir/shutdown with mode 0755. The copy is written to a temporary file and
// renamed, so dir/shutdown is never a half-written program that
// systemd-shutdown would exec.
func Install(dir, exe string) error {
	for _, d := range append([]string{""}, PivotDirs()...) {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return fmt.Errorf("install shutdown: %w", err)
		}
	}
	if err := atomicfile.CopyFile(exe, filepath.Join(dir, Program), 0o755); err != nil {
		return fmt.Errorf("install shutdown: %w", err)
	}
	return nil
}
