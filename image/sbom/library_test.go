package sbom

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	"github.com/spdx/tools-golang/spdxlib"
)

// The package writes both formats with its own structs; these tests read
// the output with the reference libraries, check that every package,
// version, checksum, purl, supplier, download location, file and
// relationship of the Input comes back, and that the library, encoding
// what it read, writes the very same bytes (no field lost or misnamed).

// libraryInputs are testInput and the corners: a name in two
// architectures, a package with no version, checksum or download
// location, characters JSON escapes, no package type (no purl), nothing.
func libraryInputs() map[string]*Input {
	odd := testInput()
	odd.Name = "initrd & <co>.img"
	odd.Packages = append(odd.Packages,
		Package{Name: "busybox", Version: "1:1.35.0-4+b3", Arch: "i386", SHA256: strings.Repeat("03", 32)},
		Package{Name: "bare"},
		Package{Name: "ü<pkg>&", Version: "1.0~rc1", Arch: "all", DownloadLocation: "http://example.org/get?a=1&b=<2>"},
	)
	odd.Files = append(odd.Files,
		File{Path: "usr/lib/a b/c&d<e>", SHA1: strings.Repeat("5", 40), SHA256: strings.Repeat("5", 64), Package: "ü<pkg>&"},
		File{Path: "usr/lib/a-b/c-d-e-", SHA1: strings.Repeat("6", 40), SHA256: strings.Repeat("6", 64), Package: "bare"},
	)
	nopurl := testInput()
	nopurl.PackageType = ""
	nodist := testInput()
	nodist.Distribution = ""
	return map[string]*Input{
		"small":  testInput(),
		"odd":    odd,
		"nopurl": nopurl,
		"nodist": nodist,
		"empty":  {Name: "empty.img", SHA256: strings.Repeat("0", 64), Created: testInput().Created, Tool: "pkginitrd", ToolVersion: "1"},
	}
}

// packageKey names a package of in, unique even for two architectures.
func packageKey(in *Input, p Package) string {
	return fmt.Sprintf("%s %s supplier=%s location=%s sha256=%s purl=%s", p.Name, p.Version, in.Distribution, p.DownloadLocation, p.SHA256, in.purl(p))
}

// owner is the package name that contains f in in, or "" for the image.
func owner(in *Input, f File) string {
	for _, p := range in.Packages {
		if p.Name == f.Package {
			return p.Name
		}
	}
	return ""
}

func TestSPDXLibrary(t *testing.T) {
	for name, in := range libraryInputs() {
		t.Run(name, func(t *testing.T) {
			out := write(t, SPDX, in)
			doc, err := spdxjson.Read(bytes.NewReader(out))
			if err != nil {
				t.Fatalf("spdx json.Read = %v", err)
			}
			if err := spdxlib.ValidateDocument(doc); err != nil {
				t.Errorf("spdxlib.ValidateDocument = %v", err)
			}
			var again bytes.Buffer
			if err := spdxjson.Write(doc, &again, spdxjson.Indent(" ")); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, again.Bytes()) {
				t.Errorf("tools-golang re-encodes the document differently:\n%s\nwant\n%s", again.Bytes(), out)
			}

			if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || doc.DocumentName != in.Name || doc.DocumentNamespace != in.namespace() ||
				len(doc.CreationInfo.Creators) != 1 || doc.CreationInfo.Creators[0].Creator != in.Tool+"-"+in.ToolVersion || doc.CreationInfo.Created != in.created() {
				t.Errorf("document = %s %s %q %s %+v; want SPDX-2.3, CC0-1.0, %q, its namespace and creation", doc.SPDXVersion, doc.DataLicense, doc.DocumentName, doc.DocumentNamespace, doc.CreationInfo, in.Name)
			}
			names := map[common.ElementID]string{"DOCUMENT": "DOCUMENT"}
			var got, want []string
			for i, p := range doc.Packages {
				names[p.PackageSPDXIdentifier] = p.PackageName
				if i == 0 {
					if p.PackageName != in.Name || len(p.PackageChecksums) != 1 || p.PackageChecksums[0].Algorithm != common.SHA256 || p.PackageChecksums[0].Value != in.SHA256 || p.PrimaryPackagePurpose != "ARCHIVE" {
						t.Errorf("first package = %+v, want the image with its SHA-256", p)
					}
					names[p.PackageSPDXIdentifier] = ""
					continue
				}
				if p.PackageLicenseConcluded != noAssertion || p.PackageLicenseDeclared != noAssertion || p.PackageCopyrightText != noAssertion || p.FilesAnalyzed {
					t.Errorf("package %s: licenses %q %q, copyright %q, files analyzed %v; want NOASSERTION and false", p.PackageName, p.PackageLicenseConcluded, p.PackageLicenseDeclared, p.PackageCopyrightText, p.FilesAnalyzed)
				}
				q := Package{Name: p.PackageName, Version: p.PackageVersion, DownloadLocation: strings.TrimPrefix(p.PackageDownloadLocation, noAssertion)}
				for _, c := range p.PackageChecksums {
					if c.Algorithm == common.SHA256 {
						q.SHA256 = c.Value
					}
				}
				supplier, purl := "", ""
				if p.PackageSupplier != nil {
					supplier = p.PackageSupplier.Supplier
					if p.PackageSupplier.SupplierType != "Organization" {
						t.Errorf("package %s supplier %+v, want an organization", p.PackageName, p.PackageSupplier)
					}
				}
				for _, r := range p.PackageExternalReferences {
					if r.Category == common.CategoryPackageManager && r.RefType == common.TypePackageManagerPURL {
						purl = r.Locator
					}
				}
				got = append(got, fmt.Sprintf("%s %s supplier=%s location=%s sha256=%s purl=%s", q.Name, q.Version, supplier, q.DownloadLocation, q.SHA256, purl))
			}
			for _, p := range in.Packages {
				want = append(want, packageKey(in, p))
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("packages read back:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}

			got, want = nil, nil
			for _, f := range doc.Files {
				names[f.FileSPDXIdentifier] = f.FileName
				var sums []string
				for _, c := range f.Checksums {
					sums = append(sums, string(c.Algorithm)+"="+c.Value)
				}
				got = append(got, f.FileName+" "+strings.Join(sums, " ")+" copyright="+f.FileCopyrightText)
			}
			for _, f := range in.Files {
				want = append(want, "./"+f.Path+" SHA1="+f.SHA1+" SHA256="+f.SHA256+" copyright="+noAssertion)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("files read back:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}

			got, want = nil, []string{"DOCUMENT DESCRIBES "}
			for _, r := range doc.Relationships {
				got = append(got, names[r.RefA.ElementRefID]+" "+r.Relationship+" "+names[r.RefB.ElementRefID])
			}
			for _, p := range in.Packages {
				want = append(want, " CONTAINS "+p.Name)
			}
			for _, f := range in.Files {
				want = append(want, owner(in, f)+" CONTAINS ./"+f.Path)
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("relationships read back (the image as \"\"):\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}

func TestCycloneDXLibrary(t *testing.T) {
	for name, in := range libraryInputs() {
		t.Run(name, func(t *testing.T) {
			out := write(t, CycloneDX, in)
			var bom cdx.BOM
			if err := cdx.NewBOMDecoder(bytes.NewReader(out), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
				t.Fatalf("Decode = %v", err)
			}
			var again bytes.Buffer
			if err := cdx.NewBOMEncoder(&again, cdx.BOMFileFormatJSON).SetPretty(true).Encode(&bom); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, again.Bytes()) {
				t.Errorf("cyclonedx-go re-encodes the BOM differently:\n%s\nwant\n%s", again.Bytes(), out)
			}

			if bom.JSONSchema != "http://cyclonedx.org/schema/bom-1.5.schema.json" || bom.BOMFormat != cdx.BOMFormat || bom.SpecVersion != cdx.SpecVersion1_5 ||
				bom.SerialNumber != in.serialNumber() || bom.Version != 1 || bom.Metadata == nil || bom.Metadata.Timestamp != in.created() {
				t.Fatalf("BOM %s %s %v %s %d %+v, want CycloneDX 1.5, its serial number and timestamp", bom.JSONSchema, bom.BOMFormat, bom.SpecVersion, bom.SerialNumber, bom.Version, bom.Metadata)
			}
			if tools := bom.Metadata.Tools; tools == nil || tools.Components == nil || len(*tools.Components) != 1 ||
				(*tools.Components)[0].Name != in.Tool || (*tools.Components)[0].Version != in.ToolVersion || (*tools.Components)[0].Type != cdx.ComponentTypeApplication {
				t.Errorf("tools = %+v, want the one application %s %s", tools, in.Tool, in.ToolVersion)
			}
			if c := bom.Metadata.Component; c == nil || c.Type != cdx.ComponentTypeFile || c.Name != in.Name || c.Hashes == nil ||
				!slices.Equal(*c.Hashes, []cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: in.SHA256}}) {
				t.Errorf("metadata component = %+v, want the image with its SHA-256", c)
			}

			var pkgs, files, wantPkgs, wantFiles []string
			refs := map[string]bool{}
			file := func(parent string, c cdx.Component) {
				var sums []string
				for _, h := range *c.Hashes {
					sums = append(sums, string(h.Algorithm)+"="+h.Value)
				}
				files = append(files, parent+" CONTAINS "+c.Name+" "+strings.Join(sums, " "))
			}
			for _, c := range nonNil(bom.Components) {
				if refs[c.BOMRef] || c.BOMRef == "" {
					t.Errorf("component %s: bom-ref %q empty or not unique", c.Name, c.BOMRef)
				}
				refs[c.BOMRef] = true
				if c.Type == cdx.ComponentTypeFile {
					file("", c)
					continue
				}
				q := Package{Name: c.Name, Version: c.Version}
				supplier := ""
				if c.Supplier != nil {
					supplier = c.Supplier.Name
				}
				for _, h := range nonNil(c.Hashes) {
					if h.Algorithm == cdx.HashAlgoSHA256 {
						q.SHA256 = h.Value
					}
				}
				for _, r := range nonNil(c.ExternalReferences) {
					if r.Type == cdx.ERTypeDistribution {
						q.DownloadLocation = r.URL
					}
				}
				if c.Type != cdx.ComponentTypeLibrary {
					t.Errorf("package %s of type %s, want library", c.Name, c.Type)
				}
				pkgs = append(pkgs, fmt.Sprintf("%s %s supplier=%s location=%s sha256=%s purl=%s", q.Name, q.Version, supplier, q.DownloadLocation, q.SHA256, c.PackageURL))
				for _, f := range nonNil(c.Components) {
					file(c.Name, f)
				}
			}
			for _, p := range in.Packages {
				wantPkgs = append(wantPkgs, packageKey(in, p))
			}
			for _, f := range in.Files {
				wantFiles = append(wantFiles, owner(in, f)+" CONTAINS "+f.Path+" SHA-1="+f.SHA1+" SHA-256="+f.SHA256)
			}
			for _, l := range [][]string{pkgs, files, wantPkgs, wantFiles} {
				slices.Sort(l)
			}
			if !slices.Equal(pkgs, wantPkgs) {
				t.Errorf("packages read back:\n%s\nwant\n%s", strings.Join(pkgs, "\n"), strings.Join(wantPkgs, "\n"))
			}
			if !slices.Equal(files, wantFiles) {
				t.Errorf("files read back (the image as \"\"):\n%s\nwant\n%s", strings.Join(files, "\n"), strings.Join(wantFiles, "\n"))
			}
		})
	}
}

func nonNil[T any](s *[]T) []T {
	if s == nil {
		return nil
	}
	return *s
}
