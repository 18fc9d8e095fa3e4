package stage0

import (
	"os"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/keymap"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

const keymapPath = "/etc/pkginitrd/keymap.bmap"

func TestKeymapFrom(t *testing.T) {
	fr := &bootconf.Config{Keymap: bootconf.Keymap{Name: "fr-latin1", Path: keymapPath}}
	for _, tc := range []struct {
		line string
		conf *bootconf.Config
		path string
		warn string
	}{
		{"quiet", fr, keymapPath, ""},
		{"rd.vconsole.keymap=fr-latin1", fr, keymapPath, ""},
		{"vconsole.keymap=fr-latin1", fr, keymapPath, ""},
		{"rd.vconsole.keymap=us", fr, "", ""},
		{"rd.vconsole.keymap=de vconsole.keymap=fr-latin1", fr, "", "carries only the keymap fr-latin1 (build it with --keymap de)"},
		{"vconsole.keymap=de", &bootconf.Config{}, "", "this image carries no keymap"},
		{"quiet", &bootconf.Config{}, "", ""},
	} {
		k := keymapFrom(cmdline.Parse(tc.line), tc.conf)
		if k.Path != tc.path || (tc.warn == "") != (k.Warning == "") || !strings.Contains(k.Warning, tc.warn) {
			t.Errorf("keymapFrom(%q) = %+v, want path %q warning %q", tc.line, k, tc.path, tc.warn)
		}
	}
}

// TestBootKeymap: the image's keymap is loaded before the passphrase is
// asked for.
func TestBootKeymap(t *testing.T) {
	data, err := os.ReadFile("keymap/testdata/fr-latin1.bmap")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line, want string
		loads      int
	}{
		{"root=UUID=" + rootUUID, "loaded the console keymap", 1},
		{"root=UUID=" + rootUUID + " rd.vconsole.keymap=de", "carries only the keymap fr-latin1", 0},
	} {
		f := &fakeSys{devs: []device.Device{containerDev("vda", "crypto_LUKS", luksUUID)}}
		w := &dmWorld{f: f, typed: []string{secretPass}, files: map[string]string{keymapPath: string(data)}}
		conf := &bootconf.Config{Features: []string{"luks"}, Keymap: bootconf.Keymap{Name: "fr-latin1", Path: keymapPath}}
		r := runBootWith(t, f, tc.line, conf, func(sys *machine.Machine) {
			d := w.system()
			sys.Run, sys.Ask, sys.Say, sys.ReadFile, sys.Mappings, sys.LinkMappings = d.Run, d.Ask, d.Say, d.ReadFile, d.Mappings, d.LinkMappings
			exists := sys.Exists
			sys.Exists = func(p string) bool { return p == "/usr/sbin/cryptsetup" || exists(p) }
			sys.LoadKeymap = func(m *keymap.Map) error {
				w.mu.Lock()
				n := len(w.runs)
				w.mu.Unlock()
				f.record("keymap %d tables %#x after %d commands", len(m.Tables), m.Tables[0][16], n)
				return nil
			}
		})
		if r.err != nil || f.switched == nil {
			t.Fatalf("%s: boot = %v\n%s", tc.line, r.err, r.console)
		}
		loads := f.callsMatching("keymap ")
		if len(loads) != tc.loads || tc.loads == 1 && loads[0] != "keymap 7 tables 0xb61 after 0 commands" {
			t.Errorf("%s: keymap loads %q, want %d before cryptsetup ran", tc.line, loads, tc.loads)
		}
		if !strings.Contains(r.file, tc.want) {
			t.Errorf("%s: log lacks %q:\n%s", tc.line, tc.want, r.file)
		}
	}
}
