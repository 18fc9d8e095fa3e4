// Package sbom writes the software bill of materials of an image: SPDX 2.3
// JSON or CycloneDX 1.5 JSON, listing the image, every package in it with
// its version, supplier, download location and archive checksum, and every
// file with its checksums and the package that contains it.
// The output depends only on the Input: lists are sorted, the creation
// time is given, and the identifiers derive from the image's hash.
//
// Both documents are small structs of the fields written, put through
// encoding/json. The generator binary is also every image's /init, so it
// does not link github.com/spdx/tools-golang or
// github.com/CycloneDX/cyclonedx-go (270 KB of the stripped binary);
// the tests read the output with those libraries' own parsers instead.
package sbom

import (
	"crypto/sha1"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strings"
	"time"
)

// The formats Write knows.
const (
	SPDX      = "spdx"      // SPDX 2.3 JSON
	CycloneDX = "cyclonedx" // CycloneDX 1.5 JSON
)

// Input is what an SBOM describes.
type Input struct {
	Name         string    // the image's file name
	SHA256       string    // the image's SHA-256 (hex)
	Created      time.Time // when the image was made: SOURCE_DATE_EPOCH
	Tool         string    // "pkginitrd"
	ToolVersion  string
	Distribution string // the packages' supplier, e.g. "debian"
	PackageType  string // package URL type of the packages: "deb", "rpm" ("" = none)
	Packages     []Package
	Files        []File
}

// Package is one distribution package in the image.
type Package struct {
	Name, Version, Arch string
	// DownloadLocation is the URL the archive came from ("" = unknown).
	DownloadLocation string
	SHA256           string // of the archive (hex; "" = unknown)
}

// File is one regular file (or hard link) in the image.
type File struct {
	Path         string // relative to the image root
	SHA1, SHA256 string // of the contents (hex)
	Package      string // name of the package that put it there ("" = none: stage0, modules, ...)
}

// Write writes the SBOM of in to w in format (SPDX or CycloneDX).
func Write(w io.Writer, format string, in *Input) error {
	sorted := *in
	sorted.Packages = slices.Clone(in.Packages)
	slices.SortFunc(sorted.Packages, func(a, b Package) int {
		return strings.Compare(a.Name+"\x00"+a.Arch+"\x00"+a.Version, b.Name+"\x00"+b.Arch+"\x00"+b.Version)
	})
	sorted.Files = slices.Clone(in.Files)
	slices.SortFunc(sorted.Files, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	if err := CheckFormat(format); err != nil {
		return err
	}
	if format == CycloneDX {
		return writeCycloneDX(w, &sorted)
	}
	return writeSPDX(w, &sorted)
}

// CheckFormat reports an error unless format is one Write knows ("" is SPDX).
func CheckFormat(format string) error {
	switch format {
	case SPDX, CycloneDX, "":
		return nil
	}
	return fmt.Errorf("sbom format %q: want %s or %s", format, SPDX, CycloneDX)
}

// namespace is the SPDX document namespace: unique per image content.
func (in *Input) namespace() string {
	return "https://spdx.org/spdxdocs/pkginitrd/" + url.PathEscape(in.Name) + "-" + in.SHA256
}

// created is the creation time as both formats want it.
func (in *Input) created() string { return in.Created.UTC().Format(time.RFC3339) }

// purl is the package URL of p (https://github.com/package-url/purl-spec),
// or "" when the package type is unknown.
func (in *Input) purl(p Package) string {
	if in.PackageType == "" || in.Distribution == "" {
		return ""
	}
	s := "pkg:" + in.PackageType + "/" + purlEscape(strings.ToLower(in.Distribution)) + "/" + purlEscape(p.Name)
	if p.Version != "" {
		s += "@" + purlEscape(p.Version)
	}
	if p.Arch != "" {
		s += "?arch=" + purlEscape(p.Arch)
	}
	return s
}

// purlEscape percent-encodes everything but unreserved characters, so
// that an epoch's ':' or a name's '+' cannot be read as separators.
func purlEscape(s string) string {
	var b strings.Builder
	for i := range len(s) {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// serialNumber is a name-based (version 5) UUID URN for the image's
// CycloneDX document (RFC 9562 §5.5, in the URL namespace).
func (in *Input) serialNumber() string {
	ns := []byte{0x6b, 0xa7, 0xb8, 0x11, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8}
	h := sha1.Sum(append(ns, in.namespace()...))
	u := h[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// ids hands out unique identifiers made of the characters SPDX allows
// (letters, digits, '.' and '-').
type ids map[string]bool

func (s ids) make(prefix, name string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, c := range name {
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' {
			b.WriteRune(c)
		} else {
			b.WriteByte('-')
		}
	}
	id := b.String()
	for n := 2; s[id]; n++ {
		id = fmt.Sprintf("%s-%d", b.String(), n)
	}
	s[id] = true
	return id
}
