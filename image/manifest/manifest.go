// Package manifest is the description a pkginitrd image carries of itself
// (Path): the packages with their versions, the kernel modules and the
// build options, so that `pkginitrd inspect` and `inspect --diff` can tell
// what an image holds without side files. It holds only what is known
// before the image is written: not the image's own size or hash, and not
// the list of files, which the image itself is.
package manifest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/pkginitrd/pkginitrd/image"
)

// Path is where the manifest is in the image.
const Path = "etc/pkginitrd/manifest.json"

// Format is the version of the manifest's layout; readers refuse newer ones.
const Format = 1

// ErrNone means an image carries no manifest (it was not made by
// pkginitrd, or by a pkginitrd older than the manifest).
var ErrNone = errors.New("manifest: the image carries no pkginitrd manifest")

// Manifest describes a pkginitrd image.
type Manifest struct {
	Format        int       `json:"format"`
	Generator     string    `json:"generator"` // "pkginitrd VERSION"
	KernelVersion string    `json:"kernel_version"`
	Options       Options   `json:"options"`
	Packages      []Package `json:"packages"` // sorted by name
	Modules       []string  `json:"modules"`  // kernel module names, sorted
}

// Options are the build options that shaped the image.
type Options struct {
	Distribution    string   `json:"distribution"`
	Release         string   `json:"release,omitempty"`
	Arch            string   `json:"arch,omitempty"`
	Backend         string   `json:"backend,omitempty"`
	Generic         bool     `json:"generic"`
	Compression     string   `json:"compression"`
	SourceDateEpoch int64    `json:"source_date_epoch"`
	Features        []string `json:"features,omitempty"`
	ExtraPackages   []string `json:"extra_packages,omitempty"` // --package and the configuration's packages
	Includes        []string `json:"includes,omitempty"`       // destinations of --include
}

// Package is one distribution package unpacked into the image, with the
// repository (URL) and suite the package manager took it from, when known.
type Package struct {
	Name       string `json:"name"`
	Version    string `json:"version"`
	Arch       string `json:"arch"`
	Repository string `json:"repository,omitempty"`
	Suite      string `json:"suite,omitempty"`
	Backend    string `json:"backend,omitempty"` // the package manager that resolved it (apt, dnf, ...)
}

// Marshal encodes m as indented JSON: the same manifest gives the same bytes.
func Marshal(m *Manifest) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return b.Bytes(), nil
}

// Parse decodes a manifest, refusing a format newer than this reader's.
func Parse(data []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, fmt.Errorf("parse manifest: %w", err)
	}
	if m.Format > Format {
		return nil, fmt.Errorf("manifest format %d is newer than this pkginitrd reads (%d): update pkginitrd", m.Format, Format)
	}
	return &m, nil
}

// Find returns the manifest among an image's files (see image.ReadFiles,
// which must have kept Path), or ErrNone.
func Find(files []image.File) (*Manifest, error) {
	for _, f := range files {
		if f.Path == Path && f.Data != nil {
			return Parse(f.Data)
		}
	}
	return nil, ErrNone
}

// Read reads the manifest an image carries, or returns ErrNone.
func Read(ctx context.Context, r io.ReaderAt, size int64) (*Manifest, error) {
	files, err := image.ReadFiles(ctx, r, size, Path)
	if err != nil {
		return nil, err
	}
	return Find(files)
}
