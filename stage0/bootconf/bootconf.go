// Package bootconf is the contract between the generator and stage0: the
// configuration file that `pkginitrd build` writes into the image and that
// stage0 reads at boot. Both sides are the same binary, but the file is
// versioned so that an image can be inspected by any pkginitrd.
package bootconf

import (
	"bytes"
	"fmt"
	"io"

	"github.com/pelletier/go-toml/v2"
)

// Version is the format version this package writes and the newest it
// reads. Version 2 added Cmdline and extensions (ExtensionPath).
const Version = 2

// ExtensionsSince is the first Version whose stage0 reads ExtensionPath:
// an older image must be rebuilt, not extended.
const ExtensionsSince = 2

// Path is where the config lives inside the image (relative to its root).
const Path = "etc/pkginitrd/initrd.toml"

// Config is what stage0 needs to know that the kernel command line does not
// tell it.
type Config struct {
	Version       int    `toml:"version"`
	KernelVersion string `toml:"kernel_version"`
	// ModulesDir is the image's module directory, e.g. "/usr/lib/modules/6.1.0-26-amd64".
	ModulesDir string `toml:"modules_dir"`
	// Generic images carry no host defaults; host-only images do.
	Generic bool `toml:"generic"`
	// Root holds the host's root settings, used when the command line has no root=.
	Root Root `toml:"root,omitempty"`
	// ForceLoad modules are loaded at boot whether or not a device asks for them.
	ForceLoad []string `toml:"force_load,omitempty"`
	// Shell is the argv of the emergency shell, e.g. ["/usr/bin/busybox", "sh"].
	Shell []string `toml:"shell,omitempty"`
	// Fsck maps a filesystem type to the checker's path in the image.
	Fsck map[string]string `toml:"fsck,omitempty"`
	// Features lists optional stage0 features compiled into this image ("luks", "lvm", "live").
	Features []string `toml:"features,omitempty"`
	// Cmdline words apply as if they came first on the kernel command
	// line: the real command line, parsed after them, wins.
	Cmdline []string `toml:"cmdline,omitempty"`
	// Resume is the host's hibernation resume device, used when the command
	// line has neither resume= nor noresume.
	Resume Resume `toml:"resume,omitempty"`
	// Keymap is the console keymap loaded before the first passphrase prompt.
	Keymap ConsoleFile `toml:"keymap,omitempty"`
	// Keymaps are more keymaps, loaded only when rd.vconsole.keymap= names
	// one (generic images).
	Keymaps []ConsoleFile `toml:"keymaps,omitempty"`
	// Font is the console font (PSF) loaded with it.
	Font ConsoleFile `toml:"font,omitempty"`
}

// ConsoleFile is a console keymap or font in the image.
type ConsoleFile struct {
	Name string `toml:"name,omitempty"` // as in rd.vconsole.keymap=/font=, e.g. "fr-latin1"
	Path string `toml:"path,omitempty"` // the compiled keymap (loadkeys -b) or PSF font in the image
}

// Resume names a resume device in kernel command line terms.
type Resume struct {
	Device string `toml:"device,omitempty"` // as in resume=, e.g. "UUID=…"
	Offset string `toml:"offset,omitempty"` // as in resume_offset= (a swap file's first page)
}

// Root is a root device specification in kernel command line terms.
type Root struct {
	Device string `toml:"device,omitempty"` // as in root=, e.g. "UUID=…"
	FSType string `toml:"fstype,omitempty"` // as in rootfstype=
	Flags  string `toml:"flags,omitempty"`  // as in rootflags=
}

// HasFeature reports whether the image was built with feature f.
func (c *Config) HasFeature(f string) bool {
	for _, x := range c.Features {
		if x == f {
			return true
		}
	}
	return false
}

// Marshal encodes c, stamping the current Version.
func Marshal(c Config) ([]byte, error) {
	c.Version = Version
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("bootconf: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// Parse decodes a config and rejects versions newer than this package knows.
func Parse(r io.Reader) (*Config, error) {
	var c Config
	dec := toml.NewDecoder(r).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("bootconf: decode: %w", err)
	}
	if c.Version < 1 || c.Version > Version {
		return nil, fmt.Errorf("bootconf: version %d not supported (this stage0 reads 1..%d); rebuild the image with the same pkginitrd", c.Version, Version)
	}
	return &c, nil
}
