package stage0

import (
	"testing"

	"github.com/pkginitrd/pkginitrd/stage0/device"
)

// TestBootKeepsShutdown: the shutdown program is put in /run/initramfs
// before switch_root exactly when device-mapper or loop devices exist.
func TestBootKeepsShutdown(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stack []string
		want  bool
	}{
		{"plain root", nil, false},
		{"LVM on LUKS", []string{"dm-0", "dm-1"}, true},
		{"live image", []string{"loop0"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{devs: []device.Device{rootDev("ext4")}, stack: tc.stack}
			r := runBoot(t, f, "root=UUID="+rootUUID, nil)
			if r.err != nil {
				t.Fatalf("boot = %v\n%s", r.err, r.file)
			}
			install, sw := f.indexOf("install shutdown /run/initramfs"), f.indexOf("switch_root")
			if got := install >= 0; got != tc.want {
				t.Fatalf("with devices %q: shutdown installed = %v, want %v (calls %q)", tc.stack, got, tc.want, f.calls)
			}
			if tc.want && (sw < 0 || install > sw) {
				t.Errorf("install (at %d) must come before switch_root (at %d): %q", install, sw, f.calls)
			}
		})
	}
}
