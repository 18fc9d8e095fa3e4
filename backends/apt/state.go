package apt

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/internal/atomicfile"
)

// state is the private apt state for one (release, architecture, mirror,
// components, keyring): apt's configuration, lists, an empty dpkg status, our
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

// stateFor returns the state directory of req under req.CacheDir/apt.
func stateFor(req backends.Request, components []string, keyring string) (state, error) {
	switch {
	case req.CacheDir == "":
		return state{}, fmt.Errorf("no cache directory")
	case req.Mirror == "" || strings.ContainsAny(req.Mirror, " \t\n\"'[]"):
		return state{}, fmt.Errorf("bad mirror %q", req.Mirror)
	case strings.ContainsAny(req.CacheDir+keyring, "\"\\\n"):
		return state{}, fmt.Errorf("cache directory %q or keyring %q contains a quote, backslash or newline, which apt's configuration cannot hold", req.CacheDir, keyring)
	case !safeName(req.Release):
		return state{}, fmt.Errorf("bad release %q", req.Release)
	case !safeName(req.Arch):
		return state{}, fmt.Errorf("bad architecture %q", req.Arch)
	}
	h := sha256.Sum256([]byte(req.Mirror + "\x00" + strings.Join(components, " ") + "\x00" + keyring))
	name := req.Release + "-" + req.Arch + "-" + hex.EncodeToString(h[:6])
	return state{dir: filepath.Join(req.CacheDir, "apt", name)}, nil
}

// sourcesList is the one-line sources.list of the state.
func sourcesList(mirror, release, keyring string, components []string) string {
	return fmt.Sprintf("deb [signed-by=%s] %s %s %s\n", keyring, mirror, release, strings.Join(components, " "))
}

// aptConf is the configuration apt reads through APT_CONFIG. It points every
// directory into the state, so that neither the host's apt.conf.d, sources,
// preferences and trusted keys nor its dpkg status are used; the dpkg
// status is an empty file, so apt resolves as for an empty root.
// Signatures are verified (signed-by in sources.list); insecure
// repositories are refused explicitly.
func (s state) aptConf(arch string) string {
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
	return b.String()
}

// setup creates the state directory tree and (re)writes apt.conf and
// sources.list when their contents differ.
func (s state) setup(arch, mirror, release, keyring string, components []string) error {
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
	if _, err := os.Stat(keyring); err != nil {
		return fmt.Errorf("keyring: %w", err)
	}
	files := map[string]string{
		s.conf():                               s.aptConf(arch),
		filepath.Join(s.etc(), "sources.list"): sourcesList(mirror, release, keyring, components),
		filepath.Join(s.dir, "status"):         "",
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
