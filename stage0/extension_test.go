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

// TestBootMainExtension boots an image whose extension (pkginitrd extend)
// adds command-line words: they apply as if written first on the kernel
// command line, so the real command line wins.
func TestBootMainExtension(t *testing.T) {
	const conf = "version = 2\nmodules_dir = \"/nonexistent\"\nfsck = { ext4 = \"/usr/sbin/fsck.ext4\" }\n"
	for _, tc := range []struct {
		name, cmdline, ext string
		wantErr            string
		want               []string
	}{
		{"root from the extension", "quiet", `version = 2
cmdline = ["root=UUID=` + rootUUID + `"]`, "", []string{"mount /dev/vda2 on /sysroot", "switch_root /sysroot"}},
		{"the real command line wins", "root=UUID=" + rootUUID, `version = 2
cmdline = ["root=/dev/nowhere", "rd.shell=0"]`, "", []string{"mount /dev/vda2 on /sysroot", "switch_root /sysroot"}},
		{"extension words apply", "", `version = 2
cmdline = ["rd.shell=0"]`, "no root device", []string{"reboot 0xcdef0123"}},
		{"a broken extension is ignored", "root=UUID=" + rootUUID, "version = 2\nbogus = 1\n", "", []string{"switch_root /sysroot"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{events: make(chan *uevent.Event, 16), devs: []device.Device{rootDev("ext4")},
				files: map[string]string{"/proc/cmdline": tc.cmdline + "\n", "/" + bootconf.Path: conf, "/" + bootconf.ExtensionPath: tc.ext}}
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
			for _, w := range tc.want {
				if f.indexOf(w) < 0 {
					t.Errorf("no call %q in %q", w, f.calls)
				}
			}
		})
	}
}
