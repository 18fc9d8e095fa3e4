package stage0

import (
	"context"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/dm"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

func usrDev(name, node string) device.Device {
	return device.Device{Name: name, Node: node, Major: 254, Minor: 16, Size: 1 << 30,
		Info: &blkid.Info{Type: "ext4", Usage: blkid.UsageFilesystem, UUID: "5b0c6f0e-2222-4f0b-9d55-0a6c6c1f2b22", Label: "usr"}}
}

// TestBootRootFstab: the root's /etc/fstab gives the root its options
// (unless rootflags= does) and names what is mounted before switch_root.
func TestBootRootFstab(t *testing.T) {
	const installer = "/dev/vda2 / ext4 errors=remount-ro 0 1\nUUID=1234 /boot ext4 defaults 0 2\n/dev/mapper/vg-swap_1 none swap sw 0 0\n"
	lvm := &bootconf.Config{Features: []string{"lvm"}, Fsck: map[string]string{"ext4": "/usr/sbin/fsck.ext4"}}
	for _, tc := range []struct {
		name, line, fstab string
		devs              []device.Device
		conf              *bootconf.Config
		want              []string // mount, umount and fsck calls, in order
	}{
		{"root options from fstab", "root=/dev/vda2", installer, nil, nil, []string{
			"fsck /usr/sbin/fsck.ext4 -a /dev/vda2",
			"mount /dev/vda2 on /sysroot type ext4 (ro)",
			"umount /sysroot",
			"mount /dev/vda2 on /sysroot type ext4 (ro,errors=remount-ro)",
		}},
		{"rw on the command line", "root=/dev/vda2 rw", installer, nil, nil, []string{
			"fsck /usr/sbin/fsck.ext4 -a /dev/vda2",
			"mount /dev/vda2 on /sysroot type ext4 (rw)",
			"umount /sysroot",
			"mount /dev/vda2 on /sysroot type ext4 (errors=remount-ro)",
		}},
		{"rootflags= wins", "root=/dev/vda2 rootflags=noatime", installer, nil, nil, []string{
			"fsck /usr/sbin/fsck.ext4 -a /dev/vda2",
			"mount /dev/vda2 on /sysroot type ext4 (ro,noatime)",
		}},
		{"rd.fstab=0", "root=/dev/vda2 rd.fstab=0", installer + "LABEL=usr /usr ext4 defaults 0 2\n", nil, nil, []string{
			"fsck /usr/sbin/fsck.ext4 -a /dev/vda2",
			"mount /dev/vda2 on /sysroot type ext4 (ro)",
		}},
		{"separate /usr and x-initrd.mount", "root=/dev/vda2 rootflags=noatime",
			"tmpfs /var/cache tmpfs x-initrd.mount,mode=0755 0 0\nLABEL=usr /usr/ auto nodev,rw 0 2\n" +
				"/dev/vdc /srv ext4 x-initrd.mount,noauto 0 0\n/dev/vdd /opt ext4 defaults 0 2\n",
			[]device.Device{usrDev("vdb", "/dev/vdb")}, nil, []string{
				"fsck /usr/sbin/fsck.ext4 -a /dev/vda2",
				"mount /dev/vda2 on /sysroot type ext4 (ro,noatime)",
				"fsck /usr/sbin/fsck.ext4 -a /dev/vdb",
				"mount /dev/vdb on /sysroot/usr type ext4 (ro,nodev)",
				"mount tmpfs on /sysroot/var/cache type tmpfs (mode=0755)",
			}},
		{"/usr on a logical volume rd.lvm.lv= did not name", "root=/dev/vda2 rd.lvm.lv=vg/root fsck.mode=skip",
			"/dev/vda2 / ext4 defaults 0 1\n/dev/mapper/vg-usr /usr ext4 defaults 0 0\n", nil, lvm, []string{
				"mount /dev/vda2 on /sysroot type ext4 (ro)",
				"mount /dev/mapper/vg-usr on /sysroot/usr type ext4 (ro)",
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{devs: append([]device.Device{rootDev("ext4")}, tc.devs...),
				files: map[string]string{"/sysroot/etc/fstab": tc.fstab}}
			var runs []string
			r := runBootWith(t, f, tc.line, tc.conf, func(sys *machine.Machine) {
				sys.Exists = func(p string) bool {
					return p == "/usr/sbin/fsck.ext4" || p == "/usr/sbin/lvm" || p == "/usr/bin/busybox"
				}
				sys.LinkMappings = func([]machine.Mapping) error { return nil }
				sys.Run = func(_ context.Context, argv, _ []string, _ []byte) ([]byte, int, error) {
					runs = append(runs, strings.Join(argv, " "))
					if slices.Contains(argv, "vg/usr") {
						f.mu.Lock()
						f.devs = append(f.devs, usrDev("dm-2", "/dev/mapper/vg-usr"))
						f.mu.Unlock()
					}
					return nil, 0, nil
				}
			})
			if r.err != nil || f.switched == nil || len(f.callsMatching("shell")) != 0 {
				t.Fatalf("boot = %v, switched %v, calls %q\n%s", r.err, f.switched, f.calls, r.console)
			}
			var got []string
			for _, c := range f.calls {
				if strings.HasPrefix(c, "mount /dev/vd") || strings.HasPrefix(c, "mount /dev/mapper") || strings.HasPrefix(c, "mount tmpfs on /sysroot") ||
					strings.HasPrefix(c, "umount") || strings.HasPrefix(c, "fsck") {
					got = append(got, c)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("calls =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			if tc.conf == lvm && !slices.Contains(runs, "/usr/sbin/lvm lvchange -ay --sysinit --config "+dm.LVMConfig+" vg/usr") {
				t.Errorf("ran %q, want vg/usr activated", runs)
			}
		})
	}
}

// TestBootUsrMissing: a /usr that never shows up fails the boot with the
// fstab line named; the user plugs it in from the shell and the retry
// mounts it.
func TestBootUsrMissing(t *testing.T) {
	f := &fakeSys{expire: true, devs: []device.Device{rootDev("ext4")},
		files: map[string]string{"/sysroot/etc/fstab": "# root\nLABEL=usr /usr ext4 defaults 0 0\n"}}
	f.onShell = func(int) {
		f.mu.Lock()
		f.devs = append(f.devs, usrDev("vdb", "/dev/vdb"))
		f.mu.Unlock()
	}
	r := runBoot(t, f, "root=/dev/vda2", nil)
	if r.err != nil || f.switched == nil || len(f.callsMatching("shell")) != 1 {
		t.Fatalf("boot = %v, switched %v, calls %q", r.err, f.switched, f.calls)
	}
	if want := "mount /usr (line 2 of the root's /etc/fstab: LABEL=usr /usr ext4 defaults): LABEL=usr did not appear within 30s"; !strings.Contains(r.console, want) {
		t.Errorf("console lacks %q:\n%s", want, r.console)
	}
	if f.indexOf("mount /dev/vdb on /sysroot/usr type ext4 (ro)") < 0 {
		t.Errorf("/usr not mounted after the retry: %q", f.calls)
	}
}

func TestSource(t *testing.T) {
	b := &boot{sys: machine.Machine{Exists: func(p string) bool { return p == "/dev/mapper/vg-root" }}}
	for _, tc := range []struct{ ref, want string }{
		{"/dev/mapper/vg-root", "/dev/mapper/vg-root"}, // the name fstab and systemd use
		{"/dev/mapper/gone", "/dev/dm-1"},
		{"UUID=" + rootUUID, "/dev/dm-1"},
		{"/srv/x", "/dev/dm-1"},
	} {
		ref, _ := cmdline.ParseDeviceRef(tc.ref)
		if got := b.source(ref, "/dev/dm-1"); got != tc.want {
			t.Errorf("source(%s) = %q, want %q", tc.ref, got, tc.want)
		}
	}
}
