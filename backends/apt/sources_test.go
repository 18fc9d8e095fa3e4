package apt

import (
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/backends"
)

func TestParseOneLine(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []source
		err        string // in the error; "" = none
	}{
		{"plain", "deb http://deb.debian.org/debian bookworm main contrib\n", []source{{URIs: []string{"http://deb.debian.org/debian"}, Suites: []string{"bookworm"}, Components: []string{"main", "contrib"}}}, ""},
		{"comments, deb-src skipped", "# deb http://x/ a main\n\ndeb-src http://x/ a main\ndeb http://x/ a main # trailing\n", []source{{URIs: []string{"http://x/"}, Suites: []string{"a"}, Components: []string{"main"}}}, ""},
		{"options", "deb [arch=amd64,i386 signed-by=/k.gpg] http://x/ a main\n", []source{{URIs: []string{"http://x/"}, Suites: []string{"a"}, Components: []string{"main"}, Archs: []string{"amd64", "i386"}, SignedBy: []string{"/k.gpg"}}}, ""},
		{"spaced options", "deb [ arch-=i386 signed-by=/a.gpg,ABCD ] http://x/ a main\n", []source{{URIs: []string{"http://x/"}, Suites: []string{"a"}, Components: []string{"main"}, ArchsDel: []string{"i386"}, SignedBy: []string{"/a.gpg", "ABCD"}}}, ""},
		{"flat", "deb file:/srv/repo ./\n", []source{{URIs: []string{"file:/srv/repo"}, Suites: []string{"./"}}}, ""},
		{"no suite", "deb http://x/\n", nil, "f.list:1: malformed apt source"},
		{"no components", "\ndeb http://x/ bookworm\n", nil, "f.list:2: malformed apt source \"deb http://x/ bookworm\": suite \"bookworm\" needs components"},
		{"flat with components", "deb http://x/ ./ main\n", nil, "f.list:1:"},
		{"bad type", "rpm http://x/ a main\n", nil, "f.list:1: malformed apt source \"rpm http://x/ a main\": type rpm"},
		{"unterminated options", "deb [arch=amd64 http://x/ a main\n", nil, "f.list:1: malformed apt source \"deb [arch=amd64 http://x/ a main\": unterminated"},
		{"not a URI", "deb deb.debian.org bookworm main\n", nil, "is not a URI"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseOneLine(strings.NewReader(tc.text), "f.list")
			checkErr(t, "parseOneLine", err, tc.err)
			if tc.err == "" && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseOneLine(%q) = %+v, want %+v", tc.text, got, tc.want)
			}
		})
	}
}

func checkErr(t *testing.T, fn string, err error, want string) {
	t.Helper()
	if want == "" && err != nil {
		t.Fatalf("%s = %v, want no error", fn, err)
	}
	if want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
		t.Fatalf("%s = %v, want an error containing %q", fn, err, want)
	}
}

// debianSources is this host's kind of /etc/apt/sources.list.d/debian.sources.
const debianSources = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
`

func TestParseDeb822(t *testing.T) {
	key := "/usr/share/keyrings/debian-archive-keyring.gpg"
	for _, tc := range []struct {
		name, text string
		want       []source
		err        string
	}{
		{"debian", debianSources, []source{
			{URIs: []string{"http://deb.debian.org/debian"}, Suites: []string{"bookworm", "bookworm-updates"}, Components: []string{"main"}, SignedBy: []string{key}},
			{URIs: []string{"http://deb.debian.org/debian-security"}, Suites: []string{"bookworm-security"}, Components: []string{"main"}, SignedBy: []string{key}},
		}, ""},
		{"disabled, deb-src only, two URIs", "Types: deb\nURIs: http://a/\nSuites: s\nComponents: main\nEnabled: no\n\nTypes: deb-src\nURIs: http://b/\nSuites: s\nComponents: main\n\ntypes: deb deb-src\nuris: http://c/ http://d/\nsuites: s\ncomponents: main\narchitectures: amd64\nsigned-by: /k1.gpg, ABCD\n",
			[]source{{URIs: []string{"http://c/", "http://d/"}, Suites: []string{"s"}, Components: []string{"main"}, Archs: []string{"amd64"}, SignedBy: []string{"/k1.gpg", "ABCD"}}}, ""},
		{"embedded key", "Types: deb\nURIs: http://a/\nSuites: ./\nSigned-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBF\n -----END PGP PUBLIC KEY BLOCK-----\n",
			[]source{{URIs: []string{"http://a/"}, Suites: []string{"./"}, SignedBy: []string{"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----"}}}, ""},
		{"no suites", "Types: deb\nURIs: http://a/\n\n\nTypes: deb\nURIs: http://b/\nComponents: main\n", nil, "f.sources:1: malformed apt source: no suites field"},
		{"second stanza bad", "Types: deb\nURIs: http://a/\nSuites: s\nComponents: main\n\nTypes: deb\nURIs: http://b/\nSuites: s\n", nil, "f.sources:6: malformed apt source: suite \"s\" needs components"},
		{"bad field line", "Types: deb\nthis is not a field\n", nil, "f.sources:2: malformed apt source \"this is not a field\""},
		{"bad Enabled", "Types: deb\nURIs: http://a/\nSuites: s\nComponents: main\nEnabled: maybe\n", nil, "f.sources:1: malformed apt source: Enabled"},
		{"leading continuation", " x\n", nil, "f.sources:1: malformed apt source: continuation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDeb822(strings.NewReader(tc.text), "f.sources")
			checkErr(t, "parseDeb822", err, tc.err)
			if tc.err == "" && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("parseDeb822 = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseProxies(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       map[string]string
		err        string
	}{
		{"flat", `Acquire::http::Proxy "http://p:3128/"; // a proxy` + "\n" + `APT::Get::Assume-Yes "true";`, map[string]string{"Acquire::http::Proxy": "http://p:3128/"}, ""},
		{"scoped, per host, case", "# comment\nacquire {\n  HTTP { proxy \"http://p/\"; Proxy::deb.debian.org \"DIRECT\"; };\n  https::Proxy \"http://q/\";\n};\n", map[string]string{"Acquire::http::Proxy": "http://p/", "Acquire::http::Proxy::deb.debian.org": "DIRECT", "Acquire::https::Proxy": "http://q/"}, ""},
		{"lists and other settings", "/* block\ncomment */ DPkg::Pre-Invoke { \"x\"; \"y\"; };\nAcquire::Languages \"none\";\nAcquire::ftp::Proxy \"ftp://p/\";\nAcquire::http::Proxy-Auto-Detect \"/bin/x\";\n", map[string]string{}, ""},
		{"unquoted", "Acquire::http::Proxy false;\n", map[string]string{"Acquire::http::Proxy": "false"}, ""},
		{"unterminated string", "\nAcquire::http::Proxy \"http://p/;\n", nil, "p.conf:2: unterminated string"},
		{"unbalanced", "Acquire { http { Proxy \"x\"; };\n", nil, "p.conf: malformed apt configuration: Acquire { is never closed"},
		{"missing semicolon", "Acquire::http::Proxy \"x\"\nAPT::X \"y\";\n", nil, "p.conf:1: malformed apt configuration: unexpected \"Acquire::http::Proxy\""},
		{"stray brace", "};\n", nil, "p.conf:1: malformed apt configuration: unbalanced }"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			err := parseProxies([]byte(tc.text), "p.conf", got)
			checkErr(t, "parseProxies", err, tc.err)
			if tc.err == "" && !maps.Equal(got, tc.want) {
				t.Errorf("parseProxies(%q) = %v, want %v", tc.text, got, tc.want)
			}
		})
	}
}

func TestAptPartName(t *testing.T) {
	lists := []string{"list", "sources"}
	for _, tc := range []struct {
		name  string
		exts  []string
		noExt bool
		want  bool
	}{
		{"debian.sources", lists, false, true},
		{"google-cloud-sdk.list", lists, false, true},
		{"google-cloud-sdk.list.disabled-by-farm", lists, false, false},
		{"x.list.save", lists, false, false},
		{"x.list~", lists, false, false},
		{".hidden.list", lists, false, false},
		{"a b.list", lists, false, false},
		{"x.sources.", lists, false, false},
		{"01autoremove", []string{"conf"}, true, true},
		{"99proxy.conf", []string{"conf"}, true, true},
		{"50x.dpkg-old", []string{"conf"}, true, false},
		{"20x~", []string{"conf"}, true, false},
	} {
		if got := aptPartName(tc.name, tc.exts, tc.noExt); got != tc.want {
			t.Errorf("aptPartName(%q, %q, %v) = %v, want %v", tc.name, tc.exts, tc.noExt, got, tc.want)
		}
	}
}

func writeFiles(t *testing.T, root string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHostRepositories(t *testing.T) {
	root := t.TempDir()
	key := "/usr/share/keyrings/debian-archive-keyring.gpg"
	writeFiles(t, root, map[string]string{
		"etc/apt/sources.list":                                    "deb [arch=arm64] http://ports/ bookworm main\ndeb http://old/ bookworm main\n",
		"etc/apt/sources.list.d/debian.sources":                   debianSources,
		"etc/apt/sources.list.d/google-cloud-sdk.list.disabled-x": "deb http://disabled/ x main\n",
		"etc/apt/sources.list.d/fp.list":                          "deb [signed-by=ABCDEF] http://fp/ x main\n",
		"etc/apt/trusted.gpg.d/debian.asc":                        "",
		"etc/apt/trusted.gpg.d/README":                            "",
		"etc/apt/apt.conf.d/01proxy":                              "Acquire::http::Proxy \"http://p/\";\n",
		"etc/apt/apt.conf.d/02proxy.disabled":                     "Acquire::http::Proxy \"http://wrong/\";\n",
		"etc/apt/apt.conf":                                        "Acquire::https::Proxy \"http://q/\";\n",
	})
	trusted := filepath.Join(root, "etc/apt/trusted.gpg.d/debian.asc")
	got, err := HostRepositories(root, "amd64")
	if err != nil {
		t.Fatal(err)
	}
	want := []backends.Repository{
		{URL: "http://old/", Suites: []string{"bookworm"}, Components: []string{"main"}, SignedBy: []string{trusted}},
		{URL: "http://deb.debian.org/debian", Suites: []string{"bookworm", "bookworm-updates"}, Components: []string{"main"}, SignedBy: []string{key}},
		{URL: "http://deb.debian.org/debian-security", Suites: []string{"bookworm-security"}, Components: []string{"main"}, SignedBy: []string{key}},
		{URL: "http://fp/", Suites: []string{"x"}, Components: []string{"main"}, SignedBy: []string{"ABCDEF", trusted}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("HostRepositories = %+v\nwant %+v", got, want)
	}
	proxies, err := HostProxies(root)
	if wantP := map[string]string{"Acquire::http::Proxy": "http://p/", "Acquire::https::Proxy": "http://q/"}; err != nil || !maps.Equal(proxies, wantP) {
		t.Errorf("HostProxies = %v, %v, want %v", proxies, err, wantP)
	}

	// A malformed file is named with its line.
	writeFiles(t, root, map[string]string{"etc/apt/sources.list.d/bad.list": "\n\ndeb http://x/\n"})
	if _, err := HostRepositories(root, "amd64"); err == nil || !strings.Contains(err.Error(), filepath.Join(root, "etc/apt/sources.list.d/bad.list")+":3: malformed apt source") {
		t.Errorf("HostRepositories with a bad file = %v, want an error naming bad.list:3", err)
	}
	if repos, err := HostRepositories(t.TempDir(), "amd64"); err != nil || len(repos) != 0 {
		t.Errorf("HostRepositories(empty root) = %v, %v, want none", repos, err)
	}
}

func TestSourcesFile(t *testing.T) {
	key := "/usr/share/keyrings/debian-archive-keyring.gpg"
	got, err := sourcesFile([]backends.Repository{
		{URL: "http://deb.debian.org/debian", Suites: []string{"trixie", "trixie-updates"}, Components: []string{"main"}, SignedBy: []string{key}},
		{URL: "http://deb.debian.org/debian-security", Suites: []string{"trixie-security"}, Components: []string{"main"}, SignedBy: []string{key, "ABCD"}},
		{URL: "copy:/srv/repo", Suites: []string{"./"}, SignedBy: []string{"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----"}},
	})
	want := `Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie trixie-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: trixie-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg, ABCD

Types: deb
URIs: copy:/srv/repo
Suites: ./
Signed-By:
 -----BEGIN PGP PUBLIC KEY BLOCK-----
 .
 mQINBF
 -----END PGP PUBLIC KEY BLOCK-----
`
	if err != nil || got != want {
		t.Errorf("sourcesFile = %v\n%s\nwant\n%s", err, got, want)
	}
	// What the writer produces, the host parser reads back.
	back, err := parseDeb822(strings.NewReader(got), "pkginitrd.sources")
	if err != nil || len(back) != 3 || back[2].SignedBy[0] != "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nmQINBF\n-----END PGP PUBLIC KEY BLOCK-----" {
		t.Errorf("parseDeb822(sourcesFile) = %+v, %v", back, err)
	}
}

func TestParsePolicy(t *testing.T) {
	out := `libssl3:
  Installed: (none)
  Candidate: 3.0.17-1~deb12u2
  Version table:
     3.0.17-1~deb12u2 500
        500 http://deb.debian.org/debian-security bookworm-security/main amd64 Packages
     3.0.16-1~deb12u1 500
        500 http://deb.debian.org/debian bookworm/main amd64 Packages
        500 http://deb.debian.org/debian bookworm-updates/main amd64 Packages
hello:
  Installed: 1.1
  Candidate: 1.1
  Version table:
 *** 1.1 500
        500 copy:/tmp/repo ./ Packages
        100 /var/lib/dpkg/status
`
	got, err := parsePolicy(strings.NewReader(out))
	want := map[string]map[string][]origin{
		"libssl3": {
			"3.0.17-1~deb12u2": {{"http://deb.debian.org/debian-security", "bookworm-security/main"}},
			"3.0.16-1~deb12u1": {{"http://deb.debian.org/debian", "bookworm/main"}, {"http://deb.debian.org/debian", "bookworm-updates/main"}},
		},
		"hello": {"1.1": {{"copy:/tmp/repo", "./"}}},
	}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("parsePolicy = %v, %v\nwant %v", got, err, want)
	}
}
