package shutdown

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
)

// System is every side effect of the shutdown, one function each, so the
// teardown logic runs unchanged against a fake machine in tests.
// LinuxSystem returns the real one.
type System struct {
	// Mount mounts an API filesystem (mount.Mount.Mount: "already
	// mounted" is success).
	Mount func(m mount.Mount) error
	// Cmdline reads the kernel command line.
	Cmdline func() (*cmdline.CmdLine, error)
	// MountInfo reads this process's mount table.
	MountInfo func() ([]mountinfo.Mount, error)
	// Unmount is umount2(2) with MNT_* flags.
	Unmount func(target string, flags int) error
	// RemountReadOnly remounts target read-only (MS_REMOUNT|MS_RDONLY).
	RemountReadOnly func(target string) error
	// Processes lists the processes.
	Processes func() ([]Process, error)
	// Kill sends sig to pid.
	Kill func(pid int, sig unix.Signal) error
	// Reap collects the exit status of exited children (PID 1's zombies).
	Reap func()
	// Devices lists the device-mapper and attached loop devices.
	Devices func() ([]BlockDev, error)
	// RemoveDM removes the device-mapper device name (DM_DEV_REMOVE).
	RemoveDM func(name string) error
	// DetachLoop detaches the loop device with kernel name kernel.
	DetachLoop func(kernel string) error
	// Sync flushes every filesystem (sync(2)).
	Sync func()
	// Reboot calls reboot(2) with a LINUX_REBOOT_CMD_* command; it returns
	// only on failure.
	Reboot func(cmd int) error
	// Sleep and Now are time.Sleep and time.Now, replaceable so tests run
	// on a fake clock.
	Sleep func(d time.Duration)
	Now   func() time.Time
}
