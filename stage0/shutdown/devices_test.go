package shutdown

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// sysTree writes files (path → content; a trailing "/" makes a directory)
// under a temp sysfs root.
func sysTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range files {
		full := filepath.Join(root, p)
		if p[len(p)-1] == '/' {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestReadDevices(t *testing.T) {
	// LVM on LUKS on vda, a live image's loop0 under a snapshot, an
	// unattached loop1 (no loop/ directory) and a plain disk.
	root := sysTree(t, map[string]string{
		"block/vda/holders/dm-0":        "",
		"block/dm-0/dm/name":            "luks-7a8b\n",
		"block/dm-0/dm/uuid":            "CRYPT-LUKS2-7a8b9c0d1e2f4a3b8c4d5e6f7a8b9c0d-luks-7a8b\n",
		"block/dm-0/holders/dm-1":       "",
		"block/dm-1/dm/name":            "vgc-root\n",
		"block/dm-1/dm/uuid":            "LVM-abc\n",
		"block/dm-1/holders/":           "",
		"block/loop0/loop/backing_file": "/run/initramfs/live/LiveOS/squashfs.img\n",
		"block/loop0/holders/dm-2":      "",
		"block/dm-2/dm/name":            "live-rw\n",
		"block/loop1/holders/":          "",
	})
	got, err := ReadDevices(root)
	if err != nil {
		t.Fatalf("ReadDevices = %v", err)
	}
	want := []BlockDev{
		{Kernel: "dm-0", Kind: DM, Name: "luks-7a8b", UUID: "CRYPT-LUKS2-7a8b9c0d1e2f4a3b8c4d5e6f7a8b9c0d-luks-7a8b", Holders: []string{"dm-1"}},
		{Kernel: "dm-1", Kind: DM, Name: "vgc-root", UUID: "LVM-abc"},
		{Kernel: "dm-2", Kind: DM, Name: "live-rw"},
		{Kernel: "loop0", Kind: Loop, Name: "loop0", Backing: "/run/initramfs/live/LiveOS/squashfs.img", Holders: []string{"dm-2"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadDevices =\n%+v\nwant\n%+v", got, want)
	}
	if _, err := ReadDevices(filepath.Join(root, "missing")); err == nil {
		t.Errorf("ReadDevices(missing sysfs) = nil error, want one")
	}
}

func TestBlockDevString(t *testing.T) {
	for _, tc := range []struct {
		d    BlockDev
		want string
	}{
		{BlockDev{Kernel: "dm-0", Kind: DM, Name: "luks-x", UUID: "CRYPT-LUKS2-x"}, "device-mapper device luks-x (dm-0, dm-crypt)"},
		{BlockDev{Kernel: "dm-1", Kind: DM, Name: "vgc-root", UUID: "LVM-x"}, "device-mapper device vgc-root (dm-1, LVM)"},
		{BlockDev{Kernel: "dm-2", Kind: DM, Name: "live-rw"}, "device-mapper device live-rw (dm-2)"},
		{BlockDev{Kernel: "loop0", Kind: Loop, Name: "loop0", Backing: "/a.img"}, "loop device loop0 (/a.img)"},
	} {
		if got := tc.d.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.d, got, tc.want)
		}
	}
}

func TestRemovalOrder(t *testing.T) {
	dev := func(k string, holders ...string) BlockDev { return BlockDev{Kernel: k, Holders: holders} }
	for _, tc := range []struct {
		name      string
		devs      []BlockDev
		want      []string
		wantStuck []string
	}{
		{"none", nil, nil, nil},
		{"LVM on LUKS", []BlockDev{dev("dm-0", "dm-1"), dev("dm-1")}, []string{"dm-1", "dm-0"}, nil},
		{"two LVs in one VG on LUKS", []BlockDev{dev("dm-0", "dm-2", "dm-1"), dev("dm-2"), dev("dm-1")}, []string{"dm-1", "dm-2", "dm-0"}, nil},
		{"live: snapshot over two loops", []BlockDev{dev("loop1", "dm-0"), dev("loop0", "dm-0"), dev("dm-0")}, []string{"dm-0", "loop0", "loop1"}, nil},
		{"numbers by value", []BlockDev{dev("dm-10"), dev("dm-9"), dev("loop10"), dev("loop2")}, []string{"dm-9", "dm-10", "loop2", "loop10"}, nil},
		{"held by an MD array", []BlockDev{dev("dm-0", "md0"), dev("dm-1")}, []string{"dm-1"}, []string{"dm-0"}},
		{"stacked on a stuck one", []BlockDev{dev("dm-0", "dm-1"), dev("dm-1", "md0")}, nil, []string{"dm-0", "dm-1"}},
		{"holding each other", []BlockDev{dev("dm-0", "dm-1"), dev("dm-1", "dm-0"), dev("dm-2")}, []string{"dm-2"}, []string{"dm-0", "dm-1"}},
	} {
		order, stuck := RemovalOrder(tc.devs)
		if got := kernels(order); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: RemovalOrder order = %q, want %q", tc.name, got, tc.want)
		}
		if got := kernels(stuck); !reflect.DeepEqual(got, tc.wantStuck) {
			t.Errorf("%s: RemovalOrder stuck = %q, want %q", tc.name, got, tc.wantStuck)
		}
	}
}

func kernels(devs []BlockDev) []string {
	var out []string
	for _, d := range devs {
		out = append(out, d.Kernel)
	}
	return out
}
