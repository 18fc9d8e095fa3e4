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
	Repository          string // repository it came from, as the package manager names it ("" if unknown)
}

// Request says what to install and from where.
type Request struct {
	Packages []string // names the user/resolver asked for
	// Exclude names packages that are resolved as dependencies but never
	// unpacked (things an initrd never runs: perl-base, debconf, ...).
	Exclude               []string
	Release, Mirror, Arch string // e.g. "bookworm", "http://deb.debian.org/debian", "amd64"
	CacheDir              string // root of pkginitrd's cache, e.g. ~/.cache/pkginitrd
	Offline               bool   // never touch the network: use cached metadata/archives or fail clearly
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
