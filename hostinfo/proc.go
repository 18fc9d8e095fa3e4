// Package hostinfo reads what a machine's /proc and /sys say about the
// kernel modules it needs: the modules loaded now (/proc/modules), its root
// mount (/proc/self/mountinfo) and the chain of block devices, device
// ancestors and drivers under that root (sysfs), with the ciphers of its
// dm-crypt layers (from the LUKS header on a live host, /proc/crypto on a
// recorded one) and the kinds of layers (dm-crypt, LVM, md …). It reads a
// live system or a recorded copy of one (a sysroot holding proc/ and sys/),
// never writes, and knows nothing about module trees: it names modules and
// aliases, and the resolver decides what they are in a given kernel.
package hostinfo

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/pkginitrd/pkginitrd/kmod"
)

// ParseModules returns the normalized names of the modules listed in a
// /proc/modules file (its first field), in file order.
func ParseModules(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			out = append(out, kmod.Normalize(f[0]))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("modules list: %w", err)
	}
	return out, nil
}

// Mount is one line of a mountinfo file (proc(5)).
type Mount struct {
	ID, Parent int
	Dev        string // "MAJ:MIN" of st_dev (0:N for btrfs and other anonymous devices)
	Root       string // path of the mount's root inside its filesystem
	MountPoint string
	FSType     string
	Source     string // "/dev/vda2", "none", …
}

// ParseMountInfo parses a /proc/PID/mountinfo file.
func ParseMountInfo(r io.Reader) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		pre, post, ok := strings.Cut(line, " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 2 {
			return nil, fmt.Errorf("mountinfo line %d: malformed: %q", n, line)
		}
		id, err1 := strconv.Atoi(f[0])
		parent, err2 := strconv.Atoi(f[1])
		if err1 != nil || err2 != nil || !strings.Contains(f[2], ":") {
			return nil, fmt.Errorf("mountinfo line %d: malformed: %q", n, line)
		}
		out = append(out, Mount{ID: id, Parent: parent, Dev: f[2], Root: unescape(f[3]),
			MountPoint: unescape(f[4]), FSType: g[0], Source: unescape(g[1])})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	return out, nil
}

// unescape undoes the kernel's octal escapes (\040 for a space, …).
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

// RootMount returns the mount at "/" that is visible: the last one listed
// (a later mount on "/" hides the earlier ones).
func RootMount(ms []Mount) (Mount, error) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].MountPoint == "/" {
			return ms[i], nil
		}
	}
	return Mount{}, fmt.Errorf("mountinfo: no mount on /")
}
