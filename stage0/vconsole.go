package stage0

import (
	"context"
	"fmt"
	"strings"

	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/font"
	"github.com/pkginitrd/pkginitrd/stage0/keymap"
)

// consoleFile is a console keymap or font to load before any passphrase
// prompt: the image's (the host's), or the one rd.vconsole.KEY= or
// vconsole.KEY= names, which must be the image's or the kernel's own.
type consoleFile struct {
	Name, Path string
	Warning    string // why the requested file is not loaded
}

// vconsole is what the console step loads.
type vconsole struct{ Keymap, Font consoleFile }

func vconsoleFrom(c *cmdline.CmdLine, conf *bootconf.Config) vconsole {
	return vconsole{
		Keymap: consoleChoice(c, "keymap", "--keymap", append([]bootconf.ConsoleFile{conf.Keymap}, conf.Keymaps...), "us"),
		Font:   consoleChoice(c, "font", "--console-font", []bootconf.ConsoleFile{conf.Font}, "default8x16"),
	}
}

// consoleChoice applies rd.vconsole.key= (else vconsole.key=) to the
// image's files: the first is loaded by default, the others only when
// named. builtin (or "") names the kernel's own map or font.
func consoleChoice(c *cmdline.CmdLine, key, flag string, img []bootconf.ConsoleFile, builtin string) consoleFile {
	want, given := c.Get("rd.vconsole." + key)
	if !given {
		want, given = c.Get("vconsole." + key)
	}
	if !given {
		return consoleFile{Name: img[0].Name, Path: img[0].Path}
	}
	var names []string
	for _, f := range img {
		if f.Path == "" {
			continue
		}
		if f.Name == want {
			return consoleFile{Name: f.Name, Path: f.Path}
		}
		names = append(names, f.Name)
	}
	switch {
	case want == builtin || want == "":
		return consoleFile{}
	case len(names) == 0:
		return consoleFile{Warning: fmt.Sprintf("rd.vconsole.%s=%s: this image carries no %s (build it with %s %s); keeping the kernel's", key, want, key, flag, want)}
	}
	return consoleFile{Warning: fmt.Sprintf("rd.vconsole.%s=%s: this image carries only the %s %s (build it with %s %s); keeping the kernel's", key, want, key, strings.Join(names, ", "), flag, want)}
}

func (v vconsole) needed() bool {
	return v.Keymap != consoleFile{} || v.Font != consoleFile{}
}

// vconsoleStep loads the keymap and the font; failing to is a warning
// (passphrases are then typed with the US layout, or shown in the
// kernel's font).
type vconsoleStep struct{ v vconsole }

func (s vconsoleStep) String() string {
	var what []string
	if s.v.Keymap.Path != "" {
		what = append(what, "keymap "+s.v.Keymap.Name)
	}
	if s.v.Font.Path != "" {
		what = append(what, "font "+s.v.Font.Name)
	}
	if len(what) == 0 {
		return "report the console settings that cannot be applied"
	}
	return "load the console " + strings.Join(what, " and ") + " for passphrase prompts"
}

func (s vconsoleStep) Run(_ context.Context, b *boot) error {
	for _, f := range []consoleFile{s.v.Keymap, s.v.Font} {
		if f.Warning != "" {
			b.log.Warn("kernel command line: console setting not applied", "problem", f.Warning)
		}
	}
	if k := s.v.Keymap; k.Path != "" {
		m, err := loadConsoleFile(b, k.Path, keymap.Parse, b.sys.LoadKeymap)
		if err != nil {
			b.log.Warn("cannot load the console keymap; passphrases are typed with the US layout", "keymap", k.Name, "err", err)
		} else {
			b.log.Info("loaded the console keymap", "keymap", k.Name, "tables", len(m.Tables))
		}
	}
	if f := s.v.Font; f.Path != "" {
		ft, err := loadConsoleFile(b, f.Path, font.Parse, b.sys.LoadFont)
		if err != nil {
			b.log.Warn("cannot load the console font; the kernel's stays", "font", f.Name, "err", err)
		} else {
			b.log.Info("loaded the console font", "font", f.Name, "glyphs", ft.String(), "unicode", len(ft.Pairs()))
			b.font = &loadedFont{name: f.Name, font: ft, drivers: b.consoleDrivers()}
		}
	}
	return nil
}

// loadedFont is the console font the console step loaded, and the
// console drivers bound when it did.
type loadedFont struct {
	name    string
	font    *font.Font
	drivers string
}

// refreshFont loads the font again when the console drivers changed since
// it was loaded: a graphics driver that takes the console over (fbcon
// replacing vgacon, as after a DRM module loads) starts with the kernel's
// font. It runs before each passphrase prompt.
func (b *boot) refreshFont() {
	if b.font == nil {
		return
	}
	d := b.consoleDrivers()
	if d == b.font.drivers {
		return
	}
	b.font.drivers = d
	if err := b.sys.LoadFont(b.font.font); err != nil {
		b.log.Warn("the console driver changed and the console font cannot be loaded again", "font", b.font.name, "err", err)
		return
	}
	b.log.Info("the console driver changed; loaded the console font again", "font", b.font.name)
}

// consoleDrivers describes the console drivers and which are bound, from
// /sys/class/vtconsole/vtconN/{name,bind}.
func (b *boot) consoleDrivers() string {
	var s strings.Builder
	for i := range maxConsoleDrivers {
		for _, f := range []string{"name", "bind"} {
			data, err := b.sys.ReadFile(fmt.Sprintf("/sys/class/vtconsole/vtcon%d/%s", i, f))
			if err == nil {
				fmt.Fprintf(&s, "%d %s=%s\n", i, f, strings.TrimSpace(string(data)))
			}
		}
	}
	return s.String()
}

// maxConsoleDrivers is the kernel's MAX_NR_CON_DRIVER.
const maxConsoleDrivers = 16

// loadConsoleFile reads the image's file path, parses it and loads it.
func loadConsoleFile[T any](b *boot, path string, parse func([]byte) (T, error), load func(T) error) (T, error) {
	data, err := b.sys.ReadFile(path)
	var v T
	if err == nil {
		v, err = parse(data)
	}
	if err == nil {
		err = load(v)
	}
	return v, err
}

var _ step = vconsoleStep{}
