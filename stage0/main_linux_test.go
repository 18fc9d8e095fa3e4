package stage0

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/bootlog"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/uevent"
)

// TestBootMain runs the whole boot after the PID check on the fake
// machine: the command line, the image config and the kernel release come
// through it, and so does the log file.
func TestBootMain(t *testing.T) {
	const conf = `version = 1
kernel_version = "6.1.0-56-amd64"
modules_dir = "/nonexistent/usr/lib/modules/6.1.0-56-amd64"
fsck = { ext4 = "/usr/sbin/fsck.ext4" }
`
	for _, tc := range []struct {
		name, cmdline string
		root          bool // the root device is there from the start
		late          bool // it appears while the emergency shell runs
		wantErr       string
		want          []string // calls, in this order
		wantLog       string   // in the log file
	}{
		{"boot", "root=UUID=" + rootUUID + " quiet", true, false, "",
			[]string{"mount proc on /proc", "mount tmpfs on /run", "append " + logPath, "fsck /usr/sbin/fsck.ext4 -a /dev/vda2",
				"mount /dev/vda2 on /sysroot", "switch_root /sysroot /usr/lib/systemd/systemd"},
			"found root device root=UUID=" + rootUUID},
		{"root missing, emergency shell, retry", "root=UUID=" + rootUUID + " rd.timeout=1", false, true, "",
			[]string{"mount proc on /proc", "shell /usr/bin/busybox sh", "mount /dev/vda2 on /sysroot", "switch_root /sysroot"},
			"timed out waiting for the root device"},
		{"no root anywhere, no shell", "rd.shell=0", false, false, "no root device",
			[]string{"mount proc on /proc", "append " + logPath, "reboot 0xcdef0123"},
			"root= is not on the kernel command line"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{events: make(chan *uevent.Event, 16), expire: !tc.root,
				files: map[string]string{"/proc/cmdline": tc.cmdline + "\n", "/" + bootconf.Path: conf}}
			if tc.root {
				f.devs = []device.Device{rootDev("ext4")}
			}
			if tc.late {
				f.onShell = func(int) {
					f.mu.Lock()
					f.devs = []device.Device{rootDev("ext4")}
					f.mu.Unlock()
				}
			}
			var console bytes.Buffer
			level := new(slog.LevelVar)
			h := bootlog.New(&syncWriter{w: &console}, level, func() time.Duration { return time.Second })
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err := bootMain(ctx, f.system(), slog.New(h), h, level)
			if ctx.Err() != nil {
				t.Fatalf("boot did not finish: %v\n%s", ctx.Err(), console.String())
			}
			if (err == nil) != (tc.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("bootMain = %v, want error %q\n%s", err, tc.wantErr, console.String())
			}
			last := -1
			for _, w := range tc.want {
				i := f.indexOf(w)
				if i <= last {
					t.Errorf("%q at %d, want it after %d in calls %q", w, i, last, f.calls)
				}
				last = i
			}
			if !strings.Contains(f.logFile.String(), tc.wantLog) {
				t.Errorf("boot log file lacks %q:\n%s", tc.wantLog, f.logFile.String())
			}
		})
	}
}
