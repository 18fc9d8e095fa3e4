package sbom

import (
	"fmt"
	"io"

	cdx "github.com/CycloneDX/cyclonedx-go"
)

// writeCycloneDX writes in as a CycloneDX 1.5 JSON BOM: the image is the
// metadata's component; each package is a component whose nested
// components are its files; the other files are top-level components.
func writeCycloneDX(w io.Writer, in *Input) error {
	bom := &cdx.BOM{
		JSONSchema:   "http://cyclonedx.org/schema/bom-1.5.schema.json",
		BOMFormat:    cdx.BOMFormat,
		SpecVersion:  cdx.SpecVersion1_5,
		SerialNumber: in.serialNumber(),
		Version:      1,
		Metadata: &cdx.Metadata{
			Timestamp: in.created(),
			Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{
				{Type: cdx.ComponentTypeApplication, Name: in.Tool, Version: in.ToolVersion},
			}},
			Component: &cdx.Component{
				BOMRef: "image", Type: cdx.ComponentTypeFile, Name: in.Name,
				Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: in.SHA256}},
			},
		},
	}
	packaged := map[string]bool{}
	for _, p := range in.Packages {
		packaged[p.Name] = true
	}
	var loose []cdx.Component // files of no package, after the packages
	byPackage := map[string][]cdx.Component{}
	for _, f := range in.Files {
		c := cdx.Component{
			BOMRef: "file:" + f.Path, Type: cdx.ComponentTypeFile, Name: f.Path,
			Hashes: &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA1, Value: f.SHA1}, {Algorithm: cdx.HashAlgoSHA256, Value: f.SHA256}},
		}
		if packaged[f.Package] {
			byPackage[f.Package] = append(byPackage[f.Package], c)
		} else {
			loose = append(loose, c)
		}
	}
	var comps []cdx.Component
	used := ids{}
	for _, p := range in.Packages {
		c := cdxPackage(in, p, used)
		if files := byPackage[p.Name]; len(files) > 0 {
			c.Components = &files
			delete(byPackage, p.Name) // a second architecture of the name gets none
		}
		comps = append(comps, c)
	}
	comps = append(comps, loose...)
	bom.Components = &comps
	enc := cdx.NewBOMEncoder(w, cdx.BOMFileFormatJSON)
	enc.SetPretty(true)
	if err := enc.Encode(bom); err != nil {
		return fmt.Errorf("write CycloneDX BOM: %w", err)
	}
	return nil
}

func cdxPackage(in *Input, p Package, used ids) cdx.Component {
	c := cdx.Component{Type: cdx.ComponentTypeLibrary, Name: p.Name, Version: p.Version, PackageURL: in.purl(p)}
	c.BOMRef = c.PackageURL
	if c.BOMRef == "" || used[c.BOMRef] {
		c.BOMRef = used.make("package-", p.Name+"-"+p.Arch)
	}
	used[c.BOMRef] = true
	if in.Distribution != "" {
		c.Supplier = &cdx.OrganizationalEntity{Name: in.Distribution}
	}
	if p.SHA256 != "" {
		c.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: p.SHA256}}
	}
	if p.DownloadLocation != "" {
		c.ExternalReferences = &[]cdx.ExternalReference{{Type: cdx.ERTypeDistribution, URL: p.DownloadLocation}}
	}
	return c
}
