package sbom

import (
	"fmt"
	"io"

	spdxjson "github.com/spdx/tools-golang/json"
	"github.com/spdx/tools-golang/spdx/v2/common"
	spdx "github.com/spdx/tools-golang/spdx/v2/v2_3"
)

const noAssertion = "NOASSERTION"

// imageID is the SPDX identifier of the image, the package the document describes.
const imageID = "Image"

// writeSPDX writes in as an SPDX 2.3 JSON document: the image as a
// package the document DESCRIBES, which CONTAINS the distribution
// packages; each package CONTAINS its files, the image the other files.
func writeSPDX(w io.Writer, in *Input) error {
	doc := &spdx.Document{
		SPDXVersion:       spdx.Version,
		DataLicense:       spdx.DataLicense,
		SPDXIdentifier:    "DOCUMENT",
		DocumentName:      in.Name,
		DocumentNamespace: in.namespace(),
		CreationInfo: &spdx.CreationInfo{
			Creators: []common.Creator{{CreatorType: "Tool", Creator: in.Tool + "-" + in.ToolVersion}},
			Created:  in.created(),
		},
		Packages: []*spdx.Package{{
			PackageName:             in.Name,
			PackageSPDXIdentifier:   imageID,
			PackageDownloadLocation: noAssertion,
			PackageChecksums:        []common.Checksum{{Algorithm: common.SHA256, Value: in.SHA256}},
			PrimaryPackagePurpose:   "ARCHIVE",
		}},
	}
	rel := func(a, b common.ElementID, typ string) {
		doc.Relationships = append(doc.Relationships, &spdx.Relationship{
			RefA: common.MakeDocElementID("", string(a)), RefB: common.MakeDocElementID("", string(b)), Relationship: typ,
		})
	}
	rel("DOCUMENT", imageID, common.TypeRelationshipDescribe)
	used := ids{imageID: true}
	pkgIDs := map[string]common.ElementID{}
	for _, p := range in.Packages {
		id := common.ElementID(used.make("Package-", p.Name+"-"+p.Arch))
		pkgIDs[p.Name] = id
		doc.Packages = append(doc.Packages, spdxPackage(in, p, id))
		rel(imageID, id, common.TypeRelationshipContains)
	}
	for _, f := range in.Files {
		id := common.ElementID(used.make("File-", f.Path))
		doc.Files = append(doc.Files, &spdx.File{
			FileName:           "./" + f.Path,
			FileSPDXIdentifier: id,
			Checksums:          []common.Checksum{{Algorithm: common.SHA1, Value: f.SHA1}, {Algorithm: common.SHA256, Value: f.SHA256}},
			FileCopyrightText:  noAssertion,
		})
		owner, ok := pkgIDs[f.Package]
		if !ok {
			owner = imageID
		}
		rel(owner, id, common.TypeRelationshipContains)
	}
	if err := spdxjson.Write(doc, w, spdxjson.Indent(" ")); err != nil {
		return fmt.Errorf("write SPDX document: %w", err)
	}
	return nil
}

func spdxPackage(in *Input, p Package, id common.ElementID) *spdx.Package {
	sp := &spdx.Package{
		PackageName:             p.Name,
		PackageSPDXIdentifier:   id,
		PackageVersion:          p.Version,
		PackageDownloadLocation: p.DownloadLocation,
		PackageLicenseConcluded: noAssertion,
		PackageLicenseDeclared:  noAssertion,
		PackageCopyrightText:    noAssertion,
	}
	if sp.PackageDownloadLocation == "" {
		sp.PackageDownloadLocation = noAssertion
	}
	if in.Distribution != "" {
		sp.PackageSupplier = &common.Supplier{SupplierType: "Organization", Supplier: in.Distribution}
	}
	if p.SHA256 != "" {
		sp.PackageChecksums = []common.Checksum{{Algorithm: common.SHA256, Value: p.SHA256}}
	}
	if purl := in.purl(p); purl != "" {
		sp.PackageExternalReferences = []*spdx.PackageExternalReference{{Category: common.CategoryPackageManager, RefType: common.TypePackageManagerPURL, Locator: purl}}
	}
	return sp
}
