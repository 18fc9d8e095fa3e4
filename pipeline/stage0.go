package pipeline

import (
	"debug/elf"
	"fmt"
	"os"

	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// addStage0 puts the pkginitrd binary in the image as /init. It must be
// static: nothing in the image provides a dynamic loader at that point in
// the boot, and generator and stage0 must be the same build.
func addStage0(t *fstree.Tree, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("stage0: %w", err)
	}
	return t.Replace(fstree.Entry{Path: "init", Kind: fstree.File, Mode: 0o755, Source: path, Size: info.Size(), Origin: "stage0"})
}

func checkStatic(path string) error {
	if path == "" {
		return fmt.Errorf("stage0: no pkginitrd binary given")
	}
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("stage0 %s: %w", path, err)
	}
	defer func() { _ = f.Close() }() // read-only
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("stage0 %s is dynamically linked and cannot run as /init: rebuild pkginitrd with CGO_ENABLED=0", path)
		}
	}
	return nil
}
