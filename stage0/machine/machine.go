// Package machine is stage0's one set of seams to the running kernel:
// every side effect of the boot and of the shutdown is a function field of
// Machine, so the logic in stage0 and its sub-packages runs unchanged
// against a fake in tests. stage0.LinuxMachine returns the real one.
package machine

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/font"
	"github.com/pkginitrd/pkginitrd/stage0/fsck"
	"github.com/pkginitrd/pkginitrd/stage0/keymap"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
	"github.com/pkginitrd/pkginitrd/stage0/switchroot"
	"github.com/pkginitrd/pkginitrd/stage0/uevent"
)

// Machine holds the side effects, one function each.
type Machine struct {
	// Files.
	ReadFile func(path string) ([]byte, error)
	Exists   func(path string) bool
	MkdirAll func(dir string) error
	// WriteFile writes data to path in one write (a sysfs attribute, too),
	// creating the file (mode 0644) and its directory when missing.
	WriteFile func(path string, data []byte) error
	// Append opens path for appending, creating it (the boot log).
	Append func(path string) (io.Writer, error)

	// Mounts. Mount is mount.Mount.Mount: "already mounted" is success.
	Mount           func(m mount.Mount) error
	Unmount         func(target string, flags int) error // umount2(2), MNT_* flags
	RemountReadOnly func(target string) error
	IsMountPoint    func(dir string) (bool, error)
	MountInfo       func() ([]mountinfo.Mount, error) // this process's mount table

	// Kernel. LoadModule loads a module file with its parameter string (an
	// error wrapping EEXIST means already loaded); it sits on finit_module(2)
	// and init_module(2) (modload.FileLoader).
	Uname       func() (release string, err error)
	LoadModule  func(path, params string) error
	FinitModule func(fd int, params string, flags int) error
	InitModule  func(image []byte, params string) error
	Sync        func()
	// Reboot is reboot(2) with a LINUX_REBOOT_CMD_* command; it returns
	// only on failure.
	Reboot func(cmd int) error

	// Processes. Run runs argv with env added to the environment and stdin
	// as its whole input, returning its combined output and exit status.
	// Fsck runs a checker with its output on the console. Shell runs argv
	// interactively on the console and waits for it.
	Run       func(ctx context.Context, argv, env []string, stdin []byte) (out []byte, exitCode int, err error)
	Fsck      func(ctx context.Context, argv []string) (fsck.Outcome, error)
	Shell     func(ctx context.Context, argv, env []string) error
	Environ   func() []string
	Processes func() ([]Process, error)
	Kill      func(pid int, sig unix.Signal) error
	Reap      func() // collects exited children (PID 1's zombies)

	// Console: Ask prints prompt and reads a line with echo off (newline
	// removed); Say prints a line.
	Ask func(ctx context.Context, prompt string) ([]byte, error)
	Say func(line string)
	// LoadKeymap sets the console keyboard's tables (keymap.Load on /dev/tty0).
	LoadKeymap func(m *keymap.Map) error
	// LoadFont sets the console font and its Unicode map (font.Load on /dev/tty0).
	LoadFont func(f *font.Font) error

	// Devices. Listen opens the hotplug event stream; Modaliases lists
	// those of the devices present (coldplug); Scan lists and probes the
	// block devices and Link makes their /dev/disk/by-* links.
	Listen     func() (EventSource, error)
	Modaliases func() ([]string, error)
	Scan       func() ([]device.Device, error)
	Link       func(devs []device.Device) error
	Probe      func(path string) (*blkid.Info, error)
	// Attach attaches file to a loop device read-only with autoclear; the
	// device stays attached while hold is open.
	Attach     func(file string, blockSize uint32) (node string, hold io.Closer, err error)
	DetachLoop func(kernel string) error
	// Devices lists the device-mapper and attached loop devices; Mappings
	// the device-mapper ones, and LinkMappings makes their /dev/mapper and
	// /dev/VG/LV links; RemoveDM removes one (DM_DEV_REMOVE), RenameDM
	// renames one.
	Devices      func() ([]BlockDev, error)
	Mappings     func() ([]Mapping, error)
	LinkMappings func(maps []Mapping) error
	RemoveDM     func(name string) error
	RenameDM     func(old, name string) error // DM_DEV_RENAME
	// ReadDeviceFile mounts node (fsType) read-only on a private temporary
	// directory, reads path there and unmounts it again.
	ReadDeviceFile func(ctx context.Context, node, fsType, path string) ([]byte, error)
	// CopyVerified copies src to dst and checks the copy against what was read.
	CopyVerified func(ctx context.Context, dst, src string) (int64, error)

	// The switch to the real root. SwitchRoot execs the real init; it
	// returns only on failure. InstallShutdown puts stage0 in dir as the
	// shutdown program of the exitrd protocol.
	ResolveInit     func(newRoot string, candidates ...string) (string, error)
	SwitchRoot      func(o switchroot.Options) error
	InstallShutdown func(dir string) error

	// Time, replaceable so tests need not wait.
	After func(d time.Duration) <-chan time.Time
	Sleep func(d time.Duration)
	Now   func() time.Time
}

// EventSource is a stream of kernel uevents (*uevent.Conn).
type EventSource interface {
	Read() (*uevent.Event, error)
	Close() error
}

var _ EventSource = (*uevent.Conn)(nil)

// Kind is the kind of a stacked block device.
type Kind int

// The stacked block devices.
const (
	DM   Kind = iota // device-mapper (LUKS, LVM, live snapshots)
	Loop             // loop device with a backing file
)

// BlockDev is a device-mapper or attached loop device as sysfs shows it.
type BlockDev struct {
	Kernel  string   // "dm-0", "loop3"
	Kind    Kind     // DM or Loop
	Name    string   // dm/name ("luks-…", "vg-root"); the kernel name for loops
	UUID    string   // dm/uuid ("CRYPT-LUKS2-…", "LVM-…")
	Backing string   // loop/backing_file
	Holders []string // kernel names of the devices stacked on it (holders/)
}

// String names the device for the console: "device-mapper device
// vg-root (dm-1, LVM)" or "loop device loop0 (/run/…/squashfs.img)".
func (d BlockDev) String() string {
	if d.Kind == Loop {
		return fmt.Sprintf("loop device %s (%s)", d.Kernel, d.Backing)
	}
	what := d.Kernel
	switch {
	case strings.HasPrefix(d.UUID, "CRYPT-"):
		what += ", dm-crypt"
	case strings.HasPrefix(d.UUID, "LVM-"):
		what += ", LVM"
	}
	return fmt.Sprintf("device-mapper device %s (%s)", d.Name, what)
}

// Mapping is an active device-mapper device as sysfs shows it.
type Mapping struct {
	Kernel string // "dm-0"
	Name   string // dm/name
	UUID   string // dm/uuid: "CRYPT-LUKS2-…", "LVM-…"
	Dev    string // dev: "253:0"
}

// Process is a process as /proc shows it, with what the shutdown's
// killing spree needs to know.
type Process struct {
	PID    int
	Comm   string
	State  byte // R, S, D, Z, ...
	Kernel bool // a kernel thread (PF_KTHREAD): signals do not apply
	// Storage marks a root storage daemon: argv[0] starts with '@'
	// (systemd's ROOT_STORAGE_DAEMONS convention). It is spared.
	Storage bool
}
