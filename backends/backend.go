// Package backends defines what every package-manager driver (apt, dnf,
// pacman) provides: resolve a package set with the real package manager and
// download its archives into pkginitrd's cache. Unpacking is shared and lives
// in backends/unpack.
package backends

import (
	"context"
	"slices"
	"strings"
)

// Package is one binary package resolved and downloaded by a backend.
type Package struct {
	Name, Version, Arch string
	Path                string // downloaded archive on disk
	// SHA256 is the archive's hash (hex) from the repository's signed
	// index, which the backend verified; "" when the backend has none.
	SHA256 string

	// Repository and Suite say where the package manager found this
	// version, e.g. "http://deb.debian.org/debian-security" and
	// "bookworm-security" ("" when it could not tell).
	Repository, Suite string
	// URL is the archive's download URL as the package manager reported
	// it ("" when it did not).
	URL string
}

// Repository is one package repository: a base URL, its suites and
// components (none for a flat repository, whose suite ends in "/"), and the
// keys its index must be signed with.
type Repository struct {
	URL        string
	Suites     []string
	Components []string
	// SignedBy lists keyring files (absolute paths) and key fingerprints,
	// or holds one ASCII-armored key block, as apt's Signed-By does.
	SignedBy []string
}

// Request says what to install and from where.
type Request struct {
	Packages []string // names the user/resolver asked for
	// Exclude names packages that are resolved as dependencies but never
	// unpacked (things an initrd never runs: perl-base, debconf, ...).
	Exclude       []string
	Release, Arch string // e.g. "bookworm", "amd64"
	// Repositories are where apt's packages come from (see
	// resolver.Repositories), --mirror already expanded into them.
	Repositories []Repository
	// Mirror, when set, replaces the distribution's repositories (--mirror)
	// for the backends that pick their own repositories (dnf: one repository
	// at the mirror, pacman: the mirror serves every configured repository).
	// They are not resolved into Repositories: dnf reads a host build's
	// repositories from the host's yum.repos.d itself, and each backend's
	// repositories have their own shape (apt suites and components, dnf
	// baseurl or metalink, pacman servers and keyrings).
	Mirror string
	// Proxies are the package manager's proxy settings, e.g.
	// "Acquire::http::Proxy" → "http://proxy:3128".
	Proxies  map[string]string
	CacheDir string // root of pkginitrd's cache, e.g. ~/.cache/pkginitrd
	Offline  bool   // never touch the network: use cached metadata/archives or fail clearly
	// HostRelease says the build is for the host's own distribution and
	// release: a backend may use the host's repositories and package cache.
	HostRelease bool
}

// Backend is a package-manager driver.
type Backend interface {
	Name() string
	// Fetch resolves req with the real package manager and downloads the
	// archives into the cache. The result omits req.Exclude and is sorted by
	// name.
	Fetch(ctx context.Context, req Request) ([]Package, error)
}

// Filter returns pkgs without the packages named in exclude, sorted by name
// (then version and architecture, for multi-arch sets).
func Filter(pkgs []Package, exclude []string) []Package {
	out := make([]Package, 0, len(pkgs))
	for _, p := range pkgs {
		if !slices.Contains(exclude, p.Name) {
			out = append(out, p)
		}
	}
	slices.SortFunc(out, func(a, b Package) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		if c := strings.Compare(a.Version, b.Version); c != 0 {
			return c
		}
		return strings.Compare(a.Arch, b.Arch)
	})
	return out
}
