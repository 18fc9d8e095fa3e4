package shutdown

import (
	"reflect"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
)

// exitrdMountinfo is /proc/self/mountinfo as /shutdown sees it after
// systemd-shutdown's pivot. The first seven lines were captured in the
// e2e guest (tests/shutdown_test.go): the shutdown root is a bind of
// /run/initramfs (its parent, the initramfs, is not visible), the old
// root sits at /oldroot with its /run (which has the lower id: the root
// was moved there from /sysroot), and /dev, /proc, /sys were moved in.
// The rest are added: a mount point with a space (the kernel escapes it),
// a mount on top of another at the same path, and a sibling path that
// only shares the prefix. The mountinfo package's tests parse the same
// lines.
const exitrdMountinfo = `21 27 0:19 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
22 27 0:20 / /sys rw,nosuid,nodev,noexec,relatime - sysfs sysfs rw
23 27 0:5 / /dev rw,nosuid,relatime - devtmpfs devtmpfs rw,size=478992k,nr_inodes=119748,mode=755,inode64
24 26 0:21 / /oldroot/run rw,nosuid,nodev - tmpfs tmpfs rw,mode=755,inode64
25 23 0:22 / /dev/pts rw,nosuid,noexec,relatime - devpts devpts rw,gid=5,mode=620,ptmxmode=666
26 27 253:1 / /oldroot rw,relatime - ext4 /dev/dm-1 rw
27 1 0:21 /initramfs / rw,nosuid,nodev - tmpfs tmpfs rw,mode=755,inode64
40 26 0:31 / /oldroot/media/usb\040stick rw shared:7 - vfat /dev/sdb1 rw
41 40 0:32 / /oldroot/media/usb\040stick/sub rw - tmpfs tmpfs rw
42 26 0:33 / /oldroot/tmp rw - tmpfs tmpfs rw
43 42 0:34 / /oldroot/tmp rw - tmpfs tmpfs rw
50 27 0:35 / /oldrootfoo rw - tmpfs tmpfs rw
`

func TestUnmountOrder(t *testing.T) {
	all, err := mountinfo.Parse(strings.NewReader(exitrdMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	mi := func(id, parent int, mp string) mountinfo.Mount {
		return mountinfo.Mount{ID: id, Parent: parent, MountPoint: mp}
	}
	for _, tc := range []struct {
		name   string
		mounts []mountinfo.Mount
		dir    string
		want   []string
	}{
		{"exitrd", all, "/oldroot", []string{
			// leaves first, deepest first; the overmount (43) before the
			// tmpfs under it (42); /oldrootfoo is not under /oldroot
			"/oldroot/media/usb stick/sub", "/oldroot/tmp", "/oldroot/run",
			"/oldroot/media/usb stick", "/oldroot/tmp", "/oldroot",
		}},
		{"nothing under", all, "/nonexistent", nil},
		{"moved mount with a lower id than its parent", []mountinfo.Mount{
			mi(5, 1, "/oldroot"), mi(3, 9, "/oldroot/a/b"), mi(9, 5, "/oldroot/a"),
		}, "/oldroot", []string{"/oldroot/a/b", "/oldroot/a", "/oldroot"}},
		{"siblings newest first", []mountinfo.Mount{
			mi(5, 1, "/oldroot"), mi(6, 5, "/oldroot/x"), mi(7, 5, "/oldroot/y"),
		}, "/oldroot/", []string{"/oldroot/y", "/oldroot/x", "/oldroot"}},
		{"parent loop does not hang", []mountinfo.Mount{
			mi(5, 6, "/oldroot"), mi(6, 5, "/oldroot/x"),
		}, "/oldroot", []string{"/oldroot/x", "/oldroot"}},
	} {
		var got []string
		for _, m := range UnmountOrder(tc.mounts, tc.dir) {
			got = append(got, m.MountPoint)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: UnmountOrder(%s) = %q, want %q", tc.name, tc.dir, got, tc.want)
		}
	}
}
