package dm

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
)

func TestParse(t *testing.T) {
	tests := []struct {
		cmdline   string
		want      Config
		wantWarns int
	}{
		{"", Config{LUKS: true, LVM: true, Names: map[string]string{}}, 0},
		{"rd.luks=0 rd.lvm=no", Config{Names: map[string]string{}}, 0},
		{"rd.luks.uuid=luks-AAA,bbb rd.luks.uuid=ccc", Config{LUKS: true, LVM: true, LUKSUUIDs: []string{"AAA", "bbb", "ccc"}, Names: map[string]string{}}, 0},
		{"rd.luks.name=UUID=Abc=root", Config{LUKS: true, LVM: true, LUKSUUIDs: []string{"Abc"}, Names: map[string]string{"abc": "root"}}, 0},
		{"rd.luks.name=abc rd.luks.name=abc=a/b", Config{LUKS: true, LVM: true, Names: map[string]string{}}, 2},
		{"rd.luks.key=/etc/k.key", Config{LUKS: true, LVM: true, Names: map[string]string{}, KeyFile: "/etc/k.key"}, 0},
		{"rd.luks.key=/k:LABEL=usb", Config{LUKS: true, LVM: true, Names: map[string]string{}, KeyFile: "/k"}, 1},
		{"rd.luks.key=k", Config{LUKS: true, LVM: true, Names: map[string]string{}}, 1},
		{"rd.lvm.vg=a,b rd.lvm.lv=a/root rd.lvm.lv=bad", Config{LUKS: true, LVM: true, Names: map[string]string{}, VGs: []string{"a", "b"}, LVs: []string{"a/root"}}, 1},
		{"rd.lvm=maybe", Config{LUKS: true, LVM: true, Names: map[string]string{}}, 1},
	}
	for _, tc := range tests {
		got, warns := Parse(cmdline.Parse(tc.cmdline).Features)
		if !reflect.DeepEqual(got, tc.want) || len(warns) != tc.wantWarns {
			t.Errorf("Parse(%q) = %+v, %q; want %+v, %d warnings", tc.cmdline, got, warns, tc.want, tc.wantWarns)
		}
	}
}

func TestMapNameAndWant(t *testing.T) {
	c, _ := Parse(cmdline.Parse("rd.luks.name=AAAA=root rd.luks.uuid=bbbb").Features)
	for uuid, want := range map[string]string{"aaaa": "root", "AAAA": "root", "bbbb": "luks-bbbb"} {
		if got := c.MapName(uuid); got != want {
			t.Errorf("MapName(%q) = %q, want %q", uuid, got, want)
		}
	}
	for uuid, want := range map[string]bool{"aaaa": true, "BBBB": true, "cccc": false, "": false} {
		if got := c.WantLUKS(uuid); got != want {
			t.Errorf("WantLUKS(%q) = %v, want %v", uuid, got, want)
		}
	}
	all, _ := Parse(nil)
	if !all.WantLUKS("anything") {
		t.Errorf("WantLUKS without rd.luks.uuid = false, want true")
	}
	off, _ := Parse(cmdline.Parse("rd.luks=0").Features)
	if off.WantLUKS("anything") {
		t.Errorf("WantLUKS with rd.luks=0 = true, want false")
	}
}

func TestLogicalVolume(t *testing.T) {
	tests := []struct {
		path, vg, lv string
		ok           bool
	}{
		{"/dev/vg/root", "vg", "root", true},
		{"/dev/mapper/vg-root", "vg", "root", true},
		{"/dev/mapper/my--vg-the--root", "my-vg", "the-root", true},
		{"/dev/mapper/luks", "", "", false},
		{"/dev/mapper/-x", "", "", false},
		{"/dev/vda1", "", "", false},
		{"/dev/disk/by-uuid", "", "", false},
		{"/dev/a/b/c", "", "", false},
		{"vg/root", "", "", false},
	}
	for _, tc := range tests {
		vg, lv, ok := LogicalVolume(tc.path)
		if vg != tc.vg || lv != tc.lv || ok != tc.ok {
			t.Errorf("LogicalVolume(%q) = %q, %q, %v; want %q, %q, %v", tc.path, vg, lv, ok, tc.vg, tc.lv, tc.ok)
		}
	}
}

func TestLVMArgs(t *testing.T) {
	base := func(verb string, extra ...string) []string {
		return append([]string{"/lvm", verb, "-ay", "--sysinit", "--config", LVMConfig}, extra...)
	}
	tests := []struct {
		cmdline string
		want    []string
	}{
		{"root=/dev/vg/root", base("vgchange")},
		{"root=/dev/vg/root rd.lvm.vg=data", base("vgchange", "data", "vg")},
		{"root=/dev/mapper/sys-root rd.lvm.vg=sys", base("vgchange", "sys")},
		{"root=UUID=x rd.lvm.lv=vg/root,vg/swap rd.lvm.vg=other", base("lvchange", "vg/root", "vg/swap")},
	}
	for _, tc := range tests {
		c := cmdline.Parse(tc.cmdline)
		conf, _ := Parse(c.Features)
		got := conf.LVMArgs("/lvm", c.Root)
		if len(got) != 1 || !reflect.DeepEqual(got[0], tc.want) {
			t.Errorf("LVMArgs for %q = %q, want [%q]", tc.cmdline, got, tc.want)
		}
	}
}

// fakeSys answers cryptsetup with a fixed key and records what ran.
type fakeSys struct {
	key     string
	typed   []string // lines the user types, in order
	files   map[string]string
	said    []string
	stdins  []string
	runErr  error
	exitBad int // exit status for other failures (0: wrong key is 2)
}

func (f *fakeSys) system() System {
	return System{
		Run: func(_ context.Context, argv, env []string, stdin []byte) ([]byte, int, error) {
			f.stdins = append(f.stdins, string(stdin))
			if f.runErr != nil {
				return nil, 0, f.runErr
			}
			if !reflect.DeepEqual(env, Env()) {
				return []byte("bad env"), 99, nil
			}
			if f.exitBad != 0 {
				return []byte("Device vda is not a valid LUKS device."), f.exitBad, nil
			}
			if string(stdin) != f.key {
				return []byte("No key available with this passphrase."), 2, nil
			}
			return nil, 0, nil
		},
		Ask: func(context.Context, string) ([]byte, error) {
			if len(f.typed) == 0 {
				return nil, io.EOF
			}
			l := f.typed[0]
			f.typed = f.typed[1:]
			return []byte(l), nil
		},
		Say: func(line string) { f.said = append(f.said, line) },
		ReadFile: func(p string) ([]byte, error) {
			if s, ok := f.files[p]; ok {
				return []byte(s), nil
			}
			return nil, os.ErrNotExist
		},
	}
}

func TestUnlockerOpen(t *testing.T) {
	c := Container{Node: "/dev/vda", UUID: "1234", Name: "luks-1234"}
	tests := []struct {
		name       string
		sys        fakeSys
		keyFile    string
		wantErr    string // substring; "" = success
		wantStdins []string
		wantSaid   string // substring of the last console line
	}{
		{"first try", fakeSys{key: "s3cret", typed: []string{"s3cret"}}, "", "", []string{"s3cret"}, "1234 on /dev/vda is locked"},
		{"wrong then right", fakeSys{key: "s3cret", typed: []string{"nope", "s3cret"}}, "", "", []string{"nope", "s3cret"}, "wrong passphrase for LUKS container UUID=1234 on /dev/vda (try 1 of 3)"},
		{"three wrong", fakeSys{key: "s3cret", typed: []string{"a", "b", "c", "s3cret"}}, "", "wrong passphrase for LUKS container UUID=1234 on /dev/vda after 3 tries", []string{"a", "b", "c"}, "try 3 of 3"},
		{"keyfile", fakeSys{key: "k\n", files: map[string]string{"/k": "k\n"}}, "/k", "", []string{"k\n"}, ""},
		{"keyfile wrong, then typed", fakeSys{key: "s3cret", typed: []string{"s3cret"}, files: map[string]string{"/k": "k"}}, "/k", "", []string{"k", "s3cret"}, "is locked"},
		{"keyfile missing", fakeSys{key: "s3cret"}, "/missing.key", "rd.luks.key=/missing.key: cannot read the keyfile", nil, ""},
		{"not LUKS", fakeSys{key: "x", typed: []string{"x"}, exitBad: 1}, "", "cryptsetup open /dev/vda: exit status 1: Device vda is not a valid LUKS device.", []string{"x"}, ""},
		{"no console", fakeSys{key: "x"}, "", "read the passphrase for LUKS container UUID=1234", nil, ""},
		{"cannot run", fakeSys{key: "x", typed: []string{"x"}, runErr: errors.New("exec: not found")}, "", "exec: not found", []string{"x"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.sys
			u := Unlocker{Sys: f.system(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Cryptsetup: "/cryptsetup"}
			err := u.Open(context.Background(), c, tc.keyFile)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Open = %v, want success", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Open = %v, want an error containing %q", err, tc.wantErr)
			}
			if !reflect.DeepEqual(f.stdins, tc.wantStdins) {
				t.Errorf("cryptsetup stdin = %q, want %q", f.stdins, tc.wantStdins)
			}
			if tc.wantSaid != "" && (len(f.said) == 0 || !strings.Contains(f.said[len(f.said)-1], tc.wantSaid)) {
				t.Errorf("console lines = %q, want the last to contain %q", f.said, tc.wantSaid)
			}
			for _, l := range f.said {
				if strings.Contains(l, "s3cret") {
					t.Errorf("console line %q shows the passphrase", l)
				}
			}
		})
	}
}

func TestOpenArgs(t *testing.T) {
	got := OpenArgs("/usr/sbin/cryptsetup", Container{Node: "/dev/vda2", Name: "root"}, "-")
	want := []string{"/usr/sbin/cryptsetup", "open", "--type", "luks", "--disable-external-tokens", "--disable-locks", "--key-file=-", "/dev/vda2", "root"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("OpenArgs = %q, want %q", got, want)
	}
}

func TestMappingsAndLink(t *testing.T) {
	sys := t.TempDir()
	dev := t.TempDir()
	for name, dm := range map[string][2]string{
		"dm-0": {"luks-1234", "CRYPT-LUKS2-1234-luks-1234"},
		"dm-1": {"my--vg-root", "LVM-abcdef"},
		"dm-2": {"made-by-libdm", "CRYPT-PLAIN-made-by-libdm"},
	} {
		d := filepath.Join(sys, "class", "block", name, "dm")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "name"), []byte(dm[0]+"\n"), 0o644)
		os.WriteFile(filepath.Join(d, "uuid"), []byte(dm[1]+"\n"), 0o644)
	}
	if err := os.MkdirAll(filepath.Join(sys, "class", "block", "vda"), 0o755); err != nil {
		t.Fatal(err)
	}
	// libdevmapper made this node itself: Link must leave it alone.
	if err := os.MkdirAll(filepath.Join(dev, "mapper"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dev, "mapper", "made-by-libdm"), nil, 0o600)

	maps, err := Mappings(sys)
	if err != nil {
		t.Fatal(err)
	}
	if len(maps) != 3 || maps[1] != (Mapping{Kernel: "dm-1", Name: "my--vg-root", UUID: "LVM-abcdef"}) {
		t.Fatalf("Mappings = %+v, want dm-0..dm-2 with names and uuids", maps)
	}
	if err := Link(dev, maps); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"mapper/luks-1234":   "../dm-0",
		"mapper/my--vg-root": "../dm-1",
		"my-vg/root":         "../dm-1",
	}
	for p, target := range want {
		if got, err := os.Readlink(filepath.Join(dev, p)); err != nil || got != target {
			t.Errorf("readlink %s = %q, %v; want %q", p, got, err, target)
		}
	}
	if fi, err := os.Lstat(filepath.Join(dev, "mapper", "made-by-libdm")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("Link replaced the existing /dev/mapper/made-by-libdm: %v %v", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(dev, "luks")); err == nil {
		t.Errorf("Link made a /dev/VG/LV link for a LUKS mapping")
	}
	if err := Link(dev, maps); err != nil {
		t.Errorf("second Link = %v, want nil (idempotent)", err)
	}
}
