package stage0

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/console"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/fsck"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
	"github.com/pkginitrd/pkginitrd/stage0/modload"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
	"github.com/pkginitrd/pkginitrd/stage0/switchroot"
	"github.com/pkginitrd/pkginitrd/stage0/uevent"
)

// Fixed paths of the initramfs side of the boot.
const (
	newRoot = "/sysroot"
	devRoot = "/dev"
	sysRoot = "/sys"
	// logPath is on /run, which moves into the real root at switch_root,
	// so the log stays readable there.
	logPath = "/run/initramfs/boot.log"
)

// boot is the state of one boot: what was decided, found and loaded.
type boot struct {
	sys    machine.Machine
	log    *slog.Logger
	report func(text string) // to the console whatever the log level, and the log file
	cmd    *cmdline.CmdLine
	conf   *bootconf.Config
	set    bootSettings
	loader *modload.Loader

	// Hotplug: the event source, the wake-up for the root wait, and the
	// module loads it started.
	events  machine.EventSource
	wake    chan struct{}
	loads   sync.WaitGroup
	mu      sync.Mutex // guards devs, read by the failure report
	devs    []device.Device
	root    *device.Device
	waiting cmdline.DeviceRef
	lvmSeen map[string]bool // LVM physical volumes activation ran for (storage.go)
	font    *loadedFont     // the console font loaded (vconsole.go)
}

func newBoot(sys machine.Machine, log *slog.Logger, report func(string), cmd *cmdline.CmdLine, conf *bootconf.Config, set bootSettings, loader *modload.Loader) *boot {
	return &boot{sys: sys, log: log, report: report, cmd: cmd, conf: conf, set: set, loader: loader, wake: make(chan struct{}, 1)}
}

// run executes steps in order. On a failure it reports, opens the
// emergency shell and, when the shell exits, retries from retryFrom (or
// the failed step if earlier). It returns nil if the last step returns (in
// a real boot switch_root never does), or the error that ended the boot
// without a shell (rd.shell=0, or no shell in the image).
func (b *boot) run(ctx context.Context, steps []step, retryFrom int) error {
	for i := 0; i < len(steps); {
		s := steps[i]
		b.log.Info(s.String())
		err := s.Run(ctx, b)
		if err == nil {
			i++
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if stop := b.emergency(ctx, s, err); stop != nil {
			return stop
		}
		if i > retryFrom {
			i = retryFrom
		}
		b.log.Info("retrying the boot", "from", steps[i].String())
	}
	return nil
}

// emergency reports err and runs the emergency shell. It returns nil to
// retry, or an error when there is no shell to run; the emergency action
// (rd.emergency=, default halt) has then been tried.
func (b *boot) emergency(ctx context.Context, s step, err error) error {
	b.report(b.failureReport(s, err))
	if !b.cmd.Shell {
		b.report("not starting a shell: rd.shell=0 is on the kernel command line")
		return b.emergencyAction(fmt.Errorf("%s: %w", s, err))
	}
	if serr := b.shell(ctx, "starting emergency shell (exit it to retry the boot)"); serr != nil {
		return b.emergencyAction(fmt.Errorf("%s: %w (and no emergency shell: %v)", s, err, serr))
	}
	return nil
}

func (b *boot) emergencyAction(err error) error {
	action := b.cmd.Emergency
	if action == "" {
		action = "halt"
	}
	cmd := map[string]int{"reboot": unix.LINUX_REBOOT_CMD_RESTART, "poweroff": unix.LINUX_REBOOT_CMD_POWER_OFF, "halt": unix.LINUX_REBOOT_CMD_HALT}[action]
	b.report("giving up (rd.emergency=" + action + ")")
	b.sys.Sync()
	if rerr := b.sys.Reboot(cmd); rerr != nil {
		return fmt.Errorf("%w; %s failed: %v", err, action, rerr)
	}
	return err
}

// shellArgv returns the first shell of the image config and the fallbacks
// that exists.
func (b *boot) shellArgv() ([]string, error) {
	candidates := [][]string{b.conf.Shell, {"/usr/bin/busybox", "sh"}, {"/bin/sh"}}
	for _, c := range candidates {
		if len(c) > 0 && b.sys.Exists(c[0]) {
			return c, nil
		}
	}
	return nil, errors.New("no shell in the image (tried the configured shell, /usr/bin/busybox sh, /bin/sh)")
}

// shell prints banner on the console and runs the shell there until it
// exits.
func (b *boot) shell(ctx context.Context, banner string) error {
	argv, err := b.shellArgv()
	if err != nil {
		b.log.Error("cannot open a shell", "err", err)
		return err
	}
	b.report(banner)
	b.log.Debug("shell", "argv", strings.Join(argv, " "))
	err = b.sys.Shell(ctx, argv, console.ShellEnv(b.sys.Environ()))
	if err != nil {
		// A non-zero exit is the user's business; only failing to
		// start counts.
		b.log.Info("shell exited", "status", err)
	}
	if err != nil && !isExit(err) {
		return err
	}
	return nil
}

// startHotplug opens the uevent stream (once) and handles events in the
// background: modaliases are loaded, block events wake the root wait.
func (b *boot) startHotplug(ctx context.Context) {
	if b.events != nil {
		return
	}
	src, err := b.sys.Listen()
	if err != nil {
		b.log.Warn("no hotplug events; late devices will be found by polling", "err", err)
		return
	}
	b.events = src
	go func() {
		defer func() {
			if r := recover(); r != nil {
				b.log.Error("internal error in the hotplug handler; hotplug stopped", "panic", r)
			}
		}()
		for {
			ev, err := src.Read()
			switch {
			case errors.Is(err, uevent.ErrOverflow):
				b.log.Warn("device events were lost; rescanning", "err", err)
				b.async(ctx, func() { b.coldplug(ctx) })
				continue
			case err != nil:
				return // closed at switch_root
			}
			b.log.Debug("uevent", "event", ev.String())
			if a := ev.Get("MODALIAS"); a != "" && ev.Action == "add" {
				b.async(ctx, func() {
					if err := b.loader.LoadForAliases(ctx, a); err != nil {
						b.log.Warn("hotplug module load failed", "modalias", a, "err", err)
					}
				})
			}
			if ev.Subsystem == "block" {
				b.signal()
			}
		}
	}()
}

// async runs f in a goroutine counted in loads, so switch_root can wait for
// module loads in flight.
func (b *boot) async(ctx context.Context, f func()) {
	b.loads.Add(1)
	go func() {
		defer b.loads.Done()
		defer func() {
			if r := recover(); r != nil {
				b.log.Error("internal error in a background task", "panic", r)
			}
		}()
		f()
	}()
}

// signal wakes the root wait without blocking.
func (b *boot) signal() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// coldplug loads the modules for every device already present.
func (b *boot) coldplug(ctx context.Context) {
	aliases, err := b.sys.Modaliases()
	if err != nil {
		b.log.Warn("coldplug: cannot list devices", "err", err)
	}
	if err := b.loader.LoadForAliases(ctx, aliases...); err != nil {
		b.log.Warn("coldplug: some modules did not load", "err", err)
	}
	b.signal()
}

// ErrRootTimeout is returned when the root device did not show up in time.
var ErrRootTimeout = errors.New("timed out waiting for the root device")

// waitRoot waits for the root device ref (scanFor) for at most timeout
// (0: forever).
func (b *boot) waitRoot(ctx context.Context, ref cmdline.DeviceRef, timeout time.Duration) error {
	b.waiting = ref
	if b.rootMounted() {
		b.log.Info("a root is already mounted (by hand in the shell?); not waiting", "target", newRoot)
		return nil
	}
	switch ref.Kind {
	case cmdline.None:
		return errors.New("no root device: root= is not on the kernel command line and the image has no default root (build it host-only or add root=)")
	case cmdline.Live:
		return fmt.Errorf("root=%s needs the live-image feature, which this image does not have", ref)
	}
	var deadline <-chan time.Time
	if timeout > 0 {
		deadline = b.sys.After(timeout)
	}
	d, devs, err := b.scanFor(ctx, &ref, deadline, b.rootActivation("root="), func(devs []device.Device) {
		b.log.Info("root device not there yet, waiting", "root", ref.String(), "devices", len(devs))
	})
	b.waiting = ref // a LUKS container's mapping, when root= named the container
	if errors.Is(err, errDeadline) {
		return fmt.Errorf("%w %s after %s%s", ErrRootTimeout, ref, timeout, b.storageHint(devs))
	}
	if err != nil {
		return err
	}
	if m := device.Find(devs, ref); len(m) > 1 {
		b.log.Warn("several devices match the root; using the first", "root", ref.String(), "using", d.Node, "matches", len(m))
	}
	b.root = d
	b.log.Info("found root device", "root", ref.String(), "device", d.String())
	return nil
}

// errDeadline is scanFor's error when its deadline passed.
var errDeadline = errors.New("deadline passed")

// scanFor scans the block devices until ref resolves, opening LUKS
// containers and activating LVM on the way as a allows (activate, which
// may point ref at a mapping), re-scanning on every block uevent (or every
// second without uevents) until deadline (nil: forever); then the error is
// errDeadline. waiting is called once, after the first scan that missed
// and activated nothing. A nil a activates nothing. The waits for the
// root (waitRoot), the resume device and the others (waitOther) are this
// loop.
func (b *boot) scanFor(ctx context.Context, ref *cmdline.DeviceRef, deadline <-chan time.Time, a *activation, waiting func([]device.Device)) (*device.Device, []device.Device, error) {
	for said := false; ; {
		devs, err := b.sys.Scan()
		if err != nil {
			return nil, nil, fmt.Errorf("scan block devices: %w", err)
		}
		b.mu.Lock()
		b.devs = devs
		b.mu.Unlock()
		if err := b.sys.Link(devs); err != nil {
			b.log.Warn("cannot create /dev/disk links", "err", err)
		}
		d, err := device.Resolve(devRoot, devs, *ref)
		if err != nil {
			return nil, devs, err
		}
		if more, err := b.activate(ctx, a, devs, ref, d); err != nil {
			return nil, devs, err
		} else if more {
			continue // LUKS/LVM made new devices: scan again
		}
		if d != nil {
			return d, devs, nil
		}
		if !said {
			said = true
			waiting(devs)
		}
		var poll <-chan time.Time
		if b.events == nil {
			poll = b.sys.After(time.Second)
		}
		select {
		case <-b.wake:
		case <-poll:
		case <-deadline:
			return nil, devs, errDeadline
		case <-ctx.Done():
			return nil, devs, ctx.Err()
		}
	}
}

// waitOther waits for a device other than the root (a key device, the
// device of /usr, a persistent overlay) for at most timeout (0: forever),
// activating what a allows on the way (nil: nothing), and says once on the
// console what it waits for (what) and the option that sets its timeout
// (knob). ref may become a LUKS container's mapping (activate). On timeout
// the error is a *notThereError.
func (b *boot) waitOther(ctx context.Context, ref *cmdline.DeviceRef, timeout time.Duration, a *activation, what, knob string) (*device.Device, error) {
	var deadline <-chan time.Time
	limit := "forever"
	if timeout > 0 {
		deadline, limit = b.sys.After(timeout), "up to "+timeout.String()
	}
	want := *ref
	d, _, err := b.scanFor(ctx, ref, deadline, a, func([]device.Device) {
		b.sys.Say(fmt.Sprintf("waiting %s for %s %s (%s)", limit, what, want, knob))
	})
	if errors.Is(err, errDeadline) {
		return nil, &notThereError{ref: want, timeout: timeout}
	}
	return d, err
}

// notThereError is waitOther's error when its device did not show up.
type notThereError struct {
	ref     cmdline.DeviceRef
	timeout time.Duration
}

func (e *notThereError) Error() string {
	return fmt.Sprintf("%s did not appear within %s", e.ref, e.timeout)
}

// rootType is the filesystem type to mount the root as: rootfstype= or
// the probed one. Containers get an error naming the missing feature.
func (b *boot) rootType(s bootSettings) (string, error) {
	if s.RootFSType != "" {
		return s.RootFSType, nil
	}
	d := b.root
	if d.Info == nil {
		if d.Err != nil {
			return "", fmt.Errorf("cannot read %s: %w", d.Node, d.Err)
		}
		return "", fmt.Errorf("no filesystem recognised on %s; give its type with rootfstype=", d.Node)
	}
	switch d.Info.Type {
	case "crypto_LUKS":
		if b.conf.HasFeature("luks") {
			return "", fmt.Errorf("%s is a LUKS container and LUKS unlocking is off (rd.luks=0): root= must name the opened mapping", d.Node)
		}
		return "", fmt.Errorf("%s is a LUKS container: unlocking it needs the luks feature (rd.luks.uuid=%s), which this image does not have", d.Node, d.Info.UUID)
	case "LVM2_member":
		return "", fmt.Errorf("%s is an LVM physical volume: root= must name a logical volume, and activating it needs the lvm feature", d.Node)
	case "swap":
		return "", fmt.Errorf("%s is a swap area, not a filesystem: check root=", d.Node)
	}
	if d.Info.Usage != blkid.UsageFilesystem {
		return "", fmt.Errorf("%s holds %s, not a filesystem", d.Node, d.Info.Type)
	}
	return d.Info.Type, nil
}

func (b *boot) rootMounted() bool {
	mp, err := b.sys.IsMountPoint(newRoot)
	return err == nil && mp
}

// fsck runs the image's checker for the root's type, if there is one.
// After a clean check it leaves /run/initramfs/fsck-root, the flag that
// tells the real root's systemd-fsck-root.service the check is done.
func (b *boot) fsck(ctx context.Context, mode, repair string) error {
	if b.rootMounted() {
		return nil
	}
	fsType, err := b.rootType(b.set)
	if err != nil {
		return err
	}
	checked, err := b.checkFS(ctx, b.root, fsType, "root", mode, repair)
	if err == nil && checked {
		if werr := b.sys.WriteFile(fsckRootFlag, nil); werr != nil {
			b.log.Warn("cannot leave the flag that the root was checked; systemd will check it again", "path", fsckRootFlag, "err", werr)
		}
	}
	return err
}

// fsckRootFlag tells systemd-fsck-root.service (ConditionPathExists=!) that
// the initramfs checked the root.
const fsckRootFlag = "/run/initramfs/fsck-root"

// checkFS runs the image's checker for fsType on d, the filesystem what
// ("root", "/usr") will be mounted from; checked is false when the image
// has no checker for it or the device is read-only.
func (b *boot) checkFS(ctx context.Context, d *device.Device, fsType, what, mode, repair string) (checked bool, err error) {
	if d.ReadOnly {
		// A read-only mapping (rd.luks.options=readonly) cannot be repaired.
		b.log.Info("the device is read-only; not checking it", "device", d.Node, "filesystem", what)
		return false, nil
	}
	checker := b.conf.Fsck[fsType]
	if checker == "" {
		b.log.Debug("no checker for this filesystem type in the image", "type", fsType)
		return false, nil
	}
	if !b.sys.Exists(checker) {
		b.log.Warn("the image config names a checker that is not in the image", "type", fsType, "checker", checker)
		return false, nil
	}
	argv := fsck.Args(checker, d.Node, mode, repair)
	b.log.Info("checking the "+what+" filesystem", "argv", strings.Join(argv, " "))
	outcome, err := b.sys.Fsck(ctx, argv)
	switch outcome {
	case fsck.OK:
		return true, nil
	case fsck.Reboot:
		b.report("fsck repaired the " + what + " filesystem and asks for a reboot; rebooting")
		b.sys.Sync()
		if rerr := b.sys.Reboot(unix.LINUX_REBOOT_CMD_RESTART); rerr != nil {
			return true, fmt.Errorf("reboot after fsck: %w", rerr)
		}
		return true, errors.New("reboot after fsck returned")
	}
	return true, fmt.Errorf("fsck found errors it could not fix: %w\n  repair by hand in the shell: %s -f %s (or fsck.repair=yes on the kernel command line)", err, checker, d.Node)
}

// mountRoot mounts the root device on /sysroot, unless something (the user
// in the shell) already did.
func (b *boot) mountRoot(ctx context.Context) error {
	s := b.set
	if b.rootMounted() {
		b.log.Info("the root is already mounted; using it", "target", newRoot)
		return nil
	}
	fsType, err := b.rootType(s)
	if err != nil {
		return err
	}
	// The kernel would request_module("fs-<type>") itself, but the image
	// has no modprobe for it to call.
	if err := b.loader.Load(ctx, "fs-"+fsType); err != nil {
		b.log.Debug("filesystem module: not all of it loaded (it may be built in)", "type", fsType, "err", err)
	}
	m := mount.Root(b.source(b.waiting, b.root.Node), newRoot, fsType, s.RootFlags, s.RootMode)
	b.log.Info("mounting root", "mount", m.String())
	if err := b.sys.Mount(m); err != nil {
		return fmt.Errorf("mount the root: %w", err)
	}
	return nil
}

// source is what to mount a device from: the /dev path the command line
// or fstab named (/dev/mapper/vg-root), when it exists, so the mount table
// shows the name the real root's fstab and systemd use; else the node.
func (b *boot) source(ref cmdline.DeviceRef, node string) string {
	if ref.Kind == cmdline.Path && strings.HasPrefix(ref.Value, devRoot+"/") && b.sys.Exists(ref.Value) {
		return ref.Value
	}
	return node
}

// switchRoot resolves the init, stops hotplug, keeps the shutdown side in
// /run/initramfs when the root needs it, and hands over.
func (b *boot) switchRoot(ctx context.Context, init string, args []string) error {
	candidates := append([]string{init}, switchroot.DefaultInits()...)
	path, err := b.sys.ResolveInit(newRoot, candidates...)
	if err != nil {
		return fmt.Errorf("%w\n  the root filesystem has no init; check root= and init=", err)
	}
	if init != "" && path != init {
		if p, _ := b.sys.ResolveInit(newRoot, init); p == "" {
			b.log.Warn("init= not found in the root; using the default", "init", init, "using", path)
		}
	}
	if b.events != nil {
		_ = b.events.Close() // only stops the uevent listener
		b.events = nil
	}
	done := make(chan struct{})
	go func() { b.loads.Wait(); close(done) }()
	select {
	case <-done:
	case <-b.sys.After(10 * time.Second):
		b.log.Warn("module loads still running at switch_root")
	case <-ctx.Done():
	}
	b.keepShutdown()
	b.leaveUdevRecords()
	b.log.Info("switching root", "root", newRoot, "init", path, "args", strings.Join(args, " "))
	return b.sys.SwitchRoot(switchroot.Options{
		NewRoot: newRoot,
		Init:    path,
		Argv:    args,
		Env:     b.sys.Environ(),
		Keep:    []string{"/init", "/" + bootconf.Path},
		Log:     b.log,
	})
}

// isExit reports whether err is a command's non-zero exit status.
func isExit(err error) bool {
	var exit *exec.ExitError
	return errors.As(err, &exit)
}
