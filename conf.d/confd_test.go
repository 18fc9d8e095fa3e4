package confd

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
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

func TestLoadShippedArch(t *testing.T) {
	c, _, err := Load(Sources{})
	if err != nil {
		t.Fatal(err)
	}
	c.Distribution = "arch"
	d, err := c.Distro()
	if err != nil {
		t.Fatal(err)
	}
	if d.Backend != "pacman" || len(d.Repositories) != 2 || d.Repositories[0].Name != "core" || d.Fsck["ext4"] != "/usr/bin/fsck.ext4" {
		t.Errorf("shipped arch config incomplete: %+v", d)
	}
	for _, f := range []string{"luks", "lvm"} {
		if len(d.Features[f].Packages) == 0 {
			t.Errorf("arch defines no packages for feature %s", f)
		}
	}
}

func TestRepositoryRedefined(t *testing.T) {
	work := t.TempDir()
	conf := "[distributions.arch]\nrepositories = [{ name = \"extra\", url = \"file:///srv/extra\", keyring = \"/k.asc\" }, { name = \"local\", url = \"file:///srv/local\", keyring = \"/k.asc\" }]\n"
	if err := os.WriteFile(filepath.Join(work, "pkginitrd.toml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
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
	for _, r := range d.Repositories {
		got = append(got, r.Name+" "+r.URL)
	}
	want := "core https://geo.mirror.pkgbuild.com/$repo/os/$arch|extra file:///srv/extra|local file:///srv/local"
	if strings.Join(got, "|") != want {
		t.Errorf("repositories = %s, want %s", strings.Join(got, "|"), want)
	}
}
