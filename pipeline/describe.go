package pipeline

import (
	"cmp"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"time"

	"github.com/pkginitrd/pkginitrd/image/manifest"
	"github.com/pkginitrd/pkginitrd/image/sbom"
	"github.com/pkginitrd/pkginitrd/internal/compress"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
)

// describe puts the image's own manifest (manifest.Path) in the tree: the
// packages, modules and build options, all known before the image is
// written (its size and hash are not, so they are not in it).
func (b *build) describe(context.Context) error {
	data, err := manifest.Marshal(b.imageManifest())
	if err != nil {
		return err
	}
	return b.tree.Replace(fstree.Entry{Path: manifest.Path, Kind: fstree.File, Mode: 0o644, Data: data, Size: int64(len(data)), Origin: "pkginitrd"})
}

// imageManifest is the manifest the image carries.
func (b *build) imageManifest() *manifest.Manifest {
	d, cfg := b.plan.Distribution, b.opts.Config
	m := &manifest.Manifest{
		Format:        manifest.Format,
		Generator:     "pkginitrd " + b.opts.Version,
		KernelVersion: b.kern.Version,
		Options: manifest.Options{
			Distribution:    b.plan.Name,
			Release:         d.Release,
			Arch:            cfg.Arch,
			Backend:         b.backendName(),
			Generic:         b.opts.Generic,
			Compression:     cfg.Compression,
			SourceDateEpoch: b.opts.Mtime,
			Features:        b.plan.Features,
			ExtraPackages:   slices.Concat(cfg.Packages, b.opts.Packages),
		},
		Packages: b.manifestPackages(),
		Modules:  []string{},
	}
	for _, inc := range b.opts.Includes {
		m.Options.Includes = append(m.Options.Includes, inc.Dest)
	}
	for _, mod := range b.modSet.Modules {
		m.Modules = append(m.Modules, mod.Name)
	}
	return m
}

// manifestPackages lists the packages in the image, sorted by name.
func (b *build) manifestPackages() []ManifestPackage {
	out := []ManifestPackage{}
	for _, p := range b.pkgs {
		out = append(out, ManifestPackage{Name: p.Name, Version: p.Version, Arch: p.Arch, Repository: p.Repository, Suite: p.Suite, Backend: b.backendName()})
	}
	slices.SortStableFunc(out, func(x, y ManifestPackage) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// writeSBOM writes the SBOM of the written image to a pending output.
func (b *build) writeSBOM() error {
	f, err := b.out.Create(b.opts.SBOM, 0o644)
	if err != nil {
		return err
	}
	if err := sbom.Write(f, b.opts.SBOMFormat, b.sbomInput()); err != nil {
		return fmt.Errorf("write %s: %w", b.opts.SBOM, err)
	}
	return nil
}

// sbomInput describes the written image for sbom.Write: every file of
// every segment with the package it came from.
func (b *build) sbomInput() *sbom.Input {
	res := b.result.Image
	in := &sbom.Input{
		Name:         filepath.Base(b.opts.Output),
		SHA256:       res.SHA256,
		Created:      time.Unix(b.opts.Mtime, 0),
		Tool:         "pkginitrd",
		ToolVersion:  b.opts.Version,
		Distribution: b.plan.Name,
		PackageType:  map[string]string{"apt": "deb", "dnf": "rpm"}[b.plan.Distribution.Backend],
	}
	packaged := map[string]bool{}
	for _, p := range b.pkgs {
		packaged[p.Name] = true
		in.Packages = append(in.Packages, sbom.Package{Name: p.Name, Version: p.Version, Arch: p.Arch, DownloadLocation: downloadLocation(p.URL, p.Repository, p.Path), SHA256: p.SHA256})
	}
	seen := map[string]bool{}
	for _, seg := range slices.Backward(res.Segments) { // a later segment's file wins, as in the kernel
		for path, sum := range seg.Sums {
			if seen[path] {
				continue
			}
			seen[path] = true
			f := sbom.File{Path: path, SHA1: sum.SHA1, SHA256: sum.SHA256}
			if e := b.tree.Get(path); e != nil && packaged[e.Origin] && seg.Compression != compress.None {
				f.Package = e.Origin
			}
			in.Files = append(in.Files, f)
		}
	}
	return in
}

// downloadLocation is the URL an archive came from: the one the package
// manager reported, else the repository's URL and the archive's name.
func downloadLocation(url, repository, path string) string {
	switch {
	case url != "":
		return url
	case repository != "":
		return repository + "/" + filepath.Base(path)
	}
	return ""
}
