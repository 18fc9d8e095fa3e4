package pipeline

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
)

// TestHostResume reads recorded sysfs and /etc files: the kernel's
// setting first, then RESUME=none, the fstab's swap, Debian's RESUME=.
func TestHostResume(t *testing.T) {
	const (
		fstab  = "etc/fstab"
		debian = "etc/initramfs-tools/conf.d/resume"
	)
	probe := map[string]string{"/dev/vda3": "0c0ffee0-aaaa-4bbb-8ccc-dddddddddddd"}
	for _, tc := range []struct {
		name  string
		files map[string]string // relative to the temp root; sys/… is sysDir
		want  bootconf.Resume
	}{
		{"kernel setting, partition probed", map[string]string{
			"sys/power/resume": "254:3\n", "sys/power/resume_offset": "0\n", "sys/dev/block/254:3/uevent": "MAJOR=254\nMINOR=3\nDEVNAME=vda3\nDEVTYPE=partition\n",
			fstab: "UUID=other none swap sw 0 0\n"},
			bootconf.Resume{Device: "UUID=0c0ffee0-aaaa-4bbb-8ccc-dddddddddddd"}},
		{"kernel setting, device-mapper, swap file offset", map[string]string{
			"sys/power/resume": "253:1\n", "sys/power/resume_offset": "34816\n", "sys/dev/block/253:1/dm/name": "vg-swap_1\n"},
			bootconf.Resume{Device: "/dev/mapper/vg-swap_1", Offset: "34816"}},
		{"kernel setting, recorded disk not probed", map[string]string{
			"sys/power/resume": "8:2\n", "sys/dev/block/8:2/uevent": "DEVNAME=sda2\n"},
			bootconf.Resume{Device: "/dev/sda2"}},
		{"unset kernel setting: the fstab's swap", map[string]string{
			"sys/power/resume": "0:0\n",
			fstab:              "# <file system> <mount point> <type>\nUUID=r / ext4 errors=remount-ro 0 1\n/swapfile none swap sw 0 0\n/dev/mapper/vg-swap_1 none swap noauto 0 0\n/dev/mapper/vg-swap_2 none swap sw 0 0\n",
			debian:             "RESUME=UUID=debian\n"},
			bootconf.Resume{Device: "/dev/mapper/vg-swap_2"}},
		{"fstab swap by label, octal escapes decoded", map[string]string{fstab: "LABEL=my\\040swap none swap sw 0 0\n"},
			bootconf.Resume{Device: "LABEL=my swap"}},
		{"fstab swap by path, probed", map[string]string{fstab: "/dev/vda3 none swap sw 0 0\n"},
			bootconf.Resume{Device: "UUID=0c0ffee0-aaaa-4bbb-8ccc-dddddddddddd"}},
		{"Debian's RESUME= without a swap in fstab", map[string]string{
			fstab: "UUID=r / ext4 defaults 0 1\n", debian: "# written by the installer\nRESUME=\"UUID=5c0ffee0-1111-4222-8333-444455556666\"\nRESUME_OFFSET=2048\n"},
			bootconf.Resume{Device: "UUID=5c0ffee0-1111-4222-8333-444455556666", Offset: "2048"}},
		{"RESUME=none turns the fstab guess off", map[string]string{fstab: "/dev/vda3 none swap sw 0 0\n", debian: "RESUME=none\n"},
			bootconf.Resume{}},
		{"RESUME=auto and no swap", map[string]string{debian: "RESUME=auto\n"}, bootconf.Resume{}},
		{"nothing", nil, bootconf.Resume{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := fileTree(t, tc.files)
			got, why := hostResume(filepath.Join(root, "sys"), root, func(dev string) string { return probe[dev] })
			if got != tc.want {
				t.Errorf("hostResume = %+v (from %q), want %+v", got, why, tc.want)
			}
		})
	}
}

// fileTree makes a directory holding files (relative path: contents).
func fileTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for p, data := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}
