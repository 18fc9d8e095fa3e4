package resolver

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
)

func TestDetectRealOSRelease(t *testing.T) {
	configured := map[string]confd.Distribution{"debian": {Backend: "apt"}, "fedora": {Backend: "dnf"}, "arch": {Backend: "pacman"}}
	tests := []struct {
		file, distro, release, reason string
	}{
		{"debian-12", "debian", "bookworm", "ID=debian in /etc/os-release"},
		{"ubuntu-24.04", "debian", "noble", `ID=ubuntu, ID_LIKE="debian" in /etc/os-release`},
		{"fedora-41", "fedora", "41", "ID=fedora in /etc/os-release"}, // VERSION_CODENAME="" falls back to VERSION_ID
		{"centos-stream-9", "fedora", "9", `ID=centos, ID_LIKE="rhel fedora" in /etc/os-release`},
		{"almalinux-9", "fedora", "9.5", `ID=almalinux, ID_LIKE="rhel centos fedora" in /etc/os-release`},
		{"rocky-9", "fedora", "9.5", `ID=rocky, ID_LIKE="rhel centos fedora" in /etc/os-release`},
		{"arch", "arch", "", "ID=arch in /etc/os-release"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("testdata/os-release", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			osr, err := ParseOSRelease(f, "/etc/os-release")
			if err != nil {
				t.Fatal(err)
			}
			det, err := Detect(osr, configured)
			if err != nil {
				t.Fatal(err)
			}
			want := Detection{Distribution: tt.distro, Release: tt.release, Reason: tt.reason}
			if det != want {
				t.Errorf("Detect = %+v, want %+v", det, want)
			}
		})
	}
}

func TestDetectUnknown(t *testing.T) {
	osr, err := ParseOSRelease(strings.NewReader("ID=gentoo\n"), "/etc/os-release")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Detect(osr, map[string]confd.Distribution{"debian": {}})
	if err == nil || !strings.Contains(err.Error(), "ID=gentoo") || !strings.Contains(err.Error(), "known: debian") {
		t.Errorf("Detect(gentoo) = %v, want an error naming the ID and the known distributions", err)
	}
}

func TestParseOSReleaseQuoting(t *testing.T) {
	tests := []struct{ in, id string }{
		{`ID=plain`, "plain"},
		{`ID="double"`, "double"},
		{`ID='single'`, "single"},
		{`ID="a\"b\\c\$d"`, `a"b\c$d`},
		{"# comment\n\nID=x", "x"},
	}
	for _, tt := range tests {
		osr, err := ParseOSRelease(strings.NewReader(tt.in), "t")
		if err != nil || osr.ID != tt.id {
			t.Errorf("ParseOSRelease(%q) = %q, %v; want %q", tt.in, osr.ID, err, tt.id)
		}
	}
	for _, bad := range []string{"ID", `ID="open`} {
		if _, err := ParseOSRelease(strings.NewReader(bad), "t"); err == nil {
			t.Errorf("ParseOSRelease(%q) succeeded, want an error", bad)
		}
	}
}

func TestSelectDistribution(t *testing.T) {
	root := t.TempDir()
	// Only the fallback location exists.
	if err := os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("testdata/os-release/fedora-41")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/lib/os-release"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	distros := map[string]confd.Distribution{"debian": {}, "fedora": {}}
	tests := []struct {
		name                string
		cfg                 confd.Config
		wantDistro, wantRel string
		wantReason          string
	}{
		{"not set: detected", confd.Config{}, "fedora", "41", "ID=fedora in /usr/lib/os-release"},
		{"explicit wins", confd.Config{Distribution: "debian"}, "debian", "", "ID=fedora in /usr/lib/os-release"},
		{"explicit release kept", confd.Config{Release: "40"}, "fedora", "40", "ID=fedora in /usr/lib/os-release"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := tt.cfg
			cfg.Distributions = distros
			det, err := SelectDistribution(&cfg, root)
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Distribution != tt.wantDistro || cfg.Release != tt.wantRel || det.Reason != tt.wantReason {
				t.Errorf("got %s %s (%s), want %s %s (%s)", cfg.Distribution, cfg.Release, det.Reason, tt.wantDistro, tt.wantRel, tt.wantReason)
			}
			if !det.HostRelease("fedora", "41") || det.HostRelease("fedora", "40") {
				t.Errorf("HostRelease: want fedora 41 only")
			}
		})
	}
	if _, err := SelectDistribution(&confd.Config{Distributions: distros}, t.TempDir()); err == nil {
		t.Error("no os-release and no distribution: want an error")
	}
	det, err := SelectDistribution(&confd.Config{Distribution: "debian", Distributions: distros}, t.TempDir())
	if err != nil || det != nil {
		t.Errorf("no os-release, distribution set: got %v, %v; want nil, nil", det, err)
	}
}
