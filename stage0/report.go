package stage0

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
)

// failureReport says what the boot waited for, what it saw and what to try,
// for the console before the emergency shell.
func (b *boot) failureReport(failed step, err error) string {
	var r strings.Builder
	fmt.Fprintf(&r, "boot failed: %v\n", err)
	fmt.Fprintf(&r, "failed step: %s\n", failed)
	ref := b.waiting
	if ref.Kind == cmdline.None {
		ref = b.set.Root
	}
	fsType := b.set.RootFSType
	if fsType == "" {
		fsType = "auto"
	}
	fmt.Fprintf(&r, "root wanted: %s (rootfstype=%s rootflags=%q, rd.timeout=%s)\n", ref, fsType, b.set.RootFlags, timeoutString(b.set.Timeout))

	devs, serr := b.sys.Scan()
	if serr != nil {
		b.mu.Lock()
		devs = b.devs
		b.mu.Unlock()
	}
	r.WriteString("block devices seen:\n")
	if len(devs) == 0 {
		r.WriteString("  (none)\n")
	}
	for i := range devs {
		fmt.Fprintf(&r, "  %s\n", devs[i].String())
	}

	loaded := b.loader.Loaded()
	sort.Strings(loaded)
	if len(loaded) == 0 {
		r.WriteString("modules loaded: (none)\n")
	} else {
		fmt.Fprintf(&r, "modules loaded: %s\n", strings.Join(loaded, " "))
	}
	for _, f := range b.loader.Failed() {
		fmt.Fprintf(&r, "module failed: %s: %v\n", f.Module, f.Err)
	}

	r.WriteString("things to try:\n")
	switch {
	case errors.Is(err, ErrRootTimeout) && len(devs) == 0:
		r.WriteString("  - no disk at all: the image may lack the disk's driver; add it to [modules] include in\n")
		r.WriteString("    pkginitrd.toml (or build with --generic) and rebuild; `pkginitrd modules` explains the set\n")
	case errors.Is(err, ErrRootTimeout):
		r.WriteString("  - check root= on the kernel command line (cat /proc/cmdline) against the devices above:\n")
		r.WriteString("    UUID=, LABEL=, PARTUUID= and PARTLABEL= must match exactly\n")
		r.WriteString("  - if the root disk is missing from the list, its driver may not be in the image:\n")
		r.WriteString("    add it to [modules] include in pkginitrd.toml and rebuild\n")
	case strings.Contains(err.Error(), "mount the root"):
		r.WriteString("  - check rootfstype= and rootflags= on the kernel command line; dmesg tells why the kernel refused\n")
		r.WriteString("  - the filesystem's module may be missing from the image: add it to [modules] include and rebuild\n")
	}
	fmt.Fprintf(&r, "  - a slow disk (USB, SAN, RAID) may need a longer rd.timeout= (now %s)\n", timeoutString(b.set.Timeout))
	r.WriteString("  - or, in the shell, load drivers (modprobe <module>), mount the root on /sysroot yourself\n")
	r.WriteString("    and exit: the boot goes on from there\n")
	r.WriteString("  - the log of this boot is in " + logPath + "\n")
	return r.String()
}

func timeoutString(t interface{ Seconds() float64 }) string {
	if t.Seconds() == 0 {
		return "0 (forever)"
	}
	return fmt.Sprintf("%gs", t.Seconds())
}
