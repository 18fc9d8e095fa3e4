package stage0

import (
	"context"
	"fmt"

	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
	"github.com/pkginitrd/pkginitrd/stage0/keymap"
)

// keymapSettings is the console keymap to load before any passphrase
// prompt: the image's (the host's), or the one rd.vconsole.keymap= or
// vconsole.keymap= names, which must be the image's ("us", the kernel's
// own map, needs none).
type keymapSettings struct {
	Name, Path string
	Warning    string // why the requested keymap is not loaded
}

func keymapFrom(c *cmdline.CmdLine, conf *bootconf.Config) keymapSettings {
	want, given := c.Get("rd.vconsole.keymap")
	if !given {
		want, given = c.Get("vconsole.keymap")
	}
	img := conf.Keymap
	switch {
	case !given || want == img.Name && img.Path != "":
		return keymapSettings{Name: img.Name, Path: img.Path}
	case want == "us" || want == "":
		return keymapSettings{}
	case img.Name == "":
		return keymapSettings{Warning: fmt.Sprintf("rd.vconsole.keymap=%s: this image carries no keymap (build it with --keymap %s); keeping the kernel's US map", want, want)}
	}
	return keymapSettings{Warning: fmt.Sprintf("rd.vconsole.keymap=%s: this image carries only the keymap %s (build it with --keymap %s); keeping the kernel's US map", want, img.Name, want)}
}

// keymapStep loads the keymap; failing to is a warning (passphrases are
// then typed with the US layout).
type keymapStep struct{ k keymapSettings }

func (s keymapStep) String() string {
	if s.k.Path == "" {
		return "report the keymap that cannot be loaded"
	}
	return "load the console keymap " + s.k.Name + " for passphrase prompts"
}

func (s keymapStep) Run(_ context.Context, b *boot) error {
	if s.k.Warning != "" {
		b.log.Warn("kernel command line: keymap not loaded", "problem", s.k.Warning)
		return nil
	}
	data, err := b.sys.ReadFile(s.k.Path)
	var m *keymap.Map
	if err == nil {
		m, err = keymap.Parse(data)
	}
	if err == nil {
		err = b.sys.LoadKeymap(m)
	}
	if err != nil {
		b.log.Warn("cannot load the console keymap; passphrases are typed with the US layout", "keymap", s.k.Name, "err", err)
		return nil
	}
	b.log.Info("loaded the console keymap", "keymap", s.k.Name, "tables", len(m.Tables))
	return nil
}

var _ step = keymapStep{}
