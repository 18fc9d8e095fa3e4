package stage0

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/bootlog"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/fsck"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
	"github.com/pkginitrd/pkginitrd/stage0/modload"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
	"github.com/pkginitrd/pkginitrd/stage0/switchroot"
	"github.com/pkginitrd/pkginitrd/stage0/uevent"
)

const rootUUID = "3a1f5f0e-7a0e-4f0b-9d55-0a6c6c1f2b11"

func rootDev(typ string) device.Device {
	usage := blkid.UsageFilesystem
	if typ == "crypto_LUKS" {
		usage = blkid.UsageCrypto
	}
	return device.Device{Name: "vda2", Node: "/dev/vda2", Major: 254, Minor: 2, Size: 1 << 30, Partition: 2, Parent: "vda",
		Info: &blkid.Info{Type: typ, Usage: usage, UUID: rootUUID, Label: "root"},
		Part: &blkid.Partition{Number: 2, UUID: "6e2c3a1e-1111-4a2b-8c3d-0123456789ab", Name: "root fs"}}
}

// fakeSys records the boot's side effects. Hooks let a test change the
// world (a disk appears, the user mounts the root) at the right moment.
type fakeSys struct {
	mu       sync.Mutex
	calls    []string
	devs     []device.Device
	mounted  bool // /sysroot
	events   chan *uevent.Event
	switched *switchroot.Options
	reboots  []int
	fsck     fsck.Outcome
	expire   bool              // the root wait times out at once
	stack    []string          // device-mapper and loop devices (Devices)
	files    map[string]string // ReadFile
	written  map[string]string // WriteFile
	logFile  bytes.Buffer      // Append

	onScan  func(n int) // called after the n-th Scan (1-based)
	onShell func(n int) // called during the n-th shell
	scans   int
	shells  int
}

func (f *fakeSys) record(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
}

func (f *fakeSys) Read() (*uevent.Event, error) {
	e, ok := <-f.events
	if !ok {
		return nil, errors.New("closed")
	}
	return e, nil
}

func (f *fakeSys) Close() error {
	f.record("close events")
	return nil
}

func (f *fakeSys) addRoot(d device.Device) {
	f.mu.Lock()
	f.devs = append(f.devs, d)
	f.mu.Unlock()
	f.events <- &uevent.Event{Action: "add", DevPath: "/devices/virtio1/block/vda/" + d.Name, Subsystem: "block", Env: map[string]string{}}
}

func (f *fakeSys) system() machine.Machine {
	return machine.Machine{
		Mount: func(m mount.Mount) error {
			f.record("mount %s", m)
			if m.Target == newRoot {
				f.mu.Lock()
				f.mounted = true
				f.mu.Unlock()
			}
			return nil
		},
		Unmount: func(target string, flags int) error {
			f.record("umount %s", target)
			f.mu.Lock()
			defer f.mu.Unlock()
			if target == newRoot {
				f.mounted = false
			}
			return nil
		},
		IsMountPoint: func(dir string) (bool, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			return dir == newRoot && f.mounted, nil
		},
		LoadModule: func(path, params string) error {
			f.record("load %s %s", kmod.NameFromPath(path), params)
			return nil
		},
		Listen: func() (machine.EventSource, error) {
			f.record("listen")
			return f, nil
		},
		Modaliases: func() ([]string, error) {
			return []string{"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", "virtio:d00000002v00001AF4"}, nil
		},
		Scan: func() ([]device.Device, error) {
			f.mu.Lock()
			f.scans++
			n := f.scans
			devs := append([]device.Device(nil), f.devs...)
			hook := f.onScan
			f.mu.Unlock()
			if hook != nil {
				hook(n)
			}
			return devs, nil
		},
		Link: func(devs []device.Device) error { return nil },
		Fsck: func(ctx context.Context, argv []string) (fsck.Outcome, error) {
			f.record("fsck %s", strings.Join(argv, " "))
			if f.fsck != fsck.OK {
				return f.fsck, errors.New("exit status 4")
			}
			return fsck.OK, nil
		},
		Shell: func(ctx context.Context, argv, env []string) error {
			f.mu.Lock()
			f.shells++
			n := f.shells
			f.mu.Unlock()
			f.record("shell %s", strings.Join(argv, " "))
			if f.onShell != nil {
				f.onShell(n)
			}
			return nil
		},
		ResolveInit: func(root string, candidates ...string) (string, error) {
			for _, c := range candidates {
				switch c {
				case "/sbin/init":
					return "/usr/lib/systemd/systemd", nil
				case "/bin/sh", "/usr/bin/bash":
					return c, nil
				}
			}
			return "", fmt.Errorf("no init in %s", root)
		},
		SwitchRoot: func(o switchroot.Options) error {
			f.record("switch_root %s %s %s", o.NewRoot, o.Init, strings.Join(o.Argv, " "))
			f.mu.Lock()
			f.switched = &o
			f.mu.Unlock()
			return nil
		},
		Devices: func() ([]machine.BlockDev, error) {
			f.mu.Lock()
			defer f.mu.Unlock()
			var devs []machine.BlockDev
			for _, k := range f.stack {
				devs = append(devs, machine.BlockDev{Kernel: k})
			}
			return devs, nil
		},
		InstallShutdown: func(dir string) error {
			f.record("install shutdown %s", dir)
			return nil
		},
		Sync: func() {},
		Reboot: func(cmd int) error {
			f.record("reboot %#x", cmd)
			f.reboots = append(f.reboots, cmd)
			return nil
		},
		Exists: func(p string) bool {
			return p == "/usr/bin/busybox" || p == "/usr/sbin/fsck.ext4"
		},
		ReadFile: func(p string) ([]byte, error) {
			if s, ok := f.files[p]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		},
		WriteFile: func(p string, data []byte) error {
			f.record("write %s", p)
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.written == nil {
				f.written = map[string]string{}
			}
			f.written[p] = string(data)
			return nil
		},
		Mappings: func() ([]machine.Mapping, error) { return nil, nil },
		Say:      func(line string) { f.record("say %s", line) },
		Uname:    func() (string, error) { return "6.1.0-56-amd64", nil },
		Append: func(p string) (io.Writer, error) {
			f.record("append %s", p)
			return &syncWriter{w: &f.logFile}, nil
		},
		Environ: func() []string { return []string{"HOME=/", "TERM=linux"} },
		After: func(d time.Duration) <-chan time.Time {
			c := make(chan time.Time, 1)
			if f.expire && d != 10*time.Second {
				c <- time.Time{}
			}
			return c
		},
	}
}

func testIndex() *kmod.Index {
	dep := func(p string, deps ...string) kmod.Dep { return kmod.Dep{Path: p, Deps: deps} }
	return kmod.NewIndex(kmod.IndexFiles{
		Dep: []kmod.Dep{
			dep("kernel/drivers/virtio/virtio_pci.ko", "kernel/drivers/virtio/virtio.ko"),
			dep("kernel/drivers/virtio/virtio.ko"),
			dep("kernel/drivers/block/virtio_blk.ko", "kernel/drivers/virtio/virtio.ko"),
			dep("kernel/fs/ext4/ext4.ko", "kernel/fs/jbd2/jbd2.ko"),
			dep("kernel/fs/jbd2/jbd2.ko"),
			dep("kernel/drivers/md/dm-crypt.ko"),
		},
		Alias: []kmod.Alias{
			{Pattern: "pci:v00001AF4d*sv*sd*bc*sc*i*", Module: "virtio_pci"},
			{Pattern: "virtio:d00000002v*", Module: "virtio_blk"},
			{Pattern: "fs-ext4", Module: "ext4"},
		},
	})
}

type result struct {
	err     error
	console string
	file    string
}

// runBoot runs the plan for a command line and config on f.
func runBoot(t *testing.T, f *fakeSys, line string, conf *bootconf.Config) result {
	t.Helper()
	return runBootWith(t, f, line, conf, nil)
}

// runBootWith is runBoot with edit applied to the fake Machine first (more
// fakes, more tools in the image).
func runBootWith(t *testing.T, f *fakeSys, line string, conf *bootconf.Config, edit func(*machine.Machine)) result {
	t.Helper()
	if f.events == nil {
		f.events = make(chan *uevent.Event, 16)
	}
	if conf == nil {
		conf = &bootconf.Config{Fsck: map[string]string{"ext4": "/usr/sbin/fsck.ext4"}}
	}
	var console, file bytes.Buffer
	level := new(slog.LevelVar)
	h := bootlog.New(&syncWriter{w: &console}, level, func() time.Duration { return time.Second })
	if err := h.SetFile(&syncWriter{w: &file}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(h)
	cmd := cmdline.Parse(line)
	if cmd.Quiet {
		level.Set(slog.LevelWarn)
	}
	set, err := settings(cmd, conf)
	if err != nil {
		t.Fatalf("settings(%q) = %v", line, err)
	}
	sys := f.system()
	if edit != nil {
		edit(&sys)
	}
	loader := modload.New(modload.Config{Index: testIndex(), Dir: "/usr/lib/modules/6.1.0-56-amd64",
		Sys: sys, Log: log, Params: cmd.ModuleOptions, Blacklisted: cmd.Blacklisted})
	b := newBoot(sys, log, h.Report, cmd, conf, set, loader)
	steps, retry := plan(set, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = b.run(ctx, steps, retry)
	if ctx.Err() != nil {
		t.Fatalf("boot did not finish: %v\nconsole:\n%s", ctx.Err(), console.String())
	}
	return result{err: err, console: console.String(), file: file.String()}
}

type syncWriter struct {
	mu sync.Mutex
	w  *bytes.Buffer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

func (f *fakeSys) callsMatching(prefix string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeSys) indexOf(prefix string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, c := range f.calls {
		if strings.HasPrefix(c, prefix) {
			return i
		}
	}
	return -1
}

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		line string
		conf bootconf.Config
		want []string
	}{
		{"root=UUID=" + rootUUID + " ro quiet", bootconf.Config{}, []string{
			"listen for device events (hotplug)",
			"coldplug: load modules for the devices present",
			"wait up to 30s for the root device UUID=" + rootUUID,
			"check the root filesystem if its checker is in the image (fsck.mode=auto)",
			"mount root UUID=" + rootUUID + " on /sysroot (type probed, ro)",
			"read the root's /etc/fstab: root options, mount /usr and x-initrd.mount entries (rd.fstab=0 skips)",
			"switch_root to /sysroot and exec /sbin/init",
		}},
		{"root=/dev/vda1 rd.fstab=0 rd.fstab", bootconf.Config{}, []string{
			"listen for device events (hotplug)",
			"coldplug: load modules for the devices present",
			"wait up to 30s for the root device /dev/vda1",
			"check the root filesystem if its checker is in the image (fsck.mode=auto)",
			"mount root /dev/vda1 on /sysroot (type probed, ro)",
			"read the root's /etc/fstab: root options, mount /usr and x-initrd.mount entries (rd.fstab=0 skips)",
			"switch_root to /sysroot and exec /sbin/init",
		}},
		{"root=/dev/vda1 rd.fstab=0", bootconf.Config{}, []string{
			"listen for device events (hotplug)",
			"coldplug: load modules for the devices present",
			"wait up to 30s for the root device /dev/vda1",
			"check the root filesystem if its checker is in the image (fsck.mode=auto)",
			"mount root /dev/vda1 on /sysroot (type probed, ro)",
			"switch_root to /sysroot and exec /sbin/init",
		}},
		{"root=/dev/vda1 mount.usr=/dev/mapper/usr_crypt mount.usrflags=nodev", bootconf.Config{}, []string{
			"listen for device events (hotplug)",
			"coldplug: load modules for the devices present",
			"wait up to 30s for the root device /dev/vda1",
			"check the root filesystem if its checker is in the image (fsck.mode=auto)",
			"mount root /dev/vda1 on /sysroot (type probed, ro)",
			"read the root's /etc/fstab: root options, mount /usr from /dev/mapper/usr_crypt (mount.usr=, type auto, flags nodev) and x-initrd.mount entries (rd.fstab=0 skips the fstab)",
			"switch_root to /sysroot and exec /sbin/init",
		}},
		{"root=/dev/vda1 rd.fstab=0 mount.usr=LABEL=usr mount.usrfstype=xfs", bootconf.Config{}, []string{
			"listen for device events (hotplug)",
			"coldplug: load modules for the devices present",
			"wait up to 30s for the root device /dev/vda1",
			"check the root filesystem if its checker is in the image (fsck.mode=auto)",
			"mount root /dev/vda1 on /sysroot (type probed, ro)",
			"mount /usr from LABEL=usr (mount.usr=, type xfs)",
			"switch_root to /sysroot and exec /sbin/init",
		}},
		{`root=PARTLABEL=root rootfstype=btrfs rootflags=subvol=@,noatime rw rd.timeout=0 rd.modules-load=dm-crypt,virtio_blk fsck.mode=skip rd.break init=/bin/sh -x`,
			bootconf.Config{ForceLoad: []string{"virtio-blk", "ext4"}}, []string{
				"listen for device events (hotplug)",
				"load modules dm_crypt virtio_blk ext4 (rd.modules-load=, force_load)",
				"coldplug: load modules for the devices present",
				"wait forever for the root device PARTLABEL=root",
				"mount root PARTLABEL=root on /sysroot (type btrfs, rw, rootflags=subvol=@,noatime)",
				"read the root's /etc/fstab: root options, mount /usr and x-initrd.mount entries (rd.fstab=0 skips)",
				"rd.break=pre-pivot: shell",
				"switch_root to /sysroot and exec /bin/sh -x",
			}},
		// No root= on the command line: the host-only image's own root.
		{"rd.break=pre-mount single", bootconf.Config{Root: bootconf.Root{Device: "LABEL=host", FSType: "xfs", Flags: "rw"}}, []string{
			"listen for device events (hotplug)",
			"coldplug: load modules for the devices present",
			"wait up to 30s for the root device LABEL=host",
			"rd.break=pre-mount: shell",
			"check the root filesystem if its checker is in the image (fsck.mode=auto)",
			"mount root LABEL=host on /sysroot (type xfs, rw, rootflags=rw)",
			"read the root's /etc/fstab: root options, mount /usr and x-initrd.mount entries (rd.fstab=0 skips)",
			"switch_root to /sysroot and exec /sbin/init single",
		}},
	} {
		c := cmdline.Parse(tc.line)
		s, err := settings(c, &tc.conf)
		if err != nil {
			t.Fatalf("settings(%q) = %v", tc.line, err)
		}
		steps, retry := plan(s, c)
		var got []string
		for _, st := range steps {
			got = append(got, st.String())
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("plan(%q) =\n  %s\nwant\n  %s", tc.line, strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
		}
		if retry != 0 {
			t.Errorf("plan(%q) retries from %d, want 0 (the hotplug step)", tc.line, retry)
		}
	}
	if got := earlyMounts()[3].String(); got != "mount tmpfs on /run type tmpfs (nosuid,nodev,strictatime,mode=0755)" {
		t.Errorf("early /run mount = %q", got)
	}
}

func TestBootHappyPath(t *testing.T) {
	f := &fakeSys{devs: []device.Device{rootDev("ext4")}}
	r := runBoot(t, f, "console=ttyS0 root=UUID="+rootUUID+" rootflags=noatime,errors=remount-ro virtio_blk.queue_depth=64 quiet", nil)
	if r.err != nil {
		t.Fatalf("boot = %v\n%s", r.err, r.file)
	}
	if f.switched == nil || f.switched.Init != "/usr/lib/systemd/systemd" || len(f.switched.Argv) != 0 ||
		!reflect.DeepEqual(f.switched.Keep, []string{"/init", "/etc/pkginitrd/initrd.toml"}) {
		t.Fatalf("switch_root options = %+v", f.switched)
	}
	for _, want := range []string{
		"load virtio_blk queue_depth=64",
		"fsck /usr/sbin/fsck.ext4 -a /dev/vda2",
		"mount /dev/vda2 on /sysroot type ext4 (ro,noatime,errors=remount-ro)",
		"load ext4 ",
	} {
		if f.indexOf(want) < 0 {
			t.Errorf("no %q in calls %q", want, f.calls)
		}
	}
	// Order: listen before coldplug loads, fsck before mount, events closed before the switch.
	order := []string{"listen", "load virtio_pci", "fsck", "load ext4", "mount /dev/vda2", "close events", "switch_root"}
	for i := 1; i < len(order); i++ {
		if a, b := f.indexOf(order[i-1]), f.indexOf(order[i]); a < 0 || b < 0 || a > b {
			t.Errorf("%q (at %d) should come before %q (at %d): %q", order[i-1], a, order[i], b, f.calls)
		}
	}
	if r.console != "" {
		t.Errorf("quiet boot printed to the console:\n%s", r.console)
	}
	if !strings.Contains(r.file, "found root device root=UUID="+rootUUID) {
		t.Errorf("log file lacks the found root:\n%s", r.file)
	}
	if a, b := f.indexOf("fsck"), f.indexOf("write /run/initramfs/fsck-root"); b < 0 || a > b {
		t.Errorf("no /run/initramfs/fsck-root flag after the check (systemd-fsck-root would check again): %q", f.calls)
	}
}

// TestBootRootAppearsLater: the root shows up after the first scan, with a
// block uevent; the wait must wake on it (no sleeps, no timeout).
func TestBootRootAppearsLater(t *testing.T) {
	f := &fakeSys{}
	f.onScan = func(n int) {
		if n == 1 {
			go f.addRoot(rootDev("ext4"))
		}
	}
	r := runBoot(t, f, "root=PARTUUID=6E2C3A1E-1111-4A2B-8C3D-0123456789AB rd.timeout=0", nil)
	if r.err != nil || f.switched == nil {
		t.Fatalf("boot = %v, switched %v\n%s", r.err, f.switched, r.file)
	}
	if len(f.callsMatching("shell")) != 0 {
		t.Errorf("shell started: %q", f.calls)
	}
}

// TestBootTimeoutShellRetry: the root never comes; the report and the
// shell follow; the user "plugs the disk in" from the shell, and the boot
// retries and succeeds.
func TestBootTimeoutShellRetry(t *testing.T) {
	f := &fakeSys{expire: true, devs: []device.Device{{Name: "sda", Node: "/dev/sda", Major: 8, Size: 8 << 30,
		Table: &blkid.Table{Type: "gpt", UUID: "11223344-5566-4778-899a-abbccddeeff0"}}}}
	f.onShell = func(n int) {
		f.mu.Lock()
		f.expire = false
		f.mu.Unlock()
		go f.addRoot(rootDev("ext4"))
	}
	r := runBoot(t, f, "root=LABEL=root rd.timeout=5 quiet", nil)
	if r.err != nil || f.switched == nil {
		t.Fatalf("boot = %v, switched %v\n%s", r.err, f.switched, r.console)
	}
	if n := len(f.callsMatching("shell /usr/bin/busybox sh")); n != 1 {
		t.Errorf("shell ran %d times, want 1: %q", n, f.calls)
	}
	for _, want := range []string{
		"pkginitrd: failed step: wait up to 5s for the root device LABEL=root",
		"pkginitrd: boot failed: timed out waiting for the root device LABEL=root after 5s",
		"pkginitrd: root wanted: LABEL=root (rootfstype=auto",
		"pkginitrd: block devices seen:",
		"pkginitrd:   sda (8:0, 8.0 GiB) PTTYPE=gpt PTUUID=11223344-5566-4778-899a-abbccddeeff0",
		"pkginitrd: modules loaded: virtio virtio_blk virtio_pci",
		"pkginitrd: things to try:",
		"rd.timeout= (now 5s)",
		"pkginitrd: starting emergency shell (exit it to retry the boot)",
	} {
		if !strings.Contains(r.console, want) {
			t.Errorf("console lacks %q (even with quiet):\n%s", want, r.console)
		}
	}
	if !strings.Contains(r.file, "retrying the boot") {
		t.Errorf("log lacks the retry:\n%s", r.file)
	}
}

func TestBootNoShell(t *testing.T) {
	for _, tc := range []struct {
		line string
		want int
	}{
		{"root=LABEL=none rd.shell=0", unix.LINUX_REBOOT_CMD_HALT},
		{"root=LABEL=none rd.shell=0 rd.emergency=poweroff", unix.LINUX_REBOOT_CMD_POWER_OFF},
		{"root=LABEL=none rd.emergency=reboot", -1}, // a shell exists: rd.emergency is not used
	} {
		f := &fakeSys{expire: true}
		if tc.want == -1 {
			f.onShell = func(int) { f.mu.Lock(); f.expire = false; f.mounted = true; f.mu.Unlock() }
		}
		r := runBoot(t, f, tc.line, nil)
		if tc.want == -1 {
			if r.err != nil || len(f.reboots) != 0 || f.switched == nil {
				t.Errorf("%s: boot = %v, reboots %v, switched %v", tc.line, r.err, f.reboots, f.switched)
			}
			continue
		}
		if r.err == nil || !errors.Is(r.err, ErrRootTimeout) || !reflect.DeepEqual(f.reboots, []int{tc.want}) {
			t.Errorf("%s: boot = %v, reboots %#x; want ErrRootTimeout and reboot(%#x)", tc.line, r.err, f.reboots, tc.want)
		}
		if len(f.callsMatching("shell")) != 0 {
			t.Errorf("%s: shell started", tc.line)
		}
	}
}

// TestBootMountedByHand: after the timeout the user mounts the root on
// /sysroot in the shell; the retry uses it without waiting or mounting.
func TestBootMountedByHand(t *testing.T) {
	f := &fakeSys{expire: true}
	f.onShell = func(int) { f.mu.Lock(); f.mounted = true; f.mu.Unlock() }
	r := runBoot(t, f, "root=/dev/sdz1", nil)
	if r.err != nil || f.switched == nil {
		t.Fatalf("boot = %v, switched %v\n%s", r.err, f.switched, r.file)
	}
	if m := f.callsMatching("mount"); len(m) != 0 {
		t.Errorf("mounted again: %q", m)
	}
	if fs := f.callsMatching("fsck"); len(fs) != 0 {
		t.Errorf("fsck on a mounted root: %q", fs)
	}
}

func TestBootContainerRoot(t *testing.T) {
	f := &fakeSys{devs: []device.Device{rootDev("crypto_LUKS")}}
	f.onShell = func(int) { f.mu.Lock(); f.mounted = true; f.mu.Unlock() }
	r := runBoot(t, f, "root=UUID="+rootUUID, nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !strings.Contains(r.console, "is a LUKS container: unlocking it needs the luks feature (rd.luks.uuid="+rootUUID+")") {
		t.Errorf("console lacks the LUKS explanation:\n%s", r.console)
	}
}

func TestBootFsck(t *testing.T) {
	f := &fakeSys{devs: []device.Device{rootDev("ext4")}, fsck: fsck.Reboot}
	// The fake reboot returns; the shell after it ends the loop.
	f.onShell = func(int) { f.mu.Lock(); f.mounted = true; f.mu.Unlock() }
	runBoot(t, f, "root=UUID="+rootUUID+" fsck.mode=force fsck.repair=yes", nil)
	if f.indexOf("fsck /usr/sbin/fsck.ext4 -y -f /dev/vda2") < 0 || len(f.reboots) == 0 || f.reboots[0] != unix.LINUX_REBOOT_CMD_RESTART {
		t.Errorf("fsck asking for a reboot: calls %q, reboots %#x", f.calls, f.reboots)
	}

	f = &fakeSys{devs: []device.Device{rootDev("ext4")}, fsck: fsck.Failed}
	f.onShell = func(int) { f.mu.Lock(); f.mounted = true; f.mu.Unlock() }
	r := runBoot(t, f, "root=UUID="+rootUUID, nil)
	if r.err != nil || !strings.Contains(r.console, "fsck found errors it could not fix") || len(f.callsMatching("shell")) != 1 {
		t.Errorf("failed fsck: err %v, calls %q\n%s", r.err, f.calls, r.console)
	}
	if w := f.callsMatching("write /run/initramfs/fsck-root"); len(w) != 0 {
		t.Errorf("failed fsck left the fsck-root flag: %q", w)
	}

	f = &fakeSys{devs: []device.Device{rootDev("xfs")}}
	runBoot(t, f, "root=UUID="+rootUUID, nil)
	if c := f.callsMatching("fsck"); len(c) != 0 {
		t.Errorf("fsck without a checker for xfs: %q", c)
	}
	if w := f.callsMatching("write /run/initramfs/fsck-root"); len(w) != 0 {
		t.Errorf("unchecked xfs root left the fsck-root flag: %q", w)
	}
}

func TestBootBreak(t *testing.T) {
	f := &fakeSys{devs: []device.Device{rootDev("ext4")}}
	r := runBoot(t, f, "root=UUID="+rootUUID+" rd.break=pre-mount rd.break init=/bin/sh -c true", nil)
	if r.err != nil {
		t.Fatal(r.err)
	}
	shells := f.callsMatching("shell")
	first, mnt, sw := f.indexOf("shell"), f.indexOf("mount /dev/vda2"), f.indexOf("switch_root")
	if len(shells) != 2 || first > mnt || f.indexOf("switch_root") < 0 {
		t.Fatalf("calls %q: want a shell before the mount and one before switch_root", f.calls)
	}
	f.mu.Lock()
	second := -1
	for i := first + 1; i < len(f.calls); i++ {
		if strings.HasPrefix(f.calls[i], "shell") {
			second = i
		}
	}
	f.mu.Unlock()
	if !(mnt < second && second < sw) {
		t.Errorf("second shell at %d, want between mount (%d) and switch_root (%d)", second, mnt, sw)
	}
	if f.switched.Init != "/bin/sh" || !reflect.DeepEqual(f.switched.Argv, []string{"-c", "true"}) {
		t.Errorf("switched to %s %q, want /bin/sh [-c true]", f.switched.Init, f.switched.Argv)
	}
	if !strings.Contains(r.console, "rd.break=pre-pivot: starting a shell before switch_root") {
		t.Errorf("console lacks the rd.break banner:\n%s", r.console)
	}
}

func TestBootNoRoot(t *testing.T) {
	f := &fakeSys{}
	f.onShell = func(int) { f.mu.Lock(); f.mounted = true; f.mu.Unlock() }
	r := runBoot(t, f, "quiet", &bootconf.Config{})
	if !strings.Contains(r.console, "no root device: root= is not on the kernel command line") {
		t.Errorf("console lacks the missing-root explanation:\n%s", r.console)
	}
	f = &fakeSys{expire: true}
	f.onShell = func(int) { f.mu.Lock(); f.mounted = true; f.mu.Unlock() }
	r = runBoot(t, f, "root=live:CDLABEL=Debian", &bootconf.Config{})
	if !strings.Contains(r.console, "timed out waiting for the root device live:CDLABEL=Debian") {
		t.Errorf("console lacks the missing live medium:\n%s", r.console)
	}
}

func TestSettings(t *testing.T) {
	conf := &bootconf.Config{Root: bootconf.Root{Device: "UUID=host", FSType: "ext4", Flags: "noatime"}, ForceLoad: []string{"dm-crypt"}}
	for _, tc := range []struct {
		line                string
		root, fstype, flags string
		force               []string
	}{
		{"", "UUID=host", "ext4", "noatime", []string{"dm_crypt"}},
		{"rootflags=discard", "UUID=host", "ext4", "discard", []string{"dm_crypt"}},
		{"root=LABEL=other", "LABEL=other", "", "", []string{"dm_crypt"}},
		{"root=LABEL=other rootfstype=auto rd.modules-load=dm_crypt,xfs", "LABEL=other", "", "", []string{"dm_crypt", "xfs"}},
	} {
		s, err := settings(cmdline.Parse(tc.line), conf)
		if err != nil || s.Root.String() != tc.root || s.RootFSType != tc.fstype || s.RootFlags != tc.flags || !reflect.DeepEqual(s.ForceLoad, tc.force) {
			t.Errorf("settings(%q) = root %s type %q flags %q force %q, %v; want %s %q %q %q", tc.line, s.Root, s.RootFSType, s.RootFlags, s.ForceLoad, err, tc.root, tc.fstype, tc.flags, tc.force)
		}
	}
}
