package stage0

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/blkid"
	"github.com/pkginitrd/pkginitrd/stage0/bootlog"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/dm"
	"github.com/pkginitrd/pkginitrd/stage0/modload"
	"github.com/pkginitrd/pkginitrd/stage0/uevent"
)

const (
	luksUUID   = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
	secretPass = "hunter2-secret"
)

// dmWorld is a fake device-mapper: cryptsetup accepts secretPass and
// makes the mapping appear with the root filesystem in it; lvm makes the
// logical volume vg/root appear.
type dmWorld struct {
	f     *fakeSys
	mu    sync.Mutex
	maps  []dm.Mapping
	typed []string
	runs  []string
}

func (w *dmWorld) system() dm.System {
	return dm.System{
		Run: func(_ context.Context, argv, env []string, stdin []byte) ([]byte, int, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			w.runs = append(w.runs, strings.Join(argv, " "))
			switch {
			case strings.HasSuffix(argv[0], "/cryptsetup"):
				if string(stdin) != secretPass {
					return []byte("No key available with this passphrase."), 2, nil
				}
				name := argv[len(argv)-1]
				w.maps = append(w.maps, dm.Mapping{Kernel: "dm-0", Name: name, UUID: "CRYPT-LUKS2-x-" + name})
				w.addDev("dm-0", "/dev/mapper/"+name, name, "ext4", rootUUID)
			case strings.HasSuffix(argv[0], "/lvm"):
				w.maps = append(w.maps, dm.Mapping{Kernel: "dm-1", Name: "vg-root", UUID: "LVM-x"})
				w.addDev("dm-1", "/dev/vg/root", "vg-root", "ext4", rootUUID)
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
		Say:      func(line string) { w.f.record("say %s", line) },
		ReadFile: func(string) ([]byte, error) { return nil, context.Canceled },
		Mappings: func() ([]dm.Mapping, error) {
			w.mu.Lock()
			defer w.mu.Unlock()
			return append([]dm.Mapping(nil), w.maps...), nil
		},
		Link: func(maps []dm.Mapping) error { w.f.record("link %d mappings", len(maps)); return nil },
	}
}

func (w *dmWorld) addDev(name, node, dmName, typ, uuid string) {
	w.f.mu.Lock()
	w.f.devs = append(w.f.devs, device.Device{Name: name, Node: node, Major: 253, Size: 1 << 30, DMName: dmName,
		Info: &blkid.Info{Type: typ, Usage: blkid.UsageFilesystem, UUID: uuid}})
	w.f.mu.Unlock()
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
	f := w.f
	f.events = make(chan *uevent.Event, 16)
	var console bytes.Buffer
	h := bootlog.New(&syncWriter{w: &console}, new(slog.LevelVar), func() time.Duration { return time.Second })
	log := slog.New(h)
	cmd := cmdline.Parse(line)
	set, err := settings(cmd, conf)
	if err != nil {
		t.Fatalf("settings(%q) = %v", line, err)
	}
	sys := f.system()
	sys.DM = w.system()
	exists := sys.Exists
	sys.Exists = func(p string) bool { return p == "/usr/sbin/cryptsetup" || p == "/usr/sbin/lvm" || exists(p) }
	loader := modload.New(modload.Config{Index: testIndex(), Sys: modload.System{LoadModule: sys.LoadModule}, Log: log})
	b := newBoot(sys, log, h.Report, cmd, conf, set, loader)
	steps, retry := plan(set, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = b.run(ctx, steps, retry)
	if ctx.Err() != nil {
		t.Fatalf("boot did not finish: %v\nconsole:\n%s", ctx.Err(), console.String())
	}
	return result{err: err, console: console.String()}
}

func TestBootStorage(t *testing.T) {
	both := &bootconf.Config{Features: []string{"luks", "lvm"}}
	tests := []struct {
		name     string
		devs     []device.Device
		typed    []string
		line     string
		conf     *bootconf.Config
		expire   bool
		wantRuns []string // substrings of the commands run, in order
		wantRoot string   // node mounted on /sysroot; "" = no mount
		wantSaid string   // substring of a console line (say or log)
	}{
		{"luks by filesystem uuid", []device.Device{containerDev("vda", "crypto_LUKS", luksUUID)}, []string{secretPass}, "root=UUID=" + rootUUID, both, false,
			[]string{"/usr/sbin/cryptsetup open --type luks --disable-external-tokens --disable-locks --key-file=- /dev/vda luks-" + luksUUID}, "/dev/mapper/luks-" + luksUUID, "is locked"},
		{"root= names the container", []device.Device{containerDev("vda", "crypto_LUKS", luksUUID)}, []string{"wrong", secretPass}, "root=UUID=" + luksUUID, both, false,
			[]string{"cryptsetup open", "cryptsetup open"}, "/dev/mapper/luks-" + luksUUID, "wrong passphrase"},
		{"rd.luks.name", []device.Device{containerDev("vda", "crypto_LUKS", luksUUID)}, []string{secretPass}, "root=/dev/mapper/cr rd.luks.name=" + luksUUID + "=cr", both, false,
			[]string{"/dev/vda cr"}, "/dev/mapper/cr", ""},
		{"lvm by path", []device.Device{containerDev("vda", "LVM2_member", "pv-uuid")}, nil, "root=/dev/vg/root", both, false,
			[]string{"/usr/sbin/lvm vgchange -ay --sysinit --config " + dm.LVMConfig}, "/dev/vg/root", ""},
		{"lvm by filesystem uuid, rd.lvm.lv", []device.Device{containerDev("vda", "LVM2_member", "pv-uuid")}, nil, "root=UUID=" + rootUUID + " rd.lvm.lv=vg/root", both, false,
			[]string{"/usr/sbin/lvm lvchange -ay --sysinit --config " + dm.LVMConfig + " vg/root"}, "/dev/vg/root", ""},
		{"rd.lvm=0", []device.Device{containerDev("vda", "LVM2_member", "pv-uuid")}, nil, "root=/dev/vg/root rd.lvm=0 rd.shell=0", both, true,
			nil, "", "timed out"},
		{"other container not unlocked", []device.Device{containerDev("vda", "crypto_LUKS", luksUUID)}, nil, "root=UUID=" + rootUUID + " rd.luks.uuid=0000 rd.shell=0", both, true,
			nil, "", "LUKS container rd.luks.uuid=0000 not found"},
		{"no luks feature", []device.Device{containerDev("vda", "crypto_LUKS", luksUUID)}, nil, "root=UUID=" + rootUUID + " rd.luks.uuid=" + luksUUID + " rd.shell=0", &bootconf.Config{}, true,
			nil, "", "this image has no luks feature"},
		{"three wrong passphrases", []device.Device{containerDev("vda", "crypto_LUKS", luksUUID)}, []string{"a", "b", "c"}, "root=UUID=" + rootUUID + " rd.shell=0", both, false,
			[]string{"cryptsetup", "cryptsetup", "cryptsetup"}, "", "wrong passphrase for LUKS container UUID=" + luksUUID + " on /dev/vda after 3 tries"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{devs: tc.devs, expire: tc.expire}
			w := &dmWorld{f: f, typed: tc.typed}
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
		})
	}
}
