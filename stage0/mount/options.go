// Package mount mounts filesystems for stage0: the API filesystems an
// initramfs needs (/proc, /sys, /dev, /run, /dev/pts) and the real root,
// with fstab-style option strings split into mount(2) flags and data.
package mount

import (
	"strings"

	"golang.org/x/sys/unix"
)

// flag is how one fstab option changes the mount flags.
type flag struct {
	set, clear uintptr
}

// flagTable maps fstab(5)/mount(8) option names to MS_* flags. Options not
// here go to the filesystem as data ("subvol=@", "errors=remount-ro").
func flagTable() map[string]flag {
	return map[string]flag{
		"ro":            {set: unix.MS_RDONLY},
		"rw":            {clear: unix.MS_RDONLY},
		"nosuid":        {set: unix.MS_NOSUID},
		"suid":          {clear: unix.MS_NOSUID},
		"nodev":         {set: unix.MS_NODEV},
		"dev":           {clear: unix.MS_NODEV},
		"noexec":        {set: unix.MS_NOEXEC},
		"exec":          {clear: unix.MS_NOEXEC},
		"sync":          {set: unix.MS_SYNCHRONOUS},
		"async":         {clear: unix.MS_SYNCHRONOUS},
		"dirsync":       {set: unix.MS_DIRSYNC},
		"remount":       {set: unix.MS_REMOUNT},
		"mand":          {set: unix.MS_MANDLOCK},
		"nomand":        {clear: unix.MS_MANDLOCK},
		"noatime":       {set: unix.MS_NOATIME},
		"atime":         {clear: unix.MS_NOATIME},
		"nodiratime":    {set: unix.MS_NODIRATIME},
		"diratime":      {clear: unix.MS_NODIRATIME},
		"relatime":      {set: unix.MS_RELATIME},
		"norelatime":    {clear: unix.MS_RELATIME},
		"strictatime":   {set: unix.MS_STRICTATIME},
		"nostrictatime": {clear: unix.MS_STRICTATIME},
		"lazytime":      {set: unix.MS_LAZYTIME},
		"nolazytime":    {clear: unix.MS_LAZYTIME},
		"silent":        {set: unix.MS_SILENT},
		"loud":          {clear: unix.MS_SILENT},
		"iversion":      {set: unix.MS_I_VERSION},
		"noiversion":    {clear: unix.MS_I_VERSION},
		"bind":          {set: unix.MS_BIND},
		"rbind":         {set: unix.MS_BIND | unix.MS_REC},
		"private":       {set: unix.MS_PRIVATE},
		"rprivate":      {set: unix.MS_PRIVATE | unix.MS_REC},
		"shared":        {set: unix.MS_SHARED},
		"rshared":       {set: unix.MS_SHARED | unix.MS_REC},
		"slave":         {set: unix.MS_SLAVE},
		"rslave":        {set: unix.MS_SLAVE | unix.MS_REC},
		"unbindable":    {set: unix.MS_UNBINDABLE},
		"runbindable":   {set: unix.MS_UNBINDABLE | unix.MS_REC},
	}
}

// ignored are fstab options meant for mount(8), systemd or the boot
// process, never for the kernel.
func ignored(opt string) bool {
	switch opt {
	case "", "defaults", "auto", "noauto", "user", "nouser", "users", "owner", "group", "nofail", "_netdev":
		return true
	}
	return strings.HasPrefix(opt, "x-") || strings.HasPrefix(opt, "comment=")
}

// ParseOptions splits a comma-separated option string into MS_* flags and
// the filesystem data string, keeping data options in their order. Later
// options override earlier ones ("ro,rw" is read-write).
func ParseOptions(opts string) (flags uintptr, data string) {
	table := flagTable()
	var rest []string
	for _, o := range strings.Split(opts, ",") {
		o = strings.TrimSpace(o)
		if ignored(o) {
			continue
		}
		if f, ok := table[o]; ok {
			flags = flags&^f.clear | f.set
			continue
		}
		rest = append(rest, o)
	}
	return flags, strings.Join(rest, ",")
}

// FormatFlags turns flags back into option names, for logs.
func FormatFlags(flags uintptr) string {
	table := flagTable()
	var names []string
	for _, n := range []string{"ro", "nosuid", "nodev", "noexec", "sync", "dirsync", "remount", "mand",
		"noatime", "nodiratime", "relatime", "strictatime", "lazytime", "silent", "iversion", "rbind", "bind",
		"rprivate", "private", "rshared", "shared", "rslave", "slave", "runbindable", "unbindable"} {
		f := table[n].set
		if flags&f == f {
			names = append(names, n)
			flags &^= f
		}
	}
	return strings.Join(names, ",")
}
