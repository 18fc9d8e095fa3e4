package apt

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/backends"
)

func TestStateFor(t *testing.T) {
	base := backends.Request{Release: "bookworm", Arch: "amd64", Repositories: debian("bookworm", debianKeyring), CacheDir: "/c"}
	st, err := stateFor(base)
	if err != nil || !strings.HasPrefix(st.dir, "/c/apt/bookworm-amd64-") {
		t.Fatalf("stateFor(bookworm) = %q, %v, want /c/apt/bookworm-amd64-HASH", st.dir, err)
	}
	// Every input that changes what apt sees changes the directory.
	variants := []struct {
		name string
		req  func(r *backends.Request)
	}{
		{"mirror", func(r *backends.Request) { r.Repositories[0].URL = "http://ftp.de.debian.org/debian" }},
		{"release", func(r *backends.Request) { r.Release = "trixie" }},
		{"arch", func(r *backends.Request) { r.Arch = "arm64" }},
		{"components", func(r *backends.Request) { r.Repositories[0].Components = []string{"main", "non-free-firmware"} }},
		{"keyring", func(r *backends.Request) { r.Repositories[0].SignedBy = []string{"/other.gpg"} }},
		{"suites", func(r *backends.Request) { r.Repositories[0].Suites = []string{"bookworm", "bookworm-updates"} }},
		{"security", func(r *backends.Request) {
			r.Repositories = append(r.Repositories, backends.Repository{URL: "http://deb.debian.org/debian-security", Suites: []string{"bookworm-security"}, Components: []string{"main"}, SignedBy: []string{debianKeyring}})
		}},
	}
	for _, v := range variants {
		r := base
		r.Repositories = debian("bookworm", debianKeyring)
		v.req(&r)
		other, err := stateFor(r)
		if err != nil || other.dir == st.dir {
			t.Errorf("stateFor(other %s) = %q, %v, want a directory other than %q", v.name, other.dir, err, st.dir)
		}
	}
	repo := func(url string, suites, comps, keys []string) []backends.Repository {
		return []backends.Repository{{URL: url, Suites: suites, Components: comps, SignedBy: keys}}
	}
	main, bw, key := []string{"main"}, []string{"bookworm"}, []string{debianKeyring}
	for _, r := range []backends.Request{
		{Release: "../x", Arch: "amd64", Repositories: debian("bookworm", debianKeyring), CacheDir: "/c"},
		{Release: "bookworm", Arch: "amd/64", Repositories: debian("bookworm", debianKeyring), CacheDir: "/c"},
		{Release: "bookworm", Arch: "amd64", CacheDir: "/c"},
		{Release: "bookworm", Arch: "amd64", Repositories: debian("bookworm", debianKeyring), CacheDir: ""},
		{Release: "", Arch: "amd64", Repositories: debian("bookworm", debianKeyring), CacheDir: "/c"},
		{Release: "bookworm", Arch: "amd64", Repositories: repo("http://x/ y", bw, main, key), CacheDir: "/c"},
		{Release: "bookworm", Arch: "amd64", Repositories: repo("", bw, main, key), CacheDir: "/c"},
		{Release: "bookworm", Arch: "amd64", Repositories: repo(mirror, nil, main, key), CacheDir: "/c"},
		{Release: "bookworm", Arch: "amd64", Repositories: repo(mirror, bw, main, nil), CacheDir: "/c"},
		{Release: "bookworm", Arch: "amd64", Repositories: repo(mirror, bw, main, []string{"/a b.gpg"}), CacheDir: "/c"},
		{Release: "bookworm", Arch: "amd64", Repositories: debian("bookworm", debianKeyring), CacheDir: "/c\"d"},
		{Release: "bookworm", Arch: "amd64", Repositories: debian("bookworm", debianKeyring), CacheDir: "/c", Proxies: map[string]string{"Acquire::http::Proxy": "http://p\";x"}},
	} {
		if _, err := stateFor(r); err == nil {
			t.Errorf("stateFor(%+v) = nil error, want one", r)
		}
	}
}

func TestAptConf(t *testing.T) {
	st := state{dir: "/cache/apt/s"}
	conf := st.aptConf("arm64", map[string]string{"Acquire::http::Proxy": "http://proxy:3128", "Acquire::http::Proxy::deb.debian.org": "DIRECT"})
	for _, want := range []string{
		`Dir::Etc::main "/dev/null";`,
		`Dir::Etc::parts "/cache/apt/s/etc/apt.conf.d/";`,
		`Dir::Etc::sourcelist "/cache/apt/s/etc/sources.list";`,
		`Dir::Etc::trustedparts "/cache/apt/s/etc/trusted.gpg.d/";`,
		`Dir::State::status "/cache/apt/s/status";`,
		`Dir::State::lists "/cache/apt/s/lists/";`,
		`Dir::Cache::archives "/cache/apt/s/apt-archives/";`,
		`APT::Architecture "arm64";`,
		`APT::Architectures { "arm64"; };`,
		`Acquire::AllowInsecureRepositories "false";`,
		`Acquire::http::Proxy "http://proxy:3128";`,
		`Acquire::http::Proxy::deb.debian.org "DIRECT";`,
	} {
		if !strings.Contains(conf, want+"\n") {
			t.Errorf("aptConf lacks %s", want)
		}
	}
	for _, host := range []string{`"/etc/`, `"/var/`, `"etc/`, `"var/`} {
		if strings.Contains(conf, host) {
			t.Errorf("aptConf refers to host state (%s…):\n%s", host, conf)
		}
	}
}

func TestRequestKey(t *testing.T) {
	a := requestKey(backends.Request{Packages: []string{"busybox", "kmod"}, Exclude: []string{"perl-base", "debconf"}})
	b := requestKey(backends.Request{Packages: []string{"kmod", "busybox"}, Exclude: []string{"debconf", "perl-base"}})
	if a != b {
		t.Errorf("requestKey depends on order: %s != %s", a, b)
	}
	for _, r := range []backends.Request{
		{Packages: []string{"busybox"}, Exclude: []string{"perl-base", "debconf"}},
		{Packages: []string{"busybox", "kmod"}},
		{Packages: []string{"busybox kmod"}, Exclude: []string{"perl-base", "debconf"}},
	} {
		if k := requestKey(r); k == a {
			t.Errorf("requestKey(%+v) = %s, same as a different request", r, k)
		}
	}
}

func TestVerify(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "a_1_all.deb")
	data := []byte("package bytes")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum, _ := hashReader(strings.NewReader(string(data)))
	a := archive{Name: "a", Size: int64(len(data)), SHA256: sum}
	mt, err := verify(p, a, 0)
	if err != nil || mt == 0 {
		t.Fatalf("verify(good) = %d, %v, want mtime, nil", mt, err)
	}
	// Same size, other bytes, new mtime: detected by hashing.
	if err := os.WriteFile(p, []byte("package BYTES"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(p, time.Now(), time.Unix(0, mt).Add(time.Second))
	if _, err := verify(p, a, mt); !errors.Is(err, errBadArchive) {
		t.Errorf("verify(same size, changed) = %v, want %v", err, errBadArchive)
	}
	// Truncated: detected by size alone.
	os.WriteFile(p, data[:4], 0o644)
	if _, err := verify(p, a, mt); !errors.Is(err, errBadArchive) {
		t.Errorf("verify(truncated) = %v, want %v", err, errBadArchive)
	}
	if _, err := verify(filepath.Join(dir, "missing.deb"), a, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("verify(missing) = %v, want %v", err, fs.ErrNotExist)
	}
	// copyVerified refuses a wrong file and leaves nothing behind.
	dst := filepath.Join(dir, "copy.deb")
	if err := copyVerified(p, dst, a); !errors.Is(err, errBadArchive) {
		t.Errorf("copyVerified(bad) = %v, want %v", err, errBadArchive)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("copyVerified(bad) left files: %v", ents)
	}
}

func TestSafeName(t *testing.T) {
	for s, want := range map[string]bool{"bookworm": true, "bookworm-backports": true, "amd64": true, "1.0+x~y": true, "": false, "-x": false, "a/b": false, "..": false, "a b": false} {
		if got := safeName(s); got != want {
			t.Errorf("safeName(%q) = %v, want %v", s, got, want)
		}
	}
}
