// Package resolver turns the merged configuration, the chosen distribution
// and the host's facts into what one build installs: the package set, the
// packages kept out, the prune rules, the stage0 features and the
// repositories the packages come from. All
// per-distribution knowledge a build needs is read here, from conf.d.
package resolver

import (
	"fmt"
	"log/slog"
	"slices"
	"sort"

	confd "github.com/pkginitrd/pkginitrd/conf.d"
	"github.com/pkginitrd/pkginitrd/modules/hostinfo"
)

// Input is what a package set is computed from.
type Input struct {
	Config  *confd.Config
	Generic bool           // a distribution's prebuilt image: the generic features, no host
	Host    *hostinfo.Host // host-only detection (nil for generic images)
	Extra   []string       // packages asked for on the command line
	// HostRoot is the root whose os-release and apt sources and proxies
	// are read ("" = "/"); see Repositories.
	HostRoot string
	Logger   *slog.Logger
}

// Plan is what the backend installs and stage0 is told about.
type Plan struct {
	Name         string // distribution name, e.g. "debian"
	Distribution confd.Distribution
	Packages     []string // sorted, unique
	Features     []string // stage0 features, in the order they were enabled
	Sources      *Sources // where the packages come from
}

// Resolve computes the plan of one build.
func Resolve(in Input) (*Plan, error) {
	log := in.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d, err := in.Config.Distro()
	if err != nil {
		return nil, err
	}
	features := Features(in.Config, d, in.Generic)
	if in.Host != nil {
		for _, f := range HostFeatures(in.Host, d, log) {
			if !slices.Contains(features, f) {
				log.Info("feature enabled: the host's root needs it", "feature", f)
				features = append(features, f)
			}
		}
	}
	root := in.HostRoot
	if root == "" {
		root = "/"
	}
	src, err := Repositories(in.Config, d, root, in.Config.Arch, log)
	if err != nil {
		return nil, fmt.Errorf("package repositories: %w", err)
	}
	return &Plan{
		Name:         in.Config.Distribution,
		Distribution: d,
		Packages:     PackageSet(d, features, in.Config.Packages, in.Extra),
		Features:     features,
		Sources:      src,
	}, nil
}

// Features is the configured features plus, for generic images, the
// generic ones the distribution defines.
func Features(cfg *confd.Config, d confd.Distribution, generic bool) []string {
	out := slices.Clone(cfg.Features)
	if generic {
		for _, f := range cfg.GenericFeatures {
			if _, ok := d.Features[f]; ok && !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// HostFeatures returns the stage0 features the host's root chain needs:
// "luks" for a dm-crypt layer, "lvm" for an LVM volume, each when the
// distribution defines it, so that a host-only image of such a host
// carries cryptsetup and lvm.
func HostFeatures(h *hostinfo.Host, d confd.Distribution, log *slog.Logger) []string {
	var out []string
	for _, l := range h.Layers {
		f := map[string]string{hostinfo.LayerCrypt: "luks", hostinfo.LayerLVM: "lvm"}[l]
		if f == "" {
			continue
		}
		if _, ok := d.Features[f]; !ok {
			log.Warn("the host's root needs a feature the distribution does not define: the image may not boot it", "layer", l, "feature", f)
			continue
		}
		out = append(out, f)
	}
	return out
}

// PackageSet is the distribution's base packages, those of each feature,
// the configured extras and the command line's, sorted and unique.
func PackageSet(d confd.Distribution, features, configured, extra []string) []string {
	var out []string
	add := func(names ...string) {
		for _, n := range names {
			if n != "" && !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	add(d.Packages...)
	for _, f := range features {
		add(d.Features[f].Packages...)
	}
	add(configured...)
	add(extra...)
	sort.Strings(out)
	return out
}
