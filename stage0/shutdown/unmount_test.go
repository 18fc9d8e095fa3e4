package shutdown

import (
	"os"
	"reflect"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
)

// exitrdMountinfo is what /shutdown sees after systemd-shutdown's pivot,
// captured in the e2e guest and extended (see the file's description in
// the mountinfo package's tests).
const exitrdMountinfo = "../../internal/mountinfo/testdata/exitrd.mountinfo"

func TestUnmountOrder(t *testing.T) {
	f, err := os.Open(exitrdMountinfo)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := mountinfo.Parse(f)
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
