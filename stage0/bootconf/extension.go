package bootconf

import (
	"bytes"
	"fmt"
	"io"
	"slices"

	"github.com/pelletier/go-toml/v2"
)

// ExtensionPath is where `pkginitrd extend` puts the configuration it adds
// to a built image, in a segment appended after the image's own; stage0
// applies it over the Config at Path (Config.Extend). Extending an extended
// image replaces the file with the merge of the old and the new one, since
// the kernel keeps the last file of a name.
const ExtensionPath = "etc/pkginitrd/extension.toml"

// Extension is configuration added to a built image without rebuilding it.
type Extension struct {
	Version int `toml:"version"`
	// Cmdline words are added to Config.Cmdline: they apply as if they came
	// first on the kernel command line, which wins over them.
	Cmdline []string `toml:"cmdline,omitempty"`
	// ForceLoad modules are loaded at boot in addition to the image's.
	ForceLoad []string `toml:"force_load,omitempty"`
}

// Merge returns e with next applied after it: lists append (force_load
// without repeats), so next's command-line words win over e's.
func (e Extension) Merge(next Extension) Extension {
	out := Extension{Version: max(e.Version, next.Version)}
	out.Cmdline = append(slices.Clone(e.Cmdline), next.Cmdline...)
	out.ForceLoad = appendNew(slices.Clone(e.ForceLoad), next.ForceLoad...)
	return out
}

// Extend applies an extension to the image's configuration.
func (c *Config) Extend(e Extension) {
	c.Cmdline = append(c.Cmdline, e.Cmdline...)
	c.ForceLoad = appendNew(c.ForceLoad, e.ForceLoad...)
}

func appendNew(list []string, items ...string) []string {
	for _, x := range items {
		if !slices.Contains(list, x) {
			list = append(list, x)
		}
	}
	return list
}

// MarshalExtension encodes e as format version v, which must be one the
// extended image's stage0 reads (ExtensionsSince up to its Config.Version).
func MarshalExtension(e Extension, v int) ([]byte, error) {
	if v < ExtensionsSince || v > Version {
		return nil, fmt.Errorf("bootconf: extension version %d not supported (want %d..%d)", v, ExtensionsSince, Version)
	}
	e.Version = v
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(e); err != nil {
		return nil, fmt.Errorf("bootconf: encode extension: %w", err)
	}
	return buf.Bytes(), nil
}

// ParseExtension decodes an extension and rejects versions this package
// does not know.
func ParseExtension(r io.Reader) (*Extension, error) {
	var e Extension
	if err := toml.NewDecoder(r).DisallowUnknownFields().Decode(&e); err != nil {
		return nil, fmt.Errorf("bootconf: decode extension: %w", err)
	}
	if e.Version < ExtensionsSince || e.Version > Version {
		return nil, fmt.Errorf("bootconf: extension version %d not supported (this stage0 reads %d..%d)", e.Version, ExtensionsSince, Version)
	}
	return &e, nil
}
