// Package mountinfo parses the kernel's mount table as /proc/PID/mountinfo
// shows it (proc(5)). It is pure parsing, shared by the build side
// (host-only detection) and the boot side (stage0's shutdown).
package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Mount is one line of a mountinfo file.
type Mount struct {
	ID, Parent int
	Dev        string // "MAJ:MIN" of st_dev (0:N for btrfs and other anonymous devices)
	Root       string // path of the mount's root inside its filesystem, unescaped
	MountPoint string // unescaped
	FSType     string
	Source     string // "/dev/vda2", "none", … unescaped; "" when mounted with an empty source
}

// Parse reads a mountinfo table:
//
//	ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL…] - FSTYPE SOURCE SUPEROPTIONS
//
// Paths and the source are unescaped ("\040" is a space).
func Parse(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		m, ok := parseLine(line)
		if !ok {
			return nil, fmt.Errorf("mountinfo line %d: malformed: %q", n, line)
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return out, nil
}

func parseLine(line string) (Mount, bool) {
	// The kernel escapes blanks in every field, so " - " only separates
	// the optional fields from the filesystem's.
	pre, post, ok := strings.Cut(line, " - ")
	f := strings.Fields(pre)
	if !ok || len(f) < 6 {
		return Mount{}, false
	}
	id, err1 := strconv.Atoi(f[0])
	parent, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || !strings.Contains(f[2], ":") {
		return Mount{}, false
	}
	// FSTYPE SOURCE SUPEROPTIONS, split on single spaces: a mount made
	// with an empty source shows it as an empty field (two spaces), as
	// util-linux's parser also expects.
	fstype, rest, ok := strings.Cut(post, " ")
	if !ok || fstype == "" {
		return Mount{}, false
	}
	source, _, _ := strings.Cut(rest, " ")
	return Mount{ID: id, Parent: parent, Dev: f[2], Root: Unescape(f[3]),
		MountPoint: Unescape(f[4]), FSType: fstype, Source: Unescape(source)}, true
}

// Unescape undoes the octal escapes that mountinfo, mtab and fstab share
// (\040 space, \011 tab, \012 newline, \134 backslash).
func Unescape(s string) string {
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
