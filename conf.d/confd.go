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
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
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
	// ImageMode is the image file's mode in octal ("0644"); unset, a
	// rebuild keeps the existing image's mode and a new image is 0600.
	ImageMode string `toml:"image_mode,omitempty"`
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
	// Unpack limits what one package may unpack to.
	Unpack UnpackLimits `toml:"unpack,omitempty"`
	// Cache configures the package cache.
	Cache Cache `toml:"cache"`
	// UKI configures unified kernel images (build --uki).
	UKI UKI `toml:"uki"`
	// Console configures the console keymaps of generic images.
	Console Console `toml:"console,omitempty"`
	// Extend is what the kernel-install plugin appends to a distribution's
	// prebuilt initrd (as `pkginitrd extend` does) instead of copying it as is.
	Extend Extend `toml:"extend,omitempty"`

	Distributions map[string]Distribution `toml:"distributions"`
}

// Console configures console keymaps.
type Console struct {
	// GenericKeymaps are compiled into every generic image, for
	// rd.vconsole.keymap= to choose at boot (host-only images carry the
	// host's keymap only).
	GenericKeymaps []string `toml:"generic_keymaps,omitempty"`
}

// Modules configures the kernel-module set.
type Modules struct {
	Generic   []string `toml:"generic"`
	Include   []string `toml:"include"`
	Exclude   []string `toml:"exclude"`
	ForceLoad []string `toml:"force_load"`
}

// UnpackLimits bound what one package may unpack to; a package beyond
// them is refused. Absent or 0 means the default of backends/unpack.
type UnpackLimits struct {
	MaxPackageSize Size `toml:"max_package_size,omitempty"` // total of its files
	MaxFileSize    Size `toml:"max_file_size,omitempty"`    // any one file
	MaxEntries     int  `toml:"max_entries,omitempty"`      // files, directories, links
}

// Size is a byte count, written in TOML as a string with an optional
// binary unit: "4096", "100KiB", "512MiB", "1GiB".
type Size int64

// sizeUnits are the units of Size, largest first.
func sizeUnits() []struct {
	name  string
	bytes int64
} {
	return []struct {
		name  string
		bytes int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}}
}

// UnmarshalText parses a size such as "512MiB".
func (s *Size) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	num, mult := text, int64(1)
	for _, u := range sizeUnits() {
		if n, ok := strings.CutSuffix(text, u.name); ok {
			num, mult = strings.TrimSpace(n), u.bytes
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 0 || n > math.MaxInt64/mult {
		return fmt.Errorf("size %q: want a whole number of bytes with an optional unit KiB, MiB, GiB or TiB, e.g. \"512MiB\"", text)
	}
	*s = Size(n * mult)
	return nil
}

// MarshalText writes the size in the largest unit that divides it.
func (s Size) MarshalText() ([]byte, error) {
	for _, u := range sizeUnits() {
		if s != 0 && int64(s)%u.bytes == 0 {
			return fmt.Appendf(nil, "%d%s", int64(s)/u.bytes, u.name), nil
		}
	}
	return fmt.Appendf(nil, "%d", int64(s)), nil
}

// Cache configures the package cache.
type Cache struct {
	// MaxSize caps the unpacked package trees ("4GiB"; "0" for no cap): a
	// build removes the least recently used beyond it.
	MaxSize Size `toml:"max_size"`
}

// UKI configures unified kernel images.
type UKI struct {
	// Cmdline is the kernel command line of a UKI when --cmdline is not
	// given (host-only builds otherwise read /etc/kernel/cmdline).
	Cmdline string `toml:"cmdline,omitempty"`
	// Stub is the systemd-stub inside the distribution's stub package, a
	// glob pattern relative to the package root (one file must match).
	Stub string `toml:"stub"`
}

// Extend lists per-host additions to a prebuilt image, as the flags of
// `pkginitrd extend` of the same names.
type Extend struct {
	Include  []string `toml:"include,omitempty"` // "SRC:DEST"
	Modules  []string `toml:"modules,omitempty"`
	Crypttab bool     `toml:"crypttab,omitempty"`
	Cmdline  []string `toml:"cmdline,omitempty"`
}

// Empty reports whether e adds nothing.
func (e Extend) Empty() bool {
	return len(e.Include) == 0 && len(e.Modules) == 0 && !e.Crypttab && len(e.Cmdline) == 0
}

// Distribution holds what pkginitrd knows about one distribution.
type Distribution struct {
	Backend string `toml:"backend"`
	Mirror  string `toml:"mirror"`
	Release string `toml:"release"`
	Keyring string `toml:"keyring,omitempty"` // for repositories that name none
	// Repositories are used when the build is not for the host's own
	// distribution and release, or a mirror is given; see Repository.
	Repositories    map[string]Repository `toml:"repositories,omitempty"`
	Packages        []string              `toml:"packages"`
	ExcludePackages []string              `toml:"exclude_packages"`
	Prune           []string              `toml:"prune"`
	Shell           []string              `toml:"shell"`
	Fsck            map[string]string     `toml:"fsck"`
	Features        map[string]Feature    `toml:"features,omitempty"`
	// StubPackage ships systemd-stub (UKI.Stub), fetched for --uki.
	StubPackage string `toml:"stub_package,omitempty"`
}

// Repository is one package repository of a distribution, named by its key
// in [distributions.NAME.repositories.KEY] so a drop-in can change or
// disable one. In URL and suites, "{mirror}" and "{release}" stand for the
// build's mirror and release (apt); dnf expands $releasever and $basearch
// itself.
type Repository struct {
	URL        string   `toml:"url,omitempty"`        // base URL (apt's URIs, dnf's baseurl)
	Metalink   string   `toml:"metalink,omitempty"`   // dnf: instead of URL
	Suites     []string `toml:"suites,omitempty"`     // apt
	Components []string `toml:"components,omitempty"` // apt
	Keyring    string   `toml:"keyring,omitempty"`    // the distribution's keyring if empty
	// SkipReleases are releases that lack this repository (e.g. sid has
	// no -updates or -security suite).
	SkipReleases []string `toml:"skip_releases,omitempty"`
	Disabled     bool     `toml:"disabled,omitempty"`
	// UnsignedMetadata turns off the signature check of the repository's
	// metadata (dnf's repomd.xml), for repositories that sign only
	// packages and whose metadata is fetched over HTTPS.
	UnsignedMetadata bool `toml:"unsigned_metadata,omitempty"`
	// Priority orders repositories where the first one that has a package
	// wins (pacman): lower first, then by name.
	Priority int `toml:"priority,omitempty"`
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
	// Each file was checked on its own (checkFile), so this decode of
	// their merge has nothing left to report but a contradiction between
	// files.
	var c Config
	if err := toml.Unmarshal(b, &c); err != nil {
		return nil, nil, fmt.Errorf("config (files %s): %w", strings.Join(read, ", "), err)
	}
	return &c, read, nil
}

func dropIns(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "*.toml"))
	sort.Strings(m)
	return m
}

// mergeFile checks the file name with contents b and folds it into dst.
func mergeFile(dst map[string]any, name string, b []byte) error {
	if err := checkFile(name, b); err != nil {
		return err
	}
	var src map[string]any
	if err := toml.Unmarshal(b, &src); err != nil {
		return fmt.Errorf("config %s: %w", name, err)
	}
	if err := checkPrune(src); err != nil {
		return fmt.Errorf("config %s: %w", name, err)
	}
	merge(dst, src)
	return nil
}

// checkFile decodes one file on its own, strictly, so that a syntax error,
// a wrong type or an unknown key is reported at its line in that file (the
// merged configuration is re-encoded and has no lines of the user's).
func checkFile(name string, b []byte) error {
	var c Config
	err := toml.NewDecoder(bytes.NewReader(b)).DisallowUnknownFields().Decode(&c)
	var sm *toml.StrictMissingError
	var de *toml.DecodeError
	switch {
	case errors.As(err, &sm):
		errs := make([]error, len(sm.Errors))
		for i, e := range sm.Errors {
			row, _ := e.Position()
			errs[i] = fmt.Errorf("config %s:%d: unknown key %q", name, row, strings.Join(e.Key(), "."))
		}
		return errors.Join(errs...)
	case errors.As(err, &de):
		row, col := de.Position()
		return fmt.Errorf("config %s:%d:%d: %s", name, row, col, de.Error())
	case err != nil:
		return fmt.Errorf("config %s: %w", name, err)
	}
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
	return d, nil
}

// RepositoryNames returns the names of repos in the order a package
// manager should try them: by Priority, then by name.
func RepositoryNames(repos map[string]Repository) []string {
	names := slices.Sorted(maps.Keys(repos))
	slices.SortStableFunc(names, func(a, b string) int { return repos[a].Priority - repos[b].Priority })
	return names
}

// Marshal renders the configuration as TOML (for `pkginitrd config`).
func (c *Config) Marshal() ([]byte, error) {
	return toml.Marshal(c)
}
