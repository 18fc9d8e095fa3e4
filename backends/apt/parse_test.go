package apt

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseURIs(t *testing.T) {
	// Output of: apt-get install --print-uris -qq -o Acquire::ForceHash=SHA256 busybox (trixie).
	out := `'http://deb.debian.org/debian/pool/main/g/gcc-14/gcc-14-base_14.2.0-19_amd64.deb' gcc-14-base_14.2.0-19_amd64.deb 49432 SHA256:5b6825de4263824b78c4c51f6476414f3b4e89c2ab63e81dc8b9b5501e867cf6
'http://deb.debian.org/debian/pool/main/b/busybox/busybox_1.37.0-6%2bb9_amd64.deb' busybox_1%3a1.37.0-6+b9_amd64.deb 484988 SHA256:b88c3b899e16bf64347d63235128df9efbcf1f964e4841bc9b37d7856bed35bf
`
	got, err := parseURIs(strings.NewReader(out))
	if err != nil {
		t.Fatalf("parseURIs = %v", err)
	}
	want := []archive{
		{Name: "gcc-14-base", Version: "14.2.0-19", Arch: "amd64", URI: "http://deb.debian.org/debian/pool/main/g/gcc-14/gcc-14-base_14.2.0-19_amd64.deb", File: "gcc-14-base_14.2.0-19_amd64.deb", Size: 49432, SHA256: "5b6825de4263824b78c4c51f6476414f3b4e89c2ab63e81dc8b9b5501e867cf6"},
		{Name: "busybox", Version: "1:1.37.0-6+b9", Arch: "amd64", URI: "http://deb.debian.org/debian/pool/main/b/busybox/busybox_1.37.0-6%2bb9_amd64.deb", File: "busybox_1%3a1.37.0-6+b9_amd64.deb", Size: 484988, SHA256: "b88c3b899e16bf64347d63235128df9efbcf1f964e4841bc9b37d7856bed35bf"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseURIs = %+v, want %+v", got, want)
	}
	if s := got[1].spec(); s != "busybox:amd64=1:1.37.0-6+b9" {
		t.Errorf("spec() = %q, want busybox:amd64=1:1.37.0-6+b9", s)
	}

	bad := []string{
		"'http://x/a_1_all.deb' a_1_all.deb 12 MD5Sum:0123456789abcdef0123456789abcdef",
		"'http://x/a_1_all.deb' a_1_all.deb twelve SHA256:" + strings.Repeat("0", 64),
		"'http://x/a_1_all.deb a_1_all.deb 12 SHA256:" + strings.Repeat("0", 64),
		"'http://x/a.deb' a.deb 12 SHA256:" + strings.Repeat("0", 64),
		"'http://x/a_1_all.deb' a_1_all.deb 12",
	}
	for _, line := range bad {
		if got, err := parseURIs(strings.NewReader(line + "\n")); err == nil {
			t.Errorf("parseURIs(%q) = %+v, want an error", line, got)
		}
	}
	if got, err := parseURIs(strings.NewReader("Reading package lists...\n")); err != nil || len(got) != 0 {
		t.Errorf("parseURIs(no archives) = %v, %v, want nothing", got, err)
	}
}

func TestSplitFileName(t *testing.T) {
	tests := []struct{ file, name, version, arch string }{
		{"busybox_1%3a1.35.0-4+b3_amd64.deb", "busybox", "1:1.35.0-4+b3", "amd64"},
		{"libc6_2.36-9+deb12u10_amd64.deb", "libc6", "2.36-9+deb12u10", "amd64"},
		{"tzdata_2025b-0+deb12u1_all.deb", "tzdata", "2025b-0+deb12u1", "all"},
		{"x%5fy_1.0~rc1_arm64.udeb", "x_y", "1.0~rc1", "arm64"},
	}
	for _, tt := range tests {
		n, v, a, err := splitFileName(tt.file)
		if err != nil || n != tt.name || v != tt.version || a != tt.arch {
			t.Errorf("splitFileName(%q) = %q, %q, %q, %v, want %q, %q, %q", tt.file, n, v, a, err, tt.name, tt.version, tt.arch)
		}
	}
	for _, f := range []string{"busybox.deb", "a_b_c_d.deb", "a_1_amd64.rpm", "_1_amd64.deb"} {
		if _, _, _, err := splitFileName(f); err == nil {
			t.Errorf("splitFileName(%q) = nil error, want one", f)
		}
	}
}

func TestProblems(t *testing.T) {
	// apt-get install --print-uris -q systemd-sysv sysvinit-core nosuch awk busybox=9.9 (shortened)
	stdout := []byte(`Reading package lists...
Building dependency tree...
The following packages have unmet dependencies:
 openrc : Depends: insserv but it is not installable
 systemd-sysv : Conflicts: sysvinit-core but 3.14-4 is to be installed
                 Conflicts: systemd-sysv but 257.13-1~deb13u1 is to be installed
Need to get 3454 kB of archives.
`)
	stderr := []byte(`W: Download is performed unsandboxed as root
E: Unable to locate package nosuch
E: Package 'awk' has no installation candidate
E: Version '9.9' for 'busybox' was not found
E: Unable to correct problems, you have held broken packages.
`)
	msgs := problems(stdout, stderr)
	want := []string{
		"The following packages have unmet dependencies:",
		" openrc : Depends: insserv but it is not installable",
		" systemd-sysv : Conflicts: sysvinit-core but 3.14-4 is to be installed",
		"                 Conflicts: systemd-sysv but 257.13-1~deb13u1 is to be installed",
		"E: Unable to locate package nosuch",
		"E: Package 'awk' has no installation candidate",
		"E: Version '9.9' for 'busybox' was not found",
		"E: Unable to correct problems, you have held broken packages.",
	}
	if !reflect.DeepEqual(msgs, want) {
		t.Errorf("problems = %q, want %q", msgs, want)
	}
	if got, want := problemPackages(msgs), []string{"openrc", "systemd-sysv", "nosuch", "awk", "busybox"}; !reflect.DeepEqual(got, want) {
		t.Errorf("problemPackages = %q, want %q", got, want)
	}
}

func TestLastLines(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"one\n", []string{"one"}},
		{"1\n2\n3\n4\n", []string{"3", "4"}},
	}
	for _, tt := range tests {
		if got := lastLines(tt.in, 2); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("lastLines(%q, 2) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
