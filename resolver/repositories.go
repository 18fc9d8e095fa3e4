package resolver

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/backends/apt"
	confd "github.com/pkginitrd/pkginitrd/conf.d"
)

// Sources says where a build's packages come from.
type Sources struct {
	Repositories []backends.Repository
	Proxies      map[string]string // the host's apt proxy settings
	FromHost     bool              // the host's apt sources, not the configured repositories
}

// Repositories computes the sources of a build of distribution d (with
// the configuration's overrides applied) for arch, on the host whose root
// is root ("/" for this machine):
//   - a build for the host's own distribution and release (its os-release ID
//     and VERSION_CODENAME), without a configured mirror, uses the host's apt
//     sources, so it sees the same updates (e.g. <release>-security);
//   - any other build uses d's configured repositories.
//
// Either way the host's apt proxy settings are used: they describe the
// host's network, not a release. Only the apt backend has repositories.
func Repositories(cfg *confd.Config, d confd.Distribution, root, arch string, log *slog.Logger) (*Sources, error) {
	if d.Backend != "apt" {
		return &Sources{}, nil
	}
	proxies, err := apt.HostProxies(root)
	if err != nil {
		return nil, err
	}
	id, codename := hostRelease(root)
	if cfg.Mirror == "" && id == cfg.Distribution && codename == d.Release {
		repos, err := apt.HostRepositories(root, arch)
		if err != nil {
			return nil, err
		}
		if len(repos) > 0 {
			log.Info("using the host's apt sources: the build is for the host's own release", "release", d.Release)
			return &Sources{Repositories: repos, Proxies: proxies, FromHost: true}, nil
		}
		log.Warn("the host's apt sources have no entry for the architecture; using the configured repositories", "arch", arch)
	}
	repos, err := configured(d)
	return &Sources{Repositories: repos, Proxies: proxies}, err
}

// configured returns d's enabled repositories for its release, sorted by
// name, with "{mirror}" and "{release}" replaced.
func configured(d confd.Distribution) ([]backends.Repository, error) {
	expand := strings.NewReplacer("{mirror}", d.Mirror, "{release}", d.Release).Replace
	var out []backends.Repository
	for _, name := range slices.Sorted(maps.Keys(d.Repositories)) {
		r := d.Repositories[name]
		if r.Disabled || slices.Contains(r.SkipReleases, d.Release) {
			continue
		}
		repo := backends.Repository{URL: expand(r.URL), Components: r.Components}
		for _, s := range r.Suites {
			repo.Suites = append(repo.Suites, expand(s))
		}
		keyring := r.Keyring
		if keyring == "" {
			keyring = d.Keyring
		}
		switch {
		case repo.URL == "" || strings.Contains(r.URL, "{mirror}") && d.Mirror == "":
			return nil, fmt.Errorf("repository %s: no url (or no mirror for {mirror})", name)
		case len(repo.Suites) == 0:
			return nil, fmt.Errorf("repository %s: no suites", name)
		case keyring == "":
			return nil, fmt.Errorf("repository %s: no keyring (set keyring in it or in its distribution)", name)
		}
		repo.SignedBy = []string{keyring}
		out = append(out, repo)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no repositories are configured for release %s", d.Release)
	}
	return out, nil
}

// hostRelease returns the ID and VERSION_CODENAME of root's os-release
// (etc/os-release, else usr/lib/os-release); empty if there is none.
func hostRelease(root string) (id, codename string) {
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		f, err := os.Open(filepath.Join(root, p))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", ""
		}
		defer f.Close()
		kv := parseOSRelease(f)
		return kv["ID"], kv["VERSION_CODENAME"]
	}
	return "", ""
}

// parseOSRelease parses os-release(5) text: KEY=value lines, values
// optionally in single or double quotes.
func parseOSRelease(r io.Reader) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok || strings.HasPrefix(k, "#") {
			continue
		}
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[k] = v
	}
	return out
}
