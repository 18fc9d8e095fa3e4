package resolver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
)

// OSRelease holds the os-release(5) fields distribution detection reads.
type OSRelease struct {
	Path            string // the file read, e.g. /etc/os-release (for reasons)
	ID              string
	IDLike          []string
	VersionID       string
	VersionCodename string
}

// ParseOSRelease reads an os-release(5) file: KEY=VALUE lines, values
// optionally quoted, comments and blank lines ignored.
func ParseOSRelease(r io.Reader, path string) (OSRelease, error) {
	osr := OSRelease{Path: path}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, raw, ok := strings.Cut(line, "=")
		if !ok {
			return osr, fmt.Errorf("%s:%d: not KEY=VALUE: %q", path, n, line)
		}
		val, err := unquote(raw)
		if err != nil {
			return osr, fmt.Errorf("%s:%d: %s: %w", path, n, key, err)
		}
		switch key {
		case "ID":
			osr.ID = val
		case "ID_LIKE":
			osr.IDLike = strings.Fields(val)
		case "VERSION_ID":
			osr.VersionID = val
		case "VERSION_CODENAME":
			osr.VersionCodename = val
		}
	}
	if err := sc.Err(); err != nil {
		return osr, fmt.Errorf("read %s: %w", path, err)
	}
	return osr, nil
}

// unquote returns a shell-style value: bare, '…' or "…" with \ escapes.
func unquote(s string) (string, error) {
	if s == "" || (s[0] != '"' && s[0] != '\'') {
		return s, nil
	}
	q := s[0]
	if len(s) < 2 || s[len(s)-1] != q {
		return "", fmt.Errorf("unterminated quote in %s", s)
	}
	body := s[1 : len(s)-1]
	if q == '\'' {
		return body, nil
	}
	var b strings.Builder
	for i := 0; i < len(body); i++ {
		if body[i] == '\\' && i+1 < len(body) && strings.IndexByte("\\\"$`", body[i+1]) >= 0 {
			i++
		}
		b.WriteByte(body[i])
	}
	return b.String(), nil
}

// ReadOSRelease reads root/etc/os-release, or root/usr/lib/os-release
// when the former is missing (as os-release(5) says).
func ReadOSRelease(root string) (OSRelease, error) {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		f, err := os.Open(filepath.Join(root, p))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return OSRelease{}, fmt.Errorf("read os-release: %w", err)
		}
		defer f.Close()
		return ParseOSRelease(f, p)
	}
	return OSRelease{}, fmt.Errorf("read os-release: neither %s/etc/os-release nor %s/usr/lib/os-release exists", root, root)
}

// Detection is the configured distribution a host runs, and why.
type Detection struct {
	Distribution string // a key of the configuration's distributions
	Release      string // the host's release: VERSION_CODENAME, else VERSION_ID ("" for rolling releases)
	Reason       string // e.g. "ID=fedora in /etc/os-release"
}

// Detect maps os-release to a configured distribution: ID when it is
// configured, else the first configured ID_LIKE entry (Ubuntu → debian,
// Rocky → fedora). The release is the host's own.
func Detect(osr OSRelease, configured map[string]confd.Distribution) (Detection, error) {
	release := osr.VersionCodename
	if release == "" {
		release = osr.VersionID
	}
	if _, ok := configured[osr.ID]; ok && osr.ID != "" {
		return Detection{Distribution: osr.ID, Release: release, Reason: fmt.Sprintf("ID=%s in %s", osr.ID, osr.Path)}, nil
	}
	for _, like := range osr.IDLike {
		if _, ok := configured[like]; ok {
			return Detection{Distribution: like, Release: release,
				Reason: fmt.Sprintf("ID=%s, ID_LIKE=%q in %s", osr.ID, strings.Join(osr.IDLike, " "), osr.Path)}, nil
		}
	}
	known := slices.Sorted(maps.Keys(configured))
	return Detection{}, fmt.Errorf("ID=%s, ID_LIKE=%q in %s: no configured distribution matches (known: %s); use --distribution",
		osr.ID, strings.Join(osr.IDLike, " "), osr.Path, strings.Join(known, ", "))
}

// SelectDistribution detects the host's distribution from os-release
// under root and, when the configuration names no distribution, selects
// it (and the host's release, unless one is configured). The detection is
// nil when it failed; that is an error only when cfg names no distribution.
func SelectDistribution(cfg *confd.Config, root string) (*Detection, error) {
	osr, err := ReadOSRelease(root)
	var det Detection
	if err == nil {
		det, err = Detect(osr, cfg.Distributions)
	}
	if err != nil {
		if cfg.Distribution == "" {
			return nil, fmt.Errorf("no distribution configured and none detected: %w", err)
		}
		return nil, nil //nolint:nilerr // detection is informational when the distribution is set
	}
	if cfg.Distribution == "" {
		cfg.Distribution = det.Distribution
		if cfg.Release == "" {
			cfg.Release = det.Release
		}
	}
	return &det, nil
}

// HostRelease reports whether a build of distribution name at release is
// for the host's own distribution and release (det may be nil): such a
// build uses the host's repositories and package cache.
func (det *Detection) HostRelease(name, release string) bool {
	return det != nil && det.Distribution == name && det.Release == release
}
