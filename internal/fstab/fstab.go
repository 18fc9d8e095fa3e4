// Package fstab reads fstab(5) tables, for the generator and stage0 alike.
// The generator reads the host's /etc/fstab for the swap a host-only image
// resumes from. stage0 reads the real root's /etc/fstab after mounting it:
// the root's mount options, and what systemd expects the initramfs to have
// mounted before switch_root (/usr, and the entries marked x-initrd.mount).
package fstab

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"

	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
)

// Entry is one line of an fstab.
type Entry struct {
	Spec    string // what to mount: "UUID=…", "/dev/mapper/vg-root", "tmpfs"
	File    string // the mount point ("none" for swap), cleaned
	Type    string // "ext4", "swap", "auto"
	Options string // as written; "defaults" when the field is missing
	Pass    int    // fsck order: 0 = not checked
	Line    int    // 1-based line number, for messages
}

// String is the entry as an fstab line.
func (e Entry) String() string {
	return fmt.Sprintf("%s %s %s %s", e.Spec, e.File, e.Type, e.Options)
}

// Has reports whether the option opt (a name, or "name=value") is among
// the entry's options.
func (e Entry) Has(opt string) bool {
	for _, o := range strings.Split(e.Options, ",") {
		if o == opt {
			return true
		}
	}
	return false
}

// InitrdMount reports whether the initramfs must mount the entry before
// switch_root: /usr (systemd requires it, see its INITRD_INTERFACE) and
// entries marked x-initrd.mount, unless noauto; never the root or swap.
func (e Entry) InitrdMount() bool {
	if e.File == "/" || e.Type == "swap" || e.Has("noauto") || !path.IsAbs(e.File) {
		return false
	}
	return e.File == "/usr" || e.Has("x-initrd.mount")
}

// Parse reads an fstab: blank lines and # comments are skipped, fields
// are separated by blanks and may hold octal escapes (\040 for a space).
// Lines with fewer than three fields are reported in warnings and skipped.
func Parse(r io.Reader) (entries []Entry, warnings []string, err error) {
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 {
			warnings = append(warnings, fmt.Sprintf("line %d: %q: want at least spec, mount point and type", n, line))
			continue
		}
		e := Entry{Spec: mountinfo.Unescape(f[0]), File: mountinfo.Unescape(f[1]), Type: mountinfo.Unescape(f[2]), Options: "defaults", Line: n}
		if path.IsAbs(e.File) {
			e.File = path.Clean(e.File)
		}
		if len(f) > 3 {
			e.Options = mountinfo.Unescape(f[3])
		}
		if len(f) > 5 {
			if e.Pass, err = strconv.Atoi(f[5]); err != nil {
				warnings = append(warnings, fmt.Sprintf("line %d: fsck pass %q is not a number; not checking %s", n, f[5], e.File))
				e.Pass = 0
			}
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return entries, warnings, fmt.Errorf("read fstab: %w", err)
	}
	return entries, warnings, nil
}

// Find returns the last entry for the mount point file (mount(8) and
// systemd use the last one), or nil.
func Find(entries []Entry, file string) *Entry {
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].File == file {
			return &entries[i]
		}
	}
	return nil
}
