package mount

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Mount is one mount(2) call, a step of the boot plan.
type Mount struct {
	Source string
	Target string
	FSType string
	Flags  uintptr
	Data   string
	// Optional mounts only log their failure (e.g. efivarfs, devpts).
	Optional bool
}

// String describes the mount like mount(8) lists it:
// "proc on /proc type proc (nosuid,nodev,noexec)".
func (m Mount) String() string {
	opts := FormatFlags(m.Flags)
	if m.Data != "" {
		if opts != "" {
			opts += ","
		}
		opts += m.Data
	}
	if opts == "" {
		opts = "rw"
	}
	return fmt.Sprintf("%s on %s type %s (%s)", m.Source, m.Target, m.FSType, opts)
}

// Mount creates the target directory if needed and mounts. A target that is
// already a mount point counts as done (EBUSY from devtmpfs means the same):
// stage0 retries its plan after the emergency shell, and the user may have
// mounted things by hand.
func (m Mount) Mount() error {
	if err := os.MkdirAll(m.Target, 0o755); err != nil {
		return fmt.Errorf("mount %s: %w", m.Target, err)
	}
	if mp, err := IsMountPoint(m.Target); err == nil && mp {
		return nil
	}
	err := unix.Mount(m.Source, m.Target, m.FSType, m.Flags, m.Data)
	if errors.Is(err, unix.EBUSY) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "mount " + m.FSType + " " + m.Source + " on", Path: m.Target, Err: err}
	}
	return nil
}

// IsMountPoint reports whether dir is the root of a mount: its device
// differs from its parent's, or it is its own parent ("/").
func IsMountPoint(dir string) (bool, error) {
	var st, parent unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return false, &os.PathError{Op: "stat", Path: dir, Err: err}
	}
	if err := unix.Lstat(filepath.Join(dir, ".."), &parent); err != nil {
		return false, &os.PathError{Op: "stat", Path: dir + "/..", Err: err}
	}
	return st.Dev != parent.Dev || st.Ino == parent.Ino, nil
}

// API returns the mounts every initramfs needs, in order, as systemd's
// INITRD_INTERFACE and booster set them up: /run must be a tmpfs with
// mode=755,nodev,nosuid,strictatime because it is handed to the real init.
func API() []Mount {
	return []Mount{
		{Source: "proc", Target: "/proc", FSType: "proc", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{Source: "sysfs", Target: "/sys", FSType: "sysfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{Source: "devtmpfs", Target: "/dev", FSType: "devtmpfs", Flags: unix.MS_NOSUID, Data: "mode=0755"},
		{Source: "tmpfs", Target: "/run", FSType: "tmpfs", Flags: unix.MS_NOSUID | unix.MS_NODEV | unix.MS_STRICTATIME, Data: "mode=0755"},
		{Source: "devpts", Target: "/dev/pts", FSType: "devpts", Flags: unix.MS_NOSUID | unix.MS_NOEXEC, Data: "gid=5,mode=0620,ptmxmode=0666", Optional: true},
	}
}

// Root returns the mount of the real root: device on target with fsType,
// the rootflags= options, and read-only unless mode is "rw". With mode ""
// (neither ro nor rw on the command line) rootflags decides, ro by default.
func Root(device, target, fsType, rootflags, mode string) Mount {
	flags, data := ParseOptions(rootflags)
	switch {
	case mode == "rw":
		flags &^= unix.MS_RDONLY
	case mode == "ro" || !hasOption(rootflags, "rw"):
		flags |= unix.MS_RDONLY
	}
	return Mount{Source: device, Target: target, FSType: fsType, Flags: flags, Data: data}
}

// hasOption reports whether rw is the last of ro/rw in opts.
func hasOption(opts, want string) bool {
	last := ""
	for _, o := range strings.Split(opts, ",") {
		if o = strings.TrimSpace(o); o == "ro" || o == "rw" {
			last = o
		}
	}
	return last == want
}
