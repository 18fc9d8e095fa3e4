package stage0

import (
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

const swapUUID = "5c0ffee0-1111-4222-8333-444455556666"

func TestResumeFrom(t *testing.T) {
	host := &bootconf.Config{Resume: bootconf.Resume{Device: "UUID=host-swap", Offset: "34816"}}
	for _, tc := range []struct {
		line       string
		conf       *bootconf.Config
		dev, off   string
		host, warn bool
	}{
		{"resume=UUID=" + swapUUID, &bootconf.Config{}, "UUID=" + swapUUID, "", false, false},
		{"resume=/dev/mapper/cryptswap resume_offset=123", &bootconf.Config{}, "/dev/mapper/cryptswap", "123", false, false},
		{"resume=LABEL=swap", host, "LABEL=swap", "", false, false},
		{"resume=PARTUUID=6e2c3a1e-1111-4a2b-8c3d-0123456789ab", host, "PARTUUID=6e2c3a1e-1111-4a2b-8c3d-0123456789ab", "", false, false},
		{"resume=254:3", host, "254:3", "", false, false},
		{"quiet", host, "UUID=host-swap", "34816", true, false},
		{"resume_offset=7", host, "UUID=host-swap", "7", true, false},
		{"quiet", &bootconf.Config{}, "", "", false, false},
		{"noresume", host, "", "", false, false},
		{"resume=UUID=" + swapUUID + " noresume", host, "", "", false, false},
		{"hibernate=noresume", host, "", "", false, false},
		{"hibernate=no resume=/dev/vda3", host, "", "", false, false},
		{"resume=", host, "", "", false, false},
		{"resume=swapdisk", host, "", "", false, true},
		{"resume=/dev/vda3 resume_offset=lots", host, "", "", false, true},
	} {
		r := resumeFrom(cmdline.Parse(tc.line), tc.conf)
		dev := ""
		if r.Device.Kind != cmdline.None {
			dev = r.Device.String()
		}
		fromHost := strings.Contains(r.From, "image")
		if dev != tc.dev || r.Offset != tc.off || (dev != "" && fromHost != tc.host) || (len(r.Warnings) > 0) != tc.warn {
			t.Errorf("resumeFrom(%q) = device %q offset %q from %q warnings %q; want %q %q host %v warn %v",
				tc.line, dev, r.Offset, r.From, r.Warnings, tc.dev, tc.off, tc.host, tc.warn)
		}
	}
}

func TestPlanResume(t *testing.T) {
	c := cmdline.Parse("root=UUID=" + rootUUID + " resume=UUID=" + swapUUID + " resume_offset=8 rd.timeout=0")
	s, err := settings(c, &bootconf.Config{})
	if err != nil {
		t.Fatal(err)
	}
	steps, _ := plan(s, c)
	var got []string
	for _, st := range steps {
		got = append(got, st.String())
	}
	want := "resume from hibernation if UUID=" + swapUUID + " holds an image (resume=, resume_offset=8; wait up to 30s for it)"
	if len(got) < 3 || got[2] != want || !strings.HasPrefix(got[3], "wait forever for the root device") {
		t.Errorf("plan = %q, want %q third, before the root wait", got, want)
	}
}

func swapDev(typ string) device.Device {
	return device.Device{Name: "vda3", Node: "/dev/vda3", Major: 254, Minor: 3, Size: 1 << 28, Partition: 3, Parent: "vda",
		Info: &blkid.Info{Type: typ, Usage: blkid.UsageOther, UUID: swapUUID, Label: "swap"}}
}

// TestBootResume runs the boot with a kernel that has /sys/power/resume
// and records the writes to it: they come before the root is checked or
// mounted, after the containers the resume device is on are opened, and
// a missing resume device only delays the boot.
func TestBootResume(t *testing.T) {
	both := &bootconf.Config{Features: []string{"luks", "lvm"}, Fsck: map[string]string{"ext4": "/usr/sbin/fsck.ext4"}}
	mapper := "/dev/mapper/luks-" + luksUUID
	for _, tc := range []struct {
		name       string
		devs       []device.Device
		line       string
		conf       *bootconf.Config
		expire     bool
		setup      func(w *dmWorld)
		noSysPower bool
		wantWrites []string // "PATH DATA", in order
		wantRuns   []string // substrings of the commands run before the first write
		wantSaid   string
	}{
		{"swap partition by UUID", []device.Device{rootDev("ext4"), swapDev("swsuspend")}, "root=UUID=" + rootUUID + " resume=UUID=" + swapUUID, nil, false, nil, false,
			[]string{"/sys/power/resume 254:3"}, nil, "content=swsuspend"},
		{"swap file: offset first", []device.Device{rootDev("ext4")}, "root=UUID=" + rootUUID + " resume=UUID=" + rootUUID + " resume_offset=34816", nil, false, nil, false,
			[]string{"/sys/power/resume_offset 34816", "/sys/power/resume 254:2"}, nil, ""},
		{"host's device from the image", []device.Device{rootDev("ext4"), swapDev("swap")}, "root=UUID=" + rootUUID,
			&bootconf.Config{Resume: bootconf.Resume{Device: "PARTUUID=" + "6e2c3a1e-1111-4a2b-8c3d-0123456789ab"}}, false, nil, false,
			[]string{"/sys/power/resume 254:2"}, nil, "no hibernation image to resume"},
		{"swap inside LUKS, unlocked first", []device.Device{containerDev("vda", "crypto_LUKS", luksUUID)}, "root=UUID=" + rootUUID + " resume=" + mapper, both, false,
			func(w *dmWorld) { w.typed = []string{secretPass} }, false,
			[]string{"/sys/power/resume 253:0"}, []string{"cryptsetup isLuks", "cryptsetup open"}, ""},
		{"swap logical volume, activated first", []device.Device{containerDev("vda", "LVM2_member", "pv-uuid")}, "root=/dev/vg/root resume=/dev/vg/swap", both, false,
			func(w *dmWorld) { w.swaplv = true }, false,
			[]string{"/sys/power/resume 253:2"}, []string{"lvm vgchange", "lvm lvs"}, ""},
		{"noresume", []device.Device{rootDev("ext4"), swapDev("swsuspend")}, "root=UUID=" + rootUUID + " resume=UUID=" + swapUUID + " noresume", nil, false, nil, false,
			nil, nil, ""},
		{"missing resume device: a warning", []device.Device{rootDev("ext4")}, "root=UUID=" + rootUUID + " resume=UUID=" + swapUUID + " rd.timeout=5 quiet", nil, true, nil, false,
			nil, nil, "the resume device did not appear; booting without resuming"},
		{"kernel without hibernation", []device.Device{rootDev("ext4"), swapDev("swsuspend")}, "root=UUID=" + rootUUID + " resume=UUID=" + swapUUID + " quiet", nil, false, nil, true,
			nil, nil, "this kernel cannot resume from hibernation"},
		{"bad resume=", []device.Device{rootDev("ext4"), swapDev("swsuspend")}, "root=UUID=" + rootUUID + " resume=swapdisk quiet", nil, false, nil, false,
			nil, nil, "resume option ignored"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{devs: tc.devs, expire: tc.expire}
			w := &dmWorld{f: f}
			if tc.setup != nil {
				tc.setup(w)
			}
			r := runBootWith(t, f, tc.line, tc.conf, func(sys *machine.Machine) {
				d := w.system()
				sys.Run, sys.Ask, sys.Say, sys.Mappings, sys.LinkMappings = d.Run, d.Ask, d.Say, d.Mappings, d.LinkMappings
				exists := sys.Exists
				sys.Exists = func(p string) bool {
					return p == "/usr/sbin/cryptsetup" || p == "/usr/sbin/lvm" || p == resumeFile && !tc.noSysPower || exists(p)
				}
				sys.WriteFile = func(p string, data []byte) error {
					w.mu.Lock()
					n := len(w.runs)
					w.mu.Unlock()
					f.record("write %s %s (after %d commands)", p, data, n)
					return nil
				}
			})
			if r.err != nil || f.switched == nil {
				t.Fatalf("boot = %v, switched %v\n%s", r.err, f.switched, r.console)
			}
			writes := f.callsMatching("write /sys/power/") // not the udev records or the fsck flag
			if len(writes) != len(tc.wantWrites) {
				t.Fatalf("writes %q, want %q", writes, tc.wantWrites)
			}
			for i, wr := range writes {
				if !strings.HasPrefix(wr, "write "+tc.wantWrites[i]+" ") {
					t.Errorf("write %d = %q, want %q", i, wr, tc.wantWrites[i])
				}
				if !strings.HasSuffix(wr, "(after "+string(rune('0'+len(tc.wantRuns)))+" commands)") {
					t.Errorf("write %q: want it after the commands %q (ran %q)", wr, tc.wantRuns, w.runs)
				}
			}
			for i, want := range tc.wantRuns {
				if i >= len(w.runs) || !strings.Contains(w.runs[i], want) {
					t.Errorf("commands %q, want %q first", w.runs, tc.wantRuns)
				}
			}
			if len(writes) > 0 {
				last := f.indexOf(writes[len(writes)-1])
				for _, later := range []string{"fsck", "mount /dev", "switch_root"} {
					if i := f.indexOf(later); i >= 0 && i < last {
						t.Errorf("%q (at %d) before the resume write (at %d): %q", later, i, last, f.calls)
					}
				}
			}
			if !strings.Contains(r.console+r.file, tc.wantSaid) {
				t.Errorf("console and log lack %q:\n%s", tc.wantSaid, r.file)
			}
		})
	}
}

// TestBootResumeOnce: the root is missing, the emergency shell runs, the
// user plugs the disk in; the retry does not resume a second time.
func TestBootResumeOnce(t *testing.T) {
	f := &fakeSys{expire: true, devs: []device.Device{swapDev("swap")}}
	f.onShell = func(int) {
		f.mu.Lock()
		f.expire = false
		f.mu.Unlock()
		go f.addRoot(rootDev("ext4"))
	}
	r := runBootWith(t, f, "root=UUID="+rootUUID+" resume=UUID="+swapUUID, nil, func(sys *machine.Machine) {
		exists := sys.Exists
		sys.Exists = func(p string) bool { return p == resumeFile || exists(p) }
		sys.WriteFile = func(p string, data []byte) error { f.record("write %s %s", p, data); return nil }
	})
	if r.err != nil || f.switched == nil {
		t.Fatalf("boot = %v, switched %v\n%s", r.err, f.switched, r.console)
	}
	if w := f.callsMatching("write /sys/power/"); len(w) != 1 || len(f.callsMatching("shell")) != 1 {
		t.Errorf("writes %q and %d shells, want one write before one shell", w, len(f.callsMatching("shell")))
	}
	if !strings.Contains(r.file, "not resuming from hibernation on a retry") {
		t.Errorf("log lacks the skipped retry:\n%s", r.file)
	}
}
