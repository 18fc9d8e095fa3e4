// Package shutdown is the /shutdown of the shutdown-to-initramfs ("exitrd")
// protocol: at poweroff systemd-shutdown pivots into /run/initramfs, with
// the old root at /oldroot and /dev, /proc, /sys moved in, and execs
// `/shutdown VERB [systemd options]` as PID 1. Shutdown.Run then
//
//   - mounts /proc, /sys and /dev if they are missing;
//   - sends SIGTERM (then SIGKILL) to every process left but kernel
//     threads and root storage daemons (argv[0] starting with '@');
//   - unmounts everything at and under /oldroot, deepest first, retrying
//     while mounts are busy for up to rd.shutdown.timeout.umount= seconds
//     (default 90, as dracut), then remounts what is still busy read-only
//     and detaches it;
//   - removes the device-mapper devices (LVM volumes, LUKS mappings: the
//     kernel wipes a dm-crypt key when its device goes) and detaches the
//     loop devices, each after the devices stacked on it;
//   - syncs and calls reboot(2) for the verb.
//
// Every step is printed on the console. A failed step is reported and the
// shutdown goes on: the machine is always powered off, rebooted or halted,
// because PID 1 must neither hang nor exit (the kernel panics).
//
// Install puts the program in place at switch_root time.
package shutdown

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
)

// Action is what the machine does at the end.
type Action int

// The verbs of systemd-shutdown.
const (
	PowerOff Action = iota
	Reboot
	Halt
	Kexec
)

func (a Action) String() string {
	switch a {
	case Reboot:
		return "reboot"
	case Halt:
		return "halt"
	case Kexec:
		return "kexec"
	}
	return "poweroff"
}

// Commands returns the reboot(2) commands to try in order: kexec falls
// back to a reboot when no kernel is loaded, poweroff and reboot to halt.
func (a Action) Commands() []int {
	switch a {
	case Reboot:
		return []int{unix.LINUX_REBOOT_CMD_RESTART, unix.LINUX_REBOOT_CMD_HALT}
	case Halt:
		return []int{unix.LINUX_REBOOT_CMD_HALT}
	case Kexec:
		return []int{unix.LINUX_REBOOT_CMD_KEXEC, unix.LINUX_REBOOT_CMD_RESTART, unix.LINUX_REBOOT_CMD_HALT}
	}
	return []int{unix.LINUX_REBOOT_CMD_POWER_OFF, unix.LINUX_REBOOT_CMD_HALT}
}

// ParseArgs reads systemd-shutdown's argument vector (argv[0] included).
// The verb is the first argument that is not an option (systemd keeps it
// at argv[1]); systemd's own options (--log-level=, --exit-code=,
// --timeout=, ...) are ignored. "exit", a container's verb, powers off as
// systemd-shutdown does outside a container; a missing or unknown verb
// reboots, as dracut's shutdown does. note explains such a fallback.
func ParseArgs(args []string) (a Action, note string) {
	verb := ""
	for _, arg := range args[min(1, len(args)):] {
		if !strings.HasPrefix(arg, "-") {
			verb = arg
			break
		}
	}
	switch verb {
	case "poweroff":
		return PowerOff, ""
	case "reboot":
		return Reboot, ""
	case "halt":
		return Halt, ""
	case "kexec":
		return Kexec, ""
	case "exit":
		return PowerOff, `verb "exit" is for containers; powering off instead`
	case "":
		return Reboot, "no verb given (want poweroff, reboot, halt or kexec); rebooting"
	}
	return Reboot, fmt.Sprintf("unknown verb %q (want poweroff, reboot, halt or kexec); rebooting", verb)
}

// DefaultUnmountTimeout bounds the unmount retries (dracut's default for
// rd.shutdown.timeout.umount=).
const DefaultUnmountTimeout = 90 * time.Second

// UnmountTimeout returns rd.shutdown.timeout.umount= (seconds, an "s"
// suffix allowed), or DefaultUnmountTimeout with a warning when it is
// missing or not a number.
func UnmountTimeout(c *cmdline.CmdLine) (time.Duration, string) {
	v, ok := c.Get("rd.shutdown.timeout.umount")
	if !ok {
		return DefaultUnmountTimeout, ""
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(v, "s"), 10, 32)
	if err != nil {
		return DefaultUnmountTimeout, fmt.Sprintf("rd.shutdown.timeout.umount=%s: not a number of seconds; using %s", v, DefaultUnmountTimeout)
	}
	return time.Duration(n) * time.Second, ""
}

// Waits of the killing spree and the retry loop.
const (
	termWait   = 5 * time.Second // for processes to end after SIGTERM
	killWait   = 2 * time.Second // after SIGKILL
	pollEvery  = 100 * time.Millisecond
	retryDelay = 250 * time.Millisecond // between unmount rounds that got nowhere
	maxRounds  = 10000                  // a bound besides the clock, should it stand still
)

// Shutdown tears down the storage stack under the old root and ends the
// machine.
type Shutdown struct {
	Sys machine.Machine
	Log *slog.Logger
	// OldRoot is where the old root is mounted (systemd: /oldroot).
	OldRoot string
	// Self is this process's PID (1), never signalled.
	Self int
}

// Run shuts the machine down as args (systemd-shutdown's argv) ask. It
// returns only if reboot(2) failed for every command of the action.
func (s *Shutdown) Run(ctx context.Context, args []string) error {
	a, note := ParseArgs(args)
	s.Log.Info("shutdown: tearing down the storage stack, then " + a.String())
	if note != "" {
		s.Log.Warn("shutdown: " + note)
	}
	for _, m := range mount.API()[:3] { // /proc, /sys, /dev
		if err := s.Sys.Mount(m); err != nil {
			s.Log.Warn("shutdown: cannot mount "+m.Target, "err", err)
		}
	}
	timeout := DefaultUnmountTimeout
	if b, err := s.Sys.ReadFile("/proc/cmdline"); err != nil {
		s.Log.Warn("shutdown: cannot read the kernel command line", "err", err)
	} else {
		var warn string
		if timeout, warn = UnmountTimeout(cmdline.Parse(string(b))); warn != "" {
			s.Log.Warn("shutdown: " + warn)
		}
	}
	s.Sys.Sync()
	s.killAll(ctx)
	s.teardown(ctx, timeout)
	return s.end(a)
}

// killAll signals every process but PID 1, kernel threads and storage
// daemons: SIGTERM, a wait, then SIGKILL.
func (s *Shutdown) killAll(ctx context.Context) {
	procs := s.toKill()
	if len(procs) == 0 {
		s.Log.Debug("shutdown: no processes left to stop")
		return
	}
	s.Log.Info("shutdown: sending SIGTERM to "+plural(len(procs), "process", "processes"), "names", comms(procs))
	s.signal(procs, unix.SIGTERM)
	s.signal(procs, unix.SIGCONT) // stopped ones must run to see it
	if procs = s.waitGone(ctx, termWait); len(procs) == 0 {
		return
	}
	s.Log.Info("shutdown: sending SIGKILL to "+plural(len(procs), "process", "processes"), "names", comms(procs))
	s.signal(procs, unix.SIGKILL)
	if procs = s.waitGone(ctx, killWait); len(procs) > 0 {
		s.Log.Warn("shutdown: processes survived SIGKILL (stuck in the kernel?)", "names", comms(procs))
	}
}

func (s *Shutdown) toKill() []Process {
	s.Sys.Reap()
	procs, err := s.Sys.Processes()
	if err != nil {
		s.Log.Warn("shutdown: cannot list all processes", "err", err)
	}
	return ToKill(procs, s.Self)
}

func (s *Shutdown) signal(procs []Process, sig unix.Signal) {
	for _, p := range procs {
		if err := s.Sys.Kill(p.PID, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			s.Log.Debug("shutdown: kill", "pid", p.PID, "signal", sig, "err", err)
		}
	}
}

// waitGone polls until no process is left to kill or d has passed, and
// returns those left.
func (s *Shutdown) waitGone(ctx context.Context, d time.Duration) []Process {
	end := s.Sys.Now().Add(d)
	for {
		procs := s.toKill()
		if len(procs) == 0 || !s.Sys.Now().Before(end) || ctx.Err() != nil {
			return procs
		}
		s.Sys.Sleep(pollEvery)
	}
}

// teardown unmounts everything under the old root and removes the
// devices, in rounds: a device can only go once its filesystem is
// unmounted, and a filesystem that holds a loop device's backing file
// only once the loop is detached. A round that changed nothing waits a
// little (after another SIGKILL) and tries again, until timeout; then the
// mounts still there are remounted read-only and detached.
func (s *Shutdown) teardown(ctx context.Context, timeout time.Duration) {
	t := &tally{mountErr: map[string]error{}, devErr: map[string]error{}, removed: map[string]string{}}
	deadline := s.Sys.Now().Add(timeout)
	waiting := false
	for round := 1; ; round++ {
		mounts := s.unmountPass(t)
		devs := s.removePass(t)
		if len(mounts) == 0 {
			s.removeRest(t, devs)
			return
		}
		if t.progress() {
			continue
		}
		if !s.Sys.Now().Before(deadline) || ctx.Err() != nil || round >= maxRounds {
			for _, m := range mounts {
				s.Log.Warn("shutdown: still busy after "+timeout.String()+": "+m.MountPoint, "err", t.mountErr[m.MountPoint])
			}
			s.force(mounts)
			s.removeRest(t, s.devices())
			return
		}
		if !waiting {
			waiting = true
			s.Log.Info("shutdown: filesystems busy; retrying for up to "+timeout.String(), "mounts", mountPoints(mounts))
		}
		s.signal(s.toKill(), unix.SIGKILL)
		s.Sys.Sleep(retryDelay)
	}
}

// tally is what the teardown did so far.
type tally struct {
	mountErr map[string]error  // last unmount error by mount point
	devErr   map[string]error  // last removal error by kernel name
	removed  map[string]string // kernel name → name of the devices removed
	changed  bool              // since the last progress()
}

// progress reports whether anything was unmounted or removed since it was
// last called.
func (t *tally) progress() bool {
	c := t.changed
	t.changed = false
	return c
}

// unmountPass tries every mount under the old root once, in order, and
// returns those left.
func (s *Shutdown) unmountPass(t *tally) []mountinfo.Mount {
	notMounted := map[string]bool{}
	for _, m := range UnmountOrder(s.mounts(), s.OldRoot) {
		err := s.Sys.Unmount(m.MountPoint, 0)
		switch {
		case err == nil:
			s.Log.Info("shutdown: unmounted "+m.MountPoint, "type", m.FSType, "source", m.Source)
			t.changed = true
			delete(t.mountErr, m.MountPoint)
		case errors.Is(err, unix.EINVAL): // not a mount point (any more)
			notMounted[m.MountPoint] = true
			delete(t.mountErr, m.MountPoint)
		default:
			t.mountErr[m.MountPoint] = err
			s.Log.Debug("shutdown: unmount failed", "mount", m.MountPoint, "err", err)
		}
	}
	return slices.DeleteFunc(UnmountOrder(s.mounts(), s.OldRoot), func(m mountinfo.Mount) bool { return notMounted[m.MountPoint] })
}

// mounts reads the mount table. When it cannot be read (no /proc), the old
// root itself stands for everything under it, so that it is still
// unmounted, or remounted read-only at the end.
func (s *Shutdown) mounts() []mountinfo.Mount {
	ms, err := s.Sys.MountInfo()
	if err != nil {
		s.Log.Warn("shutdown: cannot read the mount table; unmounting "+s.OldRoot+" blind", "err", err)
		return []mountinfo.Mount{{MountPoint: s.OldRoot}}
	}
	return ms
}

// force remounts each of mounts read-only, so its filesystem is clean,
// and detaches it from the tree (MNT_DETACH), deepest first.
func (s *Shutdown) force(mounts []mountinfo.Mount) {
	for _, m := range mounts {
		if err := s.Sys.RemountReadOnly(m.MountPoint); err != nil {
			s.Log.Warn("shutdown: cannot remount "+m.MountPoint+" read-only", "err", err)
		} else {
			s.Log.Info("shutdown: remounted " + m.MountPoint + " read-only")
		}
		if err := s.Sys.Unmount(m.MountPoint, unix.MNT_DETACH); err != nil {
			s.Log.Warn("shutdown: cannot detach "+m.MountPoint, "err", err)
		} else {
			s.Log.Warn("shutdown: detached " + m.MountPoint + " (lazy unmount; its devices stay in use)")
		}
	}
}

func (s *Shutdown) devices() []BlockDev {
	devs, err := s.Sys.Devices()
	if err != nil {
		s.Log.Warn("shutdown: cannot read all block devices", "err", err)
	}
	return devs
}

// removePass tries to remove every device-mapper and loop device once,
// holders first, and returns the devices left. A device counts as removed
// when sysfs no longer lists it: LOOP_CLR_FD on a loop device still in use
// succeeds but only sets autoclear.
func (s *Shutdown) removePass(t *tally) []BlockDev {
	order, _ := RemovalOrder(s.devices())
	var tried []BlockDev
	for _, d := range order {
		var err error
		if d.Kind == Loop {
			err = s.Sys.DetachLoop(d.Kernel)
		} else {
			err = s.Sys.RemoveDM(d.Name)
		}
		if err != nil {
			t.devErr[d.Kernel] = err
			s.Log.Debug("shutdown: cannot remove "+d.String(), "err", err)
			continue
		}
		tried = append(tried, d)
	}
	left := s.devices()
	present := map[string]bool{}
	for _, d := range left {
		present[d.Kernel] = true
	}
	for _, d := range tried {
		if present[d.Kernel] {
			t.devErr[d.Kernel] = errors.New("still in use (autoclear set)")
			continue
		}
		var after []string
		for _, h := range d.Holders {
			if n, ok := t.removed[h]; ok {
				after = append(after, n)
			}
		}
		t.removed[d.Kernel] = d.Name
		delete(t.devErr, d.Kernel)
		t.changed = true
		verb := "removed "
		if d.Kind == Loop {
			verb = "detached "
		}
		msg := "shutdown: " + verb + d.String()
		if len(after) > 0 {
			msg += ", after " + strings.Join(after, ", ")
		}
		s.Log.Info(msg)
	}
	return left
}

// removeRest repeats removal passes while they make progress, then
// reports the devices that stay.
func (s *Shutdown) removeRest(t *tally, devs []BlockDev) {
	for i := 0; len(devs) > 0 && i < maxRounds; i++ {
		n := len(devs)
		if devs = s.removePass(t); len(devs) >= n {
			break
		}
	}
	for _, d := range devs {
		attrs := []any{"err", t.devErr[d.Kernel]}
		if len(d.Holders) > 0 {
			attrs = append(attrs, "holders", strings.Join(d.Holders, " "))
		}
		s.Log.Warn("shutdown: could not remove "+d.String(), attrs...)
	}
	if len(devs) == 0 {
		s.Log.Info("shutdown: no device-mapper or loop devices left")
	}
}

// end syncs and calls reboot(2) with the action's commands in turn. It
// returns only when all failed.
func (s *Shutdown) end(a Action) error {
	s.Sys.Sync()
	var err error
	for i, cmd := range a.Commands() {
		if i == 0 {
			s.Log.Info("shutdown: " + commandName(cmd))
		} else {
			s.Log.Warn("shutdown: "+commandName(a.Commands()[i-1])+" failed; trying "+commandName(cmd)+" instead", "err", err)
		}
		if err = s.Sys.Reboot(cmd); err == nil {
			return nil
		}
	}
	return fmt.Errorf("shutdown: %s: reboot(2): %w", a, err)
}

// commandName names a LINUX_REBOOT_CMD_* command for the console.
func commandName(cmd int) string {
	switch cmd {
	case unix.LINUX_REBOOT_CMD_POWER_OFF:
		return "powering off"
	case unix.LINUX_REBOOT_CMD_RESTART:
		return "rebooting"
	case unix.LINUX_REBOOT_CMD_HALT:
		return "halting"
	case unix.LINUX_REBOOT_CMD_KEXEC:
		return "rebooting into the loaded kernel (kexec)"
	}
	return fmt.Sprintf("reboot(2) command %#x", cmd)
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return strconv.Itoa(n) + " " + many
}

func comms(procs []Process) string {
	var names []string
	for _, p := range procs {
		names = append(names, fmt.Sprintf("%s[%d]", p.Comm, p.PID))
	}
	return strings.Join(names, " ")
}

func mountPoints(ms []mountinfo.Mount) string {
	var ps []string
	for _, m := range ms {
		ps = append(ps, m.MountPoint)
	}
	return strings.Join(ps, " ")
}
