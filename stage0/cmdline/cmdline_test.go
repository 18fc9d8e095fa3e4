package cmdline

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestTokenize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Param
	}{
		{"", nil},
		{"  ro  quiet\n", []Param{{Key: "ro"}, {Key: "quiet"}}},
		{`root=UUID=1234 rootflags="subvol=@,noatime" x=`, []Param{
			{Key: "root", Value: "UUID=1234", HasValue: true},
			{Key: "rootflags", Value: "subvol=@,noatime", HasValue: true},
			{Key: "x", HasValue: true},
		}},
		{`foo="bar baz" "quoted key=v w" a=b=c`, []Param{
			{Key: "foo", Value: "bar baz", HasValue: true},
			{Key: "quoted key", Value: "v w", HasValue: true},
			{Key: "a", Value: "b=c", HasValue: true},
		}},
		{"\"bare word\"\tz", []Param{{Key: "bare word"}, {Key: "z"}}},
	} {
		got := Parse(tc.in).Params
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Parse(%q).Params = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name  string
		in    string
		check func(c *CmdLine) string
	}{
		{"defaults", "console=ttyS0", func(c *CmdLine) string {
			if c.Root.Kind != None || c.RootMode != "" || !c.Shell || c.Timeout != 30*time.Second || c.Quiet || c.Debug || len(c.Break) != 0 {
				return "unexpected non-default"
			}
			return ""
		}},
		{"last wins", "root=/dev/sda1 rootfstype=xfs rw root=LABEL=sys rootfstype=ext4 ro", func(c *CmdLine) string {
			if c.Root.Kind != Label || c.Root.Value != "sys" || c.RootFSType != "ext4" || c.RootMode != "ro" {
				return "want LABEL=sys ext4 ro"
			}
			return ""
		}},
		{"rw", "ro rw", func(c *CmdLine) string {
			if c.RootMode != "rw" {
				return "want rw"
			}
			return ""
		}},
		{"booleans", "rd.shell=0 quiet rd.debug=yes rd.break=1", func(c *CmdLine) string {
			if c.Shell || !c.Quiet || !c.Debug || !c.HasBreak("pre-pivot") {
				return "want shell off, quiet, debug, break"
			}
			return ""
		}},
		{"rd.shell bare after 0", "rd.shell=no rd.shell", func(c *CmdLine) string {
			if !c.Shell {
				return "want shell on"
			}
			return ""
		}},
		{"rd.break hooks", "rd.break=pre-mount,pre-pivot rd.break=cmdline rd.break=0", func(c *CmdLine) string {
			if !c.HasBreak("pre-mount") || !c.HasBreak("pre-pivot") || !c.HasBreak("cmdline") {
				return "want three hooks"
			}
			return ""
		}},
		{"timeout", "rd.timeout=5", func(c *CmdLine) string {
			if c.Timeout != 5*time.Second {
				return "want 5s"
			}
			return ""
		}},
		{"timeout forever", "rd.timeout=0", func(c *CmdLine) string {
			if c.Timeout != 0 {
				return "want 0"
			}
			return ""
		}},
		{"bad timeout warns", "rd.timeout=soon rd.shell=maybe", func(c *CmdLine) string {
			if c.Timeout != DefaultTimeout || !c.Shell || len(c.Warnings) != 2 {
				return "want defaults and 2 warnings"
			}
			return ""
		}},
		{"blacklists", "module_blacklist=nouveau,floppy rd.driver.blacklist=pcspkr rd.driver.blacklist=snd-hda-intel modprobe.blacklist=radeon", func(c *CmdLine) string {
			want := []string{"nouveau", "floppy", "pcspkr", "snd_hda_intel", "radeon"}
			if !reflect.DeepEqual(c.Blacklist, want) {
				return "Blacklist wrong"
			}
			if !c.Blacklisted("snd-hda-intel") || c.Blacklisted("ext4") {
				return "Blacklisted wrong"
			}
			return ""
		}},
		{"module loads", "rd.modules-load=dm-crypt,xts rd.modules_load=virtio_blk modules_load=ext4 rd.driver.pre=btrfs", func(c *CmdLine) string {
			want := []string{"dm_crypt", "xts", "virtio_blk", "ext4", "btrfs"}
			if !reflect.DeepEqual(c.ModulesLoad, want) {
				return "ModulesLoad wrong"
			}
			return ""
		}},
		{"module params", `usb-storage.quirks=0bc2:ab20:u e1000e.debug=1 e1000e.name="a b" nvme.poll rd.luks.uuid=x systemd.unit=rescue.target`, func(c *CmdLine) string {
			if got := c.ModuleOptions("usb_storage"); got != "quirks=0bc2:ab20:u" {
				return "usb_storage options = " + got
			}
			if got := c.ModuleOptions("e1000e"); got != `debug=1 name="a b"` {
				return "e1000e options = " + got
			}
			if got := c.ModuleOptions("nvme"); got != "poll" {
				return "nvme options = " + got
			}
			if _, ok := c.ModuleParams["rd"]; ok {
				return "rd.* taken as module options"
			}
			return ""
		}},
		{"features", "rd.luks.uuid=abc rd.luks.name=abc=root rd.lvm.vg=vg0 rd.live.image rd.luks=0 rd.lvmx=1 rd.overlay=tmpfs", func(c *CmdLine) string {
			var keys []string
			for _, p := range c.Features {
				keys = append(keys, p.Key)
			}
			want := []string{"rd.luks.uuid", "rd.luks.name", "rd.lvm.vg", "rd.live.image", "rd.luks", "rd.overlay"}
			if !reflect.DeepEqual(keys, want) {
				return "feature keys = " + strings.Join(keys, " ")
			}
			if v := c.All("rd.luks.name"); len(v) != 1 || v[0] != "abc=root" {
				return "All(rd.luks.name) wrong"
			}
			return ""
		}},
		{"live image implies live root", "root=LABEL=LIVE rd.live.image", func(c *CmdLine) string {
			if c.Root.Kind != Live || c.Root.Value != "LABEL=LIVE" {
				return "want live:LABEL=LIVE, got " + c.Root.String()
			}
			return ""
		}},
		{"fsck", "fsck.mode=force fsck.repair=yes", func(c *CmdLine) string {
			if c.FsckMode != "force" || c.FsckRepair != "yes" {
				return "want force/yes"
			}
			return ""
		}},
		{"emergency", "rd.emergency=reboot", func(c *CmdLine) string {
			if c.Emergency != "reboot" {
				return "want reboot"
			}
			return ""
		}},
	} {
		c := Parse(tc.in)
		if msg := tc.check(c); msg != "" {
			t.Errorf("%s: Parse(%q) = %+v: %s", tc.name, tc.in, c, msg)
		}
	}
}

func TestInitArgs(t *testing.T) {
	for _, tc := range []struct {
		in       string
		init     string
		wantArgs []string
	}{
		{"root=/dev/vda1 ro quiet", "", nil},
		{"root=/dev/vda1 single 3 foo emergency S", "", []string{"single", "3", "emergency", "S"}},
		{"root=/dev/vda1 -- single -b", "", []string{"single"}},
		{"console=ttyS0 init=/bin/sh console=tty0 -c BOOT_IMAGE=/vmlinuz x=\"a b\" rd.break", "/bin/sh", []string{"-c", `x="a b"`, "rd.break"}},
		{"init=/sbin/init init=/lib/systemd/systemd --log-level=debug -- splash", "/lib/systemd/systemd", []string{"--log-level=debug", "splash"}},
	} {
		c := Parse(tc.in)
		if c.Init != tc.init || !reflect.DeepEqual(c.InitArgs, tc.wantArgs) {
			t.Errorf("Parse(%q): Init, InitArgs = %q, %q, want %q, %q", tc.in, c.Init, c.InitArgs, tc.init, tc.wantArgs)
		}
	}
}

func TestParseDeviceRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want DeviceRef
		err  bool
	}{
		{"", DeviceRef{}, false},
		{"UUID=0a1b-2c3d", DeviceRef{Kind: UUID, Value: "0a1b-2c3d"}, false},
		{"uuid=abc", DeviceRef{Kind: UUID, Value: "abc"}, false},
		{"PARTUUID=6e7f0c1a-01", DeviceRef{Kind: PartUUID, Value: "6e7f0c1a-01"}, false},
		{"PARTUUID=6e7f0c1a-01/PARTNROFF=2", DeviceRef{Kind: PartUUID, Value: "6e7f0c1a-01", PartNrOff: 2}, false},
		{"PARTUUID=x/PARTNROFF=z", DeviceRef{}, true},
		{"LABEL=root fs", DeviceRef{Kind: Label, Value: "root fs"}, false},
		{"PARTLABEL=Linux root", DeviceRef{Kind: PartLabel, Value: "Linux root"}, false},
		{"/dev/vda2", DeviceRef{Kind: Path, Value: "/dev/vda2"}, false},
		{"/dev/mapper/vg-root", DeviceRef{Kind: Path, Value: "/dev/mapper/vg-root"}, false},
		{"/dev/disk/by-uuid/1234-ABCD", DeviceRef{Kind: UUID, Value: "1234-ABCD"}, false},
		{`/dev/disk/by-label/my\x20disk\x2fx`, DeviceRef{Kind: Label, Value: "my disk/x"}, false},
		{"/dev/disk/by-partuuid/abc", DeviceRef{Kind: PartUUID, Value: "abc"}, false},
		{"/dev/disk/by-partlabel/root", DeviceRef{Kind: PartLabel, Value: "root"}, false},
		{"/dev/disk/by-id/ata-X", DeviceRef{Kind: Path, Value: "/dev/disk/by-id/ata-X"}, false},
		{"8:1", DeviceRef{Kind: Devno, Value: "8:1", Major: 8, Minor: 1}, false},
		{"live:CDLABEL=Fedora-Live", DeviceRef{Kind: Live, Value: "CDLABEL=Fedora-Live"}, false},
		{"UUID=", DeviceRef{}, true},
		{"gpt-auto", DeviceRef{}, true},
	} {
		got, err := ParseDeviceRef(tc.in)
		tc.want.Raw = tc.in
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("ParseDeviceRef(%q) = %+v, %v; want %+v, error %v", tc.in, got, err, tc.want, tc.err)
		}
	}
}

func TestUdevEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"plain-Label_1.2:3", "plain-Label_1.2:3"},
		{"my disk", `my\x20disk`},
		{"a/b\\c", `a\x2fb\x5cc`},
		{"Grüße", "Grüße"},
		{"bad\xffbyte", `bad\xffbyte`},
	} {
		if got := EscapeUdev(tc.in); got != tc.want {
			t.Errorf("EscapeUdev(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if got := UnescapeUdev(tc.want); got != tc.in {
			t.Errorf("UnescapeUdev(%q) = %q, want %q", tc.want, got, tc.in)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{`root=UUID=1 rootflags="a b" "x=y" --  z`, `init=/x "`, `a.b= rd.break=`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c := Parse(s)
		if c == nil {
			t.Fatal("Parse returned nil")
		}
	})
}

// TestUsr: systemd's mount.usr=, mount.usrfstype= and mount.usrflags= as
// systemd-fstab-generator reads them: the last device and type win, flags
// accumulate, an empty value unsets, "fstab" asks for the root's fstab.
func TestUsr(t *testing.T) {
	for _, tc := range []struct {
		in            string
		usr           string // Usr.String(), "" for none
		fstab         bool
		fstype, flags string
		warnings      int
	}{
		{"root=/dev/vda1", "", false, "", "", 0},
		{"mount.usr=/dev/vdb mount.usrfstype=ext4 mount.usrflags=noatime", "/dev/vdb", false, "ext4", "noatime", 0},
		{"mount.usr=UUID=1234 mount.usr=LABEL=usr", "LABEL=usr", false, "", "", 0},
		{"mount.usr=PARTUUID=6e2c3a1e-1111-4a2b-8c3d-0123456789ab", "PARTUUID=6e2c3a1e-1111-4a2b-8c3d-0123456789ab", false, "", "", 0},
		{"mount.usr=/dev/mapper/usr_crypt mount.usr=", "", false, "", "", 0},
		{"mount.usrflags=subvol=@usr mount.usrflags=noatime,ro mount.usrflags=", "", false, "", "subvol=@usr,noatime,ro", 0},
		{"mount.usr=/dev/vdb mount.usr=fstab mount.usrfstype=xfs", "", true, "xfs", "", 0},
		{"mount.usr=gpt-auto", "", false, "", "", 1},
		{"mount.usr=/dev/nfs", "", false, "", "", 1},
		{"mount.usr=live:/dev/sr0", "", false, "", "", 1},
		{"mount.usr=/srv/usr", "", false, "", "", 1},
		{"mount.usr=bogus", "", false, "", "", 1},
	} {
		c := Parse(tc.in)
		usr := ""
		if c.Usr.Kind != None {
			usr = c.Usr.String()
		}
		if usr != tc.usr || c.UsrFstab != tc.fstab || c.UsrFSType != tc.fstype || c.UsrFlags != tc.flags || len(c.Warnings) != tc.warnings {
			t.Errorf("Parse(%q) = usr %q fstab %v type %q flags %q warnings %q; want %q %v %q %q, %d warnings",
				tc.in, usr, c.UsrFstab, c.UsrFSType, c.UsrFlags, c.Warnings, tc.usr, tc.fstab, tc.fstype, tc.flags, tc.warnings)
		}
		if len(c.ModuleParams["mount"]) != 0 {
			t.Errorf("Parse(%q): mount.usr* taken for module options %q", tc.in, c.ModuleParams["mount"])
		}
	}
}
