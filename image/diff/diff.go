// Package diff compares two initramfs images: the files they unpack to
// (any generator's image, see image.ReadFiles) and, for pkginitrd images,
// the packages, kernel modules and build options their manifests record.
// The result is data; the command line prints it.
package diff

import (
	"context"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/image/manifest"
)

// Image is one side of a comparison.
type Image struct {
	Files    []image.File       // sorted by path
	Manifest *manifest.Manifest // nil: not a pkginitrd image
}

// Load reads an image's files and its manifest, if it carries one.
func Load(ctx context.Context, r io.ReaderAt, size int64) (*Image, error) {
	files, err := image.ReadFiles(ctx, r, size, manifest.Path)
	if err != nil {
		return nil, err
	}
	m, err := manifest.Find(files)
	if errors.Is(err, manifest.ErrNone) {
		return &Image{Files: files}, nil
	}
	if err != nil {
		return nil, err
	}
	return &Image{Files: files, Manifest: m}, nil
}

// The file attributes a FileChange names.
const (
	FieldType   = "type"
	FieldMode   = "mode"
	FieldOwner  = "owner"
	FieldSize   = "size"
	FieldHash   = "sha256"
	FieldTarget = "target"
	FieldDevice = "device"
)

// FileChange is a path added (Old nil), removed (New nil) or changed.
type FileChange struct {
	Path     string
	Old, New *image.File
	Fields   []string // for a change: the attributes that differ (Field*), in that order
}

// Kind is "added", "removed" or "changed".
func (c FileChange) Kind() string {
	switch {
	case c.Old == nil:
		return "added"
	case c.New == nil:
		return "removed"
	}
	return "changed"
}

// Change is a named thing whose version or value differs: Old or New is
// "" where it is absent.
type Change struct {
	Name, Old, New string
}

// Result is what differs between two images. Packages, Modules and Build
// are compared only when both images carry a manifest.
type Result struct {
	Files    []FileChange // sorted by path
	Packages []Change     // by name; the values are versions
	Modules  []Change     // by name; the values are the kernel versions
	Build    []Change     // generator, kernel version and build options
}

// Same reports whether nothing differs.
func (r *Result) Same() bool {
	return len(r.Files)+len(r.Packages)+len(r.Modules)+len(r.Build) == 0
}

// Compare lists what differs from a to b.
func Compare(a, b *Image) *Result {
	r := &Result{Files: compareFiles(a.Files, b.Files)}
	if a.Manifest != nil && b.Manifest != nil {
		r.Packages = compareMaps(packageVersions(a.Manifest), packageVersions(b.Manifest))
		r.Modules = compareMaps(moduleVersions(a.Manifest), moduleVersions(b.Manifest))
		r.Build = compareMaps(buildValues(a.Manifest), buildValues(b.Manifest))
	}
	return r
}

// compareFiles merges two path-sorted lists.
func compareFiles(a, b []image.File) []FileChange {
	var out []FileChange
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i].Path < b[j].Path:
			out = append(out, FileChange{Path: a[i].Path, Old: &a[i]})
			i++
		case i == len(a) || b[j].Path < a[i].Path:
			out = append(out, FileChange{Path: b[j].Path, New: &b[j]})
			j++
		default:
			if f := fileFields(&a[i], &b[j]); len(f) > 0 {
				out = append(out, FileChange{Path: a[i].Path, Old: &a[i], New: &b[j], Fields: f})
			}
			i++
			j++
		}
	}
	return out
}

// fileFields lists the attributes that differ between two files of one path.
func fileFields(a, b *image.File) []string {
	var f []string
	add := func(differ bool, name string) {
		if differ {
			f = append(f, name)
		}
	}
	add(a.Mode&cpio.TypeMask != b.Mode&cpio.TypeMask, FieldType)
	add(a.Mode&^cpio.TypeMask != b.Mode&^cpio.TypeMask, FieldMode)
	add(a.UID != b.UID || a.GID != b.GID, FieldOwner)
	add(a.Size != b.Size, FieldSize)
	add(a.SHA256 != b.SHA256, FieldHash)
	add(a.Linkname != b.Linkname, FieldTarget)
	add(a.RdevMajor != b.RdevMajor || a.RdevMinor != b.RdevMinor, FieldDevice)
	return f
}

func packageVersions(m *manifest.Manifest) map[string]string {
	out := map[string]string{}
	for _, p := range m.Packages {
		out[p.Name] = p.Version
	}
	return out
}

func moduleVersions(m *manifest.Manifest) map[string]string {
	out := map[string]string{}
	for _, name := range m.Modules {
		out[name] = m.KernelVersion
	}
	return out
}

// buildValues flattens what a manifest says about how the image was built.
func buildValues(m *manifest.Manifest) map[string]string {
	o := m.Options
	return map[string]string{
		"generator":         m.Generator,
		"kernel_version":    m.KernelVersion,
		"distribution":      o.Distribution,
		"release":           o.Release,
		"arch":              o.Arch,
		"backend":           o.Backend,
		"generic":           strconv.FormatBool(o.Generic),
		"compression":       o.Compression,
		"source_date_epoch": strconv.FormatInt(o.SourceDateEpoch, 10),
		"features":          strings.Join(o.Features, " "),
		"extra_packages":    strings.Join(o.ExtraPackages, " "),
		"includes":          strings.Join(o.Includes, " "),
	}
}

// compareMaps lists the names whose values differ, sorted by name.
func compareMaps(a, b map[string]string) []Change {
	var out []Change
	for name, old := range a {
		if nv, ok := b[name]; !ok || nv != old {
			out = append(out, Change{Name: name, Old: old, New: nv})
		}
	}
	for name, nv := range b {
		if _, ok := a[name]; !ok {
			out = append(out, Change{Name: name, New: nv})
		}
	}
	slices.SortFunc(out, func(x, y Change) int { return strings.Compare(x.Name, y.Name) })
	return out
}
