package stage0

import (
	"context"
	"io/fs"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/dm"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

const (
	luksUUID   = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
	secretPass = "hunter2-secret"
)

// dmWorld is a fake device-mapper: cryptsetup accepts secretPass and
// makes the mapping appear with the root filesystem in it; lvm makes the
// logical volume vg/root appear, holding the root filesystem or, with
// lukslv set, a LUKS container; lvm lvs lists vg/root and vg/swap.
type dmWorld struct {
	f         *fakeSys
	mu        sync.Mutex
	maps      []dm.Mapping
	typed     []string
	runs      []string
	files     map[string]string // image files
	keyDev    map[string]string // "NODE:PATH" on key devices
	lukslv    bool              // vg/root holds LUKS (luksUUID), not the filesystem
	swaplv    bool              // vg/swap (dm-2) appears too, holding a hibernation image
	badHeader bool              // isLuks fails
	mounted   []string          // key device reads
	needPV    bool              // lvm activates nothing until a physical volume is there
	// containers are LUKS containers other than luksUUID's, by node:
	// opening one makes its mapping appear with an ext4 filesystem.
	containers map[string]fakeContainer
}

// fakeContainer is a LUKS container of dmWorld and what is inside: an
// ext4 filesystem (fsUUID), or an LVM physical volume when pv is set.
type fakeContainer struct {
	uuid, fsUUID, kernel, dev string
	pv                        bool
}

func (w *dmWorld) system() machine.Machine {
	return machine.Machine{
		Run: func(_ context.Context, argv, env []string, stdin []byte) ([]byte, int, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.runs = append(w.runs, strings.Join(argv, " "))
			switch {
			case strings.HasSuffix(argv[0], "/cryptsetup") && argv[1] == "isLuks":
				if w.badHeader {
					return []byte("Device /dev/vda is not a valid LUKS device."), 1, nil
				}
			case strings.HasSuffix(argv[0], "/cryptsetup"):
				if string(stdin) != secretPass {
					return []byte("No key available with this passphrase."), 2, nil
				}
				name := argv[len(argv)-1]
				c, ok := w.containers[argv[len(argv)-2]]
				if !ok {
					c = fakeContainer{uuid: luksUUID, fsUUID: rootUUID, kernel: "dm-0", dev: "253:0"}
				}
				w.maps = append(w.maps, dm.Mapping{Kernel: c.kernel, Name: name, UUID: "CRYPT-LUKS2-" + strings.ReplaceAll(c.uuid, "-", "") + "-" + name, Dev: c.dev})
				if c.pv {
					w.appendDev(containerDev(c.kernel, "LVM2_member", c.uuid))
				} else {
					w.addDev(c.kernel, "/dev/mapper/"+name, name, "ext4", c.fsUUID)
				}
				if slices.Contains(argv, "--readonly") {
					w.f.mu.Lock()
					w.f.devs[len(w.f.devs)-1].ReadOnly = true
					w.f.mu.Unlock()
				}
			case strings.HasSuffix(argv[0], "/lvm") && argv[1] == "lvs":
				return []byte("  vg/root\n  vg/swap\n"), 0, nil
			case strings.HasSuffix(argv[0], "/lvm") && (w.needPV && !w.hasPV() || namesOtherLVs(argv)):
			case strings.HasSuffix(argv[0], "/lvm"):
				w.maps = append(w.maps, dm.Mapping{Kernel: "dm-1", Name: "vg-root", UUID: "LVM-x", Dev: "253:1"})
				if w.lukslv {
					w.appendDev(containerDev("dm-1", "crypto_LUKS", luksUUID))
				} else {
					w.addDev("dm-1", "/dev/vg/root", "vg-root", "ext4", rootUUID)
				}
				if w.swaplv {
					w.appendDev(device.Device{Name: "dm-2", Node: "/dev/vg/swap", Major: 253, Minor: 2, DMName: "vg-swap",
						Info: &blkid.Info{Type: "swsuspend", Usage: blkid.UsageOther, UUID: swapUUID}})
				}
			}
			return nil, 0, nil
		},
		Ask: func(context.Context, string) ([]byte, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			if len(w.typed) == 0 {
				return nil, context.Canceled
			}
			l := w.typed[0]
			w.typed = w.typed[1:]
			return []byte(l), nil
		},
		Say: func(line string) { w.f.record("say %s", line) },
		ReadFile: func(p string) ([]byte, error) {
			if s, ok := w.files[p]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		},
		ReadDeviceFile: func(_ context.Context, node, fsType, path string) ([]byte, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.mounted = append(w.mounted, node+" "+fsType+" "+path)
			if s, ok := w.keyDev[node+":"+path]; ok {
				return []byte(s), nil
			}
			return nil, fs.ErrNotExist
		},
		Mappings: func() ([]dm.Mapping, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			return append([]dm.Mapping(nil), w.maps...), nil
		},
		LinkMappings: func(maps []dm.Mapping) error { w.f.record("link %d mappings", len(maps)); return nil },
		RenameDM: func(old, name string) error {
			w.f.record("rename %s %s", old, name)
			w.mu.Lock()
			defer w.mu.Unlock()
			for i := range w.maps {
				if w.maps[i].Name == old {
					w.maps[i].Name = name
				}
			}
			return nil
		},
	}
}

func (w *dmWorld) addDev(name, node, dmName, typ, uuid string) {
	w.appendDev(device.Device{Name: name, Node: node, Major: 253, Size: 1 << 30, DMName: dmName,
		Info: &blkid.Info{Type: typ, Usage: blkid.UsageFilesystem, UUID: uuid}})
}

// appendDev makes d appear among the fake machine's devices.
func (w *dmWorld) appendDev(d device.Device) {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	w.f.devs = append(w.f.devs, d)
}

// ran is the number of commands run so far.
func (w *dmWorld) ran() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.runs)
}

// hasPV reports whether an LVM physical volume is among the devices.
func (w *dmWorld) hasPV() bool {
	w.f.mu.Lock()
	defer w.f.mu.Unlock()
	return slices.ContainsFunc(w.f.devs, func(d device.Device) bool { return d.Info != nil && d.Info.Type == "LVM2_member" })
}

// namesOtherLVs reports whether an lvm command line names logical volumes
// but not vg/root, the only one dmWorld has.
func namesOtherLVs(argv []string) bool {
	return slices.ContainsFunc(argv, func(a string) bool { return strings.HasPrefix(a, "vg/") }) && !slices.Contains(argv, "vg/root")
}

func containerDev(name, typ, uuid string) device.Device {
	usage := blkid.UsageCrypto
	if typ == "LVM2_member" {
		usage = blkid.UsageRaid
	}
	return device.Device{Name: name, Node: "/dev/" + name, Major: 254, Size: 1 << 30, Info: &blkid.Info{Type: typ, Usage: usage, UUID: uuid}}
}

// runDMBoot is runBoot with the fake device-mapper and the luks and lvm
// tools in the image.
func runDMBoot(t *testing.T, w *dmWorld, line string, conf *bootconf.Config) result {
	t.Helper()
	return runBootWith(t, w.f, line, conf, func(sys *machine.Machine) {
		d := w.system()
		sys.Run, sys.Ask, sys.Say, sys.ReadFile = d.Run, d.Ask, d.Say, d.ReadFile
		sys.ReadDeviceFile, sys.Mappings, sys.LinkMappings, sys.RenameDM = d.ReadDeviceFile, d.Mappings, d.LinkMappings, d.RenameDM
		exists := sys.Exists
		sys.Exists = func(p string) bool { return p == "/usr/sbin/cryptsetup" || p == "/usr/sbin/lvm" || exists(p) }
	})
}

func TestBootStorage(t *testing.T) {
	both := &bootconf.Config{Features: []string{"luks", "lvm"}, Fsck: map[string]string{"ext4": "/usr/sbin/fsck.ext4"}}
	luksDev := []device.Device{containerDev("vda", "crypto_LUKS", luksUUID)}
	pvDev := []device.Device{containerDev("vda", "LVM2_member", "pv-uuid")}
	keydisk := device.Device{Name: "vdb", Node: "/dev/vdb", Major: 254, Minor: 16, Size: 1 << 20,
		Info: &blkid.Info{Type: "vfat", Usage: blkid.UsageFilesystem, Label: "keydisk"}}
	isLuks := "/usr/sbin/cryptsetup isLuks --verbose --disable-locks /dev/vda"
	open := func(extra string) string {
		return "/usr/sbin/cryptsetup open --type luks --disable-external-tokens --disable-locks --key-file=- " + extra
	}
	tab := func(line string) map[string]string { return map[string]string{"/etc/crypttab": line} }
	tests := []struct {
		name     string
		devs     []device.Device
		typed    []string
		line     string
		conf     *bootconf.Config
		expire   bool
		setup    func(w *dmWorld)
		wantRuns []string // substrings of the commands run, in order
		wantRoot string   // node mounted on /sysroot; "" = no mount
		wantSaid string   // substring of a console line (say or log)
	}{
		{"luks by filesystem uuid", luksDev, []string{secretPass}, "root=UUID=" + rootUUID, both, false, nil,
			[]string{isLuks, open("/dev/vda luks-" + luksUUID)}, "/dev/mapper/luks-" + luksUUID, "is locked"},
		{"root= names the container", luksDev, []string{"wrong", secretPass}, "root=UUID=" + luksUUID, both, false, nil,
			[]string{isLuks, "cryptsetup open", "cryptsetup open"}, "/dev/mapper/luks-" + luksUUID, "wrong passphrase"},
		{"rd.luks.name", luksDev, []string{secretPass}, "root=/dev/mapper/cr rd.luks.name=" + luksUUID + "=cr", both, false, nil,
			[]string{isLuks, "/dev/vda cr"}, "/dev/mapper/cr", ""},
		{"lvm by path", pvDev, nil, "root=/dev/vg/root", both, false, nil,
			[]string{"/usr/sbin/lvm vgchange -ay --sysinit --config " + dm.LVMConfig, "/usr/sbin/lvm lvs"}, "/dev/vg/root", ""},
		{"lvm by filesystem uuid, rd.lvm.lv", pvDev, nil, "root=UUID=" + rootUUID + " rd.lvm.lv=vg/root", both, false, nil,
			[]string{"/usr/sbin/lvm lvchange -ay --sysinit --config " + dm.LVMConfig + " vg/root"}, "/dev/vg/root", ""},
		{"luks on lvm", pvDev, []string{secretPass}, "root=UUID=" + rootUUID, both, false, func(w *dmWorld) { w.lukslv = true },
			[]string{"lvm vgchange", "cryptsetup isLuks --verbose --disable-locks /dev/dm-1", open("/dev/dm-1 luks-" + luksUUID)}, "/dev/mapper/luks-" + luksUUID, "is locked"},
		{"rd.lvm=0", pvDev, nil, "root=/dev/vg/root rd.lvm=0 rd.shell=0", both, true, nil,
			nil, "", "timed out"},
		{"missing logical volume", pvDev, nil, "root=/dev/vg/nope rd.shell=0", both, false, nil,
			[]string{"lvm vgchange", "lvm lvs"}, "", "root=/dev/vg/nope: the volume group vg has no logical volume nope (logical volumes found: vg/root, vg/swap)"},
		{"missing volume group lists the volumes at the timeout", pvDev, nil, "root=/dev/other/root rd.shell=0", both, true, nil,
			[]string{"lvm vgchange", "lvm lvs", "lvm lvs"}, "", "timed out waiting for the root device /dev/other/root after 30s; no logical volume other/root (logical volumes found: vg/root, vg/swap)"},
		{"other container not unlocked", luksDev, nil, "root=UUID=" + rootUUID + " rd.luks.uuid=0000 rd.shell=0", both, true, nil,
			nil, "", "LUKS container rd.luks.uuid=0000 not found"},
		{"no luks feature", luksDev, nil, "root=UUID=" + rootUUID + " rd.luks.uuid=" + luksUUID + " rd.shell=0", &bootconf.Config{}, true, nil,
			nil, "", "this image has no luks feature"},
		{"three wrong passphrases", luksDev, []string{"a", "b", "c"}, "root=UUID=" + rootUUID + " rd.shell=0", both, false, nil,
			[]string{isLuks, "cryptsetup", "cryptsetup", "cryptsetup"}, "", "wrong passphrase for LUKS container UUID=" + luksUUID + " on /dev/vda after 3 tries"},
		{"damaged header", luksDev, []string{secretPass}, "root=UUID=" + rootUUID + " rd.shell=0", both, false, func(w *dmWorld) { w.badHeader = true },
			[]string{isLuks}, "", "LUKS header unreadable: cryptsetup cannot read the header of LUKS container UUID=" + luksUUID + " on /dev/vda"},
		{"crypttab name, keyfile and options", luksDev, nil, "root=UUID=" + rootUUID, both, false, func(w *dmWorld) {
			w.files = tab("# root\ncr UUID=" + luksUUID + " /etc/k luks,discard,bogus\n")
			w.files["/etc/k"] = secretPass
		}, []string{isLuks, open("--allow-discards /dev/vda cr")}, "/dev/mapper/cr", "options not supported, ignored: bogus"},
		{"crypttab by device path, keyfile-offset", luksDev, nil, "root=UUID=" + rootUUID, both, false, func(w *dmWorld) {
			w.files = tab("cr /dev/vda /etc/k keyfile-offset=3,readonly\n")
			w.files["/etc/k"] = "xyz" + secretPass
		}, []string{isLuks, open("--readonly /dev/vda cr")}, "/dev/mapper/cr", ""},
		{"command line over crypttab", luksDev, nil, "root=UUID=" + rootUUID + " rd.luks.name=" + luksUUID + "=cmd rd.luks.key=/etc/k2 rd.luks.options=" + luksUUID + "=readonly", both, false, func(w *dmWorld) {
			w.files = tab("cr UUID=" + luksUUID + " /etc/k discard\n")
			w.files["/etc/k"], w.files["/etc/k2"] = "wrong", secretPass
		}, []string{isLuks, open("--readonly /dev/vda cmd")}, "/dev/mapper/cmd", ""},
		{"rd.luks.crypttab=0", luksDev, []string{secretPass}, "root=UUID=" + rootUUID + " rd.luks.crypttab=0", both, false, func(w *dmWorld) {
			w.files = tab("cr UUID=" + luksUUID + " /etc/k discard\n")
			w.files["/etc/k"] = secretPass
		}, []string{isLuks, open("/dev/vda luks-" + luksUUID)}, "/dev/mapper/luks-" + luksUUID, "is locked"},
		{"key device", append(luksDev[:1:1], keydisk), nil, "root=UUID=" + rootUUID + " rd.luks.key=/keys/root.key:LABEL=keydisk rd.luks.options=discard", both, false, func(w *dmWorld) {
			w.keyDev = map[string]string{"/dev/vdb:/keys/root.key": secretPass}
		}, []string{isLuks, open("--allow-discards /dev/vda luks-" + luksUUID)}, "/dev/mapper/luks-" + luksUUID, "reading a keyfile from its key device"},
		{"key device missing: passphrase", luksDev, []string{secretPass}, "root=UUID=" + rootUUID + " rd.luks.key=/keys/root.key:LABEL=keydisk", both, true, nil,
			[]string{isLuks, open("/dev/vda luks-" + luksUUID)}, "/dev/mapper/luks-" + luksUUID, "key device not found: LABEL=keydisk did not appear within 15s"},
		{"key not on the key device", append(luksDev[:1:1], keydisk), nil, "root=UUID=" + rootUUID + " rd.luks.key=/nope:LABEL=keydisk rd.shell=0", both, false, nil,
			[]string{isLuks}, "", "rd.luks.key=/nope:LABEL=keydisk: cannot read the keyfile /nope:LABEL=keydisk"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{devs: tc.devs, expire: tc.expire}
			w := &dmWorld{f: f, typed: tc.typed}
			if tc.setup != nil {
				tc.setup(w)
			}
			r := runDMBoot(t, w, tc.line, tc.conf)
			if len(w.runs) != len(tc.wantRuns) {
				t.Errorf("ran %q, want %d commands like %q", w.runs, len(tc.wantRuns), tc.wantRuns)
			}
			for i := range w.runs {
				if i < len(tc.wantRuns) && !strings.Contains(w.runs[i], tc.wantRuns[i]) {
					t.Errorf("command %d = %q, want it to contain %q", i, w.runs[i], tc.wantRuns[i])
				}
			}
			mounts := f.callsMatching("mount ")
			gotRoot := ""
			for _, m := range mounts {
				if strings.Contains(m, " on /sysroot") {
					gotRoot = strings.Fields(m)[1]
				}
			}
			if gotRoot != tc.wantRoot {
				t.Errorf("root mounted from %q, want %q (err %v)\nconsole:\n%s", gotRoot, tc.wantRoot, r.err, r.console)
			}
			all := r.console + strings.Join(f.callsMatching("say "), "\n")
			if tc.wantSaid != "" && !strings.Contains(all, tc.wantSaid) {
				t.Errorf("console lacks %q:\n%s", tc.wantSaid, all)
			}
			if strings.Contains(all, secretPass) {
				t.Errorf("the passphrase appears on the console:\n%s", all)
			}
			// A read-only mapping cannot be checked: fsck would fail.
			readonly := slices.ContainsFunc(w.runs, func(r string) bool { return strings.Contains(r, "--readonly") })
			if fsck := f.callsMatching("fsck "); readonly && len(fsck) > 0 {
				t.Errorf("ran %q on a read-only root, want no check", fsck)
			}
		})
	}
}

// TestBootUdevRecords: every device-mapper device stage0 made gets the
// udev database record that makes the real root's dm rules treat it as
// set up (REFERENCE.md §9), written on /run before switch_root; a plain
// root gets none.
func TestBootUdevRecords(t *testing.T) {
	both := &bootconf.Config{Features: []string{"luks", "lvm"}}
	f := &fakeSys{devs: []device.Device{containerDev("vda", "LVM2_member", "pv-uuid")}}
	w := &dmWorld{f: f, typed: []string{secretPass}, lukslv: true}
	r := runDMBoot(t, w, "root=UUID="+rootUUID+" rd.lvm.lv=vg/root", both)
	if r.err != nil || f.switched == nil {
		t.Fatalf("boot = %v, switched %v\n%s", r.err, f.switched, r.console)
	}
	want := map[string]string{
		"/run/udev/data/b253:1": "E:DM_UDEV_PRIMARY_SOURCE_FLAG=1\n", // vg-root, the LV
		"/run/udev/data/b253:0": "E:DM_UDEV_PRIMARY_SOURCE_FLAG=1\n", // the LUKS mapping in it
	}
	if !maps.Equal(f.written, want) {
		t.Errorf("files written = %q, want %q", f.written, want)
	}
	for p, data := range f.written {
		if strings.Contains(data, "DISABLE") || strings.Contains(data, "DM_NOSCAN") || strings.HasPrefix(p, "/run/lvm/") {
			t.Errorf("wrote %s = %q: no disable flags, no LVM online markers", p, data)
		}
	}
	if a, b := f.indexOf("write /run/udev/data/"), f.indexOf("switch_root"); a < 0 || a > b {
		t.Errorf("records written at %d, switch_root at %d: want them before", a, b)
	}
	if !strings.Contains(r.file, "left udev database records for the device-mapper devices") {
		t.Errorf("log does not say it left the records:\n%s", r.file)
	}

	plain := &fakeSys{devs: []device.Device{rootDev("ext4")}}
	if r := runBoot(t, plain, "root=UUID="+rootUUID, nil); r.err != nil || len(plain.callsMatching("write /run/udev")) != 0 {
		t.Errorf("plain root: boot = %v, wrote %q; want no records", r.err, plain.written)
	}
}

func TestUdevRecordNeedsNumber(t *testing.T) {
	f := &fakeSys{devs: []device.Device{containerDev("vda", "LVM2_member", "pv-uuid")}}
	w := &dmWorld{f: f}
	r := runBootWith(t, f, "root=/dev/vg/root", &bootconf.Config{Features: []string{"lvm"}}, func(sys *machine.Machine) {
		d := w.system()
		sys.Run, sys.LinkMappings = d.Run, d.LinkMappings
		sys.Mappings = func() ([]machine.Mapping, error) {
			return []machine.Mapping{{Kernel: "dm-1", Name: "vg-root"}, {Kernel: "dm-2", Name: "vg-swap", Dev: "253:2"}}, nil
		}
		sys.Exists = func(p string) bool { return p == "/usr/sbin/lvm" }
	})
	if r.err != nil || f.switched == nil {
		t.Fatalf("boot = %v\n%s", r.err, r.console)
	}
	if _, ok := f.written["/run/udev/data/b253:2"]; !ok || len(f.written) != 1 {
		t.Errorf("written %q, want only b253:2", f.written)
	}
	if !strings.Contains(r.file, "no device number") {
		t.Errorf("log lacks the warning for dm-1:\n%s", r.file)
	}
}

// TestBootCrypttabNames: the LUKS mapping opened as luks-UUID gets the
// name the root's crypttab gives its container, so the root's
// systemd-cryptsetup finds it active instead of asking again; a name
// already taken or a container the crypttab does not list stays as is.
func TestBootCrypttabNames(t *testing.T) {
	conf := &bootconf.Config{Features: []string{"luks"}}
	for _, tc := range []struct {
		name, crypttab, line string
		want                 []string
	}{
		{"installer crypttab", "vda_crypt UUID=" + luksUUID + " none luks,discard\n", "root=UUID=" + rootUUID + " rd.luks.uuid=" + luksUUID,
			[]string{"rename luks-" + luksUUID + " vda_crypt"}},
		{"by device path", "# x\ncr /dev/vda none luks\n", "root=UUID=" + rootUUID, []string{"rename luks-" + luksUUID + " cr"}},
		{"same name", "luks-" + luksUUID + " UUID=" + luksUUID + " none\n", "root=UUID=" + rootUUID, nil},
		{"other container", "other UUID=11111111-2222-4333-8444-555555555555 none\n", "root=UUID=" + rootUUID, nil},
		{"rd.luks.name= already named it", "vda_crypt UUID=" + luksUUID + " none\n", "root=UUID=" + rootUUID + " rd.luks.name=" + luksUUID + "=cmd",
			[]string{"rename cmd vda_crypt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{devs: []device.Device{containerDev("vda", "crypto_LUKS", luksUUID)}}
			w := &dmWorld{f: f, typed: []string{secretPass}, files: map[string]string{"/sysroot/etc/crypttab": tc.crypttab}}
			r := runDMBoot(t, w, tc.line, conf)
			if r.err != nil || f.switched == nil {
				t.Fatalf("boot = %v\n%s", r.err, r.console)
			}
			if got := f.callsMatching("rename "); !slices.Equal(got, tc.want) {
				t.Errorf("renames = %q, want %q", got, tc.want)
			}
			if len(tc.want) > 0 && f.indexOf("rename ") > f.indexOf("write /run/udev/data/b253:0") {
				t.Errorf("renamed after the udev records were written: %q", f.calls)
			}
		})
	}
}
