package pacman

import (
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseConf(t *testing.T) {
	files := map[string]string{
		"/etc/pacman.d/mirrorlist": "## Worldwide\n#Server = https://commented/$repo/os/$arch\nServer = https://geo.mirror.pkgbuild.com/$repo/os/$arch\nServer=https://mirror.example/$repo/os/$arch\n",
	}
	open := func(p string) (io.ReadCloser, error) {
		s, ok := files[p]
		if !ok {
			return nil, os.ErrNotExist
		}
		return io.NopCloser(strings.NewReader(s)), nil
	}
	tests := []struct {
		name, conf string
		want       []Repo
		err        string
	}{
		{"arch default", "[options]\nHoldPkg = pacman glibc\nArchitecture = auto\nCheckSpace\n\n#[core-testing]\n#Include = /etc/pacman.d/mirrorlist\n\n[core]\nInclude = /etc/pacman.d/mirrorlist\n\n[extra]\nInclude = /etc/pacman.d/mirrorlist\n",
			[]Repo{
				{Name: "core", Servers: []string{"https://geo.mirror.pkgbuild.com/$repo/os/$arch", "https://mirror.example/$repo/os/$arch"}},
				{Name: "extra", Servers: []string{"https://geo.mirror.pkgbuild.com/$repo/os/$arch", "https://mirror.example/$repo/os/$arch"}},
			}, ""},
		{"server before include", "[custom]\nSigLevel = Optional TrustAll\nServer = file:///srv/repo\nInclude = /etc/pacman.d/mirrorlist\n",
			[]Repo{{Name: "custom", Servers: []string{"file:///srv/repo", "https://geo.mirror.pkgbuild.com/$repo/os/$arch", "https://mirror.example/$repo/os/$arch"}}}, ""},
		{"debian's pacman.conf has no repositories", "[options]\nHoldPkg     = pacman glibc\nArchitecture = auto\n", nil, ""},
		{"repository without server", "[empty]\nSigLevel = Never\n[x]\nServer = http://x\n", []Repo{{Name: "x", Servers: []string{"http://x"}}}, ""},
		{"missing include", "[core]\nInclude = /etc/pacman.d/nothere\n", nil, "[core] Include: file does not exist"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseConf(strings.NewReader(tt.conf), open)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("ParseConf = %v, want error %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 && len(tt.want) == 0 {
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseConf =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestWriteConf(t *testing.T) {
	got := writeConf("x86_64", []Repo{{Name: "core", Servers: []string{"file:///a", "http://b/$repo/os/$arch"}}})
	want := "[options]\nArchitecture = x86_64\nSigLevel = Required DatabaseRequired\nLocalFileSigLevel = Required\n\n[core]\nServer = file:///a\nServer = http://b/$repo/os/$arch\n"
	if got != want {
		t.Errorf("writeConf =\n%s\nwant\n%s", got, want)
	}
}

func TestStateKey(t *testing.T) {
	a := []Repo{{Name: "core", Servers: []string{"file:///a"}, Keyring: "k1"}}
	b := []Repo{{Name: "core", Servers: []string{"file:///a"}, Keyring: "k2"}}
	if stateKey("x86_64", a) == stateKey("x86_64", b) || stateKey("x86_64", a) == stateKey("aarch64", a) || stateKey("x86_64", a) != stateKey("x86_64", slices.Clone(a)) {
		t.Error("stateKey does not tell keyrings or architectures apart, or is not stable")
	}
}
