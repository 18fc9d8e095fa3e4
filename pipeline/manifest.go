package pipeline

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
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

// ManifestPackage is one package unpacked into the image.
type ManifestPackage struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	// Repository and Backend say where the package came from.
	Repository string `json:"repository,omitempty"`
	Backend    string `json:"backend,omitempty"`
}

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
	for _, p := range b.pkgs {
		m.Packages = append(m.Packages, ManifestPackage{Name: p.Name, Version: p.Version, Arch: p.Arch, Repository: p.Repository, Backend: b.plan.Distribution.Backend})
	}
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
	sort.Slice(m.Packages, func(i, j int) bool { return m.Packages[i].Name < m.Packages[j].Name })
	return m
}

// WriteFile writes the manifest as indented JSON, atomically.
func (m *Manifest) WriteFile(path string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, bytes.NewReader(append(b, '\n')), 0o644)
}
