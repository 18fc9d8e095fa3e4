package pacman

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/backends"
	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/internal/testarch"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

func needPacman(t *testing.T) {
	t.Helper()
	testenv.NeedTool(t, "pacman", "pacman-package-manager")
	testenv.NeedTool(t, "pacman-key", "pacman-package-manager")
	testenv.NeedTool(t, "gpg", "gnupg")
	if os.Geteuid() != 0 {
		testenv.NeedTool(t, "unshare", "util-linux")
	}
}

// shortDir is a cache directory with a short path: without
// /run/user/UID, gpg-agent's sockets live in the keyring directory, and a
// socket path is at most 107 bytes (t.TempDir's can be longer).
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// reposOf is the fixture's repositories in its order (priority 10, 20, ...).
func reposOf(f testarch.Fixture) map[string]confd.Repository {
	out := map[string]confd.Repository{}
	for i, n := range f.Names {
		out[n] = confd.Repository{URL: "file://" + f.Dir, Keyring: f.Key.Public, Priority: 10 * (i + 1)}
	}
	return out
}

// TestFetchRealPacman resolves lvm2 and busybox from a signed local
// repository with the real pacman: the dependency chain through a virtual
// provides and a versioned depends is followed, excluded packages are left
// out, and a second run reuses the private state.
func TestFetchRealPacman(t *testing.T) {
	needPacman(t)
	f := testarch.NewFixture(t, t.TempDir(), testdeb.Deb)
	d := New(Options{Repositories: reposOf(f)})
	req := backends.Request{Packages: []string{"busybox", "lvm2"}, Exclude: []string{"lvm2-libs"}, Arch: "amd64", CacheDir: shortDir(t)}
	for run := range 2 {
		pkgs, err := d.Fetch(context.Background(), req)
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		var got []string
		for _, p := range pkgs {
			got = append(got, p.Name+" "+p.Version+" "+p.Arch+" "+p.Repository)
			if fi, err := os.Stat(p.Path); err != nil || !strings.HasSuffix(p.Path, ".pkg.tar.zst") || fi.Size() == 0 {
				t.Errorf("run %d: %s: bad archive %q (%v)", run, p.Name, p.Path, err)
			}
		}
		want := "busybox 1.35.0-1 x86_64 extra|device-mapper 2.03.16-1 x86_64 core|glibc 2.36-1 x86_64 core|lvm2 2.03.16-1 x86_64 core"
		if strings.Join(got, "|") != want {
			t.Errorf("run %d: Fetch =\n%s\nwant\n%s", run, strings.Join(got, "|"), want)
		}
	}
}

// TestFetchRefusesUnknownKey: a repository signed with a key that is not
// the configured one is refused with pacman's message.
func TestFetchRefusesUnknownKey(t *testing.T) {
	needPacman(t)
	dir := t.TempDir()
	f := testarch.NewFixture(t, dir, testdeb.Deb)
	other := testarch.NewKey(t, dir, "stranger")
	repos := reposOf(f)
	for name, r := range repos {
		r.Keyring = other.Public
		repos[name] = r
	}
	d := New(Options{Repositories: repos})
	_, err := d.Fetch(context.Background(), backends.Request{Packages: []string{"busybox"}, CacheDir: shortDir(t)})
	if err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("Fetch with an unknown signing key = %v, want pacman's signature error", err)
	}
	t.Logf("refused: %v", err)
}

// TestFetchSecondRepository: a second repository with a newer busybox,
// signed with its own key. pacman takes a package from the first
// repository that has it (Arch lists [core-testing] before [core]), so
// the newer one wins when its repository comes first, and not otherwise.
func TestFetchSecondRepository(t *testing.T) {
	needPacman(t)
	dir := t.TempDir()
	f := testarch.NewFixture(t, dir, testdeb.Deb)
	key := testarch.NewKey(t, dir, "updates")
	bb := filepath.Join(dir, "debian", "bin", "busybox")
	pkg := testarch.Build(t, filepath.Join(dir, "newer"), testarch.Pkg{Name: "busybox", Version: "1.36.1-1", Files: map[string]string{"usr/bin/busybox": bb}})
	testarch.Repo(t, filepath.Join(dir, "updates"), "updates", key, pkg)
	tests := []struct {
		name     string
		priority int
		want     string
	}{
		{"updates first", 1, "busybox 1.36.1-1 updates"},
		{"updates last", 1000, "busybox 1.35.0-1 extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			repos := reposOf(f)
			repos["updates"] = confd.Repository{URL: "file://" + filepath.Join(dir, "updates"), Keyring: key.Public, Priority: tt.priority}
			d := New(Options{Repositories: repos})
			pkgs, err := d.Fetch(context.Background(), backends.Request{Packages: []string{"busybox"}, CacheDir: shortDir(t)})
			if err != nil {
				t.Fatal(err)
			}
			if len(pkgs) != 1 || pkgs[0].Name+" "+pkgs[0].Version+" "+pkgs[0].Repository != tt.want {
				t.Errorf("Fetch = %+v, want %s", pkgs, tt.want)
			}
		})
	}
}

func TestFetchMissingPacman(t *testing.T) {
	d := New(Options{Pacman: "pacman-not-installed", Repositories: map[string]confd.Repository{"core": {URL: "file:///x", Keyring: "archlinux"}}})
	_, err := d.Fetch(context.Background(), backends.Request{Packages: []string{"busybox"}, CacheDir: shortDir(t)})
	if err == nil || !strings.Contains(err.Error(), "pacman-package-manager") {
		t.Errorf("Fetch without pacman = %v, want an error naming pacman-package-manager", err)
	}
}
