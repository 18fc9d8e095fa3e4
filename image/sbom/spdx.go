package sbom

import (
	"encoding/json"
	"fmt"
	"io"
)

const noAssertion = "NOASSERTION"

// imageID is the SPDX identifier of the image, the package the document describes.
const imageID = "Image"

// The SPDX 2.3 JSON document (https://spdx.github.io/spdx-spec/v2.3/),
// only the fields Write fills, in the order github.com/spdx/tools-golang
// wrote them before: the tests parse and re-encode it with that library.
// Identifiers are held without the "SPDXRef-" prefix, which ref adds.
type (
	spdxDocument struct {
		SPDXVersion       string             `json:"spdxVersion"`
		DataLicense       string             `json:"dataLicense"`
		SPDXID            string             `json:"SPDXID"`
		Name              string             `json:"name"`
		DocumentNamespace string             `json:"documentNamespace"`
		CreationInfo      spdxCreationInfo   `json:"creationInfo"`
		Packages          []spdxPackage      `json:"packages,omitempty"`
		Files             []spdxFile         `json:"files,omitempty"`
		Relationships     []spdxRelationship `json:"relationships,omitempty"`
	}
	spdxCreationInfo struct {
		Creators []string `json:"creators"` // "Tool: name-version"
		Created  string   `json:"created"`
	}
	spdxPackage struct {
		Name             string `json:"name"`
		SPDXID           string `json:"SPDXID"`
		Version          string `json:"versionInfo,omitempty"`
		Supplier         string `json:"supplier,omitempty"` // "Organization: name"
		DownloadLocation string `json:"downloadLocation"`
		// FilesAnalyzed is false: the files are listed at the top
		// level, with CONTAINS relationships, not verified as a set.
		FilesAnalyzed         bool              `json:"filesAnalyzed"`
		Checksums             []spdxChecksum    `json:"checksums,omitempty"`
		LicenseConcluded      string            `json:"licenseConcluded,omitempty"`
		LicenseDeclared       string            `json:"licenseDeclared,omitempty"`
		CopyrightText         string            `json:"copyrightText,omitempty"`
		ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
		PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	}
	spdxExternalRef struct {
		Category string `json:"referenceCategory"`
		Type     string `json:"referenceType"`
		Locator  string `json:"referenceLocator"`
	}
	spdxFile struct {
		FileName      string         `json:"fileName"`
		SPDXID        string         `json:"SPDXID"`
		Checksums     []spdxChecksum `json:"checksums"`
		CopyrightText string         `json:"copyrightText"`
	}
	spdxChecksum struct {
		Algorithm string `json:"algorithm"` // "SHA1", "SHA256"
		Value     string `json:"checksumValue"`
	}
	spdxRelationship struct {
		Element string `json:"spdxElementId"`
		Related string `json:"relatedSpdxElement"`
		Type    string `json:"relationshipType"` // "DESCRIBES", "CONTAINS"
	}
)

// ref is the JSON form of the SPDX identifier id.
func ref(id string) string { return "SPDXRef-" + id }

// writeSPDX writes in as an SPDX 2.3 JSON document: the image as a
// package the document DESCRIBES, which CONTAINS the distribution
// packages; each package CONTAINS its files, the image the other files.
func writeSPDX(w io.Writer, in *Input) error {
	doc := &spdxDocument{
		SPDXVersion:       "SPDX-2.3",
		DataLicense:       "CC0-1.0",
		SPDXID:            ref("DOCUMENT"),
		Name:              in.Name,
		DocumentNamespace: in.namespace(),
		CreationInfo: spdxCreationInfo{
			Creators: []string{"Tool: " + in.Tool + "-" + in.ToolVersion},
			Created:  in.created(),
		},
		Packages: []spdxPackage{{
			Name:                  in.Name,
			SPDXID:                ref(imageID),
			DownloadLocation:      noAssertion,
			Checksums:             []spdxChecksum{{Algorithm: "SHA256", Value: in.SHA256}},
			PrimaryPackagePurpose: "ARCHIVE",
		}},
	}
	rel := func(a, b, typ string) {
		doc.Relationships = append(doc.Relationships, spdxRelationship{Element: ref(a), Related: ref(b), Type: typ})
	}
	rel("DOCUMENT", imageID, "DESCRIBES")
	used := ids{imageID: true}
	pkgIDs := map[string]string{}
	for _, p := range in.Packages {
		id := used.make("Package-", p.Name+"-"+p.Arch)
		pkgIDs[p.Name] = id
		doc.Packages = append(doc.Packages, spdxPackageOf(in, p, id))
		rel(imageID, id, "CONTAINS")
	}
	for _, f := range in.Files {
		id := used.make("File-", f.Path)
		doc.Files = append(doc.Files, spdxFile{
			FileName:      "./" + f.Path,
			SPDXID:        ref(id),
			Checksums:     []spdxChecksum{{Algorithm: "SHA1", Value: f.SHA1}, {Algorithm: "SHA256", Value: f.SHA256}},
			CopyrightText: noAssertion,
		})
		owner, ok := pkgIDs[f.Package]
		if !ok {
			owner = imageID
		}
		rel(owner, id, "CONTAINS")
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("write SPDX document: %w", err)
	}
	return nil
}

func spdxPackageOf(in *Input, p Package, id string) spdxPackage {
	sp := spdxPackage{
		Name:             p.Name,
		SPDXID:           ref(id),
		Version:          p.Version,
		DownloadLocation: p.DownloadLocation,
		LicenseConcluded: noAssertion,
		LicenseDeclared:  noAssertion,
		CopyrightText:    noAssertion,
	}
	if sp.DownloadLocation == "" {
		sp.DownloadLocation = noAssertion
	}
	if in.Distribution != "" {
		sp.Supplier = "Organization: " + in.Distribution
	}
	if p.SHA256 != "" {
		sp.Checksums = []spdxChecksum{{Algorithm: "SHA256", Value: p.SHA256}}
	}
	if purl := in.purl(p); purl != "" {
		sp.ExternalRefs = []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: purl}}
	}
	return sp
}
