package stage0

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/device"
	"github.com/pkginitrd/pkginitrd/stage0/font"
	"github.com/pkginitrd/pkginitrd/stage0/keymap"
	"github.com/pkginitrd/pkginitrd/stage0/machine"
)

const keymapPath = "/etc/pkginitrd/keymap.bmap"

// psf1Font is a blank PSF1 font of 256 glyphs of 8x16 pixels.
var psf1Font = "\x36\x04\x00\x10" + strings.Repeat("\x00", 256*16)

const fontPath = "/etc/pkginitrd/font.psf"

func TestVconsoleFrom(t *testing.T) {
	fr := &bootconf.Config{Keymap: bootconf.ConsoleFile{Name: "fr-latin1", Path: keymapPath}, Font: bootconf.ConsoleFile{Name: "Lat15-Fixed16", Path: fontPath}}
	generic := &bootconf.Config{Keymaps: []bootconf.ConsoleFile{{Name: "de", Path: "/k/de.bmap"}, {Name: "uk", Path: "/k/uk.bmap"}}}
	for _, tc := range []struct {
		line                       string
		conf                       *bootconf.Config
		keymap, font               string // paths to load
		keymapWarning, fontWarning string
	}{
		{"quiet", fr, keymapPath, fontPath, "", ""},
		{"rd.vconsole.keymap=fr-latin1 rd.vconsole.font=Lat15-Fixed16", fr, keymapPath, fontPath, "", ""},
		{"vconsole.keymap=fr-latin1", fr, keymapPath, fontPath, "", ""},
		{"rd.vconsole.keymap=us vconsole.font=default8x16", fr, "", "", "", ""},
		{"rd.vconsole.font=", fr, keymapPath, "", "", ""},
		{"rd.vconsole.keymap=de vconsole.keymap=fr-latin1", fr, "", fontPath, "carries only the keymap fr-latin1 (build it with --keymap de)", ""},
		{"vconsole.keymap=de vconsole.font=ter-v32n", &bootconf.Config{}, "", "", "this image carries no keymap", "carries no font (build it with --console-font ter-v32n)"},
		{"rd.vconsole.font=ter-v32n", fr, keymapPath, "", "", "carries only the font Lat15-Fixed16"},
		{"quiet", &bootconf.Config{}, "", "", "", ""},
		{"rd.vconsole.keymap=de", generic, "/k/de.bmap", "", "", ""},
		{"quiet", generic, "", "", "", ""},
		{"rd.vconsole.keymap=cz", generic, "", "", "carries only the keymap de, uk (build it with --keymap cz)", ""},
	} {
		v := vconsoleFrom(cmdline.Parse(tc.line), tc.conf)
		for _, c := range []struct {
			got        consoleFile
			path, warn string
		}{{v.Keymap, tc.keymap, tc.keymapWarning}, {v.Font, tc.font, tc.fontWarning}} {
			if c.got.Path != c.path || (c.warn == "") != (c.got.Warning == "") || !strings.Contains(c.got.Warning, c.warn) {
				t.Errorf("vconsoleFrom(%q) = %+v, want path %q warning %q", tc.line, c.got, c.path, c.warn)
			}
		}
		if v.needed() != (tc.keymap != "" || tc.font != "" || tc.keymapWarning != "" || tc.fontWarning != "") {
			t.Errorf("vconsoleFrom(%q).needed() = %v", tc.line, v.needed())
		}
	}
}

// TestBootVconsole: the image's keymap and font are loaded before the
// passphrase is asked for, the font again when a console driver took the
// console over in between.
func TestBootVconsole(t *testing.T) {
	data, err := os.ReadFile("keymap/testdata/fr-latin1.bmap")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		line, want string
		loads      int
		takeover   bool // fbcon binds after the font is loaded
	}{
		{"root=UUID=" + rootUUID, "loaded the console font", 1, false},
		{"root=UUID=" + rootUUID, "the console driver changed; loaded the console font again", 1, true},
		{"root=UUID=" + rootUUID + " rd.vconsole.keymap=de rd.vconsole.font=", "carries only the keymap fr-latin1", 0, false},
	} {
		f := &fakeSys{devs: []device.Device{containerDev("vda", "crypto_LUKS", luksUUID)}}
		w := &dmWorld{f: f, typed: []string{secretPass}, files: map[string]string{keymapPath: string(data), fontPath: psf1Font}}
		conf := &bootconf.Config{Features: []string{"luks"}, Keymap: bootconf.ConsoleFile{Name: "fr-latin1", Path: keymapPath}, Font: bootconf.ConsoleFile{Name: "Lat15-Fixed16", Path: fontPath}}
		r := runBootWith(t, f, tc.line, conf, func(sys *machine.Machine) {
			d := w.system()
			sys.Run, sys.Ask, sys.Say, sys.Mappings, sys.LinkMappings = d.Run, d.Ask, d.Say, d.Mappings, d.LinkMappings
			sys.ReadFile = func(p string) ([]byte, error) {
				switch {
				case p == "/sys/class/vtconsole/vtcon0/name":
					return []byte("(S) VGA+\n"), nil
				case p == "/sys/class/vtconsole/vtcon1/name" && tc.takeover && w.ran() > 0:
					return []byte("(M) frame buffer device\n"), nil
				}
				return d.ReadFile(p)
			}
			exists := sys.Exists
			sys.Exists = func(p string) bool { return p == "/usr/sbin/cryptsetup" || exists(p) }
			sys.LoadKeymap = func(m *keymap.Map) error {
				f.record("keymap %d tables %#x after %d commands", len(m.Tables), m.Tables[0][16], w.ran())
				return nil
			}
			sys.LoadFont = func(ft *font.Font) error {
				f.record("font %s after %d commands", ft, w.ran())
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
		want := []string{"font 256 glyphs of 8x16 after 0 commands"}
		if tc.takeover {
			want = append(want, "font 256 glyphs of 8x16 after 1 commands") // after isLuks, before the prompt
		}
		if fonts := f.callsMatching("font "); tc.loads == 0 && len(fonts) > 0 || tc.loads == 1 && !slices.Equal(fonts, want) {
			t.Errorf("%s: font loads %q, want %q", tc.line, fonts, want)
		}
		if !strings.Contains(r.file, tc.want) {
			t.Errorf("%s: log lacks %q:\n%s", tc.line, tc.want, r.file)
		}
	}
}
