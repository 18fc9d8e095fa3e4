package fstab

import (
	"reflect"
	"strings"
	"testing"
)

// installerFstab is what Debian's installer writes for "guided, encrypted
// LVM", plus a separate /usr and an x-initrd.mount entry.
const installerFstab = `# /etc/fstab: static file system information.
#
# <file system> <mount point>   <type>  <options>       <dump>  <pass>
/dev/mapper/debian--vg-root /               ext4    errors=remount-ro 0       1
# /boot was on /dev/vda1 during installation
UUID=0f5e3c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6 /boot           ext4    defaults        0       2
/dev/mapper/debian--vg-swap_1 none            swap    sw              0       0
/dev/sr0        /media/cdrom0   udf,iso9660 user,noauto     0       0
LABEL=usr	/usr/	ext4	ro,noatime	0	2
PARTUUID=6e2c3a1e-1111-4a2b-8c3d-0123456789ab /var xfs x-initrd.mount,nofail
tmpfs /my\040data tmpfs x-initrd.mount,noauto 0 0
broken-line /x
/dev/vdb /srv ext4 defaults 0 two
`

func TestParse(t *testing.T) {
	entries, warns, err := Parse(strings.NewReader(installerFstab))
	if err != nil {
		t.Fatal(err)
	}
	want := []Entry{
		{"/dev/mapper/debian--vg-root", "/", "ext4", "errors=remount-ro", 1, 4},
		{"UUID=0f5e3c2a-1b2c-4d5e-8f90-a1b2c3d4e5f6", "/boot", "ext4", "defaults", 2, 6},
		{"/dev/mapper/debian--vg-swap_1", "none", "swap", "sw", 0, 7},
		{"/dev/sr0", "/media/cdrom0", "udf,iso9660", "user,noauto", 0, 8},
		{"LABEL=usr", "/usr", "ext4", "ro,noatime", 2, 9},
		{"PARTUUID=6e2c3a1e-1111-4a2b-8c3d-0123456789ab", "/var", "xfs", "x-initrd.mount,nofail", 0, 10},
		{"tmpfs", "/my data", "tmpfs", "x-initrd.mount,noauto", 0, 11},
		{"/dev/vdb", "/srv", "ext4", "defaults", 0, 13},
	}
	if !reflect.DeepEqual(entries, want) {
		t.Errorf("Parse =\n%+v\nwant\n%+v", entries, want)
	}
	if len(warns) != 2 || !strings.Contains(warns[0], "line 12") || !strings.Contains(warns[1], `fsck pass "two"`) {
		t.Errorf("warnings = %q, want line 12 and the bad pass", warns)
	}
}

func TestInitrdMountAndFind(t *testing.T) {
	entries, _, _ := Parse(strings.NewReader(installerFstab + "/dev/vdc /usr ext4 defaults 0 0\n"))
	var got []string
	for _, e := range entries {
		if e.InitrdMount() {
			got = append(got, e.Spec+" "+e.File)
		}
	}
	want := []string{"LABEL=usr /usr", "PARTUUID=6e2c3a1e-1111-4a2b-8c3d-0123456789ab /var", "/dev/vdc /usr"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("InitrdMount entries = %q, want %q", got, want)
	}
	if e := Find(entries, "/usr"); e == nil || e.Spec != "/dev/vdc" {
		t.Errorf("Find(/usr) = %+v, want the last entry", e)
	}
	if e := Find(entries, "/opt"); e != nil {
		t.Errorf("Find(/opt) = %+v, want nil", e)
	}
}
