package build

import (
	"path"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/fstree"
)

// fixups does, in one place, what the packages' maintainer scripts would
// have done and the image needs (no maintainer script ever runs):
//   - /usr/bin/sh: Debian's busybox ships only its multi-call binary and its
//     postinst does not create applet links; scripts in the image (and
//     "#!/bin/sh" helpers of other packages) need a sh, so point it at the
//     configured shell binary when no package provided one.
func fixups(t *fstree.Tree, d confd.Distribution) error {
	if t.Get("usr/bin/sh") == nil && len(d.Shell) > 0 && t.Get(d.Shell[0]) != nil {
		target := path.Base(d.Shell[0])
		if path.Dir(fstree.Clean(d.Shell[0])) != "usr/bin" {
			target = d.Shell[0]
		}
		if err := t.Add(fstree.Entry{Path: "usr/bin/sh", Kind: fstree.Symlink, Mode: 0o777, Target: target, Origin: "fixups"}); err != nil {
			return err
		}
	}
	return nil
}
