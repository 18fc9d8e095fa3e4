// Package hostinfo reads what a machine's /proc and /sys say about the
// kernel modules it needs: the modules loaded now (/proc/modules), its root
// mount (/proc/self/mountinfo, read with package mountinfo) and the chain of block devices, device
// ancestors and drivers under that root (sysfs), with the ciphers of its
// dm-crypt layers (from the LUKS header on a live host, /proc/crypto on a
// recorded one) and the kinds of layers (dm-crypt, LVM, md …). It reads a
// live system or a recorded copy of one (a sysroot holding proc/ and sys/),
// never writes, and knows nothing about module trees: it names modules and
// aliases, and the resolver decides what they are in a given kernel.
package hostinfo

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
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

// RootMount returns the mount at "/" that is visible: the last one listed
// (a later mount on "/" hides the earlier ones).
func RootMount(ms []mountinfo.Mount) (mountinfo.Mount, error) {
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i].MountPoint == "/" {
			return ms[i], nil
		}
	}
	return mountinfo.Mount{}, errors.New("mountinfo: no mount on /")
}
