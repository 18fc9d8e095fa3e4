package sbom

import (
	"bytes"
	"strings"
	"testing"
	"time"

	cdx "github.com/CycloneDX/cyclonedx-go"
	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
)

// testInput is a small image: two packages (one with an epoch and a '+' in
// its version and name), their files and two files of no package.
func testInput() *Input {
	return &Input{
		Name:         "initrd.img",
		SHA256:       strings.Repeat("ab", 32),
		Created:      time.Unix(1700000000, 0),
		Tool:         "pkginitrd",
		ToolVersion:  "1.2.3",
		Distribution: "debian",
		PackageType:  "deb",
		Packages: []Package{
			{Name: "libstdc++6", Version: "12.2.0-14", Arch: "amd64", SHA256: strings.Repeat("01", 32)},
			{Name: "busybox", Version: "1:1.35.0-4+b3", Arch: "amd64", DownloadLocation: "http://deb.debian.org/debian/pool/main/b/busybox/busybox_1.35.0-4+b3_amd64.deb", SHA256: strings.Repeat("02", 32)},
		},
		Files: []File{
			{Path: "usr/lib/x86_64-linux-gnu/libstdc++.so.6", SHA1: strings.Repeat("1", 40), SHA256: strings.Repeat("1", 64), Package: "libstdc++6"},
			{Path: "usr/bin/busybox", SHA1: strings.Repeat("2", 40), SHA256: strings.Repeat("2", 64), Package: "busybox"},
			{Path: "init", SHA1: strings.Repeat("3", 40), SHA256: strings.Repeat("3", 64), Package: ""},
			{Path: "etc/pkginitrd/manifest.json", SHA1: strings.Repeat("4", 40), SHA256: strings.Repeat("4", 64), Package: "pkginitrd"},
		},
	}
}

func write(t *testing.T, format string, in *Input) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := Write(&b, format, in); err != nil {
		t.Fatalf("Write(%s) = %v", format, err)
	}
	return b.Bytes()
}

// TestSPDXRoundTrip parses the written document with tools-golang's own
// reader and checks the packages, files and relationships.
func TestSPDXRoundTrip(t *testing.T) {
	doc, err := spdxjson.Read(bytes.NewReader(write(t, SPDX, testInput())))
	if err != nil {
		t.Fatalf("spdx json.Read = %v", err)
	}
	if doc.SPDXVersion != "SPDX-2.3" || doc.CreationInfo.Created != "2023-11-14T22:13:20Z" || !strings.HasSuffix(doc.DocumentNamespace, strings.Repeat("ab", 32)) {
		t.Errorf("document = %s created %s namespace %s, want SPDX-2.3, SOURCE_DATE_EPOCH, the image hash", doc.SPDXVersion, doc.CreationInfo.Created, doc.DocumentNamespace)
	}
	if len(doc.Packages) != 3 || len(doc.Files) != 4 {
		t.Fatalf("%d packages, %d files; want 3 (image + 2), 4", len(doc.Packages), len(doc.Files))
	}
	ids := map[common.ElementID]string{}
	var bb common.ElementID
	for _, p := range doc.Packages {
		ids[p.PackageSPDXIdentifier] = p.PackageName
		if p.PackageName != "busybox" {
			continue
		}
		bb = p.PackageSPDXIdentifier
		if p.PackageVersion != "1:1.35.0-4+b3" || p.PackageSupplier == nil || p.PackageSupplier.Supplier != "debian" ||
			p.PackageDownloadLocation != testInput().Packages[1].DownloadLocation ||
			len(p.PackageChecksums) != 1 || p.PackageChecksums[0].Value != strings.Repeat("02", 32) {
			t.Errorf("busybox = %+v", p)
		}
		if len(p.PackageExternalReferences) != 1 || p.PackageExternalReferences[0].Locator != "pkg:deb/debian/busybox@1%3A1.35.0-4%2Bb3?arch=amd64" {
			t.Errorf("busybox external refs = %+v, want its purl", p.PackageExternalReferences)
		}
	}
	var busyboxFile common.ElementID
	for _, f := range doc.Files {
		ids[f.FileSPDXIdentifier] = f.FileName
		if f.FileName == "./usr/bin/busybox" {
			busyboxFile = f.FileSPDXIdentifier
			if len(f.Checksums) != 2 || f.Checksums[0].Algorithm != common.SHA1 || f.Checksums[1].Value != strings.Repeat("2", 64) {
				t.Errorf("busybox file checksums = %+v, want SHA1 and its SHA256", f.Checksums)
			}
		}
	}
	contains := map[[2]string]bool{}
	describes := 0
	for _, r := range doc.Relationships {
		switch r.Relationship {
		case common.TypeRelationshipContains:
			contains[[2]string{ids[r.RefA.ElementRefID], ids[r.RefB.ElementRefID]}] = true
		case common.TypeRelationshipDescribe:
			describes++
		}
	}
	if describes != 1 || len(contains) != 6 {
		t.Errorf("%d DESCRIBES, %d CONTAINS; want 1 and 6 (2 packages, 4 files)", describes, len(contains))
	}
	for _, want := range [][2]string{
		{"initrd.img", "busybox"}, {"busybox", "./usr/bin/busybox"}, {"initrd.img", "./init"},
		{"initrd.img", "./etc/pkginitrd/manifest.json"}, {"libstdc++6", "./usr/lib/x86_64-linux-gnu/libstdc++.so.6"},
	} {
		if !contains[want] {
			t.Errorf("no %s CONTAINS %s in %v", want[0], want[1], contains)
		}
	}
	if busyboxFile == "" || bb == "" {
		t.Error("no busybox file or package")
	}
}

// TestCycloneDXRoundTrip parses the BOM with cyclonedx-go's own decoder.
func TestCycloneDXRoundTrip(t *testing.T) {
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(write(t, CycloneDX, testInput())), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		t.Fatalf("Decode = %v", err)
	}
	if bom.SpecVersion != cdx.SpecVersion1_5 || bom.Metadata.Timestamp != "2023-11-14T22:13:20Z" || !strings.HasPrefix(bom.SerialNumber, "urn:uuid:") || len(bom.SerialNumber) != 45 {
		t.Errorf("BOM %v timestamp %s serial %s", bom.SpecVersion, bom.Metadata.Timestamp, bom.SerialNumber)
	}
	if c := bom.Metadata.Component; c == nil || c.Name != "initrd.img" || (*c.Hashes)[0].Value != strings.Repeat("ab", 32) {
		t.Errorf("metadata component = %+v, want the image with its hash", c)
	}
	comps := *bom.Components
	var names []string
	files := 0
	for _, c := range comps {
		names = append(names, c.Name)
		if c.Type == cdx.ComponentTypeFile {
			files++
		}
		if c.Components != nil {
			files += len(*c.Components)
		}
		if c.Name != "busybox" {
			continue
		}
		if c.Version != "1:1.35.0-4+b3" || c.Supplier.Name != "debian" || c.PackageURL == "" || (*c.Hashes)[0].Value != strings.Repeat("02", 32) ||
			(*c.ExternalReferences)[0].URL != testInput().Packages[1].DownloadLocation {
			t.Errorf("busybox = %+v", c)
		}
		if c.Components == nil || len(*c.Components) != 1 || (*c.Components)[0].Name != "usr/bin/busybox" || (*(*c.Components)[0].Hashes)[1].Value != strings.Repeat("2", 64) {
			t.Errorf("busybox contains %+v, want usr/bin/busybox with its SHA-256", c.Components)
		}
	}
	if want := "busybox libstdc++6 etc/pkginitrd/manifest.json init"; strings.Join(names, " ") != want || files != 4 {
		t.Errorf("components %q with %d files, want %q with 4", names, files, want)
	}
}

// TestDeterministic checks that the order of the input does not matter and
// the same input gives the same bytes.
func TestDeterministic(t *testing.T) {
	for _, format := range []string{SPDX, CycloneDX} {
		in := testInput()
		first := write(t, format, in)
		rev := testInput()
		for i, j := 0, len(rev.Files)-1; i < j; i, j = i+1, j-1 {
			rev.Files[i], rev.Files[j] = rev.Files[j], rev.Files[i]
		}
		rev.Packages[0], rev.Packages[1] = rev.Packages[1], rev.Packages[0]
		if second := write(t, format, rev); !bytes.Equal(first, second) {
			t.Errorf("%s: reordered input gives other bytes", format)
		}
		in.SHA256 = strings.Repeat("cd", 32)
		if other := write(t, format, in); bytes.Equal(first, other) {
			t.Errorf("%s: another image hash gives the same document", format)
		}
	}
	if err := Write(&bytes.Buffer{}, "swid", testInput()); err == nil || !strings.Contains(err.Error(), "swid") {
		t.Errorf("Write(swid) = %v, want an error naming the format", err)
	}
}

func TestIDs(t *testing.T) {
	used := ids{}
	for _, tc := range []struct{ name, want string }{
		{"usr/lib/a.b", "File-usr-lib-a.b"},
		{"usr/lib/a_b", "File-usr-lib-a-b"},
		{"usr/lib/a-b", "File-usr-lib-a-b-2"},
		{"usr/lib/a+b", "File-usr-lib-a-b-3"},
	} {
		if got := used.make("File-", tc.name); got != tc.want {
			t.Errorf("make(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
