package shutdown

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// exitrdMountinfo is /proc/self/mountinfo as /shutdown sees it after
// systemd-shutdown's pivot. The first seven lines were captured in the
// e2e guest (tests/shutdown_test.go): the shutdown root is a bind of
// /run/initramfs (its parent, the initramfs, is not visible), the old
// root sits at /oldroot with its /run (which has the lower id: the root
// was moved there from /sysroot), and /dev, /proc, /sys were moved in.
// The rest are added: a mount point with a space (the kernel escapes it),
// a mount on top of another at the same path, and a sibling path that
// only shares the prefix.
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

func TestParseMountInfo(t *testing.T) {
	ms, err := ParseMountInfo(strings.NewReader(exitrdMountinfo))
	if err != nil {
		t.Fatalf("ParseMountInfo = %v", err)
	}
	if len(ms) != 12 {
		t.Fatalf("ParseMountInfo: %d mounts, want 12", len(ms))
	}
	for i, want := range map[int]MountInfo{
		5: {ID: 26, Parent: 27, MountPoint: "/oldroot", FSType: "ext4", Source: "/dev/dm-1"},
		7: {ID: 40, Parent: 26, MountPoint: "/oldroot/media/usb stick", FSType: "vfat", Source: "/dev/sdb1"},
	} {
		if ms[i] != want {
			t.Errorf("ParseMountInfo line %d = %+v, want %+v", i+1, ms[i], want)
		}
	}
	for _, bad := range []string{
		"26 33 254:1 / /oldroot rw,relatime ext4 /dev/x rw\n", // no "-"
		"x 33 254:1 / /oldroot rw - ext4 /dev/x rw\n",
		"26 33 254:1 / /oldroot rw -\n",
	} {
		if got, err := ParseMountInfo(strings.NewReader(bad)); err == nil {
			t.Errorf("ParseMountInfo(%q) = %+v, want an error", bad, got)
		}
	}
}

// TestParseMountInfoHost parses this machine's own table: the real
// format, whatever is mounted here.
func TestParseMountInfoHost(t *testing.T) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := ParseMountInfo(f)
	if err != nil {
		t.Fatalf("ParseMountInfo(/proc/self/mountinfo) = %v", err)
	}
	var root bool
	for _, m := range ms {
		root = root || m.MountPoint == "/"
		if m.FSType == "" || m.ID == 0 {
			t.Errorf("ParseMountInfo(/proc/self/mountinfo): incomplete entry %+v", m)
		}
	}
	if !root {
		t.Errorf("ParseMountInfo(/proc/self/mountinfo) has no / among %d mounts", len(ms))
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:     "/a b",
		`/tab\011x`:   "/tab\tx",
		`/back\134sl`: `/back\sl`,
		`/end\04`:     `/end\04`, // too short to be an escape
		`/plain`:      "/plain",
	} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnmountOrder(t *testing.T) {
	all, err := ParseMountInfo(strings.NewReader(exitrdMountinfo))
	if err != nil {
		t.Fatal(err)
	}
	mi := func(id, parent int, mp string) MountInfo { return MountInfo{ID: id, Parent: parent, MountPoint: mp} }
	for _, tc := range []struct {
		name   string
		mounts []MountInfo
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
		{"moved mount with a lower id than its parent", []MountInfo{
			mi(5, 1, "/oldroot"), mi(3, 9, "/oldroot/a/b"), mi(9, 5, "/oldroot/a"),
		}, "/oldroot", []string{"/oldroot/a/b", "/oldroot/a", "/oldroot"}},
		{"siblings newest first", []MountInfo{
			mi(5, 1, "/oldroot"), mi(6, 5, "/oldroot/x"), mi(7, 5, "/oldroot/y"),
		}, "/oldroot/", []string{"/oldroot/y", "/oldroot/x", "/oldroot"}},
		{"parent loop does not hang", []MountInfo{
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
