package pipeline

import (
	"fmt"
	"io/fs"

	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// addSkeleton adds what every image has regardless of packages: the
// merged-/usr symlinks, the mount points stage0 uses, /dev/console (the
// kernel opens it for PID 1's stdio before /init runs) and the
// initrd-release marker systemd and others use to tell they are in an initrd.
func addSkeleton(t *fstree.Tree, release string) error {
	const origin = "skeleton"
	dirs := []string{"dev", "proc", "sys", "run", "sysroot", "tmp", "root", "etc", "usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "etc/pkginitrd"}
	for _, d := range dirs {
		mode := fs.FileMode(0o755)
		switch d {
		case "tmp":
			mode = fs.ModeSticky | 0o777
		case "root":
			mode = 0o700
		}
		if err := t.Add(fstree.Entry{Path: d, Kind: fstree.Dir, Mode: mode, Origin: origin}); err != nil {
			return err
		}
	}
	links := map[string]string{
		"bin":            "usr/bin",
		"sbin":           "usr/sbin",
		"lib":            "usr/lib",
		"lib64":          "usr/lib64",
		"etc/mtab":       "../proc/self/mounts",
		"etc/os-release": "initrd-release",
	}
	for p, target := range links {
		if err := t.Add(fstree.Entry{Path: p, Kind: fstree.Symlink, Mode: 0o777, Target: target, Origin: origin}); err != nil {
			return err
		}
	}
	if err := t.Add(fstree.Entry{Path: "dev/console", Kind: fstree.CharDev, Mode: 0o600, Major: 5, Minor: 1, Origin: origin}); err != nil {
		return err
	}
	rel := fmt.Sprintf("NAME=\"pkginitrd\"\nID=pkginitrd\nPRETTY_NAME=\"pkginitrd initrd (%s)\"\nVERSION_ID=%q\n", release, release)
	return t.Add(fstree.Entry{Path: "etc/initrd-release", Kind: fstree.File, Mode: 0o644, Data: []byte(rel), Size: int64(len(rel)), Origin: origin})
}
