package sbom

import (
	"encoding/json"
	"fmt"
	"io"
)

// The CycloneDX 1.5 JSON BOM (https://cyclonedx.org/docs/1.5/json/), only
// the fields Write fills, in the order github.com/CycloneDX/cyclonedx-go
// wrote them before: the tests decode and re-encode it with that library.
type (
	cdxBOM struct {
		Schema       string      `json:"$schema"`
		BOMFormat    string      `json:"bomFormat"`
		SpecVersion  string      `json:"specVersion"`
		SerialNumber string      `json:"serialNumber"`
		Version      int         `json:"version"`
		Metadata     cdxMetadata `json:"metadata"`
		// Components is left out when there are none; cyclonedx-go
		// wrote null, which the 1.5 schema does not allow.
		Components []cdxComponent `json:"components,omitempty"`
	}
	cdxMetadata struct {
		Timestamp string       `json:"timestamp"`
		Tools     cdxTools     `json:"tools"`
		Component cdxComponent `json:"component"`
	}
	cdxTools struct {
		Components []cdxComponent `json:"components"`
	}
	cdxComponent struct {
		BOMRef             string           `json:"bom-ref,omitempty"`
		Type               string           `json:"type"` // "application", "file", "library"
		Supplier           *cdxOrganization `json:"supplier,omitempty"`
		Name               string           `json:"name"`
		Version            string           `json:"version,omitempty"`
		Hashes             []cdxHash        `json:"hashes,omitempty"`
		PURL               string           `json:"purl,omitempty"`
		ExternalReferences []cdxExternalRef `json:"externalReferences,omitempty"`
		Components         []cdxComponent   `json:"components,omitempty"`
	}
	cdxOrganization struct {
		Name string `json:"name"`
	}
	cdxHash struct {
		Algorithm string `json:"alg"` // "SHA-1", "SHA-256"
		Content   string `json:"content"`
	}
	cdxExternalRef struct {
		URL  string `json:"url"`
		Type string `json:"type"` // "distribution"
	}
)

// writeCycloneDX writes in as a CycloneDX 1.5 JSON BOM: the image is the
// metadata's component; each package is a component whose nested
// components are its files; the other files are top-level components.
func writeCycloneDX(w io.Writer, in *Input) error {
	bom := &cdxBOM{
		Schema:       "http://cyclonedx.org/schema/bom-1.5.schema.json",
		BOMFormat:    "CycloneDX",
		SpecVersion:  "1.5",
		SerialNumber: in.serialNumber(),
		Version:      1,
		Metadata: cdxMetadata{
			Timestamp: in.created(),
			Tools: cdxTools{Components: []cdxComponent{
				{Type: "application", Name: in.Tool, Version: in.ToolVersion},
			}},
			Component: cdxComponent{
				BOMRef: "image", Type: "file", Name: in.Name,
				Hashes: []cdxHash{{Algorithm: "SHA-256", Content: in.SHA256}},
			},
		},
	}
	packaged := map[string]bool{}
	for _, p := range in.Packages {
		packaged[p.Name] = true
	}
	var loose []cdxComponent // files of no package, after the packages
	byPackage := map[string][]cdxComponent{}
	for _, f := range in.Files {
		c := cdxComponent{
			BOMRef: "file:" + f.Path, Type: "file", Name: f.Path,
			Hashes: []cdxHash{{Algorithm: "SHA-1", Content: f.SHA1}, {Algorithm: "SHA-256", Content: f.SHA256}},
		}
		if packaged[f.Package] {
			byPackage[f.Package] = append(byPackage[f.Package], c)
		} else {
			loose = append(loose, c)
		}
	}
	used := ids{}
	for _, p := range in.Packages {
		c := cdxPackage(in, p, used)
		c.Components = byPackage[p.Name]
		delete(byPackage, p.Name) // a second architecture of the name gets none
		bom.Components = append(bom.Components, c)
	}
	bom.Components = append(bom.Components, loose...)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(bom); err != nil {
		return fmt.Errorf("write CycloneDX BOM: %w", err)
	}
	return nil
}

func cdxPackage(in *Input, p Package, used ids) cdxComponent {
	c := cdxComponent{Type: "library", Name: p.Name, Version: p.Version, PURL: in.purl(p)}
	c.BOMRef = c.PURL
	if c.BOMRef == "" || used[c.BOMRef] {
		c.BOMRef = used.make("package-", p.Name+"-"+p.Arch)
	}
	used[c.BOMRef] = true
	if in.Distribution != "" {
		c.Supplier = &cdxOrganization{Name: in.Distribution}
	}
	if p.SHA256 != "" {
		c.Hashes = []cdxHash{{Algorithm: "SHA-256", Content: p.SHA256}}
	}
	if p.DownloadLocation != "" {
		c.ExternalReferences = []cdxExternalRef{{Type: "distribution", URL: p.DownloadLocation}}
	}
	return c
}
