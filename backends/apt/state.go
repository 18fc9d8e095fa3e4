package apt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
)

// state is the private apt state for one (release, architecture, sources):
// apt's configuration, lists, an empty dpkg status, our
// verified archives and cached resolutions. Nothing of the host's apt or
// dpkg state is read or written.
type state struct {
	dir string
}

// Layout of a state directory.
func (s state) conf() string        { return filepath.Join(s.dir, "apt.conf") }
func (s state) etc() string         { return filepath.Join(s.dir, "etc") }
func (s state) lists() string       { return filepath.Join(s.dir, "lists") }
func (s state) aptArchives() string { return filepath.Join(s.dir, "apt-archives") } // apt's own, kept empty
func (s state) archives() string    { return filepath.Join(s.dir, "archives") }     // verified .debs
func (s state) resolved() string    { return filepath.Join(s.dir, "resolved") }
func (s state) stamp() string       { return filepath.Join(s.dir, "updated") }
func (s state) lock() string        { return filepath.Join(s.dir, "lock") }

// safeName reports whether a release or architecture name is usable as
// part of a directory name.
func safeName(s string) bool {
	for i, r := range s {
		ok := 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || i > 0 && strings.ContainsRune(".+~-", r)
		if !ok {
			return false
		}
	}
	return s != ""
}

// stateFor returns the state directory of req under req.CacheDir/apt: one
// per release, architecture and sources (repositories, suites, components,
// keys).
func stateFor(req backends.Request) (state, error) {
	switch {
	case req.CacheDir == "":
		return state{}, fmt.Errorf("no cache directory")
	case len(req.Repositories) == 0:
		return state{}, fmt.Errorf("no repositories")
	case strings.ContainsAny(req.CacheDir, "\"\\\n"):
		return state{}, fmt.Errorf("cache directory %q contains a quote, backslash or newline, which apt's configuration cannot hold", req.CacheDir)
	case !safeName(req.Release):
		return state{}, fmt.Errorf("bad release %q", req.Release)
	case !safeName(req.Arch):
		return state{}, fmt.Errorf("bad architecture %q", req.Arch)
	}
	for k, v := range req.Proxies {
		if strings.ContainsAny(k+v, "\"\\\n{};") || strings.ContainsAny(k, " \t") {
			return state{}, fmt.Errorf("bad proxy setting %s %q", k, v)
		}
	}
	sources, err := sourcesFile(req.Repositories)
	if err != nil {
		return state{}, err
	}
	h := sha256.Sum256([]byte(sources))
	name := req.Release + "-" + req.Arch + "-" + hex.EncodeToString(h[:6])
	return state{dir: filepath.Join(req.CacheDir, "apt", name)}, nil
}

// sourcesFile renders repos as the state's deb822 sources file. A value
// apt could not read back (spaces in a URL, a newline outside a key block)
// is an error.
func sourcesFile(repos []backends.Repository) (string, error) {
	var b strings.Builder
	for i, r := range repos {
		words := append(append([]string{r.URL}, r.Suites...), r.Components...)
		if r.URL == "" || len(r.Suites) == 0 || slices.ContainsFunc(words, func(w string) bool { return w == "" || strings.ContainsAny(w, " \t\n#\"") }) {
			return "", fmt.Errorf("bad repository %q (suites %q, components %q)", r.URL, r.Suites, r.Components)
		}
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "Types: deb\nURIs: %s\nSuites: %s\n", r.URL, strings.Join(r.Suites, " "))
		if len(r.Components) > 0 {
			fmt.Fprintf(&b, "Components: %s\n", strings.Join(r.Components, " "))
		}
		switch {
		case len(r.SignedBy) == 1 && strings.Contains(r.SignedBy[0], "\n"):
			b.WriteString("Signed-By:")
			for _, l := range strings.Split(strings.TrimSpace(r.SignedBy[0]), "\n") {
				if l = strings.TrimSpace(l); l == "" {
					l = "."
				}
				b.WriteString("\n " + l)
			}
			b.WriteString("\n")
		case slices.ContainsFunc(r.SignedBy, func(k string) bool { return k == "" || strings.ContainsAny(k, " \t\n,") }):
			return "", fmt.Errorf("repository %s: bad signed-by %q", r.URL, r.SignedBy)
		case len(r.SignedBy) > 0:
			fmt.Fprintf(&b, "Signed-By: %s\n", strings.Join(r.SignedBy, ", "))
		default:
			return "", fmt.Errorf("repository %s: no keyring to verify it with", r.URL)
		}
	}
	return b.String(), nil
}

// aptConf is the configuration apt reads through APT_CONFIG. It points every
// directory into the state, so that neither the host's apt.conf.d, sources,
// preferences and trusted keys nor its dpkg status are used; the dpkg
// status is an empty file, so apt resolves as for an empty root.
// Signatures are verified (Signed-By in the sources); insecure
// repositories are refused explicitly.
func (s state) aptConf(arch string, proxies map[string]string) string {
	var b strings.Builder
	// apt's configuration strings have no escapes; stateFor rejects paths
	// with quotes, backslashes or newlines.
	set := func(k, v string) { fmt.Fprintf(&b, "%s \"%s\";\n", k, v) }
	set("Dir", "/")
	set("Dir::Etc", s.etc()+"/")
	set("Dir::Etc::main", "/dev/null")
	set("Dir::Etc::parts", filepath.Join(s.etc(), "apt.conf.d")+"/")
	set("Dir::Etc::sourcelist", filepath.Join(s.etc(), "sources.list"))
	set("Dir::Etc::sourceparts", filepath.Join(s.etc(), "sources.list.d")+"/")
	set("Dir::Etc::preferences", filepath.Join(s.etc(), "preferences"))
	set("Dir::Etc::preferencesparts", filepath.Join(s.etc(), "preferences.d")+"/")
	set("Dir::Etc::trusted", filepath.Join(s.etc(), "trusted.gpg"))
	set("Dir::Etc::trustedparts", filepath.Join(s.etc(), "trusted.gpg.d")+"/")
	set("Dir::Etc::netrcparts", filepath.Join(s.etc(), "auth.conf.d")+"/")
	set("Dir::State", s.dir+"/")
	set("Dir::State::lists", s.lists()+"/")
	set("Dir::State::status", filepath.Join(s.dir, "status"))
	set("Dir::State::extended_states", filepath.Join(s.dir, "extended_states"))
	set("Dir::Cache", filepath.Join(s.dir, "cache")+"/")
	set("Dir::Cache::archives", s.aptArchives()+"/")
	set("Dir::Cache::srcpkgcache", "") // only helps when the dpkg status changes; ours never does
	set("Dir::Log", filepath.Join(s.dir, "log")+"/")
	set("APT::Architecture", arch)
	fmt.Fprintf(&b, "APT::Architectures { \"%s\"; };\n", arch) // do not ask the host's dpkg for foreign architectures
	set("APT::Install-Recommends", "false")
	set("APT::Install-Suggests", "false")
	set("APT::Get::AllowUnauthenticated", "false")
	set("Acquire::AllowInsecureRepositories", "false")
	set("Acquire::AllowDowngradeToInsecureRepositories", "false")
	set("Acquire::Languages", "none")
	// Our own lock (see Driver.lock) serialises runs on a state; apt's
	// locks would only fail for non-root users.
	set("Debug::NoLocking", "true")
	for _, k := range slices.Sorted(maps.Keys(proxies)) {
		set(k, proxies[k]) // the host's, see HostProxies
	}
	return b.String()
}

// setup creates the state directory tree and (re)writes apt.conf and the
// sources when their contents differ. sources.list stays empty: the
// repositories are in sources.list.d/pkginitrd.sources.
func (s state) setup(req backends.Request) error {
	for _, d := range []string{
		filepath.Join(s.etc(), "apt.conf.d"), filepath.Join(s.etc(), "sources.list.d"),
		filepath.Join(s.etc(), "preferences.d"), filepath.Join(s.etc(), "trusted.gpg.d"),
		filepath.Join(s.etc(), "auth.conf.d"),
		filepath.Join(s.lists(), "partial"), filepath.Join(s.aptArchives(), "partial"),
		filepath.Join(s.dir, "cache"), filepath.Join(s.dir, "log"), s.archives(), s.resolved(),
	} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	for _, r := range req.Repositories {
		for _, k := range r.SignedBy {
			if !strings.HasPrefix(k, "/") {
				continue // a fingerprint or key block
			}
			if _, err := os.Stat(k); err != nil {
				return fmt.Errorf("keyring of %s: %w", r.URL, err)
			}
		}
	}
	sources, err := sourcesFile(req.Repositories)
	if err != nil {
		return err
	}
	files := map[string]string{
		s.conf():                               s.aptConf(req.Arch, req.Proxies),
		filepath.Join(s.etc(), "sources.list"): "",
		filepath.Join(s.etc(), "sources.list.d", "pkginitrd.sources"): sources,
		filepath.Join(s.dir, "status"):                                "",
	}
	for path, content := range files {
		if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, []byte(content)) {
			continue
		}
		if err := writeAtomic(path, []byte(content)); err != nil {
			return err
		}
	}
	return nil
}

// writeAtomic replaces path with data through a temporary file and rename.
func writeAtomic(path string, data []byte) error {
	return atomicfile.Write(path, bytes.NewReader(data), 0o644)
}
