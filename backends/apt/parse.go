package apt

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// archive is one package archive as apt-get --print-uris reports it.
type archive struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch"`
	URI     string `json:"uri"`
	File    string `json:"file"` // file name in the archives directory, as apt names it
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"` // hex
	// Repository and Suite say where apt found this version (see origins).
	Repository string `json:"repository,omitempty"`
	Suite      string `json:"suite,omitempty"`
}

// spec is the exact name apt-get download accepts for a: "name:arch=version".
func (a archive) spec() string { return a.Name + ":" + a.Arch + "=" + a.Version }

// parseURIs parses the output of "apt-get install --print-uris -qq" run with
// Acquire::ForceHash=SHA256: one line per archive,
//
//	'http://deb.debian.org/debian/pool/main/b/busybox/busybox_1.35.0-4%2bb3_amd64.deb' busybox_1%3a1.35.0-4+b3_amd64.deb 452120 SHA256:1f7e…
//
// Name, version and architecture come from the file name, which apt builds as
// name_version_arch.deb with "_" and ":" percent-encoded.
func parseURIs(r io.Reader) ([]archive, error) {
	var out []archive
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "'") {
			continue
		}
		end := strings.Index(line[1:], "'")
		if end < 0 {
			return nil, fmt.Errorf("print-uris line %q: unterminated URI", line)
		}
		a := archive{URI: line[1 : end+1]}
		fields := strings.Fields(line[end+2:])
		if len(fields) != 3 {
			return nil, fmt.Errorf("print-uris line %q: want URI, file, size and hash", line)
		}
		a.File = fields[0]
		size, err := strconv.ParseInt(fields[1], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("print-uris line %q: bad size: %w", line, err)
		}
		a.Size = size
		hash, ok := strings.CutPrefix(fields[2], "SHA256:")
		if !ok || len(hash) != 64 {
			return nil, fmt.Errorf("print-uris line %q: no SHA256 hash", line)
		}
		a.SHA256 = hash
		if a.Name, a.Version, a.Arch, err = splitFileName(a.File); err != nil {
			return nil, fmt.Errorf("print-uris line %q: %w", line, err)
		}
		out = append(out, a)
	}
	return out, sc.Err()
}

// splitFileName decodes apt's archive file name "name_version_arch.deb"
// ("busybox_1%3a1.35.0-4+b3_amd64.deb" → busybox, 1:1.35.0-4+b3, amd64).
func splitFileName(file string) (name, version, arch string, err error) {
	base, ok := strings.CutSuffix(file, ".deb")
	if !ok {
		base, ok = strings.CutSuffix(file, ".udeb")
	}
	parts := strings.Split(base, "_")
	if !ok || len(parts) != 3 {
		return "", "", "", fmt.Errorf("archive name %q is not name_version_arch.deb", file)
	}
	for i, p := range parts {
		if parts[i], err = url.PathUnescape(p); err != nil || parts[i] == "" {
			return "", "", "", fmt.Errorf("archive name %q: bad field %q", file, p)
		}
	}
	return parts[0], parts[1], parts[2], nil
}

// problems returns what apt said went wrong: the "unmet dependencies"
// explanation from its stdout and the "E: …" lines from its stderr.
func problems(stdout, stderr []byte) []string {
	var out []string
	unmet := false
	for line := range bytes.Lines(stdout) {
		l := strings.TrimRight(string(line), "\n")
		switch {
		case strings.HasSuffix(l, "have unmet dependencies:"):
			unmet = true
			out = append(out, l)
		case unmet && strings.HasPrefix(l, " "):
			out = append(out, l)
		default:
			unmet = false
		}
	}
	for line := range bytes.Lines(stderr) {
		if l := strings.TrimSpace(string(line)); strings.HasPrefix(l, "E: ") {
			out = append(out, l)
		}
	}
	return out
}

// problemPackages extracts the package names apt's messages complain
// about, in order and without repeats:
//
//	E: Unable to locate package foo
//	E: Package 'foo' has no installation candidate
//	E: Version '9.9' for 'foo' was not found
//	 foo : Depends: bar but it is not installable
func problemPackages(msgs []string) []string {
	var out []string
	add := func(p string) {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, m := range msgs {
		if rest, ok := strings.CutPrefix(m, "E: Unable to locate package "); ok {
			add(strings.TrimSpace(rest))
		} else if rest, ok := strings.CutPrefix(m, "E: Package '"); ok {
			p, _, _ := strings.Cut(rest, "'")
			add(p)
		} else if strings.HasPrefix(m, "E: Version '") || strings.HasPrefix(m, "E: Release '") {
			if _, rest, ok := strings.Cut(m, "' for '"); ok {
				p, _, _ := strings.Cut(rest, "'")
				add(p)
			}
		} else if p, _, ok := strings.Cut(m, " : "); ok && strings.HasPrefix(m, " ") {
			add(strings.TrimSpace(p))
		}
	}
	return out
}

// origin is one source of a package version in apt-cache policy's output:
// the repository URL and the distribution part ("bookworm-security/main").
type origin struct {
	URL, Dist string
}

// parsePolicy parses the output of "apt-cache policy NAME…" into package
// name → version → the sources offering it, in apt's order:
//
//	libssl3:
//	  Installed: (none)
//	  Candidate: 3.0.17-1~deb12u2
//	  Version table:
//	     3.0.17-1~deb12u2 500
//	        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
func parsePolicy(r io.Reader) (map[string]map[string][]origin, error) {
	out := map[string]map[string][]origin{}
	var name, version string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		installed := strings.HasPrefix(trimmed, "*** ") // the installed version
		f := strings.Fields(strings.TrimPrefix(trimmed, "*** "))
		switch {
		case len(f) == 0:
		case installed && name != "":
			version = f[0]
		case indent == 0 && strings.HasSuffix(line, ":"):
			name, _, _ = strings.Cut(strings.TrimSuffix(line, ":"), ":") // "name" or "name:arch"
			out[name] = map[string][]origin{}
			version = ""
		case name == "" || indent < 4 || len(f) < 2:
		case indent < 8:
			version = f[0]
		case version != "" && len(f) >= 3:
			out[name][version] = append(out[name][version], origin{URL: f[1], Dist: f[2]})
		}
	}
	return out, sc.Err()
}

// sameURL reports whether two repository URLs name the same place, as apt
// writes them ("file:///r" and "file:/r/" are the same).
func sameURL(a, b string) bool {
	norm := func(u string) string {
		u = strings.TrimSuffix(u, "/")
		for _, s := range []string{"file", "copy"} {
			if rest, ok := strings.CutPrefix(u, s+"://"); ok && strings.HasPrefix(rest, "/") {
				u = s + ":" + rest
			}
		}
		return u
	}
	return norm(a) == norm(b)
}
