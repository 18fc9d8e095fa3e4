package stage0

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
	"github.com/pkginitrd/pkginitrd/stage0/console"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/dm"
	"github.com/pkginitrd/pkginitrd/stage0/font"
	"github.com/pkginitrd/pkginitrd/stage0/fsck"
	"github.com/pkginitrd/pkginitrd/stage0/keymap"
	"github.com/pkginitrd/pkginitrd/stage0/live"
	"github.com/pkginitrd/pkginitrd/stage0/loop"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
	"github.com/pkginitrd/pkginitrd/stage0/modload"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
	"github.com/pkginitrd/pkginitrd/stage0/reaper"
	"github.com/pkginitrd/pkginitrd/stage0/shutdown"
	"github.com/pkginitrd/pkginitrd/stage0/switchroot"
	"github.com/pkginitrd/pkginitrd/stage0/uevent"
)

// LinuxMachine returns the Machine that acts on the running kernel, with
// procfs, sysfs and device nodes at their usual places. It is made here,
// where every sub-package is in reach, because the real listings (sysfs,
// procfs) live in the packages that use the Machine. Commands run through
// r so PID 1's zombie reaping does not steal their status.
func LinuxMachine(r *reaper.Reaper) machine.Machine {
	tty := func() string { return console.TTY(sysRoot, devRoot) } // /sys may be mounted later
	m := machine.Machine{
		ReadFile: os.ReadFile,
		Exists: func(p string) bool {
			_, err := os.Stat(p)
			return err == nil
		},
		MkdirAll: func(dir string) error { return os.MkdirAll(dir, 0o755) },
		WriteFile: func(p string, data []byte) error {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			return os.WriteFile(p, data, 0o644)
		},
		Append: func(p string) (io.Writer, error) {
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return nil, err
			}
			// The file stays open until exec (O_CLOEXEC closes it then).
			return os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		},
		Mount: func(m mount.Mount) error { return m.Mount() },
		Unmount: func(target string, flags int) error {
			if err := unix.Unmount(target, flags); err != nil {
				return &os.PathError{Op: "umount", Path: target, Err: err}
			}
			return nil
		},
		RemountReadOnly: func(target string) error {
			if err := unix.Mount("", target, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
				return &os.PathError{Op: "remount read-only", Path: target, Err: err}
			}
			return nil
		},
		IsMountPoint: mount.IsMountPoint,
		MountInfo:    readMountInfo,
		Uname: func() (string, error) {
			var u unix.Utsname
			if err := unix.Uname(&u); err != nil {
				return "", fmt.Errorf("uname: %w", err)
			}
			return unix.ByteSliceToString(u.Release[:]), nil
		},
		FinitModule: unix.FinitModule,
		InitModule:  unix.InitModule,
		Sync:        unix.Sync,
		Reboot:      unix.Reboot,
		Run:         commandRunner(r),
		Fsck:        fsckRunner(r),
		Shell:       shellRunner(r, tty),
		Environ:     os.Environ,
		Processes:   func() ([]machine.Process, error) { return shutdown.ReadProcesses("/proc") },
		Kill:        unix.Kill,
		Reap:        func() { reaper.ReapAll() },
		Ask:         func(_ context.Context, prompt string) ([]byte, error) { return console.Ask(tty(), prompt) },
		LoadKeymap:  func(m *keymap.Map) error { return keymap.Load(devRoot+"/tty0", m) },
		LoadFont:    func(f *font.Font) error { return font.Load(devRoot+"/tty0", f) },
		Say:         func(line string) { console.Say(tty(), line) },
		Listen: func() (machine.EventSource, error) {
			c, err := uevent.Listen()
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		Modaliases: func() ([]string, error) { return modload.Modaliases(sysRoot) },
		Scan:       func() ([]device.Device, error) { return device.Scan(sysRoot, devRoot) },
		Link:       func(devs []device.Device) error { return device.Link(devRoot, devs) },
		Probe: func(p string) (*blkid.Info, error) {
			f, err := os.Open(p)
			if err != nil {
				return nil, err
			}
			defer f.Close()
			return blkid.Probe(f)
		},
		Attach: func(file string, blockSize uint32) (string, io.Closer, error) {
			d, err := loop.Attach(devRoot, file, loop.Options{ReadOnly: true, AutoClear: true, BlockSize: blockSize})
			if err != nil {
				return "", nil, err
			}
			return d.Path, d, nil
		},
		DetachLoop:      func(kernel string) error { return loop.Detach(filepath.Join(devRoot, kernel)) },
		Devices:         func() ([]machine.BlockDev, error) { return shutdown.ReadDevices(sysRoot) },
		Mappings:        func() ([]machine.Mapping, error) { return dm.Mappings(sysRoot) },
		LinkMappings:    func(maps []machine.Mapping) error { return dm.Link(devRoot, maps) },
		RemoveDM:        func(name string) error { return shutdown.RemoveDM(sysRoot, devRoot, name) },
		RenameDM:        func(old, name string) error { return shutdown.RenameDM(sysRoot, devRoot, old, name) },
		ReadDeviceFile:  dm.ReadDeviceFile,
		CopyVerified:    live.CopyVerified,
		ResolveInit:     switchroot.ResolveInit,
		SwitchRoot:      switchroot.Switch,
		InstallShutdown: func(dir string) error { return shutdown.Install(dir, "/proc/self/exe") }, // whatever rdinit= named it
		After:           time.After,
		Sleep:           time.Sleep,
		Now:             time.Now,
	}
	m.LoadModule = modload.NewFileLoader(m, sysRoot).Load
	return m
}

func readMountInfo() ([]mountinfo.Mount, error) {
	const p = "/proc/self/mountinfo"
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ms, err := mountinfo.Parse(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return ms, nil
}

// commandRunner runs a command through r with its output captured; a
// non-zero exit is a status, not an error.
func commandRunner(r *reaper.Reaper) func(ctx context.Context, argv, env []string, stdin []byte) ([]byte, int, error) {
	return func(ctx context.Context, argv, env []string, stdin []byte) ([]byte, int, error) {
		var out bytes.Buffer
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), env...)
		cmd.Stdin = bytes.NewReader(stdin)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := r.Run(cmd)
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return out.Bytes(), exit.ExitCode(), nil
		}
		return out.Bytes(), 0, err
	}
}

// fsckRunner runs a filesystem checker through r, its output on the console.
func fsckRunner(r *reaper.Reaper) func(ctx context.Context, argv []string) (fsck.Outcome, error) {
	return func(ctx context.Context, argv []string) (o fsck.Outcome, err error) {
		err = r.Do(func() error {
			o, err = fsck.Run(ctx, argv, os.Stderr)
			return err
		})
		return o, err
	}
}

// shellRunner runs an interactive shell on the console tty() names.
func shellRunner(r *reaper.Reaper, tty func() string) func(ctx context.Context, argv, env []string) error {
	return func(ctx context.Context, argv, env []string) error {
		cmd, f, err := console.Command(ctx, tty(), argv, env)
		if err != nil {
			return err
		}
		defer f.Close()
		return r.Run(cmd)
	}
}
