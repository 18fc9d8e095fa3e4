package dm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

func TestParse(t *testing.T) {
	base := func(c Config) Config {
		c.LUKS, c.LVM, c.UseCrypttab = true, true, true
		if c.Names == nil {
			c.Names = map[string]string{}
		}
		return c
	}
	label := func(s string) cmdline.DeviceRef {
		return cmdline.DeviceRef{Kind: cmdline.Label, Value: s, Raw: "LABEL=" + s}
	}
	const u1 = "3f1c6a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
	discard := Options{Discard: true}
	tests := []struct {
		cmdline   string
		want      Config
		wantWarns int
	}{
		{"", base(Config{}), 0},
		{"rd.luks=0 rd.lvm=no rd.luks.crypttab=0", Config{Names: map[string]string{}}, 0},
		{"rd.luks.uuid=luks-AAA,bbb rd.luks.uuid=ccc", base(Config{LUKSUUIDs: []string{"AAA", "bbb", "ccc"}}), 0},
		{"rd.luks.name=UUID=Abc=root", base(Config{LUKSUUIDs: []string{"Abc"}, Names: map[string]string{"abc": "root"}}), 0},
		{"rd.luks.name=abc rd.luks.name=abc=a/b", base(Config{}), 2},
		{"rd.luks.key=/etc/k.key", base(Config{Keys: []Key{{Path: "/etc/k.key", Origin: "rd.luks.key=/etc/k.key"}}}), 0},
		{"rd.luks.key=/k:LABEL=usb", base(Config{Keys: []Key{{Path: "/k", Device: label("usb"), Origin: "rd.luks.key=/k:LABEL=usb"}}}), 0},
		{"rd.luks.key=/k:LABEL=usb:/dev/vda2", base(Config{Keys: []Key{{Path: "/k", Device: label("usb"),
			ForDevice: cmdline.DeviceRef{Kind: cmdline.Path, Value: "/dev/vda2", Raw: "/dev/vda2"}, Origin: "rd.luks.key=/k:LABEL=usb:/dev/vda2"}}}), 0},
		{"rd.luks.key=" + u1 + "=/k:LABEL=usb", base(Config{Keys: []Key{{Path: "/k", Device: label("usb"), ForUUID: u1, Origin: "rd.luks.key=" + u1 + "=/k:LABEL=usb"}}}), 0},
		{"rd.luks.key=UUID=luks-" + u1 + "=/k", base(Config{Keys: []Key{{Path: "/k", ForUUID: u1, Origin: "rd.luks.key=" + u1 + "=/k"}}}), 0},
		{"rd.luks.key=k rd.luks.key=/k:live:x rd.luks.key=/k:1:2:3", base(Config{}), 3},
		{"rd.luks.key.tout=5 rd.luks.key.tout=x", base(Config{KeyTimeout: 5 * time.Second}), 1},
		{"rd.luks.options=discard,tries=2", base(Config{Options: &Options{Discard: true, Tries: 2}}), 0},
		{"rd.luks.options=" + u1 + "=discard", base(Config{UUIDOptions: map[string]Options{u1: discard}}), 0},
		{"rd.luks.options=luks-" + strings.ToUpper(u1) + "=discard,bogus", base(Config{UUIDOptions: map[string]Options{u1: discard}}), 1},
		{"rd.lvm.vg=a,b rd.lvm.lv=a/root rd.lvm.lv=bad", base(Config{VGs: []string{"a", "b"}, LVs: []string{"a/root"}}), 1},
		{"rd.lvm=maybe", base(Config{}), 1},
	}
	for _, tc := range tests {
		got, warns := Parse(cmdline.Parse(tc.cmdline).Features)
		if !reflect.DeepEqual(got, tc.want) || len(warns) != tc.wantWarns {
			t.Errorf("Parse(%q) = %+v, %q; want %+v, %d warnings", tc.cmdline, got, warns, tc.want, tc.wantWarns)
		}
	}
}

func TestParseOptions(t *testing.T) {
	tests := []struct {
		in          string
		want        Options
		wantUnknown []string
		wantArgs    []string
	}{
		{"", Options{}, nil, nil},
		{"none", Options{}, nil, nil},
		{"luks,discard,nofail,x-systemd.device-timeout=10,initramfs", Options{Discard: true}, nil, []string{"--allow-discards"}},
		{"readonly,tries=5", Options{ReadOnly: true, Tries: 5}, nil, []string{"--readonly"}},
		{"noauto,discard", Options{Discard: true, NoAuto: true}, nil, []string{"--allow-discards"}},
		{"read-only,tries=0", Options{ReadOnly: true, Tries: -1}, nil, []string{"--readonly"}},
		{"keyfile-offset=4,keyfile-size=16,same-cpu-crypt,no-read-workqueue", Options{KeyfileOffset: 4, KeyfileSize: 16,
			Perf: []string{"--perf-same_cpu_crypt", "--perf-no_read_workqueue"}}, nil, []string{"--perf-same_cpu_crypt", "--perf-no_read_workqueue"}},
		{"discard,tries=x,keyscript=/bin/cat,tpm2-device=auto,keyfile-size=-1", Options{Discard: true},
			[]string{"tries=x", "keyscript=/bin/cat", "tpm2-device=auto", "keyfile-size=-1"}, []string{"--allow-discards"}},
	}
	for _, tc := range tests {
		got, unknown := ParseOptions(tc.in)
		if !reflect.DeepEqual(got, tc.want) || !reflect.DeepEqual(unknown, tc.wantUnknown) {
			t.Errorf("ParseOptions(%q) = %+v, %q; want %+v, %q", tc.in, got, unknown, tc.want, tc.wantUnknown)
		}
		if args := got.Args(); !reflect.DeepEqual(args, tc.wantArgs) {
			t.Errorf("ParseOptions(%q).Args() = %q, want %q", tc.in, args, tc.wantArgs)
		}
		// String renders options ParseOptions reads back the same.
		if again, _ := ParseOptions(got.String()); !reflect.DeepEqual(again, got) {
			t.Errorf("ParseOptions(%q) = %+v after String(), want %+v", got.String(), again, got)
		}
	}
}

func TestOptionsKey(t *testing.T) {
	file := []byte("0123456789")
	tests := []struct {
		o       Options
		want    string
		wantErr bool
	}{
		{Options{}, "0123456789", false},
		{Options{KeyfileOffset: 2}, "23456789", false},
		{Options{KeyfileOffset: 2, KeyfileSize: 3}, "234", false},
		{Options{KeyfileSize: 10}, "0123456789", false},
		{Options{KeyfileOffset: 11}, "", true},
		{Options{KeyfileOffset: 8, KeyfileSize: 3}, "", true},
	}
	for _, tc := range tests {
		got, err := tc.o.Key(file)
		if string(got) != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%+v.Key(%q) = %q, %v; want %q, error %v", tc.o, file, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseCrypttab(t *testing.T) {
	const tab = `# <target> <source> <key> <options>
cryptroot UUID=3f1c6a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b none luks,discard
data	PARTUUID=0a0b-01  /etc/keys/data.key  luks,keyfile-offset=8,keyfile-size=32,tries=2
usb LABEL=secret /key.bin:LABEL=keydisk luks,bogus-opt,keyscript=decrypt_gnupg
plain /dev/vdb -
swap /dev/vdc /dev/urandom swap,cipher=aes-xts-plain64
tmpfs /dev/vdd - tmp
bad
bad/name /dev/vde none
rel /dev/vdf keys/rel.key
odd live:CDLABEL=x none
`
	entries, warns := ParseCrypttab(strings.NewReader(tab))
	ref := func(s string) cmdline.DeviceRef {
		r, err := cmdline.ParseDeviceRef(s)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	want := []CrypttabEntry{
		{Line: 2, Name: "cryptroot", Device: ref("UUID=3f1c6a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"), Options: Options{Discard: true}},
		{Line: 3, Name: "data", Device: ref("PARTUUID=0a0b-01"), Key: &Key{Path: "/etc/keys/data.key", Origin: "/etc/crypttab line 3"},
			Options: Options{KeyfileOffset: 8, KeyfileSize: 32, Tries: 2}},
		{Line: 4, Name: "usb", Device: ref("LABEL=secret"), Key: &Key{Path: "/key.bin", Device: ref("LABEL=keydisk"), Origin: "/etc/crypttab line 4"}},
		{Line: 5, Name: "plain", Device: ref("/dev/vdb")},
	}
	if !reflect.DeepEqual(entries, want) {
		t.Errorf("ParseCrypttab entries =\n%+v\nwant\n%+v", entries, want)
	}
	wantWarns := []string{
		"line 4 (usb): options not supported, ignored: bogus-opt,keyscript=decrypt_gnupg",
		"line 6 (swap): a swap entry",
		"line 7 (tmpfs): a tmp entry",
		"line 8: want NAME DEVICE",
		"line 9: name \"bad/name\" contains a slash",
		"line 10 (rel): keyfile \"keys/rel.key\": want an absolute path",
		"line 11: device \"live:CDLABEL=x\"",
	}
	if len(warns) != len(wantWarns) {
		t.Fatalf("ParseCrypttab warnings = %q, want %d", warns, len(wantWarns))
	}
	for i, w := range wantWarns {
		if !strings.Contains(warns[i], w) {
			t.Errorf("ParseCrypttab warning %d = %q, want it to contain %q", i, warns[i], w)
		}
	}
}

// TestFor checks the precedence of the command line over the crypttab
// over the defaults, setting by setting.
func TestFor(t *testing.T) {
	const (
		u1 = "3f1c6a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
		u2 = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
	)
	tab, warns := ParseCrypttab(strings.NewReader("tabroot UUID=" + u1 + " /etc/tab.key discard\n" +
		"bypart PARTLABEL=data /etc/data.key readonly\n"))
	if len(warns) > 0 {
		t.Fatal(warns)
	}
	onVdb := func(r cmdline.DeviceRef) bool { return r.Raw == "PARTLABEL=data" || r.Raw == "/dev/vdb" }
	keys := func(u Unlock) string {
		var s []string
		for _, k := range u.Keys {
			s = append(s, k.String())
		}
		return strings.Join(s, " ")
	}
	tests := []struct {
		cmdline  string
		crypttab bool
		uuid     string
		isDev    func(cmdline.DeviceRef) bool
		wantName string
		wantKeys string
		wantOpts string
	}{
		{"", false, u1, nil, "luks-" + u1, "", "none"},
		{"", true, u1, nil, "tabroot", "/etc/tab.key", "discard"},
		{"", true, strings.ToUpper(u1), nil, "tabroot", "/etc/tab.key", "discard"},
		{"", true, u2, onVdb, "bypart", "/etc/data.key", "readonly"},
		{"", true, u2, nil, "luks-" + u2, "", "none"},
		{"rd.luks.name=" + u1 + "=cmd rd.luks.key=/cmd.key rd.luks.options=tries=4", true, u1, nil, "cmd", "/cmd.key", "discard"},
		{"rd.luks.options=" + u1 + "=readonly rd.luks.options=tries=4", true, u1, nil, "tabroot", "/etc/tab.key", "readonly"},
		{"rd.luks.options=tries=4", false, u1, nil, "luks-" + u1, "", "tries=4"},
		{"rd.luks.key=" + u2 + "=/two.key rd.luks.key=/any.key", true, u1, nil, "tabroot", "/any.key", "discard"},
		{"rd.luks.key=/any.key rd.luks.key=" + u2 + "=/two.key", true, u2, nil, "luks-" + u2, "/two.key /any.key", "none"},
		{"rd.luks.key=/k:LABEL=keydisk:/dev/vdb rd.luks.key=/other:LABEL=keydisk:/dev/vdc", false, u2, onVdb, "luks-" + u2, "/k:LABEL=keydisk", "none"},
	}
	for _, tc := range tests {
		c, warns := Parse(cmdline.Parse(tc.cmdline).Features)
		if len(warns) > 0 {
			t.Fatalf("Parse(%q): %q", tc.cmdline, warns)
		}
		if tc.crypttab {
			c.Crypttab = tab
		}
		u := c.For(tc.uuid, tc.isDev)
		for _, k := range u.Keys {
			if fromTab := strings.HasPrefix(k.Origin, "/etc/crypttab"); k.Fallback != fromTab {
				t.Errorf("For(%q) with %q: key %s from %q has Fallback %v, want %v (only crypttab keys fall back)", tc.uuid, tc.cmdline, k, k.Origin, k.Fallback, fromTab)
			}
		}
		if u.Name != tc.wantName || keys(u) != tc.wantKeys || u.Options.String() != tc.wantOpts {
			t.Errorf("For(%q) with %q (crypttab %v) = name %q, keys %q, options %q; want %q, %q, %q",
				tc.uuid, tc.cmdline, tc.crypttab, u.Name, keys(u), u.Options, tc.wantName, tc.wantKeys, tc.wantOpts)
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
	key       string
	typed     []string // lines the user types, in order
	files     map[string]string
	said      []string
	stdins    []string // keys given to cryptsetup open
	argv      [][]string
	runErr    error
	exitBad   int // exit status of open for other failures (0: wrong key is 2)
	badHeader bool
}

func (f *fakeSys) system() machine.Machine {
	return machine.Machine{
		Run: func(_ context.Context, argv, env []string, stdin []byte) ([]byte, int, error) {
			f.argv = append(f.argv, argv)
			if f.runErr != nil {
				return nil, 0, f.runErr
			}
			if !reflect.DeepEqual(env, Env()) {
				return []byte("bad env"), 99, nil
			}
			if argv[1] == "isLuks" {
				if f.badHeader {
					return []byte("Device /dev/vda is not a valid LUKS device."), 1, nil
				}
				return []byte("Command successful."), 0, nil
			}
			f.stdins = append(f.stdins, string(stdin))
			if f.exitBad != 0 {
				return []byte("Cannot initialize device-mapper."), f.exitBad, nil
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
	key := func(path string) Key { return Key{Path: path, Origin: "rd.luks.key=" + path} }
	usb := cmdline.DeviceRef{Kind: cmdline.Label, Value: "keydisk", Raw: "LABEL=keydisk"}
	// readKey knows the key device LABEL=keydisk, holding /k.
	readKey := func(_ context.Context, k Key) ([]byte, error) {
		switch {
		case k.Device.Kind == cmdline.None:
			return nil, errors.New("unexpected")
		case k.Device.Value != "keydisk":
			return nil, fmt.Errorf("%s: %w", k.Device, ErrNoKeyDevice)
		case k.Path == "/k":
			return []byte("frompart"), nil
		}
		return nil, os.ErrNotExist
	}
	tests := []struct {
		name       string
		sys        fakeSys
		u          Unlock
		wantErr    string // substring; "" = success
		wantStdins []string
		wantSaid   string // substring of the last console line
	}{
		{"first try", fakeSys{key: "s3cret", typed: []string{"s3cret"}}, Unlock{}, "", []string{"s3cret"}, "1234 on /dev/vda is locked"},
		{"wrong then right", fakeSys{key: "s3cret", typed: []string{"nope", "s3cret"}}, Unlock{}, "", []string{"nope", "s3cret"}, "wrong passphrase for LUKS container UUID=1234 on /dev/vda (try 1 of 3)"},
		{"three wrong", fakeSys{key: "s3cret", typed: []string{"a", "b", "c", "s3cret"}}, Unlock{}, "wrong passphrase for LUKS container UUID=1234 on /dev/vda after 3 tries", []string{"a", "b", "c"}, "try 3 of 3"},
		{"tries=1", fakeSys{key: "s3cret", typed: []string{"a", "s3cret"}}, Unlock{Options: Options{Tries: 1}}, "after 1 tries", []string{"a"}, "try 1 of 1"},
		{"tries=0 is forever", fakeSys{key: "s3cret", typed: []string{"a", "b", "c", "d", "s3cret"}}, Unlock{Options: Options{Tries: -1}}, "", []string{"a", "b", "c", "d", "s3cret"}, "(try 4)"},
		{"keyfile", fakeSys{key: "k\n", files: map[string]string{"/k": "k\n"}}, Unlock{Keys: []Key{key("/k")}}, "", []string{"k\n"}, ""},
		{"keyfile offset and size", fakeSys{key: "KEY", files: map[string]string{"/k": "xxKEYyy"}}, Unlock{Keys: []Key{key("/k")}, Options: Options{KeyfileOffset: 2, KeyfileSize: 3}}, "", []string{"KEY"}, ""},
		{"keyfile too short", fakeSys{key: "KEY", files: map[string]string{"/k": "xx"}}, Unlock{Keys: []Key{key("/k")}, Options: Options{KeyfileOffset: 3}}, "rd.luks.key=/k: keyfile /k: keyfile-offset=3 is past the end", nil, ""},
		{"second keyfile fits", fakeSys{key: "two", files: map[string]string{"/1": "one", "/2": "two"}}, Unlock{Keys: []Key{key("/1"), key("/2")}}, "", []string{"one", "two"}, "the keyfile /1 (rd.luks.key=/1) does not unlock"},
		{"keyfile wrong, then typed", fakeSys{key: "s3cret", typed: []string{"s3cret"}, files: map[string]string{"/k": "k"}}, Unlock{Keys: []Key{key("/k")}}, "", []string{"k", "s3cret"}, "is locked"},
		{"keyfile missing", fakeSys{key: "s3cret"}, Unlock{Keys: []Key{key("/missing.key")}}, "rd.luks.key=/missing.key: cannot read the keyfile /missing.key in the image (add it with --include HOSTFILE:/missing.key)", nil, ""},
		{"crypttab keyfile missing, then typed", fakeSys{key: "s3cret", typed: []string{"s3cret"}},
			Unlock{Keys: []Key{{Path: "/etc/keys/home.key", Origin: "/etc/crypttab line 1", Fallback: true}}}, "", []string{"s3cret"}, "is locked"},
		{"key device", fakeSys{key: "frompart"}, Unlock{Keys: []Key{{Path: "/k", Device: usb, Origin: "o"}}}, "", []string{"frompart"}, ""},
		{"key device without the file", fakeSys{key: "frompart"}, Unlock{Keys: []Key{{Path: "/nope", Device: usb, Origin: "o"}}}, "o: cannot read the keyfile /nope:LABEL=keydisk", nil, ""},
		{"key device missing, then typed", fakeSys{key: "s3cret", typed: []string{"s3cret"}},
			Unlock{Keys: []Key{{Path: "/k", Device: cmdline.DeviceRef{Kind: cmdline.Label, Value: "gone", Raw: "LABEL=gone"}, Origin: "o"}}}, "", []string{"s3cret"}, "is locked"},
		{"options passed", fakeSys{key: "x", typed: []string{"x"}}, Unlock{Options: Options{Discard: true, ReadOnly: true}}, "", []string{"x"}, ""},
		{"damaged header", fakeSys{key: "x", typed: []string{"x"}, badHeader: true}, Unlock{}, "LUKS header unreadable: cryptsetup cannot read the header of LUKS container UUID=1234 on /dev/vda (damaged, or overwritten?): exit status 1: Device /dev/vda is not a valid LUKS device.", nil, ""},
		{"open fails", fakeSys{key: "x", typed: []string{"x"}, exitBad: 1}, Unlock{}, "cryptsetup open /dev/vda: exit status 1: Cannot initialize device-mapper.", []string{"x"}, ""},
		{"no console", fakeSys{key: "x"}, Unlock{}, "read the passphrase for LUKS container UUID=1234", nil, ""},
		{"cannot run", fakeSys{key: "x", typed: []string{"x"}, runErr: errors.New("exec: not found")}, Unlock{}, "exec: not found", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.sys
			u := Unlocker{Sys: f.system(), Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Cryptsetup: "/cryptsetup", ReadKey: func(ctx context.Context, k Key) ([]byte, error) {
				if k.Device.Kind == cmdline.None {
					b, err := f.system().ReadFile(k.Path)
					return b, err
				}
				return readKey(ctx, k)
			}}
			err := u.Open(context.Background(), c, tc.u)
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
				if strings.Contains(l, "s3cret") || strings.Contains(l, "frompart") {
					t.Errorf("console line %q shows a key", l)
				}
			}
			if len(f.argv) == 0 || f.argv[0][1] != "isLuks" {
				t.Errorf("first command = %q, want the isLuks header check", f.argv)
			}
			for _, a := range f.argv[min(1, len(f.argv)):] {
				want := OpenArgs("/cryptsetup", c, tc.u.Options)
				if !reflect.DeepEqual(a, want) {
					t.Errorf("ran %q, want %q", a, want)
				}
			}
		})
	}
}

func TestOpenArgs(t *testing.T) {
	c := Container{Node: "/dev/vda2", Name: "root"}
	tests := []struct {
		o    Options
		want []string
	}{
		{Options{}, []string{"/usr/sbin/cryptsetup", "open", "--type", "luks", "--disable-external-tokens", "--disable-locks", "--key-file=-", "/dev/vda2", "root"}},
		{Options{Discard: true, ReadOnly: true, Tries: 2}, []string{"/usr/sbin/cryptsetup", "open", "--type", "luks", "--disable-external-tokens", "--disable-locks", "--key-file=-", "--allow-discards", "--readonly", "/dev/vda2", "root"}},
	}
	for _, tc := range tests {
		if got := OpenArgs("/usr/sbin/cryptsetup", c, tc.o); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("OpenArgs(%+v) = %q, want %q", tc.o, got, tc.want)
		}
	}
}

func TestMappingsAndLink(t *testing.T) {
	sys := t.TempDir()
	dev := t.TempDir()
	for name, dm := range map[string][3]string{
		"dm-0": {"luks-1234", "CRYPT-LUKS2-1234-luks-1234", "253:0"},
		"dm-1": {"my--vg-root", "LVM-abcdef", "253:1"},
		"dm-2": {"made-by-libdm", "CRYPT-PLAIN-made-by-libdm", "253:2"},
	} {
		d := filepath.Join(sys, "class", "block", name, "dm")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(d, "name"), []byte(dm[0]+"\n"), 0o644)
		os.WriteFile(filepath.Join(d, "uuid"), []byte(dm[1]+"\n"), 0o644)
		os.WriteFile(filepath.Join(d, "..", "dev"), []byte(dm[2]+"\n"), 0o644)
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
	if len(maps) != 3 || maps[1] != (Mapping{Kernel: "dm-1", Name: "my--vg-root", UUID: "LVM-abcdef", Dev: "253:1"}) {
		t.Fatalf("Mappings = %+v, want dm-0..dm-2 with names, uuids and numbers", maps)
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

func TestParseLVs(t *testing.T) {
	out := "  WARNING: Failed to connect to lvmetad.\n  vg/root\n  vg/swap\n  my-vg/data\n\n"
	want := []string{"vg/root", "vg/swap", "my-vg/data"}
	if got := ParseLVs([]byte(out)); !reflect.DeepEqual(got, want) {
		t.Errorf("ParseLVs(%q) = %q, want %q", out, got, want)
	}
	if got := LVsArgs("/lvm"); got[0] != "/lvm" || got[1] != "lvs" || !slices.Contains(got, LVMConfig) {
		t.Errorf("LVsArgs = %q, want lvm lvs with the udev-less config", got)
	}
}
