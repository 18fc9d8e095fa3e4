package dnf

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/backends/unpack"
	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/internal/fstree"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
	"github.com/pkginitrd/pkginitrd/internal/testrpm"
)

// repos is the local signed repositories the tests resolve against.
type repos struct {
	key          testrpm.Key // signs both repositories and their packages
	repo1, repo2 string
}

// localRepos builds, once per test binary: repo1 with busybox 1.36 (Debian's
// static busybox laid out as Fedora's, /usr/sbin/busybox), app (requires
// the virtual "applib >= 2"), libnew (provides applib = 2.5), libold
// (provides applib = 1.0), hl (a hard-linked file), c1 and c2 (the same
// path with different contents) and rogue (signed with an unknown key);
// repo2 with busybox 1.37.
func localRepos(t *testing.T) repos {
	t.Helper()
	testenv.NeedTool(t, "dnf", "dnf")
	testenv.NeedTool(t, "dpkg-deb", "dpkg")
	{
		bb := filepath.Join(testdeb.CacheDir(t), "busybox-static-rpm")
		if _, err := os.Stat(filepath.Join(bb, "bin/busybox")); err != nil {
			if out, err := exec.Command("dpkg-deb", "-x", testdeb.Deb(t, "busybox-static"), bb).CombinedOutput(); err != nil {
				t.Fatalf("dpkg-deb: %v\n%s", err, out)
			}
		}
		busybox := func(version string) testrpm.Spec {
			return testrpm.Spec{Name: "busybox", Version: version, Release: "1.fc41", Files: []testrpm.File{
				{Path: "/usr/sbin/busybox", Mode: 0o755, Src: filepath.Join(bb, "bin/busybox")}}}
		}
		key := testrpm.NewKey(t, "repo")
		rogueKey := testrpm.NewKey(t, "rogue")
		specs := []testrpm.Spec{
			busybox("1.36.1"),
			{Name: "app", Version: "1", Release: "1", Requires: []string{"applib >= 2"}, Files: []testrpm.File{{Path: "/usr/bin/app", Mode: 0o755, Data: []byte("app\n")}}},
			{Name: "libnew", Version: "2.5", Release: "1", Provides: []string{"applib = 2.5"}, Files: []testrpm.File{{Path: "/usr/lib64/libapp.so.2", Data: []byte("new\n")}}},
			{Name: "libold", Version: "1.0", Release: "1", Provides: []string{"applib = 1.0"}, Files: []testrpm.File{{Path: "/usr/lib64/libapp.so.1", Data: []byte("old\n")}}},
			{Name: "hl", Version: "1", Release: "1", Files: []testrpm.File{{Path: "/usr/bin/hl", Mode: 0o755, Data: []byte("hl\n")}, {Path: "/usr/bin/hl-too", HardLink: "/usr/bin/hl"}}},
			{Name: "c1", Version: "1", Release: "1", Files: []testrpm.File{{Path: "/usr/bin/same", Data: []byte("one\n")}}},
			{Name: "c2", Version: "1", Release: "1", Files: []testrpm.File{{Path: "/usr/bin/same", Data: []byte("two\n")}}},
		}
		var rpms1 []string
		for _, s := range specs {
			rpms1 = append(rpms1, testrpm.Build(t, s))
		}
		key.Sign(t, rpms1...)
		rogue := testrpm.Build(t, testrpm.Spec{Name: "rogue", Version: "1", Release: "1", Files: []testrpm.File{{Path: "/usr/bin/rogue", Data: []byte("x")}}})
		rogueKey.Sign(t, rogue)
		newer := testrpm.Build(t, busybox("1.37.0"))
		key.Sign(t, newer)
		return repos{key: key, repo1: key.Repo(t, append(rpms1, rogue)...), repo2: key.Repo(t, newer)}
	}
}

// TestRealDNF runs the real dnf against the local repositories (built once).
func TestRealDNF(t *testing.T) {
	r := localRepos(t)
	for _, tt := range []struct {
		name string
		run  func(*testing.T, repos)
	}{
		{"resolves", testFetchResolves},
		{"mirror", testFetchMirror},
		{"hard link", testFetchHardLink},
		{"unknown key", testFetchUnknownKey},
		{"file conflict", testFileConflict},
	} {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, r) })
	}
}

func (r repos) backend() *Backend {
	return New(Options{Keyring: r.key.Public, Repositories: map[string]confd.Repository{
		"local1": {URL: "file://" + r.repo1},
		"local2": {URL: "file://" + r.repo2},
	}})
}

// testFetchResolves: a virtual provide with a versioned requirement picks
// the provider that satisfies it, the newer busybox of the second
// repository wins, excluded packages are left out, and every package
// carries its version, architecture and repository.
func testFetchResolves(t *testing.T, r repos) {
	pkgs, err := r.backend().Fetch(context.Background(), backends.Request{
		Packages: []string{"busybox", "app", "hl"}, Exclude: []string{"hl"}, Release: "41", Arch: "amd64", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range pkgs {
		got = append(got, p.Name+" "+p.Version+" "+p.Arch+" "+p.Repository)
		if _, err := os.Stat(p.Path); err != nil {
			t.Errorf("%s: %v", p.Name, err)
		}
	}
	want := []string{"app 1-1 x86_64 local1", "busybox 1.37.0-1.fc41 x86_64 local2", "libnew 2.5-1 x86_64 local1"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Fetch =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// The static busybox unpacks and runs.
	tr, err := unpack.Cache{Dir: t.TempDir()}.Tree(context.Background(), pkgs[1])
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(filepath.Join(tr.Dir, "usr/sbin/busybox"), "echo", "ok").CombinedOutput(); err != nil || string(out) != "ok\n" {
		t.Errorf("unpacked busybox echo ok = %q, %v", out, err)
	}
}

// testFetchMirror: --mirror replaces the configured repositories.
func testFetchMirror(t *testing.T, r repos) {
	pkgs, err := r.backend().Fetch(context.Background(), backends.Request{
		Packages: []string{"busybox"}, Release: "41", Mirror: "file://" + r.repo1, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) != 1 || pkgs[0].Version != "1.36.1-1.fc41" || pkgs[0].Repository != "mirror" {
		t.Errorf("Fetch with mirror = %+v, want busybox 1.36.1 from mirror", pkgs)
	}
}

// testFetchHardLink: the hard-linked file of hl stays one inode.
func testFetchHardLink(t *testing.T, r repos) {
	pkgs, err := r.backend().Fetch(context.Background(), backends.Request{Packages: []string{"hl"}, Release: "41", CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := unpack.Cache{Dir: t.TempDir()}.Tree(context.Background(), pkgs[0])
	if err != nil {
		t.Fatal(err)
	}
	a, err1 := os.Stat(filepath.Join(tr.Dir, "usr/bin/hl"))
	b, err2 := os.Stat(filepath.Join(tr.Dir, "usr/bin/hl-too"))
	if err1 != nil || err2 != nil || !os.SameFile(a, b) {
		t.Errorf("usr/bin/hl and hl-too are not one file: %v %v", err1, err2)
	}
}

// testFetchUnknownKey: a package signed with a key the repository does not
// list is refused, though dnf leaves it in its download directory.
func testFetchUnknownKey(t *testing.T, r repos) {
	_, err := r.backend().Fetch(context.Background(), backends.Request{Packages: []string{"rogue"}, Release: "41", CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "GPG check FAILED") {
		t.Errorf("Fetch(rogue) = %v, want dnf's GPG check failure", err)
	}
}

// testFileConflict: dnf --downloadonly runs no transaction test, so two
// packages shipping one path with different contents both download; adding
// them to the image tree reports the conflict naming both.
func testFileConflict(t *testing.T, r repos) {
	cache := t.TempDir()
	pkgs, err := r.backend().Fetch(context.Background(), backends.Request{Packages: []string{"c1", "c2"}, Release: "41", CacheDir: cache})
	if err != nil {
		t.Fatal(err)
	}
	trees, err := unpack.Cache{Dir: cache}.Trees(context.Background(), pkgs, 0)
	if err != nil {
		t.Fatal(err)
	}
	tree := fstree.New()
	for i, p := range pkgs {
		if err = trees[i].AddTo(tree, p.Name, nil); err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "c1") || !strings.Contains(err.Error(), "c2") || !strings.Contains(err.Error(), "usr/bin/same") {
		t.Errorf("adding c1 and c2 = %v, want a conflict naming both and usr/bin/same", err)
	}
}

func TestMissingDNF(t *testing.T) {
	_, err := New(Options{DNF: "dnf-not-installed-here"}).Fetch(context.Background(), backends.Request{Packages: []string{"x"}, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "install the package dnf") {
		t.Errorf("Fetch without dnf = %v, want one error naming the package to install", err)
	}
}

func TestReleasever(t *testing.T) {
	for in, want := range map[string]string{"41": "41", "9.5": "9", "9": "9", "": ""} {
		if got := releasever(in); got != want {
			t.Errorf("releasever(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSeedCache(t *testing.T) {
	host, cache := t.TempDir(), t.TempDir()
	src := filepath.Join(host, "fedora-1234abcd", "packages", "busybox-1.36.1-1.fc41.x86_64.rpm")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(src, []byte("rpm"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := seedCache(host, cache); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(cache, "fedora-1234abcd", "packages", "busybox-1.36.1-1.fc41.x86_64.rpm")); err != nil || string(b) != "rpm" {
		t.Errorf("seeded package = %q, %v", b, err)
	}
}
