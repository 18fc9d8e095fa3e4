package stage0

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/internal/fstab"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/device"
)

// TestUsrSettings: mount.usr=, mount.usrfstype= and mount.usrflags= with
// systemd-fstab-generator's defaults (the root's device, type and flags
// once any of them is given).
func TestUsrSettings(t *testing.T) {
	host := &bootconf.Config{Root: bootconf.Root{Device: "UUID=host", FSType: "btrfs", Flags: "subvol=@"}}
	for _, tc := range []struct {
		line               string
		conf               *bootconf.Config
		dev, fsType, flags string // dev "" = no /usr from the command line
		warnings           int
		wantStep           bool // the fstab step is planned
	}{
		{"root=/dev/vda2", nil, "", "", "", 0, true},
		{"root=/dev/vda2 mount.usr=/dev/vdb", nil, "/dev/vdb", "", "", 0, true},
		{"root=/dev/vda2 rootfstype=ext4 rootflags=noatime mount.usr=LABEL=usr", nil, "LABEL=usr", "ext4", "noatime", 0, true},
		{"root=/dev/vda2 rootfstype=ext4 mount.usr=/dev/vdb mount.usrfstype=xfs mount.usrflags=nodev", nil, "/dev/vdb", "xfs", "nodev", 0, true},
		{"root=/dev/vda2 mount.usr=/dev/vdb mount.usrfstype=auto", nil, "/dev/vdb", "", "", 0, true},
		// A /usr that differs from the root only in options: the root's device.
		{"root=UUID=r rootfstype=btrfs rootflags=subvol=@ mount.usrflags=subvol=@usr", nil, "UUID=r", "btrfs", "subvol=@usr", 0, true},
		{"mount.usrflags=subvol=@usr", host, "UUID=host", "btrfs", "subvol=@usr", 0, true},
		{"mount.usr=fstab mount.usrflags=x", nil, "", "", "", 0, true},
		{"rd.fstab=0 root=/dev/vda2", nil, "", "", "", 0, false},
		{"rd.fstab=0 root=/dev/vda2 mount.usr=/dev/vdb", nil, "/dev/vdb", "", "", 0, true},
		{"mount.usrfstype=ext4", &bootconf.Config{}, "", "", "", 1, true},
		{"root=live:CDLABEL=x mount.usrfstype=ext4", &bootconf.Config{}, "", "", "", 1, false},
	} {
		conf := tc.conf
		if conf == nil {
			conf = &bootconf.Config{}
		}
		c := cmdline.Parse(tc.line)
		s, err := settings(c, conf)
		if err != nil {
			t.Fatalf("settings(%q) = %v", tc.line, err)
		}
		dev := ""
		if s.Usr.Device.Kind != cmdline.None {
			dev = s.Usr.Device.String()
		}
		if dev != tc.dev || s.Usr.FSType != tc.fsType || s.Usr.Flags != tc.flags || len(s.Usr.Warnings)+len(s.Live.Warnings) != tc.warnings {
			t.Errorf("settings(%q).Usr = %q %q %q, warnings %q; want %q %q %q, %d warnings",
				tc.line, dev, s.Usr.FSType, s.Usr.Flags, append(s.Usr.Warnings, s.Live.Warnings...), tc.dev, tc.fsType, tc.flags, tc.warnings)
		}
		steps, _ := plan(s, c)
		has := slices.ContainsFunc(steps, func(st step) bool { _, ok := st.(fstabStep); return ok })
		if has != tc.wantStep {
			t.Errorf("plan(%q) has the fstab step: %v", tc.line, has)
		}
	}
}

func TestInitrdMounts(t *testing.T) {
	entries := []fstab.Entry{
		{Spec: "/dev/vda2", File: "/", Type: "ext4"},
		{Spec: "tmpfs", File: "/usr/local", Type: "tmpfs", Options: "x-initrd.mount"},
		{Spec: "LABEL=usr", File: "/usr", Type: "ext4", Line: 3},
		{Spec: "/dev/vdc", File: "/srv", Type: "ext4", Options: "defaults"},
		{Spec: "/dev/vdd", File: "/var", Type: "ext4", Options: "x-initrd.mount"},
	}
	usr := &fstab.Entry{Spec: "/dev/vdb", File: "/usr", Type: "auto"}
	for _, tc := range []struct {
		name    string
		entries []fstab.Entry
		usr     *fstab.Entry
		want    []string
	}{
		{"fstab", entries, nil, []string{"LABEL=usr /usr", "/dev/vdd /var", "tmpfs /usr/local"}},
		{"mount.usr= replaces the fstab's /usr", entries, usr, []string{"/dev/vdd /var", "/dev/vdb /usr", "tmpfs /usr/local"}},
		{"mount.usr= alone", nil, usr, []string{"/dev/vdb /usr"}},
		{"nothing", entries[:1], nil, nil},
	} {
		var got []string
		for _, e := range initrdMounts(tc.entries, tc.usr) {
			got = append(got, e.Spec+" "+e.File)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: initrdMounts = %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestUsrMode(t *testing.T) {
	for _, tc := range []struct{ opts, root, want string }{
		{"", "", ""},
		{"", "ro", "ro"},
		{"noatime", "rw", "rw"},
		{"noatime,rw", "ro", ""}, // mount.usrflags= says rw: it wins
		{"ro", "rw", ""},
	} {
		if got := usrMode(tc.opts, tc.root); got != tc.want {
			t.Errorf("usrMode(%q, %q) = %q, want %q", tc.opts, tc.root, got, tc.want)
		}
	}
}

// TestBootUsrCmdline: mount.usr= wins over the fstab's /usr, works with
// rd.fstab=0, and takes the root's device, type and flags by default.
func TestBootUsrCmdline(t *testing.T) {
	const tab = "/dev/vda2 / ext4 defaults 0 1\nLABEL=usr /usr ext4 defaults 0 0\n"
	other := device.Device{Name: "vdc", Node: "/dev/vdc", Major: 254, Minor: 32, Size: 1 << 30,
		Info: &blkid.Info{Type: "xfs", Usage: blkid.UsageFilesystem, UUID: "7d1c0000-3333-4f0b-9d55-0a6c6c1f2b33"}}
	for _, tc := range []struct {
		name, line string
		want       []string // mounts under /sysroot and fscks, in order
	}{
		{"fstab's /usr", "root=/dev/vda2 fsck.mode=skip", []string{
			"mount /dev/vda2 on /sysroot type ext4 (ro)",
			"mount /dev/vdb on /sysroot/usr type ext4 (ro)",
		}},
		{"mount.usr= wins, probed type, checked", "root=/dev/vda2 mount.usr=/dev/vdc", []string{
			"fsck /usr/sbin/fsck.ext4 -a /dev/vda2",
			"mount /dev/vda2 on /sysroot type ext4 (ro)",
			"mount /dev/vdc on /sysroot/usr type xfs (ro)",
		}},
		{"mount.usr= with rd.fstab=0, flags and rw", "root=/dev/vda2 rw rd.fstab=0 fsck.mode=skip mount.usr=UUID=7d1c0000-3333-4f0b-9d55-0a6c6c1f2b33 mount.usrflags=nodev mount.usrfstype=xfs", []string{
			"mount /dev/vda2 on /sysroot type ext4 (rw)",
			"mount /dev/vdc on /sysroot/usr type xfs (nodev)", // rw
		}},
		{"mount.usrflags= rw wins over ro", "root=/dev/vda2 ro fsck.mode=skip mount.usr=/dev/vdc mount.usrflags=rw", []string{
			"mount /dev/vda2 on /sysroot type ext4 (ro)",
			"mount /dev/vdc on /sysroot/usr type xfs (rw)",
		}},
		{"root's device, type and flags", "root=/dev/vda2 rootfstype=ext4 rootflags=noatime fsck.mode=skip mount.usrflags=nodev", []string{
			"mount /dev/vda2 on /sysroot type ext4 (ro,noatime)",
			"mount /dev/vda2 on /sysroot/usr type ext4 (ro,nodev)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{devs: []device.Device{rootDev("ext4"), usrDev("vdb", "/dev/vdb"), other},
				files: map[string]string{"/sysroot/etc/fstab": tab}}
			r := runBoot(t, f, tc.line, nil)
			if r.err != nil || f.switched == nil || len(f.callsMatching("shell")) != 0 {
				t.Fatalf("boot = %v, switched %v, calls %q\n%s", r.err, f.switched, f.calls, r.console)
			}
			var got []string
			for _, c := range f.calls {
				if strings.HasPrefix(c, "mount /dev/") || strings.HasPrefix(c, "fsck") {
					got = append(got, c)
				}
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("calls =\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

const (
	usrLUKS   = "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
	usrFS     = "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9"
	otherLUKS = "2c3d4e5f-6071-4829-93a4-b5c6d7e8f90a"
)

// TestBootUsrLUKS: a /usr in a LUKS container that the root's crypttab
// lists (or rd.luks.name=/rd.luks.uuid= name) is opened under that name,
// with its keyfile from the root or the passphrase, then mounted; other
// containers stay locked.
func TestBootUsrLUKS(t *testing.T) {
	const usrTab = "usr_crypt UUID=" + usrLUKS + " none luks,discard\nhome_crypt UUID=" + otherLUKS + " none luks,noauto\n"
	byName := "/dev/mapper/usr_crypt /usr ext4 defaults 0 0\n"
	byUUID := "UUID=" + usrFS + " /usr ext4 defaults 0 0\n"
	open := func(extra string) string {
		return "/usr/sbin/cryptsetup open --type luks --disable-external-tokens --disable-locks --key-file=- " + extra
	}
	isLuks := "/usr/sbin/cryptsetup isLuks --verbose --disable-locks /dev/vdb"
	for _, tc := range []struct {
		name, line, crypttab, fstab string
		files                       map[string]string
		typed                       []string
		expire                      bool
		wantRuns                    []string // substrings of the commands run, in order
		wantUsr                     string   // the source mounted on /sysroot/usr; "" = none
		wantSaid                    string
	}{
		{"fstab names the crypttab mapping", "", usrTab, byName, nil, []string{secretPass}, false,
			[]string{isLuks, open("--allow-discards /dev/vdb usr_crypt")}, "/dev/mapper/usr_crypt", "is locked"},
		{"fstab names the filesystem inside", "", usrTab, byUUID, nil, []string{secretPass}, false,
			[]string{isLuks, open("--allow-discards /dev/vdb usr_crypt")}, "/dev/mapper/usr_crypt", ""},
		{"keyfile in the root", "", "usr_crypt /dev/vdb /etc/keys/usr.key luks\n", byName,
			map[string]string{"/sysroot/etc/keys/usr.key": secretPass}, nil, false,
			[]string{isLuks, open("/dev/vdb usr_crypt")}, "/dev/mapper/usr_crypt", "unlocking with keyfile"},
		{"keyfile missing: passphrase", "", "usr_crypt /dev/vdb /etc/keys/usr.key luks\n", byName, nil, []string{secretPass}, false,
			[]string{isLuks, open("/dev/vdb usr_crypt")}, "/dev/mapper/usr_crypt", "/sysroot/etc/crypttab line 1: cannot read the keyfile /sysroot/etc/keys/usr.key"},
		{"rd.luks.name=", "rd.luks.name=" + usrLUKS + "=usr", "", "/dev/mapper/usr /usr ext4 defaults 0 0\n", nil, []string{secretPass}, false,
			[]string{isLuks, open("/dev/vdb usr")}, "/dev/mapper/usr", ""},
		{"rd.luks.uuid=, filesystem UUID", "rd.luks.uuid=" + usrLUKS, "", byUUID, nil, []string{secretPass}, false,
			[]string{isLuks, open("/dev/vdb luks-" + usrLUKS)}, "/dev/mapper/luks-" + usrLUKS, ""},
		{"noauto entry named by fstab", "", "usr_crypt UUID=" + usrLUKS + " none noauto\n", byName, nil, []string{secretPass}, false,
			[]string{isLuks, open("/dev/vdb usr_crypt")}, "/dev/mapper/usr_crypt", ""},
		{"not in any crypttab: left locked", "rd.shell=0", "", byUUID, nil, nil, true,
			nil, "", "UUID=" + usrFS + " did not appear within 30s"},
		{"rd.luks=0 explains", "rd.luks=0 rd.shell=0", usrTab, byName, nil, nil, true,
			nil, "", "it is the LUKS mapping of UUID=" + usrLUKS + " (crypttab line 1), and LUKS unlocking is off"},
		{"mount.usr= names the crypttab mapping", "mount.usr=/dev/mapper/usr_crypt", usrTab, "", nil, []string{secretPass}, false,
			[]string{isLuks, open("--allow-discards /dev/vdb usr_crypt")}, "/dev/mapper/usr_crypt", ""},
		{"mount.usr= names the container", "mount.usr=UUID=" + usrLUKS + " mount.usrfstype=ext4", "", byName, nil, []string{secretPass}, false,
			[]string{isLuks, open("/dev/vdb luks-" + usrLUKS)}, "/dev/mapper/luks-" + usrLUKS, "mount.usr= names a LUKS container"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{expire: tc.expire, devs: []device.Device{rootDev("ext4"), containerDev("vdb", "crypto_LUKS", usrLUKS), containerDev("vdc", "crypto_LUKS", otherLUKS)}}
			files := map[string]string{"/sysroot/etc/fstab": "/dev/vda2 / ext4 defaults 0 1\n" + tc.fstab, "/sysroot/etc/crypttab": tc.crypttab}
			for k, v := range tc.files {
				files[k] = v
			}
			w := &dmWorld{f: f, typed: tc.typed, files: files, containers: map[string]fakeContainer{
				"/dev/vdb": {uuid: usrLUKS, fsUUID: usrFS, kernel: "dm-3", dev: "253:3"},
				"/dev/vdc": {uuid: otherLUKS, fsUUID: "0", kernel: "dm-4", dev: "253:4"},
			}}
			r := runDMBoot(t, w, "root=/dev/vda2 fsck.mode=skip "+tc.line, &bootconf.Config{Features: []string{"luks"}})
			if len(w.runs) != len(tc.wantRuns) {
				t.Errorf("ran %q, want %d commands like %q", w.runs, len(tc.wantRuns), tc.wantRuns)
			}
			for i := range w.runs {
				if i < len(tc.wantRuns) && !strings.Contains(w.runs[i], tc.wantRuns[i]) {
					t.Errorf("command %d = %q, want it to contain %q", i, w.runs[i], tc.wantRuns[i])
				}
			}
			gotUsr := ""
			for _, m := range f.callsMatching("mount ") {
				if strings.Contains(m, " on /sysroot/usr ") {
					gotUsr = strings.Fields(m)[1]
				}
			}
			if gotUsr != tc.wantUsr {
				t.Errorf("/usr mounted from %q, want %q (err %v)\nconsole:\n%s", gotUsr, tc.wantUsr, r.err, r.console)
			}
			if tc.wantUsr != "" && (r.err != nil || f.switched == nil) {
				t.Errorf("boot = %v, switched %v", r.err, f.switched)
			}
			all := r.console + r.file + strings.Join(f.callsMatching("say "), "\n")
			if tc.wantSaid != "" && !strings.Contains(all, tc.wantSaid) {
				t.Errorf("console lacks %q:\n%s", tc.wantSaid, all)
			}
			if strings.Contains(all, secretPass) {
				t.Errorf("the passphrase appears on the console:\n%s", all)
			}
		})
	}
}

// TestBootUsrLVM: a /usr on a logical volume that rd.lvm.lv= leaves out is
// activated by name before any other container of the root's crypttab is
// opened, and again once the container holding its volume group is open.
func TestBootUsrLVM(t *testing.T) {
	const lvchange = "/usr/sbin/lvm lvchange -ay --sysinit --config "
	isLuks := func(dev string) string { return "/usr/sbin/cryptsetup isLuks --verbose --disable-locks " + dev }
	for _, tc := range []struct {
		name, crypttab, fstab string
		devs                  []device.Device
		typed                 []string
		wantRuns              []string // substrings of the commands run, in order
		wantLast              []string // the last field of each command
	}{
		{"volume group there: other containers stay locked", "home_crypt UUID=" + otherLUKS + " none luks\n",
			"/dev/vg/root /usr ext4 defaults 0 0\n",
			[]device.Device{containerDev("vdd", "LVM2_member", "pv"), containerDev("vdc", "crypto_LUKS", otherLUKS)}, nil,
			[]string{lvchange}, []string{"vg/root"}},
		{"volume group in a crypttab container", "pv_crypt UUID=" + usrLUKS + " none luks\n",
			"/dev/vg/root /usr ext4 defaults 0 0\n",
			[]device.Device{containerDev("vdb", "crypto_LUKS", usrLUKS)}, []string{secretPass},
			[]string{lvchange, isLuks("/dev/vdb"), "cryptsetup open", lvchange, lvchange},
			[]string{"vg/root", "/dev/vdb", "pv_crypt", "vg/other", "vg/root"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{devs: append([]device.Device{rootDev("ext4")}, tc.devs...)}
			w := &dmWorld{f: f, typed: tc.typed, needPV: true, files: map[string]string{
				"/sysroot/etc/fstab":    "/dev/vda2 / ext4 defaults 0 1\n" + tc.fstab,
				"/sysroot/etc/crypttab": tc.crypttab,
			}, containers: map[string]fakeContainer{
				"/dev/vdb": {uuid: usrLUKS, kernel: "dm-3", dev: "253:3", pv: true},
				"/dev/vdc": {uuid: otherLUKS, fsUUID: "0", kernel: "dm-4", dev: "253:4"},
			}}
			r := runDMBoot(t, w, "root=/dev/vda2 fsck.mode=skip rd.lvm.lv=vg/other", &bootconf.Config{Features: []string{"luks", "lvm"}})
			if len(w.runs) != len(tc.wantRuns) {
				t.Fatalf("ran %q, want %d commands like %q\nconsole:\n%s", w.runs, len(tc.wantRuns), tc.wantRuns, r.console)
			}
			for i, run := range w.runs {
				f := strings.Fields(run)
				if !strings.Contains(run, tc.wantRuns[i]) || f[len(f)-1] != tc.wantLast[i] {
					t.Errorf("command %d = %q, want it to contain %q and end in %q", i, run, tc.wantRuns[i], tc.wantLast[i])
				}
			}
			if !slices.Contains(f.callsMatching("mount "), "mount /dev/vg/root on /sysroot/usr type ext4 (ro)") || r.err != nil || f.switched == nil {
				t.Errorf("boot = %v, switched %v, mounts %q\nconsole:\n%s", r.err, f.switched, f.callsMatching("mount "), r.console)
			}
		})
	}
}
