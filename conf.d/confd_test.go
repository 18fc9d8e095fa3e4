package confd

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestLoadShipped(t *testing.T) {
	c, read, err := Load(Sources{})
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != 0 {
		t.Errorf("Load(no sources) read %v", read)
	}
	if c.Distribution != "" {
		t.Errorf("shipped distribution = %q, want none (detected from os-release)", c.Distribution)
	}
	c.Distribution = "debian"
	d, err := c.Distro()
	if err != nil {
		t.Fatal(err)
	}
	if d.Backend != "apt" || d.Release == "" || len(d.Packages) == 0 || len(c.Modules.Generic) == 0 {
		t.Errorf("shipped debian config incomplete: %+v, modules %+v", d, c.Modules)
	}
}

func TestLoadOverrides(t *testing.T) {
	sys := t.TempDir()
	work := t.TempDir()
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(sys, "pkginitrd.toml"), "compression = \"xz\"\n[modules]\ninclude = [\"a\", \"b\"]\n")
	write(filepath.Join(sys, "conf.d", "20-x.toml"), "[modules]\ninclude = [\"!a\", \"c\"]\n")
	write(filepath.Join(work, "pkginitrd.toml"), "release = \"trixie\"\n[distributions.debian]\npackages = [\"!e2fsprogs\", \"cryptsetup-bin\"]\n")
	c, read, err := Load(Sources{SystemDir: sys, WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	if len(read) != 3 {
		t.Errorf("Load read %v, want 3 files", read)
	}
	if c.Compression != "xz" {
		t.Errorf("compression = %q, want xz", c.Compression)
	}
	if want := []string{"b", "c"}; !reflect.DeepEqual(c.Modules.Include, want) {
		t.Errorf("modules.include = %v, want %v", c.Modules.Include, want)
	}
	c.Distribution = "debian"
	d, _ := c.Distro()
	if d.Release != "trixie" {
		t.Errorf("release = %q, want trixie", d.Release)
	}
	if want := []string{"busybox", "cryptsetup-bin"}; !reflect.DeepEqual(d.Packages, want) {
		t.Errorf("packages = %v, want %v", d.Packages, want)
	}
}

func TestLoadErrorsNameTheFile(t *testing.T) {
	work := t.TempDir()
	for _, tc := range []struct{ body, want string }{
		{"compression = [\n", "pkginitrd.toml:"},
		{"bogus_key = 1\n", "bogus_key"},
	} {
		if err := os.WriteFile(filepath.Join(work, "pkginitrd.toml"), []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		_, _, err := Load(Sources{WorkDir: work})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Load(%q) error = %v, want mention of %q", tc.body, err, tc.want)
		}
	}
}

// TestUnknownKeysNameFileAndLine checks that an unknown key is reported at
// its line in the user's file, not in the merged configuration.
func TestUnknownKeysNameFileAndLine(t *testing.T) {
	work := t.TempDir()
	top := filepath.Join(work, "pkginitrd.toml")
	dropIn := filepath.Join(work, "pkginitrd.conf.d", "50-extra.toml")
	tests := []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"working directory", map[string]string{top: "# my settings\n\ndistribution = \"debian\"\n\n\n\ncompresion = \"xz\"\n"},
			[]string{top + `:7: unknown key "compresion"`}},
		{"drop-in", map[string]string{top: "compression = \"xz\"\n", dropIn: "[modules]\ninclude = [\"a\"]\ninclde = [\"b\"]\n\n[distributions.debian]\nmirorr = \"x\"\n"},
			[]string{dropIn + `:3: unknown key "modules.inclde"`, dropIn + `:6: unknown key "distributions.debian.mirorr"`}},
		{"unknown table", map[string]string{dropIn: "\n[unpak]\nmax_entries = 1\n"},
			[]string{dropIn + `:2: unknown key "unpak"`}},
		{"wrong type", map[string]string{top: "arch = \"amd64\"\ngeneric = \"yes\"\n"},
			[]string{top + ":2:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			must(t, os.RemoveAll(work))
			for p, body := range tt.files {
				must(t, os.MkdirAll(filepath.Dir(p), 0o755))
				must(t, os.WriteFile(p, []byte(body), 0o644))
			}
			_, _, err := Load(Sources{WorkDir: work})
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Load(%s) error = %v, want it to contain %q", tt.name, err, w)
				}
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestPrunePatternsCheckedAtLoad(t *testing.T) {
	for _, tc := range []struct {
		name    string
		pattern string
		bad     bool
	}{
		{"doc tree", "usr/share/doc/**", false},
		{"leading slash", "/usr/lib/*-linux-gnu/gconv/**", false},
		{"class and wildcard", "etc/cron.[dh]*/**", false},
		{"removal", "!usr/share/man/**", false},
		{"unclosed class", "usr/share/[ab", true},
		{"empty class", "usr/[]/x", true},
		{"open range", "usr/lib/[a-]", true},
		{"trailing backslash", `usr/share\`, true},
		{"removal of a malformed one", "!usr/[a", true},
		{"root only", "/", true},
		{"empty", "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := fmt.Sprintf("[distributions.debian]\nprune = [%q]\n", tc.pattern)
			user := filepath.Join(t.TempDir(), "extra.toml")
			if err := os.WriteFile(user, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			builtin := fstest.MapFS{"20-x.toml": {Data: []byte(body)}}
			for _, load := range []struct {
				file string
				run  func() error
			}{
				{user, func() error { _, _, err := Load(Sources{Files: []string{user}}); return err }},
				{"built-in conf.d/20-x.toml", func() error { _, _, err := load(builtin, Sources{}); return err }},
			} {
				err := load.run()
				switch {
				case !tc.bad && err != nil:
					t.Errorf("load prune %q from %s = %v, want no error", tc.pattern, load.file, err)
				case tc.bad && (err == nil || !strings.Contains(err.Error(), load.file) || !strings.Contains(err.Error(), fmt.Sprintf("%q", strings.TrimPrefix(tc.pattern, "!")))):
					t.Errorf("load prune %q from %s = %v, want an error naming the file and the pattern", tc.pattern, load.file, err)
				}
			}
		})
	}
}

func TestUnknownDistribution(t *testing.T) {
	c := &Config{Distribution: "gentoo", Distributions: map[string]Distribution{"debian": {}}}
	if _, err := c.Distro(); err == nil || !strings.Contains(err.Error(), "debian") {
		t.Errorf("Distro() = %v, want error listing known distributions", err)
	}
}

func TestSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Size // -1 = an error
		text string
	}{
		{"4096", 4096, "4KiB"},
		{"1000", 1000, "1000"},
		{"100KiB", 100 << 10, "100KiB"},
		{"512MiB", 512 << 20, "512MiB"},
		{" 1 GiB ", 1 << 30, "1GiB"},
		{"2TiB", 2 << 40, "2TiB"},
		{"0", 0, "0"},
		{"1.5GiB", -1, ""},
		{"12x", -1, ""},
		{"-1", -1, ""},
		{"GiB", -1, ""},
		{"9999999TiB", -1, ""},
	} {
		var s Size
		err := s.UnmarshalText([]byte(tc.in))
		if tc.want < 0 {
			if err == nil {
				t.Errorf("Size.UnmarshalText(%q) = %d, want an error", tc.in, s)
			}
			continue
		}
		if err != nil || s != tc.want {
			t.Errorf("Size.UnmarshalText(%q) = %d, %v, want %d", tc.in, s, err, tc.want)
		}
		if text, _ := s.MarshalText(); string(text) != tc.text {
			t.Errorf("Size(%d).MarshalText() = %q, want %q", s, text, tc.text)
		}
	}
}

func TestLoadUnpackLimits(t *testing.T) {
	work := t.TempDir()
	body := "[unpack]\nmax_package_size = \"2GiB\"\nmax_file_size = 1048576\nmax_entries = 5000\n"
	must(t, os.WriteFile(filepath.Join(work, "pkginitrd.toml"), []byte(body), 0o644))
	c, _, err := Load(Sources{WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	if want := (UnpackLimits{MaxPackageSize: 2 << 30, MaxFileSize: 1 << 20, MaxEntries: 5000}); c.Unpack != want {
		t.Errorf("Load(%q).Unpack = %+v, want %+v", body, c.Unpack, want)
	}
	if c, _, _ := Load(Sources{}); c.Unpack != (UnpackLimits{}) {
		t.Errorf("shipped [unpack] = %+v, want it unset (the unpacker's defaults)", c.Unpack)
	}
}

func TestShippedFedora(t *testing.T) {
	c, _, err := Load(Sources{})
	if err != nil {
		t.Fatal(err)
	}
	c.Distribution = "fedora"
	d, err := c.Distro()
	if err != nil {
		t.Fatal(err)
	}
	if d.Backend != "dnf" || d.Release == "" || d.Keyring == "" || len(d.Shell) == 0 || d.Fsck["ext4"] == "" {
		t.Errorf("shipped fedora config incomplete: %+v", d)
	}
	for _, name := range []string{"fedora", "updates"} {
		if r := d.Repositories[name]; r.Metalink == "" && r.URL == "" {
			t.Errorf("shipped fedora config: repository %s has no URL", name)
		}
	}
	for _, f := range []string{"luks", "lvm"} {
		if len(d.Features[f].Packages) == 0 {
			t.Errorf("shipped fedora config: feature %s has no packages", f)
		}
	}
}

func TestShippedArch(t *testing.T) {
	c, _, err := Load(Sources{})
	if err != nil {
		t.Fatal(err)
	}
	c.Distribution = "arch"
	d, err := c.Distro()
	if err != nil {
		t.Fatal(err)
	}
	if got := RepositoryNames(d.Repositories); d.Backend != "pacman" || !slices.Equal(got, []string{"core", "extra"}) || d.Fsck["ext4"] != "/usr/bin/fsck.ext4" {
		t.Errorf("shipped arch config incomplete: backend %q, repositories %q, fsck %v", d.Backend, got, d.Fsck)
	}
	for _, f := range []string{"luks", "lvm"} {
		if len(d.Features[f].Packages) == 0 {
			t.Errorf("arch defines no packages for feature %s", f)
		}
	}
}

// TestRepositoryRedefined checks that a user's file changes one shipped
// repository by name and adds another, which (no priority) comes first.
func TestRepositoryRedefined(t *testing.T) {
	work := t.TempDir()
	conf := "[distributions.arch.repositories.extra]\nurl = \"file:///srv/extra\"\n[distributions.arch.repositories.local]\nurl = \"file:///srv/local\"\nkeyring = \"/k.asc\"\n"
	must(t, os.WriteFile(filepath.Join(work, "pkginitrd.toml"), []byte(conf), 0o644))
	c, _, err := Load(Sources{WorkDir: work})
	if err != nil {
		t.Fatal(err)
	}
	c.Distribution = "arch"
	d, err := c.Distro()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, name := range RepositoryNames(d.Repositories) {
		got = append(got, name+" "+d.Repositories[name].URL)
	}
	want := "local file:///srv/local|core https://geo.mirror.pkgbuild.com/$repo/os/$arch|extra file:///srv/extra"
	if strings.Join(got, "|") != want {
		t.Errorf("repositories = %s, want %s", strings.Join(got, "|"), want)
	}
}
