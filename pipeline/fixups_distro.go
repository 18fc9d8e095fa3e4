package pipeline

import (
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// distributionFixups maps a distribution's name to what its packages'
// scriptlets and its filesystem package would have done for the image.
// Distributions without an entry need nothing beyond the skeleton.
func distributionFixups() map[string]func(*fstree.Tree) error {
	return map[string]func(*fstree.Tree) error{
		"debian": debianFixups,
		"fedora": fedoraFixups,
		"arch":   fixupsArch,
	}
}

// debianFixups: nothing. base-files' merged-/usr links come from the
// skeleton, and glibc's loader finds the multiarch library directories
// without an ld.so.cache (libc-bin is excluded).
func debianFixups(*fstree.Tree) error { return nil }

// fedoraFixups does what Fedora's filesystem and setup packages (both
// excluded) and scriptlets would have:
//   - the filesystem package's links beyond the skeleton's merged-/usr
//     ones: /var/run → ../run, /var/lock → ../run/lock;
//   - /etc/passwd and /etc/group with root only (setup's), for tools that
//     look users up (lvm, cryptsetup's keyslot handling do not need more);
//   - /usr/sbin/busybox when busybox is in /usr/bin (Fedora 42 merged
//     /usr/sbin into /usr/bin), so the configured shell path holds.
//
// No ld.so.cache: Fedora's loader searches /usr/lib64 (its trusted
// directory, /lib64 → usr/lib64) without one, and the libraries pkginitrd
// keeps are all there.
func fedoraFixups(t *fstree.Tree) error {
	const origin = "fixups (fedora)"
	add := func(e fstree.Entry) error {
		if t.Get(e.Path) != nil {
			return nil
		}
		e.Origin = origin
		return t.Add(e)
	}
	links := []fstree.Entry{
		{Path: "var", Kind: fstree.Dir, Mode: 0o755},
		{Path: "var/run", Kind: fstree.Symlink, Mode: 0o777, Target: "../run"},
		{Path: "var/lock", Kind: fstree.Symlink, Mode: 0o777, Target: "../run/lock"},
	}
	if t.Get("usr/bin/busybox") != nil {
		links = append(links, fstree.Entry{Path: "usr/sbin/busybox", Kind: fstree.Symlink, Mode: 0o777, Target: "../bin/busybox"})
	}
	for _, e := range links {
		if err := add(e); err != nil {
			return err
		}
	}
	for p, data := range map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":  "root:x:0:\n",
	} {
		if err := add(fstree.Entry{Path: p, Kind: fstree.File, Mode: 0o644, Data: []byte(data), Size: int64(len(data))}); err != nil {
			return err
		}
	}
	return nil
}
