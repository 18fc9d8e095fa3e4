package stage0

import (
	"context"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/pkginitrd/pkginitrd/stage0/console"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/dm"
	"github.com/pkginitrd/pkginitrd/stage0/fsck"
	"github.com/pkginitrd/pkginitrd/stage0/live"
	"github.com/pkginitrd/pkginitrd/stage0/modload"
	"github.com/pkginitrd/pkginitrd/stage0/mount"
	"github.com/pkginitrd/pkginitrd/stage0/reaper"
	"github.com/pkginitrd/pkginitrd/stage0/shutdown"
	"github.com/pkginitrd/pkginitrd/stage0/switchroot"
	"github.com/pkginitrd/pkginitrd/stage0/uevent"
)

// LinuxSystem returns the System that acts on the running kernel, with
// sysfs at sysRoot and device nodes at devRoot. Commands (fsck, the shell)
// run through r so PID 1's zombie reaping does not steal their status.
func LinuxSystem(sysRoot, devRoot string, r *reaper.Reaper) System {
	return System{
		Mount:        func(m mount.Mount) error { return m.Mount() },
		IsMountPoint: mount.IsMountPoint,
		LoadModule:   modload.Kernel().LoadModule,
		Listen: func() (EventSource, error) {
			c, err := uevent.Listen()
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		Modaliases: func() ([]string, error) { return modload.Modaliases(sysRoot) },
		Scan:       func() ([]device.Device, error) { return device.Scan(sysRoot, devRoot) },
		Link:       func(devs []device.Device) error { return device.Link(devRoot, devs) },
		Fsck: func(ctx context.Context, argv []string) (fsck.Outcome, error) {
			var o fsck.Outcome
			// The checker's output goes to the console.
			err := r.Do(func() error {
				var err error
				o, err = fsck.Run(ctx, argv, os.Stderr)
				return err
			})
			return o, err
		},
		Shell: func(ctx context.Context, argv, env []string) error {
			cmd, tty, err := console.Command(ctx, console.TTY(sysRoot, devRoot), argv, env)
			if err != nil {
				return err
			}
			defer tty.Close()
			return r.Run(cmd)
		},
		ResolveInit: switchroot.ResolveInit,
		SwitchRoot:  switchroot.Switch,
		StorageStack: func() ([]string, error) {
			devs, err := shutdown.ReadDevices(sysRoot)
			var names []string
			for _, d := range devs {
				names = append(names, d.Kernel)
			}
			return names, err
		},
		// The running binary, whatever rdinit= named it.
		InstallShutdown: func(dir string) error { return shutdown.Install(dir, "/proc/self/exe") },
		Reboot: func(cmd int) error {
			unix.Sync()
			return unix.Reboot(cmd)
		},
		Exists: func(p string) bool {
			_, err := os.Stat(p)
			return err == nil
		},
		Environ: os.Environ,
		After:   time.After,
		Live:    live.LinuxSystem(devRoot),
		DM:      dm.LinuxSystem(sysRoot, devRoot, func() string { return console.TTY(sysRoot, devRoot) }, r.Do),
	}
}

var _ EventSource = (*uevent.Conn)(nil)
