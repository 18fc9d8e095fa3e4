package resolver

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/backends"
	confd "github.com/pkginitrd/pkginitrd/conf.d"
)

// hostRoot writes a bookworm host's os-release, apt sources (bookworm,
// -updates, -security and a third-party repository) and proxy under a
// temporary root.
func hostRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range map[string]string{
		"etc/os-release": "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nVERSION_CODENAME=bookworm\nID=debian\n",
		"etc/apt/sources.list.d/debian.sources": "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n" +
			"Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n",
		"etc/apt/sources.list.d/extra.list": "deb [signed-by=/usr/share/keyrings/extra.gpg] https://extra.example/apt bookworm main\n",
		"etc/apt/apt.conf.d/01proxy":        "Acquire::http::Proxy \"http://proxy:3128\";\n",
	} {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// TestRepositories shows where a build's packages come from on a bookworm
// host: the host's apt sources for bookworm, the configured release,
// -updates and security repositories for trixie or with a mirror. Before,
// every build used one suite of the mirror, without updates or security.
func TestRepositories(t *testing.T) {
	cfg, _, err := confd.Load(confd.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Distribution = "debian"
	root := hostRoot(t)
	key := []string{"/usr/share/keyrings/debian-archive-keyring.gpg"}
	main := []string{"main"}
	hostRepos := []backends.Repository{
		{URL: "http://deb.debian.org/debian", Suites: []string{"bookworm", "bookworm-updates"}, Components: main, SignedBy: key},
		{URL: "http://deb.debian.org/debian-security", Suites: []string{"bookworm-security"}, Components: main, SignedBy: key},
		{URL: "https://extra.example/apt", Suites: []string{"bookworm"}, Components: main, SignedBy: []string{"/usr/share/keyrings/extra.gpg"}},
	}
	configured := func(mirror, release string) []backends.Repository {
		return []backends.Repository{
			{URL: mirror, Suites: []string{release}, Components: main, SignedBy: key},
			{URL: "http://deb.debian.org/debian-security", Suites: []string{release + "-security"}, Components: main, SignedBy: key},
			{URL: mirror, Suites: []string{release + "-updates"}, Components: main, SignedBy: key},
		}
	}
	for _, tc := range []struct {
		name            string
		release, mirror string
		want            []backends.Repository
		fromHost        bool
	}{
		{"host release", "", "", hostRepos, true},
		{"host release named", "bookworm", "", hostRepos, true},
		{"other release", "trixie", "", configured("http://deb.debian.org/debian", "trixie"), false},
		{"mirror", "", "http://ftp.de.debian.org/debian", configured("http://ftp.de.debian.org/debian", "bookworm"), false},
		{"sid has no updates or security", "sid", "", []backends.Repository{{URL: "http://deb.debian.org/debian", Suites: []string{"sid"}, Components: main, SignedBy: key}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := *cfg
			c.Release, c.Mirror, c.Arch = tc.release, tc.mirror, "amd64"
			d, err := c.Distro()
			if err != nil {
				t.Fatal(err)
			}
			got, err := Repositories(&c, d, root, "amd64", slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Repositories, tc.want) || got.FromHost != tc.fromHost {
				t.Errorf("Repositories(release %q, mirror %q) = %+v (from host %v)\nwant %+v (from host %v)", tc.release, tc.mirror, got.Repositories, got.FromHost, tc.want, tc.fromHost)
			}
			if got.Proxies["Acquire::http::Proxy"] != "http://proxy:3128" {
				t.Errorf("Repositories(release %q, mirror %q).Proxies = %v, want the host's", tc.release, tc.mirror, got.Proxies)
			}
		})
	}

	// A malformed host entry is an error naming its file and line.
	bad := filepath.Join(root, "etc/apt/sources.list.d/bad.list")
	if err := os.WriteFile(bad, []byte("deb http://x/ bookworm\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d, _ := cfg.Distro()
	if _, err := Repositories(cfg, d, root, "amd64", slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), bad+":1:") {
		t.Errorf("Repositories with a malformed host source = %v, want an error naming %s:1", err, bad)
	}
}

func TestConfiguredErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		d    confd.Distribution
		err  string
	}{
		{"none", confd.Distribution{Release: "x"}, "no repositories are configured"},
		{"no mirror", confd.Distribution{Release: "x", Keyring: "/k", Repositories: map[string]confd.Repository{"r": {URL: "{mirror}", Suites: []string{"x"}}}}, "repository r: no url"},
		{"no suites", confd.Distribution{Release: "x", Keyring: "/k", Repositories: map[string]confd.Repository{"r": {URL: "http://m/"}}}, "repository r: no suites"},
		{"no keyring", confd.Distribution{Release: "x", Repositories: map[string]confd.Repository{"r": {URL: "http://m/", Suites: []string{"x"}}}}, "repository r: no keyring"},
	} {
		if _, err := configured(tc.d); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("configured(%s) = %v, want an error containing %q", tc.name, err, tc.err)
		}
	}
	d := confd.Distribution{Release: "x", Mirror: "http://m/", Keyring: "/k", Repositories: map[string]confd.Repository{
		"a": {URL: "{mirror}", Suites: []string{"{release}"}, Components: []string{"main"}, Keyring: "/own.gpg"},
		"b": {URL: "http://off/", Suites: []string{"x"}, Disabled: true},
	}}
	want := []backends.Repository{{URL: "http://m/", Suites: []string{"x"}, Components: []string{"main"}, SignedBy: []string{"/own.gpg"}}}
	if got, err := configured(d); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("configured = %+v, %v, want %+v", got, err, want)
	}
}

func TestParseOSRelease(t *testing.T) {
	got := parseOSRelease(strings.NewReader("# c\nID=debian\nVERSION_CODENAME='trixie'\nNAME=\"Debian GNU/Linux\"\nbogus\n"))
	want := map[string]string{"ID": "debian", "VERSION_CODENAME": "trixie", "NAME": "Debian GNU/Linux"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseOSRelease = %v, want %v", got, want)
	}
}
