package mountinfo

import (
	"os"
	"strings"
	"testing"
)

// exitrdFixture is /proc/self/mountinfo as /shutdown sees it after
// systemd-shutdown's pivot. The first seven lines were captured in the
// e2e guest (tests/shutdown_test.go): the shutdown root is a bind of
// /run/initramfs (its parent, the initramfs, is not visible), the old
// root sits at /oldroot with its /run (which has the lower id: the root
// was moved there from /sysroot), and /dev, /proc, /sys were moved in.
// The rest are added: a mount point with a space (the kernel escapes it),
// a mount on top of another at the same path, and a sibling path that
// only shares the prefix. stage0/shutdown's tests read the same file.
const exitrdFixture = "testdata/exitrd.mountinfo"

func TestParse(t *testing.T) {
	exitrd, err := os.ReadFile(exitrdFixture)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		in   string
		want map[int]Mount // index in the result → mount
		n    int           // number of mounts
	}{
		{"exitrd guest", string(exitrd), map[int]Mount{
			5: {ID: 26, Parent: 27, Dev: "253:1", Root: "/", MountPoint: "/oldroot", FSType: "ext4", Source: "/dev/dm-1"},
			6: {ID: 27, Parent: 1, Dev: "0:21", Root: "/initramfs", MountPoint: "/", FSType: "tmpfs", Source: "tmpfs"},
			7: {ID: 40, Parent: 26, Dev: "0:31", Root: "/", MountPoint: "/oldroot/media/usb stick", FSType: "vfat", Source: "/dev/sdb1"},
		}, 12},
		{"host with optional fields, btrfs subvolume and overmounted root", `22 1 254:1 / / ro,relatime shared:1 - ext4 /dev/vda1 ro
23 22 0:5 / /dev rw - devtmpfs devtmpfs rw,size=1k

30 22 0:33 /@ /mnt\040x rw shared:4 master:2 - btrfs /dev/vdb2 rw,subvol=/@
31 22 0:34 / / rw - overlay overlay rw,lowerdir=/a
`, map[int]Mount{
			0: {ID: 22, Parent: 1, Dev: "254:1", Root: "/", MountPoint: "/", FSType: "ext4", Source: "/dev/vda1"},
			2: {ID: 30, Parent: 22, Dev: "0:33", Root: "/@", MountPoint: "/mnt x", FSType: "btrfs", Source: "/dev/vdb2"},
			3: {ID: 31, Parent: 22, Dev: "0:34", Root: "/", MountPoint: "/", FSType: "overlay", Source: "overlay"},
		}, 4},
		{"empty source (two spaces)", "36 35 0:40 / /mnt rw - tmpfs  rw\n", map[int]Mount{
			0: {ID: 36, Parent: 35, Dev: "0:40", Root: "/", MountPoint: "/mnt", FSType: "tmpfs", Source: ""},
		}, 1},
		{"escaped source, no super options", "36 35 8:1 / /m rw - vfat /dev/disk/by-label/A\\040B\n", map[int]Mount{
			0: {ID: 36, Parent: 35, Dev: "8:1", Root: "/", MountPoint: "/m", FSType: "vfat", Source: "/dev/disk/by-label/A B"},
		}, 1},
		{"empty", "", nil, 0},
	} {
		got, err := Parse(strings.NewReader(tc.in))
		if err != nil || len(got) != tc.n {
			t.Errorf("%s: Parse = %d mounts, %v, want %d", tc.name, len(got), err, tc.n)
			continue
		}
		for i, want := range tc.want {
			if got[i] != want {
				t.Errorf("%s: Parse line %d = %+v, want %+v", tc.name, i+1, got[i], want)
			}
		}
	}
}

func TestParseMalformed(t *testing.T) {
	for _, bad := range []string{
		"garbage line\n",
		"26 33 254:1 / /oldroot rw,relatime ext4 /dev/x rw\n", // no "-"
		"x 33 254:1 / /oldroot rw - ext4 /dev/x rw\n",         // bad id
		"26 y 254:1 / /oldroot rw - ext4 /dev/x rw\n",         // bad parent
		"26 33 254 / /oldroot rw - ext4 /dev/x rw\n",          // no MAJ:MIN
		"26 33 254:1 / /oldroot - ext4 /dev/x rw\n",           // a field short
		"26 33 254:1 / /oldroot rw -\n",                       // nothing after "-"
		"26 33 254:1 / /oldroot rw - ext4\n",                  // no source
		"21 27 0:19 / /proc rw - proc proc rw\n26 33 254:1 / /oldroot rw - \n",
	} {
		if got, err := Parse(strings.NewReader(bad)); err == nil {
			t.Errorf("Parse(%q) = %+v, want an error", bad, got)
		}
	}
}

// TestParseHost parses this machine's own table: the real format,
// whatever is mounted here.
func TestParseHost(t *testing.T) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ms, err := Parse(f)
	if err != nil {
		t.Fatalf("Parse(/proc/self/mountinfo) = %v", err)
	}
	var root bool
	for _, m := range ms {
		root = root || m.MountPoint == "/"
		if m.FSType == "" || m.ID == 0 || m.Dev == "" || m.Root == "" {
			t.Errorf("Parse(/proc/self/mountinfo): incomplete entry %+v", m)
		}
	}
	if !root {
		t.Errorf("Parse(/proc/self/mountinfo) has no / among %d mounts", len(ms))
	}
}

func TestUnescape(t *testing.T) {
	for in, want := range map[string]string{
		`/a\040b`:     "/a b",
		`/tab\011x`:   "/tab\tx",
		`/nl\012x`:    "/nl\nx",
		`/back\134sl`: `/back\sl`,
		`/end\04`:     `/end\04`, // too short to be an escape
		`/x\999`:      `/x\999`,  // not octal
		`/plain`:      "/plain",
	} {
		if got := Unescape(in); got != want {
			t.Errorf("Unescape(%q) = %q, want %q", in, got, want)
		}
	}
}
