package stage0

import (
	"context"
	"time"

	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/dm"
	"github.com/pkginitrd/pkginitrd/stage0/fsck"
	"github.com/pkginitrd/pkginitrd/stage0/live"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
	"github.com/pkginitrd/pkginitrd/stage0/switchroot"
	"github.com/pkginitrd/pkginitrd/stage0/uevent"
)

// System is every side effect of the boot, one function each, so the boot
// logic runs unchanged against a recorder in tests. LinuxSystem returns
// the real one.
type System struct {
	Mount        func(m mount.Mount) error
	IsMountPoint func(dir string) (bool, error)
	LoadModule   func(path, params string) error
	// Listen opens the hotplug event stream (a NETLINK_KOBJECT_UEVENT socket).
	Listen func() (EventSource, error)
	// Modaliases lists the modaliases of the devices present (coldplug).
	Modaliases func() ([]string, error)
	// Scan lists and probes the block devices.
	Scan func() ([]device.Device, error)
	// Link creates the /dev/disk/by-* symlinks for devs.
	Link func(devs []device.Device) error
	// Fsck runs a filesystem checker argv.
	Fsck func(ctx context.Context, argv []string) (fsck.Outcome, error)
	// Shell runs argv interactively on the console and waits for it.
	Shell       func(ctx context.Context, argv, env []string) error
	ResolveInit func(newRoot string, candidates ...string) (string, error)
	// SwitchRoot execs the real init; it returns only on failure.
	SwitchRoot func(o switchroot.Options) error
	// StorageStack lists the device-mapper and attached loop devices
	// present (kernel names), which only the shutdown side can tear down.
	StorageStack func() ([]string, error)
	// InstallShutdown puts stage0 in dir as the shutdown program of the
	// exitrd protocol (shutdown.Install).
	InstallShutdown func(dir string) error
	// Reboot calls reboot(2) with a LINUX_REBOOT_CMD_* command.
	Reboot  func(cmd int) error
	Exists  func(path string) bool
	Environ func() []string
	// After is time.After, replaceable so tests need not wait.
	After func(d time.Duration) <-chan time.Time
	// Live holds the side effects of live and overlay roots.
	Live live.System
	// DM holds the side effects of LUKS and LVM activation.
	DM dm.System
}

// EventSource is a stream of kernel uevents (*uevent.Conn).
type EventSource interface {
	Read() (*uevent.Event, error)
	Close() error
}

// Reboot commands for System.Reboot (linux/reboot.h).
const (
	RebootRestart  = 0x01234567
	RebootHalt     = 0xCDEF0123
	RebootPowerOff = 0x4321FEDC
)
