package resolver

import (
	"reflect"
	"slices"
	"testing"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/modules/hostinfo"
)

// TestGenericFeatures checks, on the shipped configuration, that --generic
// images get the luks and lvm features and their Debian packages, and
// host-only images only what is configured.
func TestGenericFeatures(t *testing.T) {
	cfg, _, err := confd.Load(confd.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Distribution = "debian" // the shipped configuration detects it; this test is about Debian
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
		plan, err := Resolve(Input{Config: &c, Generic: tc.generic})
		if err != nil {
			t.Fatal(err)
		}
		if got := plan.Features; !reflect.DeepEqual(got, tc.wantFeatures) && !(len(got) == 0 && len(tc.wantFeatures) == 0) {
			t.Errorf("Resolve(generic=%v, features=%q).Features = %q, want %q", tc.generic, tc.configured, got, tc.wantFeatures)
		}
		for _, p := range tc.wantPkgs {
			if !slices.Contains(plan.Packages, p) {
				t.Errorf("Resolve(generic=%v, features=%q).Packages = %q, want it to contain %s", tc.generic, tc.configured, plan.Packages, p)
			}
		}
		for _, p := range tc.noPkgs {
			if slices.Contains(plan.Packages, p) {
				t.Errorf("Resolve(generic=%v, features=%q).Packages = %q, want no %s", tc.generic, tc.configured, plan.Packages, p)
			}
		}
		if !slices.IsSorted(plan.Packages) {
			t.Errorf("Resolve(generic=%v).Packages = %q, want sorted", tc.generic, plan.Packages)
		}
	}
	d, err := cfg.Distro()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"dmeventd", "liblvm2cmd2.03", "perl-base"} {
		if !slices.Contains(d.ExcludePackages, p) {
			t.Errorf("debian exclude_packages lacks %s", p)
		}
	}
}

// TestHostFeatures checks that a host-only plan gains the features its
// root chain's layers need, only where the distribution defines them.
func TestHostFeatures(t *testing.T) {
	h := &hostinfo.Host{Layers: []string{hostinfo.LayerLVM, hostinfo.LayerCrypt}}
	for _, tc := range []struct {
		name     string
		defined  []string
		features []string // already enabled
		want     []string
	}{
		{"both defined", []string{"luks", "lvm", "plymouth"}, nil, []string{"lvm", "luks"}},
		{"lvm not defined", []string{"luks"}, nil, []string{"luks"}},
		{"already enabled", []string{"luks", "lvm"}, []string{"luks"}, []string{"luks", "lvm"}},
		{"none defined", nil, []string{"x"}, []string{"x"}},
	} {
		d := confd.Distribution{Features: map[string]confd.Feature{}}
		for _, f := range tc.defined {
			d.Features[f] = confd.Feature{Packages: []string{"pkg-" + f}}
		}
		cfg := &confd.Config{Distribution: "d", Distributions: map[string]confd.Distribution{"d": d}, Features: tc.features}
		plan, err := Resolve(Input{Config: cfg, Host: h})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(plan.Features, tc.want) {
			t.Errorf("%s: Resolve(features %q, layers %q).Features = %q, want %q", tc.name, tc.features, h.Layers, plan.Features, tc.want)
		}
		for _, f := range tc.want {
			if _, ok := d.Features[f]; ok && !slices.Contains(plan.Packages, "pkg-"+f) {
				t.Errorf("%s: Resolve(...).Packages = %q, want pkg-%s", tc.name, plan.Packages, f)
			}
		}
	}
}

func TestResolveUnknownDistribution(t *testing.T) {
	cfg := &confd.Config{Distribution: "nope", Distributions: map[string]confd.Distribution{"debian": {}}}
	if _, err := Resolve(Input{Config: cfg}); err == nil {
		t.Fatal(`Resolve(distribution "nope") = nil error, want one naming it`)
	}
}
