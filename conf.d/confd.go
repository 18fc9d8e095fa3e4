// Package confd loads pkginitrd's configuration: the TOML drop-ins shipped
// in this directory (embedded in the binary), then the system's
// /etc/pkginitrd, then the working directory's pkginitrd.toml and
// pkginitrd.conf.d/*.toml. Later sources override scalars and extend lists;
// a list item "!x" removes x from what came before.
package confd

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/pelletier/go-toml/v2"

	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

//go:embed *.toml
var shipped embed.FS

// Config is the merged configuration.
type Config struct {
	Distribution string `toml:"distribution"`
	Release      string `toml:"release,omitempty"` // overrides the distribution's default release
	Mirror       string `toml:"mirror,omitempty"`  // overrides the distribution's default mirror
	Arch         string `toml:"arch"`
	Compression  string `toml:"compression"`
	// Generic makes generic images the default (as --generic does): for
	// build servers, and for the kernel-install plugin and Debian hooks,
	// which take no flags.
	Generic  bool     `toml:"generic"`
	Features []string `toml:"features"`
	// GenericFeatures are added to Features for --generic images (those
	// the distribution defines).
	GenericFeatures []string `toml:"generic_features"`
	Packages        []string `toml:"packages,omitempty"` // extra packages for every distribution
	Modules         Modules  `toml:"modules"`

	Distributions map[string]Distribution `toml:"distributions"`
}

// Modules configures the kernel-module set.
type Modules struct {
	Generic   []string `toml:"generic"`
	Include   []string `toml:"include"`
	Exclude   []string `toml:"exclude"`
	ForceLoad []string `toml:"force_load"`
}

// Distribution holds what pkginitrd knows about one distribution.
type Distribution struct {
	Backend         string             `toml:"backend"`
	Mirror          string             `toml:"mirror"`
	Release         string             `toml:"release"`
	Keyring         string             `toml:"keyring,omitempty"`
	Packages        []string           `toml:"packages"`
	ExcludePackages []string           `toml:"exclude_packages"`
	Prune           []string           `toml:"prune"`
	Shell           []string           `toml:"shell"`
	Fsck            map[string]string  `toml:"fsck"`
	Features        map[string]Feature `toml:"features,omitempty"`
	// Repositories are the pacman repositories (see 30-arch.toml).
	Repositories []Repository `toml:"repositories,omitempty"`
}

// Repository is one package repository of a distribution.
type Repository struct {
	Name    string `toml:"name"`
	URL     string `toml:"url"` // may contain $repo and $arch (pacman)
	Keyring string `toml:"keyring,omitempty"`
}

// Feature lists what an optional stage0 feature needs from a distribution.
type Feature struct {
	Packages []string `toml:"packages"`
}

// Sources says where configuration is read from; empty fields are skipped.
type Sources struct {
	SystemDir string // e.g. /etc/pkginitrd: pkginitrd.toml and conf.d/*.toml
	WorkDir   string // e.g. ".": pkginitrd.toml and pkginitrd.conf.d/*.toml
	Files     []string
}

// Load reads the shipped defaults and then every source in order, and
// returns the merged configuration with the list of files read.
func Load(src Sources) (*Config, []string, error) {
	return load(shipped, src)
}

// load is Load with the shipped drop-ins read from builtin.
func load(builtin fs.FS, src Sources) (*Config, []string, error) {
	merged := map[string]any{}
	var read []string
	names, err := fs.Glob(builtin, "*.toml")
	if err != nil {
		return nil, nil, err
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := fs.ReadFile(builtin, n)
		if err != nil {
			return nil, nil, err
		}
		if err := mergeFile(merged, "built-in conf.d/"+n, b); err != nil {
			return nil, nil, err
		}
	}
	var files []string
	if src.SystemDir != "" {
		files = append(files, filepath.Join(src.SystemDir, "pkginitrd.toml"))
		files = append(files, dropIns(filepath.Join(src.SystemDir, "conf.d"))...)
	}
	if src.WorkDir != "" {
		files = append(files, filepath.Join(src.WorkDir, "pkginitrd.toml"))
		files = append(files, dropIns(filepath.Join(src.WorkDir, "pkginitrd.conf.d"))...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("read config %s: %w", f, err)
		}
		if err := mergeFile(merged, f, b); err != nil {
			return nil, nil, err
		}
		read = append(read, f)
	}
	for _, f := range src.Files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, nil, fmt.Errorf("read config %s: %w", f, err)
		}
		if err := mergeFile(merged, f, b); err != nil {
			return nil, nil, err
		}
		read = append(read, f)
	}
	b, err := toml.Marshal(merged)
	if err != nil {
		return nil, nil, fmt.Errorf("merge config: %w", err)
	}
	var c Config
	dec := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		var sm *toml.StrictMissingError
		if errors.As(err, &sm) {
			return nil, nil, fmt.Errorf("config (files %s): %s", strings.Join(read, ", "), sm.String())
		}
		return nil, nil, fmt.Errorf("config (files %s): %w", strings.Join(read, ", "), err)
	}
	return &c, read, nil
}

func dropIns(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
	sort.Strings(m)
	return m
}

func mergeFile(dst map[string]any, name string, b []byte) error {
	var src map[string]any
	if err := toml.Unmarshal(b, &src); err != nil {
		var de *toml.DecodeError
		if errors.As(err, &de) {
			row, col := de.Position()
			return fmt.Errorf("config %s:%d:%d: %s", name, row, col, de.Error())
		}
		return fmt.Errorf("config %s: %w", name, err)
	}
	if err := checkPrune(src); err != nil {
		return fmt.Errorf("config %s: %w", name, err)
	}
	merge(dst, src)
	return nil
}

// checkPrune rejects a malformed pattern in a distribution's prune list of
// one file, which would otherwise prune nothing. An item "!x" removes x, so
// x is checked too.
func checkPrune(file map[string]any) error {
	distros, _ := file["distributions"].(map[string]any)
	for _, name := range slices.Sorted(maps.Keys(distros)) {
		d, _ := distros[name].(map[string]any)
		list, _ := d["prune"].([]any)
		for _, item := range list {
			p, ok := item.(string)
			if !ok {
				continue // the typed decode reports it
			}
			if err := fstree.ValidPattern(strings.TrimPrefix(p, "!")); err != nil {
				return fmt.Errorf("distributions.%s.prune: %w", name, err)
			}
		}
	}
	return nil
}

// merge folds src into dst: tables merge recursively, lists append (an item
// "!x" removes x instead), everything else replaces.
func merge(dst, src map[string]any) {
	for k, v := range src {
		switch sv := v.(type) {
		case map[string]any:
			dv, ok := dst[k].(map[string]any)
			if !ok {
				dv = map[string]any{}
				dst[k] = dv
			}
			merge(dv, sv)
		case []any:
			dv, _ := dst[k].([]any)
			dst[k] = mergeList(dv, sv)
		default:
			dst[k] = v
		}
	}
}

func mergeList(dst, src []any) []any {
	out := append([]any{}, dst...)
	for _, item := range src {
		s, ok := item.(string)
		if !ok || !strings.HasPrefix(s, "!") {
			out = append(out, item)
			continue
		}
		kept := out[:0]
		for _, x := range out {
			if x != s[1:] {
				kept = append(kept, x)
			}
		}
		out = kept
	}
	return out
}

// Distro returns the settings of the selected distribution, with the
// top-level release and mirror overrides applied.
func (c *Config) Distro() (Distribution, error) {
	d, ok := c.Distributions[c.Distribution]
	if !ok {
		known := make([]string, 0, len(c.Distributions))
		for k := range c.Distributions {
			known = append(known, k)
		}
		sort.Strings(known)
		return Distribution{}, fmt.Errorf("distribution %q is not configured (known: %s)", c.Distribution, strings.Join(known, ", "))
	}
	if c.Release != "" {
		d.Release = c.Release
	}
	if c.Mirror != "" {
		d.Mirror = c.Mirror
	}
	d.Repositories = latestRepositories(d.Repositories)
	return d, nil
}

// latestRepositories keeps one repository per name: a later file naming a
// repository again replaces the earlier definition, in its place (lists
// append, and the order of repositories matters to pacman).
func latestRepositories(repos []Repository) []Repository {
	var out []Repository
	for _, r := range repos {
		i := slices.IndexFunc(out, func(o Repository) bool { return o.Name == r.Name })
		if i < 0 {
			out = append(out, r)
		} else {
			out[i] = r
		}
	}
	return out
}

// Marshal renders the configuration as TOML (for `pkginitrd config`).
func (c *Config) Marshal() ([]byte, error) {
	return toml.Marshal(c)
}
