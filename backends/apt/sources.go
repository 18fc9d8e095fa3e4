package apt

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pkginitrd/pkginitrd/backends"
)

// This file reads the host's apt sources and proxy settings, as apt itself
// does, so that a build for the host's own release sees the same archives
// (including <release>-security) through the same proxy. Nothing else of the
// host's apt configuration is read.

// source is one enabled "deb" entry of a sources file, before it is matched
// against the build's architecture.
type source struct {
	URIs, Suites, Components  []string
	Archs, ArchsAdd, ArchsDel []string // Architectures(-Add,-Remove), arch(+=,-=)
	SignedBy                  []string // paths and fingerprints, or one key block
}

// HostRepositories returns the repositories of the apt sources under root
// ("/" for the host): etc/apt/sources.list and the *.list and *.sources
// files of etc/apt/sources.list.d that apt reads, without disabled entries,
// deb-src and entries for other architectures than arch. An entry without
// keyring files in Signed-By is verified, as apt does, with the host's
// trusted keyrings (etc/apt/trusted.gpg and trusted.gpg.d).
func HostRepositories(root, arch string) ([]backends.Repository, error) {
	etc := filepath.Join(root, "etc", "apt")
	files := []string{filepath.Join(etc, "sources.list")}
	parts, err := aptParts(filepath.Join(etc, "sources.list.d"), []string{"list", "sources"}, false)
	if err != nil {
		return nil, err
	}
	files = append(files, parts...)
	var srcs []source
	for _, f := range files {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read apt sources: %w", err)
		}
		parse := parseOneLine
		if strings.HasSuffix(f, ".sources") {
			parse = parseDeb822
		}
		s, err := parse(bytes.NewReader(data), f)
		if err != nil {
			return nil, err
		}
		srcs = append(srcs, s...)
	}
	return repositories(srcs, arch, trustedKeyrings(etc)), nil
}

// HostProxies returns the proxy settings (Acquire::http::Proxy,
// Acquire::https::Proxy and their per-host forms …::Proxy::HOST) of the apt
// configuration under root: etc/apt/apt.conf.d, then etc/apt/apt.conf, later
// settings overriding earlier ones as in apt.
func HostProxies(root string) (map[string]string, error) {
	etc := filepath.Join(root, "etc", "apt")
	files, err := aptParts(filepath.Join(etc, "apt.conf.d"), []string{"conf"}, true)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, f := range append(files, filepath.Join(etc, "apt.conf")) {
		data, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read apt configuration: %w", err)
		}
		if err := parseProxies(data, f, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// aptParts lists the files of a ".d" directory that apt reads, sorted: regular
// files not starting with ".", named with letters, digits, "_", "-", ":" and
// ".", whose extension is one of exts (or that have none, if noExt). apt
// ignores (with a notice) every other file, e.g. "x.list.disabled".
func aptParts(dir string, exts []string, noExt bool) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read apt configuration: %w", err)
	}
	var out []string
	for _, e := range ents {
		if !aptPartName(e.Name(), exts, noExt) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if fi, err := os.Stat(p); err != nil || !fi.Mode().IsRegular() {
			continue
		}
		out = append(out, p)
	}
	return out, nil // os.ReadDir sorts by name, as apt does
}

// aptPartName reports whether apt reads a file of this name (see aptParts).
func aptPartName(name string, exts []string, noExt bool) bool {
	if name == "" || name[0] == '.' || name[len(name)-1] == '.' {
		return false
	}
	for _, r := range name {
		ok := 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("_-:.", r)
		if !ok {
			return false
		}
	}
	i := strings.LastIndexByte(name, '.')
	if i < 0 {
		return noExt
	}
	return slices.Contains(exts, name[i+1:])
}

// trustedKeyrings lists the keyrings apt trusts for entries without
// keyring files in Signed-By: trusted.gpg and trusted.gpg.d/*.{gpg,asc}.
func trustedKeyrings(etc string) []string {
	var out []string
	if _, err := os.Stat(filepath.Join(etc, "trusted.gpg")); err == nil {
		out = append(out, filepath.Join(etc, "trusted.gpg"))
	}
	parts, _ := aptParts(filepath.Join(etc, "trusted.gpg.d"), []string{"gpg", "asc"}, false)
	return append(out, parts...)
}

// repositories keeps the sources that apply to arch, one repository per
// URI, and fills in trusted as the keyrings of those naming none.
func repositories(srcs []source, arch string, trusted []string) []backends.Repository {
	var out []backends.Repository
	for _, s := range srcs {
		archs := s.Archs
		if len(archs) == 0 {
			archs = []string{arch}
		}
		if !slices.Contains(append(archs, s.ArchsAdd...), arch) || slices.Contains(s.ArchsDel, arch) {
			continue
		}
		signed := slices.Clone(s.SignedBy)
		if !slices.ContainsFunc(signed, func(k string) bool { return strings.HasPrefix(k, "/") || strings.Contains(k, "\n") }) {
			signed = append(signed, trusted...) // fingerprints select from the trusted keyrings
		}
		for _, u := range s.URIs {
			out = append(out, backends.Repository{URL: u, Suites: s.Suites, Components: s.Components, SignedBy: signed})
		}
	}
	return out
}

// parseOneLine parses a one-line sources file ("deb [opts] URI SUITE
// [COMPONENT…]"), returning its "deb" entries. file names it in errors.
func parseOneLine(r io.Reader, file string) ([]source, error) {
	var out []source
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		bad := func(why string) error {
			return fmt.Errorf("%s:%d: malformed apt source %q: %s", file, n, strings.TrimSpace(line), why)
		}
		typ := f[0]
		if typ != "deb" && typ != "deb-src" {
			return nil, bad("type " + typ + " is not deb or deb-src")
		}
		var s source
		var opts []string
		rest := f[1:]
		if len(rest) > 0 && strings.HasPrefix(rest[0], "[") {
			// Options: "[a=b c=d]", brackets possibly separate words.
			end := slices.IndexFunc(rest, func(w string) bool { return strings.HasSuffix(w, "]") })
			if end < 0 {
				return nil, bad("unterminated [options]")
			}
			opts = strings.Fields(strings.Trim(strings.Join(rest[:end+1], " "), "[]"))
			rest = rest[end+1:]
		}
		for _, o := range opts {
			k, v, ok := strings.Cut(o, "=")
			if !ok {
				return nil, bad("option " + o + " has no value")
			}
			vals := strings.Split(v, ",")
			switch k {
			case "arch":
				s.Archs = vals
			case "arch+":
				s.ArchsAdd = vals
			case "arch-":
				s.ArchsDel = vals
			case "signed-by":
				s.SignedBy = vals
			}
		}
		if len(rest) < 2 {
			return nil, bad("want URI and suite")
		}
		s.URIs, s.Suites = rest[:1], rest[1:2]
		if len(rest) > 2 {
			s.Components = rest[2:]
		}
		if err := s.check(); err != nil {
			return nil, bad(err.Error())
		}
		if typ == "deb" {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return out, nil
}

// check rejects what apt rejects: suites with components for a flat
// repository, or without components otherwise, and URIs without a scheme.
func (s source) check() error {
	for _, u := range s.URIs {
		if !strings.Contains(u, ":") || strings.ContainsAny(u, "\"'") {
			return fmt.Errorf("URI %q is not a URI", u)
		}
	}
	for _, suite := range s.Suites {
		flat := strings.HasSuffix(suite, "/")
		if flat && len(s.Components) > 0 {
			return fmt.Errorf("suite %q is a path (ends in /) and cannot have components", suite)
		}
		if !flat && len(s.Components) == 0 {
			return fmt.Errorf("suite %q needs components", suite)
		}
	}
	return nil
}

// stanza is one deb822 paragraph: its fields (keys lowercased) and the line
// it starts on.
type stanza struct {
	line   int
	fields map[string]string
}

// parseStanzas splits deb822 text into paragraphs. Comment lines ("#") are
// skipped; a continuation line (leading space or tab) extends the previous
// field, "." standing for an empty line.
func parseStanzas(r io.Reader, file string) ([]stanza, error) {
	var out []stanza
	var cur *stanza
	last := ""
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case strings.TrimSpace(line) == "":
			cur = nil
			continue
		case line[0] == ' ' || line[0] == '\t':
			if cur == nil || last == "" {
				return nil, fmt.Errorf("%s:%d: malformed apt source: continuation line without a field", file, n)
			}
			v := strings.TrimSpace(line)
			if v == "." {
				v = ""
			}
			cur.fields[last] += "\n" + v
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("%s:%d: malformed apt source %q: want Field: value", file, n, line)
		}
		if cur == nil {
			out = append(out, stanza{line: n, fields: map[string]string{}})
			cur = &out[len(out)-1]
		}
		last = strings.ToLower(k)
		cur.fields[last] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read %s: %w", file, err)
	}
	return out, nil
}

// parseDeb822 parses a deb822 sources file (*.sources), returning its
// enabled "deb" entries. file names it in errors.
func parseDeb822(r io.Reader, file string) ([]source, error) {
	stanzas, err := parseStanzas(r, file)
	if err != nil {
		return nil, err
	}
	var out []source
	for _, st := range stanzas {
		f := st.fields
		bad := func(why string) error { return fmt.Errorf("%s:%d: malformed apt source: %s", file, st.line, why) }
		for _, k := range []string{"types", "uris", "suites"} {
			if strings.TrimSpace(f[k]) == "" {
				return nil, bad("no " + k + " field")
			}
		}
		if e, ok := f["enabled"]; ok {
			on, err := aptBool(e)
			if err != nil {
				return nil, bad("Enabled: " + err.Error())
			}
			if !on {
				continue
			}
		}
		s := source{
			URIs: words(f["uris"]), Suites: words(f["suites"]), Components: words(f["components"]),
			Archs: words(f["architectures"]), ArchsAdd: words(f["architectures-add"]), ArchsDel: words(f["architectures-remove"]),
		}
		if sb := strings.TrimSpace(f["signed-by"]); strings.Contains(sb, "\n") {
			s.SignedBy = []string{sb} // an embedded key block
		} else if sb != "" {
			s.SignedBy = strings.FieldsFunc(sb, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
		}
		if err := s.check(); err != nil {
			return nil, bad(err.Error())
		}
		if slices.Contains(strings.Fields(f["types"]), "deb") {
			out = append(out, s)
		}
	}
	return out, nil
}

// words splits a field's value at white space; nil if it has none.
func words(s string) []string {
	if f := strings.Fields(s); len(f) > 0 {
		return f
	}
	return nil
}

// aptBool parses a boolean as apt does.
func aptBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "yes", "true", "with", "on", "enable", "1":
		return true, nil
	case "no", "false", "without", "off", "disable", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not yes or no", s)
}
