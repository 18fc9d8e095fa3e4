package pipeline

import (
	"reflect"
	"slices"
	"testing"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
)

// TestGenericFeatures checks, on the shipped configuration, that --generic
// images get the luks and lvm features and their Debian packages, and
// host-only images only what is configured.
func TestGenericFeatures(t *testing.T) {
	cfg, _, err := confd.Load(confd.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	distro, err := cfg.Distro()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		generic      bool
		configured   []string
		wantFeatures []string
		wantPkgs     []string
		noPkgs       []string
	}{
		{true, nil, []string{"luks", "lvm"}, []string{"cryptsetup-bin", "lvm2"}, nil},
		{true, []string{"lvm"}, []string{"lvm", "luks"}, []string{"cryptsetup-bin", "lvm2"}, nil},
		{false, nil, nil, nil, []string{"cryptsetup-bin", "lvm2"}},
		{false, []string{"luks"}, []string{"luks"}, []string{"cryptsetup-bin"}, []string{"lvm2"}},
	}
	for _, tc := range tests {
		c := *cfg
		c.Features = tc.configured
		opts := Options{Config: &c, Generic: tc.generic}
		got := enabledFeatures(opts, distro)
		if !reflect.DeepEqual(got, tc.wantFeatures) && !(len(got) == 0 && len(tc.wantFeatures) == 0) {
			t.Errorf("enabledFeatures(generic=%v, features=%q) = %q, want %q", tc.generic, tc.configured, got, tc.wantFeatures)
		}
		pkgs := packageSet(opts, distro, got)
		for _, p := range tc.wantPkgs {
			if !slices.Contains(pkgs, p) {
				t.Errorf("packageSet(generic=%v, features=%q) = %q, want it to contain %s", tc.generic, tc.configured, pkgs, p)
			}
		}
		for _, p := range tc.noPkgs {
			if slices.Contains(pkgs, p) {
				t.Errorf("packageSet(generic=%v, features=%q) = %q, want no %s", tc.generic, tc.configured, pkgs, p)
			}
		}
	}
	for _, p := range []string{"dmeventd", "liblvm2cmd2.03", "perl-base"} {
		if !slices.Contains(distro.ExcludePackages, p) {
			t.Errorf("debian exclude_packages lacks %s", p)
		}
	}
}
