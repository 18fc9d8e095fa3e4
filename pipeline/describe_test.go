package pipeline

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"

	"github.com/pkginitrd/pkginitrd/image"
	"github.com/pkginitrd/pkginitrd/image/cpio"
	"github.com/pkginitrd/pkginitrd/image/manifest"
	"github.com/pkginitrd/pkginitrd/image/sbom"
)

// readFiles lists the files of a written image.
func readFiles(t *testing.T, path string) []image.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	files, err := image.ReadFiles(context.Background(), f, st.Size(), manifest.Path)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestRunSBOMAndManifest builds twice with an SPDX SBOM and once with a
// CycloneDX one: the SBOM is the same bytes each time, parses with the
// format's own library and lists every file with the hash it has in the
// image; the image carries its manifest.
func TestRunSBOMAndManifest(t *testing.T) {
	opts := testOptions(t)
	opts.Mtime = 1700000000
	opts.Version = "test-1"
	opts.SBOM = filepath.Join(filepath.Dir(opts.Output), "initrd.spdx.json")
	be := opts.Backend.(debBackend)
	be.pkgs[0].URL = "http://deb.debian.org/debian/pool/main/b/busybox/busybox_test_amd64.deb"
	deb, err := os.ReadFile(be.pkgs[0].Path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(deb)
	be.pkgs[0].SHA256 = hex.EncodeToString(sum[:])
	be.pkgs[1].Repository = "http://deb.debian.org/debian"
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(opts.Output)
	if err != nil {
		t.Fatal(err)
	}
	spdxDoc, err := os.ReadFile(opts.SBOM)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(opts.Output)
	again, _ := os.ReadFile(opts.SBOM)
	if !bytes.Equal(first, second) || !bytes.Equal(spdxDoc, again) {
		t.Errorf("two builds: image equal %v, SBOM equal %v; want both", bytes.Equal(first, second), bytes.Equal(spdxDoc, again))
	}

	files := readFiles(t, opts.Output)
	regular := map[string]string{}
	for _, f := range files {
		if f.Mode&cpio.TypeMask == cpio.TypeReg {
			regular["./"+f.Path] = f.SHA256
		}
	}
	m, err := manifest.Find(files)
	if err != nil {
		t.Fatalf("the image's manifest: %v", err)
	}
	var names []string
	for _, mod := range res.Manifest.Modules {
		names = append(names, mod.Name)
	}
	if m.Generator != "pkginitrd test-1" || m.KernelVersion != res.Manifest.KernelVersion || !slices.Equal(m.Packages, res.Manifest.Packages) ||
		!slices.Equal(m.Modules, names) || m.Options.Distribution != "debian" || !m.Options.Generic || m.Options.SourceDateEpoch != opts.Mtime {
		t.Errorf("the image's manifest = %+v, want the build's packages, modules and options", m)
	}

	doc, err := spdxjson.Read(bytes.NewReader(spdxDoc))
	if err != nil {
		t.Fatalf("spdx json.Read = %v", err)
	}
	if doc.CreationInfo.Created != "2023-11-14T22:13:20Z" || len(doc.Packages) != len(res.Manifest.Packages)+1 || len(doc.Files) != len(regular) {
		t.Errorf("SBOM created %s, %d packages, %d files; want SOURCE_DATE_EPOCH, %d packages and the image, %d files",
			doc.CreationInfo.Created, len(doc.Packages), len(doc.Files), len(res.Manifest.Packages), len(regular))
	}
	ids := map[common.ElementID]string{}
	for _, p := range doc.Packages {
		ids[p.PackageSPDXIdentifier] = p.PackageName
		switch p.PackageName {
		case "busybox":
			if p.PackageDownloadLocation != be.pkgs[0].URL || p.PackageChecksums[0].Value != be.pkgs[0].SHA256 || p.PackageSupplier.Supplier != "debian" {
				t.Errorf("busybox = %+v, want its URL, checksum and supplier", p)
			}
		case "libc6":
			if p.PackageDownloadLocation != "http://deb.debian.org/debian/"+filepath.Base(be.pkgs[1].Path) {
				t.Errorf("libc6 download location = %s, want the repository and file name", p.PackageDownloadLocation)
			}
		}
	}
	for _, f := range doc.Files {
		ids[f.FileSPDXIdentifier] = f.FileName
		if want, ok := regular[f.FileName]; !ok || f.Checksums[1].Value != want {
			t.Errorf("SBOM file %s SHA-256 %s, the image has %s", f.FileName, f.Checksums[1].Value, want)
		}
	}
	contains := map[[2]string]bool{}
	for _, r := range doc.Relationships {
		contains[[2]string{ids[r.RefA.ElementRefID], ids[r.RefB.ElementRefID]}] = r.Relationship == common.TypeRelationshipContains
	}
	for _, want := range [][2]string{{"busybox", "./usr/bin/busybox"}, {"initrd.img", "busybox"}, {"initrd.img", "./init"}, {"initrd.img", "./" + manifest.Path}} {
		if !contains[want] {
			t.Errorf("SBOM lacks %s CONTAINS %s", want[0], want[1])
		}
	}

	opts.SBOMFormat = sbom.CycloneDX
	if _, err := Run(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(opts.SBOM)
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("CycloneDX Decode = %v", err)
	}
	n := 0
	for _, c := range *bom.Components {
		if c.Type == cdx.ComponentTypeFile {
			n++
		} else if c.Components != nil {
			n += len(*c.Components)
		}
	}
	if n != len(regular) || bom.Metadata.Timestamp != "2023-11-14T22:13:20Z" {
		t.Errorf("CycloneDX: %d files at %s, want %d at SOURCE_DATE_EPOCH", n, bom.Metadata.Timestamp, len(regular))
	}
}
