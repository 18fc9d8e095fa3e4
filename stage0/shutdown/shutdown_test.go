package shutdown

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
	"github.com/pkginitrd/pkginitrd/stage0/bootlog"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		args     []string
		want     Action
		wantNote bool
	}{
		{[]string{"/shutdown", "poweroff"}, PowerOff, false},
		{[]string{"/shutdown", "reboot", "--log-level=info", "--log-target=kmsg", "--log-color", "--timeout=90000000us"}, Reboot, false},
		{[]string{"/shutdown", "halt"}, Halt, false},
		{[]string{"/shutdown", "kexec", "--exit-code=0"}, Kexec, false},
		{[]string{"/shutdown", "--log-level=debug", "poweroff"}, PowerOff, false},
		{[]string{"/shutdown", "exit", "--exit-code=3"}, PowerOff, true},
		{[]string{"/shutdown", "suspend"}, Reboot, true},
		{[]string{"/shutdown"}, Reboot, true},
		{nil, Reboot, true},
	} {
		got, note := ParseArgs(tc.args)
		if got != tc.want || (note != "") != tc.wantNote {
			t.Errorf("ParseArgs(%q) = %v, %q; want %v (note: %v)", tc.args, got, note, tc.want, tc.wantNote)
		}
	}
}

func TestActionCommands(t *testing.T) {
	for a, want := range map[Action][]int{
		PowerOff: {unix.LINUX_REBOOT_CMD_POWER_OFF, unix.LINUX_REBOOT_CMD_HALT},
		Reboot:   {unix.LINUX_REBOOT_CMD_RESTART, unix.LINUX_REBOOT_CMD_HALT},
		Halt:     {unix.LINUX_REBOOT_CMD_HALT},
		Kexec:    {unix.LINUX_REBOOT_CMD_KEXEC, unix.LINUX_REBOOT_CMD_RESTART, unix.LINUX_REBOOT_CMD_HALT},
	} {
		if got := a.Commands(); !reflect.DeepEqual(got, want) {
			t.Errorf("%v.Commands() = %#x, want %#x", a, got, want)
		}
	}
}

func TestUnmountTimeout(t *testing.T) {
	for _, tc := range []struct {
		line     string
		want     time.Duration
		wantWarn bool
	}{
		{"quiet", DefaultUnmountTimeout, false},
		{"rd.shutdown.timeout.umount=5", 5 * time.Second, false},
		{"rd.shutdown.timeout.umount=30s", 30 * time.Second, false},
		{"rd.shutdown.timeout.umount=0", 0, false},
		{"rd.shutdown.timeout.umount=soon", DefaultUnmountTimeout, true},
	} {
		got, warn := UnmountTimeout(cmdline.Parse(tc.line))
		if got != tc.want || (warn != "") != tc.wantWarn {
			t.Errorf("UnmountTimeout(%q) = %v, %q; want %v (warning: %v)", tc.line, got, warn, tc.want, tc.wantWarn)
		}
	}
}

func TestDMRenameRequest(t *testing.T) {
	buf, err := DMRenameRequest("luks-7a8b9c0d", "vda2_crypt")
	if err != nil {
		t.Fatal(err)
	}
	// 312 + "vda2_crypt\0" rounded up to 8 bytes; data_size at offset 12,
	// data_start at 16, the old name at 48, the new one after the struct.
	if len(buf) != 328 || binary.LittleEndian.Uint32(buf[12:]) != 328 || binary.LittleEndian.Uint32(buf[16:]) != 312 {
		t.Errorf("DMRenameRequest size %d, data_size %d, data_start %d; want 328, 328, 312", len(buf), binary.LittleEndian.Uint32(buf[12:]), binary.LittleEndian.Uint32(buf[16:]))
	}
	if old, name := string(bytes.TrimRight(buf[48:48+128], "\x00")), string(buf[312:323]); old != "luks-7a8b9c0d" || name != "vda2_crypt\x00" {
		t.Errorf("DMRenameRequest names %q -> %q", old, name)
	}
	if unix.DM_DEV_RENAME != 0xc138fd05 {
		t.Errorf("DM_DEV_RENAME = %#x, want 0xc138fd05", unix.DM_DEV_RENAME)
	}
	for _, bad := range []string{"", "a/b", strings.Repeat("x", 128)} {
		if _, err := DMRenameRequest("x", bad); err == nil {
			t.Errorf("DMRenameRequest(x, %q) = nil error", bad)
		}
	}
}

func TestDMRemoveRequest(t *testing.T) {
	req, err := DMRemoveRequest("luks-7a8b9c0d")
	if err != nil {
		t.Fatal(err)
	}
	if req.Version != [3]uint32{4, 0, 0} || req.Data_size != unix.SizeofDmIoctl || req.Data_start != unix.SizeofDmIoctl || req.Flags != 0 {
		t.Errorf("DMRemoveRequest header = version %v size %d start %d flags %#x; want 4.0.0, %d, %d, 0",
			req.Version, req.Data_size, req.Data_start, req.Flags, unix.SizeofDmIoctl, unix.SizeofDmIoctl)
	}
	if got := string(bytes.TrimRight(req.Name[:], "\x00")); got != "luks-7a8b9c0d" || req.Name[len("luks-7a8b9c0d")] != 0 {
		t.Errorf("DMRemoveRequest name = %q, want NUL-terminated luks-7a8b9c0d", got)
	}
	// struct dm_ioctl is 312 bytes in linux/dm-ioctl.h; the ioctl number
	// encodes that size.
	if unix.SizeofDmIoctl != 312 || unix.DM_DEV_REMOVE != 0xc138fd04 {
		t.Errorf("dm_ioctl size %d, DM_DEV_REMOVE %#x; want 312, 0xc138fd04", unix.SizeofDmIoctl, unix.DM_DEV_REMOVE)
	}
	for _, bad := range []string{"", strings.Repeat("x", 128)} {
		if _, err := DMRemoveRequest(bad); err == nil {
			t.Errorf("DMRemoveRequest(%d bytes) = nil error, want one", len(bad))
		}
	}
	if _, err := DMRemoveRequest(strings.Repeat("x", 127)); err != nil {
		t.Errorf("DMRemoveRequest(127 bytes) = %v, want nil", err)
	}
}

// fakeMachine is a fake machine for Run: a mount table, device-mapper and
// loop devices, processes and a clock, with the kernel's refusals (EBUSY
// while a mount has mounts on it or is used, while a device is held or
// mounted).
type fakeMachine struct {
	cmdline string
	nextID  int
	mounts  []mountinfo.Mount
	// busy says whether a mount point is in use by something besides
	// mounts (an open file, a loop device's backing file).
	busy  map[string]func() bool
	devs  []BlockDev
	auto  map[string]bool // loop devices with autoclear set
	procs []Process
	// stubborn processes ignore SIGTERM.
	stubborn  map[int]bool
	now       time.Time
	lazy      []string // sources of busy mounts detached with MNT_DETACH: still in use
	calls     []string
	rebootErr map[int]error
}

func (m *fakeMachine) record(format string, args ...any) {
	m.calls = append(m.calls, fmt.Sprintf(format, args...))
}

func (m *fakeMachine) mount(parentMP, mp, fsType, source string) {
	m.nextID++
	parent := 1
	for _, x := range m.mounts {
		if x.MountPoint == parentMP {
			parent = x.ID
		}
	}
	m.mounts = append(m.mounts, mountinfo.Mount{ID: m.nextID, Parent: parent, MountPoint: mp, FSType: fsType, Source: source})
}

func (m *fakeMachine) alive(pid int) bool {
	for _, p := range m.procs {
		if p.PID == pid {
			return true
		}
	}
	return false
}

// devInUse reports whether a mount or another device uses d.
func (m *fakeMachine) devInUse(d BlockDev) bool {
	for _, x := range m.mounts {
		if x.Source == "/dev/mapper/"+d.Name || x.Source == "/dev/"+d.Kernel {
			return true
		}
	}
	for _, src := range m.lazy {
		if src == "/dev/mapper/"+d.Name || src == "/dev/"+d.Kernel {
			return true
		}
	}
	return len(d.Holders) > 0
}

func (m *fakeMachine) dropDev(k string) {
	var keep []BlockDev
	for _, d := range m.devs {
		if d.Kernel == k {
			continue
		}
		var hs []string
		for _, h := range d.Holders {
			if h != k {
				hs = append(hs, h)
			}
		}
		d.Holders = hs
		keep = append(keep, d)
	}
	m.devs = keep
}

func (m *fakeMachine) dropMount(id int) {
	var keep []mountinfo.Mount
	for _, x := range m.mounts {
		if x.ID != id && x.Parent != id {
			keep = append(keep, x)
		}
	}
	m.mounts = keep
	// The kernel detaches autoclear loop devices with their last user.
	for _, d := range append([]BlockDev(nil), m.devs...) {
		if m.auto[d.Kernel] && !m.devInUse(d) {
			m.dropDev(d.Kernel)
		}
	}
}

func (m *fakeMachine) system() machine.Machine {
	return machine.Machine{
		Mount: func(mt mount.Mount) error { m.record("mount %s", mt.Target); return nil },
		ReadFile: func(p string) ([]byte, error) {
			if p != "/proc/cmdline" {
				return nil, fs.ErrNotExist
			}
			return []byte(m.cmdline), nil
		},
		MountInfo: func() ([]mountinfo.Mount, error) { return append([]mountinfo.Mount(nil), m.mounts...), nil },
		Unmount: func(target string, flags int) error {
			top := -1
			for i, x := range m.mounts {
				if x.MountPoint == target {
					top = i
				}
			}
			if top < 0 {
				return unix.EINVAL
			}
			x := m.mounts[top]
			if flags&unix.MNT_DETACH != 0 {
				m.record("detach %s", target)
				if b := m.busy[target]; b != nil && b() {
					m.lazy = append(m.lazy, x.Source)
				}
				m.dropMount(x.ID)
				return nil
			}
			for _, c := range m.mounts {
				if c.Parent == x.ID {
					return unix.EBUSY
				}
			}
			if b := m.busy[target]; b != nil && b() {
				return unix.EBUSY
			}
			m.record("umount %s", target)
			m.dropMount(x.ID)
			return nil
		},
		RemountReadOnly: func(target string) error { m.record("remount-ro %s", target); return nil },
		Processes: func() ([]Process, error) {
			return append([]Process{{PID: 1, Comm: "shutdown", State: 'R'}, {PID: 2, Comm: "kthreadd", State: 'S', Kernel: true}}, m.procs...), nil
		},
		Kill: func(pid int, sig unix.Signal) error {
			if !m.alive(pid) {
				return unix.ESRCH
			}
			m.record("kill %d %s", pid, unix.SignalName(sig))
			if sig == unix.SIGKILL || (sig == unix.SIGTERM && !m.stubborn[pid]) {
				var keep []Process
				for _, p := range m.procs {
					if p.PID != pid {
						keep = append(keep, p)
					}
				}
				m.procs = keep
			}
			return nil
		},
		Reap:    func() {},
		Devices: func() ([]BlockDev, error) { return append([]BlockDev(nil), m.devs...), nil },
		RemoveDM: func(name string) error {
			for _, d := range m.devs {
				if d.Kind == DM && d.Name == name {
					if m.devInUse(d) {
						return unix.EBUSY
					}
					m.record("dm remove %s", name)
					m.dropDev(d.Kernel)
					return nil
				}
			}
			return unix.ENXIO
		},
		DetachLoop: func(kernel string) error {
			for _, d := range m.devs {
				if d.Kernel == kernel {
					m.record("loop detach %s", kernel)
					if m.devInUse(d) {
						m.auto[kernel] = true // LOOP_CLR_FD on a busy loop
						return nil
					}
					m.dropDev(kernel)
					return nil
				}
			}
			return unix.ENXIO
		},
		Sync: func() { m.record("sync") },
		Reboot: func(cmd int) error {
			m.record("reboot %#x", cmd)
			return m.rebootErr[cmd]
		},
		Sleep: func(d time.Duration) { m.now = m.now.Add(d) },
		Now:   func() time.Time { return m.now },
	}
}

func newMachine() *fakeMachine {
	m := &fakeMachine{busy: map[string]func() bool{}, auto: map[string]bool{}, stubborn: map[int]bool{}, rebootErr: map[int]error{}, now: time.Unix(1e9, 0)}
	m.nextID = 1 // ID 1 is the shutdown root
	return m
}

// lvmOnLUKS is the e2e fixture's machine at the pivot: the old root on
// vgc-root (dm-1), an LV of the VG inside luks-… (dm-0).
func lvmOnLUKS() *fakeMachine {
	m := newMachine()
	m.mount("/", "/oldroot", "ext4", "/dev/mapper/vgc-root")
	m.mount("/oldroot", "/oldroot/run", "tmpfs", "tmpfs")
	m.mount("/", "/proc", "proc", "proc")
	m.devs = []BlockDev{
		{Kernel: "dm-0", Kind: DM, Name: "luks-7a8b", UUID: "CRYPT-LUKS2-7a8b-luks-7a8b", Holders: []string{"dm-1"}},
		{Kernel: "dm-1", Kind: DM, Name: "vgc-root", UUID: "LVM-x"},
	}
	return m
}

type runResult struct {
	err     error
	console string
}

func runShutdown(t *testing.T, m *fakeMachine, args ...string) runResult {
	t.Helper()
	var out bytes.Buffer
	log := slog.New(bootlog.New(&out, slog.LevelInfo, func() time.Duration { return time.Second }))
	s := &Shutdown{Sys: m.system(), Log: log, OldRoot: "/oldroot", Self: 1}
	err := s.Run(context.Background(), append([]string{"/shutdown"}, args...))
	return runResult{err: err, console: out.String()}
}

// inOrder checks that want appear in calls in this order.
func inOrder(t *testing.T, calls, want []string) {
	t.Helper()
	i := 0
	for _, c := range calls {
		if i < len(want) && c == want[i] {
			i++
		}
	}
	if i < len(want) {
		t.Errorf("calls %q lack %q in order (missing from %q)", calls, want, want[i])
	}
}

func TestRunLVMOnLUKS(t *testing.T) {
	m := lvmOnLUKS()
	m.procs = []Process{{PID: 120, Comm: "sleep", State: 'S'}}
	// The old root is in use until the process is gone.
	m.busy["/oldroot"] = func() bool { return m.alive(120) }
	r := runShutdown(t, m, "poweroff", "--log-level=info")
	if r.err != nil {
		t.Fatalf("Run = %v\n%s", r.err, r.console)
	}
	inOrder(t, m.calls, []string{
		"mount /proc", "mount /sys", "mount /dev",
		"kill 120 SIGTERM",
		"umount /oldroot/run", "umount /oldroot",
		"dm remove vgc-root", "dm remove luks-7a8b",
		"sync", fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_POWER_OFF),
	})
	if n := strings.Count(strings.Join(m.calls, "\n"), "reboot "); n != 1 {
		t.Errorf("reboot called %d times, want once: %q", n, m.calls)
	}
	for _, want := range []string{
		"pkginitrd: shutdown: tearing down the storage stack, then poweroff",
		"pkginitrd: shutdown: unmounted /oldroot type=ext4 source=/dev/mapper/vgc-root",
		"pkginitrd: shutdown: removed device-mapper device vgc-root (dm-1, LVM)",
		"pkginitrd: shutdown: removed device-mapper device luks-7a8b (dm-0, dm-crypt), after vgc-root",
		"pkginitrd: shutdown: no device-mapper or loop devices left",
		"pkginitrd: shutdown: powering off",
	} {
		if !strings.Contains(r.console, want) {
			t.Errorf("console lacks %q:\n%s", want, r.console)
		}
	}
	if strings.Contains(r.console, "warning") {
		t.Errorf("a clean shutdown printed warnings:\n%s", r.console)
	}
}

// TestRunStubbornProcess: a process that ignores SIGTERM keeps the root
// busy until SIGKILL, after the SIGTERM wait.
func TestRunStubbornProcess(t *testing.T) {
	m := lvmOnLUKS()
	m.procs = []Process{{PID: 130, Comm: "stubborn", State: 'S'}, {PID: 131, Comm: "mdmon", State: 'S', Storage: true}}
	m.stubborn[130] = true
	m.busy["/oldroot"] = func() bool { return m.alive(130) }
	start := m.now
	r := runShutdown(t, m, "reboot")
	if r.err != nil {
		t.Fatalf("Run = %v", r.err)
	}
	inOrder(t, m.calls, []string{"kill 130 SIGTERM", "kill 130 SIGKILL", "umount /oldroot", "dm remove luks-7a8b", fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_RESTART)})
	if waited := m.now.Sub(start); waited < termWait {
		t.Errorf("SIGKILL came after %s, want the SIGTERM wait of %s first", waited, termWait)
	}
	for _, c := range m.calls {
		if strings.HasPrefix(c, "kill 131") {
			t.Errorf("the root storage daemon was signalled: %q", c)
		}
	}
}

// TestRunBusyForever: a mount that never frees is remounted read-only and
// detached after rd.shutdown.timeout.umount=, its devices stay, and the
// machine still powers off.
func TestRunBusyForever(t *testing.T) {
	m := lvmOnLUKS()
	m.cmdline = "root=/dev/mapper/vgc-root rd.shutdown.timeout.umount=3"
	m.busy["/oldroot"] = func() bool { return true }
	start := m.now
	r := runShutdown(t, m, "poweroff")
	if r.err != nil {
		t.Fatalf("Run = %v", r.err)
	}
	inOrder(t, m.calls, []string{"umount /oldroot/run", "remount-ro /oldroot", "detach /oldroot", fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_POWER_OFF)})
	if waited := m.now.Sub(start); waited < 3*time.Second || waited > 4*time.Second {
		t.Errorf("gave up after %s, want about the 3 s of rd.shutdown.timeout.umount=3", waited)
	}
	for _, want := range []string{
		"shutdown: filesystems busy; retrying for up to 3s mounts=/oldroot",
		"warning: shutdown: still busy after 3s: /oldroot",
		"shutdown: remounted /oldroot read-only",
		"warning: shutdown: could not remove device-mapper device vgc-root (dm-1, LVM)",
		"warning: shutdown: could not remove device-mapper device luks-7a8b (dm-0, dm-crypt) err=\"device or resource busy\" holders=dm-1",
		"shutdown: powering off",
	} {
		if !strings.Contains(r.console, want) {
			t.Errorf("console lacks %q:\n%s", want, r.console)
		}
	}
}

// TestRunLive: a live root whose squashfs is on loop0, backed by a file on
// the medium's mount. The medium cannot be unmounted before loop0 is
// detached, and loop0 only detaches (autoclear) once the squashfs is
// unmounted: the rounds must interleave.
func TestRunLive(t *testing.T) {
	m := newMachine()
	m.mount("/", "/oldroot", "overlay", "LiveOS_rootfs")
	m.mount("/oldroot", "/oldroot/run", "tmpfs", "tmpfs")
	m.mount("/oldroot/run", "/oldroot/run/initramfs/live", "iso9660", "/dev/sr0")
	m.mount("/oldroot/run", "/oldroot/run/rootfsbase", "squashfs", "/dev/loop0")
	m.devs = []BlockDev{{Kernel: "loop0", Kind: Loop, Name: "loop0", Backing: "/run/initramfs/live/LiveOS/squashfs.img"}}
	m.busy["/oldroot/run/initramfs/live"] = func() bool {
		for _, d := range m.devs {
			if d.Kernel == "loop0" {
				return true
			}
		}
		return false
	}
	r := runShutdown(t, m, "halt")
	if r.err != nil {
		t.Fatalf("Run = %v", r.err)
	}
	inOrder(t, m.calls, []string{"umount /oldroot/run/rootfsbase", "loop detach loop0", "umount /oldroot/run/initramfs/live", "umount /oldroot/run", "umount /oldroot", fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_HALT)})
	if !strings.Contains(r.console, "shutdown: detached loop device loop0 (/run/initramfs/live/LiveOS/squashfs.img)") {
		t.Errorf("console lacks the loop detach:\n%s", r.console)
	}
	if strings.Contains(r.console, "warning") {
		t.Errorf("console has warnings:\n%s", r.console)
	}
}

// TestRunRebootFails: kexec with no kernel loaded falls back to a reboot;
// when every reboot(2) fails, Run returns the error (the caller hangs).
func TestRunRebootFails(t *testing.T) {
	m := lvmOnLUKS()
	m.rebootErr[unix.LINUX_REBOOT_CMD_KEXEC] = unix.EINVAL
	r := runShutdown(t, m, "kexec")
	if r.err != nil {
		t.Fatalf("Run(kexec) = %v", r.err)
	}
	inOrder(t, m.calls, []string{fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_KEXEC), fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_RESTART)})
	if !strings.Contains(r.console, "rebooting into the loaded kernel (kexec) failed; trying rebooting instead") {
		t.Errorf("console does not explain the kexec fallback:\n%s", r.console)
	}

	m = lvmOnLUKS()
	m.rebootErr[unix.LINUX_REBOOT_CMD_POWER_OFF] = unix.EPERM
	m.rebootErr[unix.LINUX_REBOOT_CMD_HALT] = unix.EPERM
	r = runShutdown(t, m, "poweroff")
	if !errors.Is(r.err, unix.EPERM) {
		t.Errorf("Run with reboot(2) failing = %v, want EPERM", r.err)
	}
}

// TestRunUnknownVerb: an unknown verb is reported and reboots.
func TestRunUnknownVerb(t *testing.T) {
	m := lvmOnLUKS()
	r := runShutdown(t, m, "hibernate")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !strings.Contains(r.console, `warning: shutdown: unknown verb "hibernate"`) {
		t.Errorf("console lacks the unknown-verb warning:\n%s", r.console)
	}
	inOrder(t, m.calls, []string{"dm remove luks-7a8b", fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_RESTART)})
}

// TestRunNoMountTable: with no readable mount table the old root is still
// unmounted (blind), and the shutdown does not wait out the timeout.
func TestRunNoMountTable(t *testing.T) {
	m := lvmOnLUKS()
	sys := m.system()
	sys.MountInfo = func() ([]mountinfo.Mount, error) {
		return nil, errors.New("open /proc/self/mountinfo: no such file or directory")
	}
	var out bytes.Buffer
	log := slog.New(bootlog.New(&out, slog.LevelInfo, func() time.Duration { return time.Second }))
	s := &Shutdown{Sys: sys, Log: log, OldRoot: "/oldroot", Self: 1}
	if err := s.Run(context.Background(), []string{"/shutdown", "reboot"}); err != nil {
		t.Fatalf("Run = %v\n%s", err, out.String())
	}
	// /oldroot/run is a child of /oldroot: the blind unmount of /oldroot
	// fails (EBUSY) until the forced read-only remount and detach.
	inOrder(t, m.calls, []string{"remount-ro /oldroot", "detach /oldroot", "sync", fmt.Sprintf("reboot %#x", unix.LINUX_REBOOT_CMD_RESTART)})
	if !strings.Contains(out.String(), "cannot read the mount table; unmounting /oldroot blind") {
		t.Errorf("console lacks the mount-table warning:\n%s", out.String())
	}

	// Without the child mount the blind unmount succeeds at once.
	m = lvmOnLUKS()
	m.mounts = m.mounts[:1]
	sys = m.system()
	sys.MountInfo = func() ([]mountinfo.Mount, error) { return nil, errors.New("no /proc") }
	start := m.now
	s = &Shutdown{Sys: sys, Log: log, OldRoot: "/oldroot", Self: 1}
	if err := s.Run(context.Background(), []string{"/shutdown", "poweroff"}); err != nil {
		t.Fatalf("Run = %v", err)
	}
	inOrder(t, m.calls, []string{"umount /oldroot", "dm remove vgc-root", "sync"})
	if waited := m.now.Sub(start); waited >= DefaultUnmountTimeout {
		t.Errorf("the shutdown waited %s, want well under the unmount timeout", waited)
	}
}
