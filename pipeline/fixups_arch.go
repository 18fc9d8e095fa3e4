package pipeline

import (
	"path"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// fixupsArch does what Arch's filesystem package (left out of the image)
// provides and the image needs: its lib64 → usr/lib link, by which
// programs find the dynamic loader at /lib64/ld-linux-*.so.*. The image's
// usr/lib64 is a directory (the skeleton's), so each loader in usr/lib
// gets a link there. Arch's loader searches /usr/lib without an ld.so
// cache, and nothing in the image looks users or groups up.
func fixupsArch(t *fstree.Tree) error {
	var loaders []string
	err := t.Walk(func(e *fstree.Entry) error {
		if path.Dir(e.Path) == "usr/lib" && strings.HasPrefix(path.Base(e.Path), "ld-linux") && e.Kind != fstree.Dir {
			loaders = append(loaders, path.Base(e.Path))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, l := range loaders {
		link := "usr/lib64/" + l
		if t.Get(link) != nil {
			continue
		}
		if err := t.Add(fstree.Entry{Path: link, Kind: fstree.Symlink, Mode: 0o777, Target: "../lib/" + l, Origin: "fixups"}); err != nil {
			return err
		}
	}
	return nil
}
