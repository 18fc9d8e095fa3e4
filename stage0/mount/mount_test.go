package mount

import (
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseOptions(t *testing.T) {
	for _, tc := range []struct {
		in        string
		wantFlags uintptr
		wantData  string
	}{
		{"", 0, ""},
		{"defaults", 0, ""},
		{"subvol=@", 0, "subvol=@"},
		{"subvol=@,noatime,ro", unix.MS_NOATIME | unix.MS_RDONLY, "subvol=@"},
		{"ro,rw", 0, ""},
		{"rw,ro", unix.MS_RDONLY, ""},
		{"noatime,atime", 0, ""},
		{"nosuid,nodev,noexec,relatime,errors=remount-ro,x-systemd.device-timeout=5,nofail,_netdev,comment=x", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC | unix.MS_RELATIME, "errors=remount-ro"},
		{"compress=zstd:3, discard=async ,space_cache=v2", 0, "compress=zstd:3,discard=async,space_cache=v2"},
		{"data=journal,lazytime,iversion,strictatime,dirsync,sync", unix.MS_LAZYTIME | unix.MS_I_VERSION | unix.MS_STRICTATIME | unix.MS_DIRSYNC | unix.MS_SYNCHRONOUS, "data=journal"},
		// gokrazy once swapped these two; every other table agrees with this.
		{"rshared", unix.MS_SHARED | unix.MS_REC, ""},
		{"rslave", unix.MS_SLAVE | unix.MS_REC, ""},
		{"rbind", unix.MS_BIND | unix.MS_REC, ""},
		{"context=\"system_u:object_r:tmp_t:s0\"", 0, "context=\"system_u:object_r:tmp_t:s0\""},
	} {
		flags, data := ParseOptions(tc.in)
		if flags != tc.wantFlags || data != tc.wantData {
			t.Errorf("ParseOptions(%q) = %#x, %q; want %#x, %q", tc.in, flags, data, tc.wantFlags, tc.wantData)
		}
	}
}

func TestRoot(t *testing.T) {
	for _, tc := range []struct {
		flags, mode string
		wantRO      bool
		wantData    string
	}{
		{"", "", true, ""},
		{"", "rw", false, ""},
		{"", "ro", true, ""},
		{"rw", "", false, ""},
		{"rw", "ro", true, ""},
		{"ro,subvol=@", "rw", false, "subvol=@"},
		{"subvol=@,noatime", "", true, "subvol=@"},
	} {
		m := Root("/dev/vda2", "/sysroot", "btrfs", tc.flags, tc.mode)
		if ro := m.Flags&unix.MS_RDONLY != 0; ro != tc.wantRO || m.Data != tc.wantData {
			t.Errorf("Root(rootflags=%q, %q) = %s; want ro=%v data %q", tc.flags, tc.mode, m, tc.wantRO, tc.wantData)
		}
	}
	m := Root("/dev/vda2", "/sysroot", "btrfs", "subvol=@,noatime", "")
	if got, want := m.String(), "/dev/vda2 on /sysroot type btrfs (ro,noatime,subvol=@)"; got != want {
		t.Errorf("Root().String() = %q, want %q", got, want)
	}
}

func TestAPI(t *testing.T) {
	var got []string
	for _, m := range API() {
		got = append(got, m.String())
	}
	want := []string{
		"proc on /proc type proc (nosuid,nodev,noexec)",
		"sysfs on /sys type sysfs (nosuid,nodev,noexec)",
		"devtmpfs on /dev type devtmpfs (nosuid,mode=0755)",
		"tmpfs on /run type tmpfs (nosuid,nodev,strictatime,mode=0755)",
		"devpts on /dev/pts type devpts (nosuid,noexec,gid=5,mode=0620,ptmxmode=0666)",
	}
	if len(got) != len(want) {
		t.Fatalf("API() = %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("API()[%d] = %q, want %q", i, got[i], want[i])
		}
	}
}

func TestIsMountPoint(t *testing.T) {
	for _, tc := range []struct {
		dir  string
		want bool
	}{
		{"/", true},
		{"/proc", true},
		{"/proc/self", false},
		{t.TempDir(), false},
	} {
		got, err := IsMountPoint(tc.dir)
		if err != nil || got != tc.want {
			t.Errorf("IsMountPoint(%s) = %v, %v; want %v", tc.dir, got, err, tc.want)
		}
	}
	if _, err := IsMountPoint("/does/not/exist"); err == nil {
		t.Errorf("IsMountPoint(missing) = nil error")
	}
}
