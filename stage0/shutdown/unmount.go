package shutdown

import (
	"path"
	"sort"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
)

// Under reports whether the mount point p is dir or inside it.
func Under(p, dir string) bool {
	p, dir = path.Clean(p), path.Clean(dir)
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// UnmountOrder returns the mounts at or under dir in an order they can be
// unmounted in: every mount after the mounts on top of it (its children
// in the mount tree, which include mounts stacked on the same path), and
// among mounts that are free at the same time the deepest path first,
// then the newest.
func UnmountOrder(mounts []mountinfo.Mount, dir string) []mountinfo.Mount {
	var set []mountinfo.Mount
	in := map[int]bool{}
	for _, m := range mounts {
		if Under(m.MountPoint, dir) && !in[m.ID] {
			set = append(set, m)
			in[m.ID] = true
		}
	}
	children := map[int]int{}
	for _, m := range set {
		if m.Parent != m.ID && in[m.Parent] {
			children[m.Parent]++
		}
	}
	var out []mountinfo.Mount
	done := map[int]bool{}
	for len(out) < len(set) {
		var free []mountinfo.Mount
		for _, m := range set {
			if !done[m.ID] && children[m.ID] == 0 {
				free = append(free, m)
			}
		}
		if len(free) == 0 {
			// A loop in the parent links (not possible in a real table):
			// take the rest by depth rather than give up.
			for _, m := range set {
				if !done[m.ID] {
					free = append(free, m)
				}
			}
		}
		sort.SliceStable(free, func(i, j int) bool {
			di, dj := depth(free[i].MountPoint), depth(free[j].MountPoint)
			if di != dj {
				return di > dj
			}
			return free[i].ID > free[j].ID
		})
		for _, m := range free {
			done[m.ID] = true
			out = append(out, m)
			if m.Parent != m.ID && in[m.Parent] {
				children[m.Parent]--
			}
		}
	}
	return out
}

func depth(p string) int {
	p = path.Clean(p)
	if p == "/" {
		return 0
	}
	return strings.Count(p, "/")
}
