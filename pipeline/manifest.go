package pipeline

import (
	"encoding/json"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/pkginitrd/pkginitrd/image/manifest"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/modules"
)

// Manifest records what went into an image: for build servers, audits and
// reproducibility checks.
type Manifest struct {
	Image         string            `json:"image"`
	Size          int64             `json:"size"`
	SHA256        string            `json:"sha256"`
	KernelVersion string            `json:"kernel_version"`
	Generic       bool              `json:"generic"`
	Compression   string            `json:"compression"`
	Packages      []ManifestPackage `json:"packages"`
	Modules       []ManifestModule  `json:"modules"`
	// Firmware lists the firmware files copied (paths under usr/lib/firmware).
	Firmware []string `json:"firmware"`
	Files    int      `json:"files"`
	// BytesByOrigin sums regular-file sizes per origin (package, "modules", "stage0", …).
	BytesByOrigin map[string]int64 `json:"bytes_by_origin"`
	// Timings is informational (milliseconds per step) and not reproducible.
	Timings map[string]int64 `json:"timings_ms,omitempty"`
}

// ManifestPackage is one package unpacked into the image, with the
// repository (URL) and suite the package manager took it from: the same
// record as in the manifest the image carries.
type ManifestPackage = manifest.Package

// ManifestModule is one kernel module copied into the image.
type ManifestModule struct {
	Name    string           `json:"name"`
	Size    int64            `json:"size"`
	Reasons []modules.Reason `json:"reasons"` // {"kind": "dependency", "parent": "ext4"}, {"kind": "include", "rule": "dm_.*"}, …
}

// manifest describes the finished build b.
func (b *build) manifest() *Manifest {
	opts, k, res, t, set := b.opts, b.kern, b.result.Image, b.tree, b.modSet
	m := &Manifest{
		Image:         filepath.Base(opts.Output),
		Size:          res.Size,
		SHA256:        res.SHA256,
		KernelVersion: k.Version,
		Generic:       opts.Generic,
		Compression:   opts.Config.Compression,
		BytesByOrigin: map[string]int64{},
		Timings:       map[string]int64{"total": time.Since(b.start).Milliseconds()},
	}
	m.Packages = b.manifestPackages()
	for _, mod := range set.Modules {
		m.Modules = append(m.Modules, ManifestModule{Name: mod.Name, Size: mod.Size, Reasons: mod.Reasons})
	}
	for _, e := range t.Sorted() {
		m.Files++
		if e.Kind == fstree.File {
			m.BytesByOrigin[e.Origin] += e.Size
		}
		if fw, ok := strings.CutPrefix(e.Path, "usr/lib/firmware/"); ok && e.Origin == modules.FirmwareOrigin {
			m.Firmware = append(m.Firmware, fw)
		}
	}
	for k, v := range b.timings {
		m.Timings[k] = v.Milliseconds()
	}
	return m
}

// Encode writes the manifest to w as indented JSON.
func (m *Manifest) Encode(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(m)
}
