package shutdown

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
)

// MountInfo is one line of /proc/self/mountinfo (proc(5)).
type MountInfo struct {
	ID, Parent int
	MountPoint string // unescaped
	FSType     string
	Source     string
}

// ParseMountInfo reads a mountinfo table. Paths are unescaped ("\040" is a
// space).
func ParseMountInfo(r io.Reader) ([]MountInfo, error) {
	var out []MountInfo
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Fields(line)
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if len(f) < 7 || sep < 0 || sep+2 >= len(f) {
			return nil, fmt.Errorf("mountinfo line %d: malformed: %q", n, line)
		}
		id, err1 := strconv.Atoi(f[0])
		parent, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("mountinfo line %d: bad mount ids: %q", n, line)
		}
		out = append(out, MountInfo{ID: id, Parent: parent, MountPoint: unescape(f[4]), FSType: f[sep+1], Source: unescape(f[sep+2])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

// unescape undoes the kernel's octal escapes (\040, \011, \012, \134).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

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
func UnmountOrder(mounts []MountInfo, dir string) []MountInfo {
	var set []MountInfo
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
	var out []MountInfo
	done := map[int]bool{}
	for len(out) < len(set) {
		var free []MountInfo
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
