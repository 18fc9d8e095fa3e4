package pipeline

import (
	"fmt"
	"log/slog"
	"path"
	"strings"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/internal/elfdeps"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// fixups does, in one place, what the packages' maintainer scripts would
// have done and the image needs (no maintainer script ever runs): the
// shell links below for every distribution, then the distribution's own
// fixups (distributionFixups, by name).
//   - /usr/bin/sh: Debian's busybox ships only its multi-call binary and its
//     postinst creates no applet links; scripts in the image need a sh, so
//     point it at the configured shell binary when no package provided one.
//   - /usr/sbin/modprobe: the kernel runs /sbin/modprobe for its own module
//     requests (crypto algorithms, fs-TYPE at mount time, ...). Without kmod
//     in the image, busybox's modprobe applet serves them from the text
//     modules.dep and modules.alias pkginitrd writes.
func fixups(t *fstree.Tree, name string, d confd.Distribution) error {
	if f := distributionFixups()[name]; f != nil {
		if err := f(t); err != nil {
			return fmt.Errorf("%s fixups: %w", name, err)
		}
	}
	if len(d.Shell) == 0 || t.Get(d.Shell[0]) == nil {
		return nil
	}
	shell := fstree.Clean(d.Shell[0])
	links := map[string]string{"usr/bin/sh": shell}
	if path.Base(shell) == "busybox" {
		links["usr/sbin/modprobe"] = shell
	}
	for link, target := range links {
		if t.Get(link) != nil {
			continue
		}
		if err := t.Add(fstree.Entry{Path: link, Kind: fstree.Symlink, Mode: 0o777, Target: relativeTarget(link, target), Origin: "fixups"}); err != nil {
			return err
		}
	}
	return nil
}

// relativeTarget returns the symlink target that makes link point at target
// (both image paths), e.g. usr/sbin/modprobe → ../bin/busybox.
func relativeTarget(link, target string) string {
	from := path.Dir(link)
	up := ""
	for from != "." && !hasPathPrefix(target, from) {
		from = path.Dir(from)
		up += "../"
	}
	if from == "." {
		return up + target
	}
	return up + target[len(from)+1:]
}

func hasPathPrefix(p, dir string) bool {
	return len(p) > len(dir) && p[:len(dir)] == dir && p[len(dir)] == '/'
}

// dropUnusedLibraries removes the shared libraries no program in the image
// loads (glibc's libmvec, libnss_*, ... come with their packages), keeping
// those glibc dlopens. A dependency found nowhere is a warning: the program
// will not start, and the user must add the package that has it.
func dropUnusedLibraries(t *fstree.Tree, log *slog.Logger) error {
	unused, unresolved, err := elfdeps.Unused(t, elfdeps.DlopenedLibraries())
	if err != nil {
		return fmt.Errorf("shared library closure: %w", err)
	}
	for _, u := range unresolved {
		log.Warn("a program needs a library that is not in the image", "needs", u)
	}
	for _, p := range unused {
		t.Remove(p)
	}
	if len(unused) > 0 {
		log.Info("dropped shared libraries no program needs", "count", len(unused))
		log.Debug("dropped shared libraries", "paths", strings.Join(unused, " "))
	}
	return nil
}
