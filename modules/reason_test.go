package modules

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestReasonString(t *testing.T) {
	for _, tc := range []struct {
		r    Reason
		want string
		json string
	}{
		{Reason{Kind: Included, Rule: "dm_.*"}, "include rule dm_.*", `{"kind":"include","rule":"dm_.*"}`},
		{Reason{Kind: ForceLoaded, Rule: "virtio-blk"}, "force-load", `{"kind":"force-load","rule":"virtio-blk"}`},
		{Reason{Kind: HostLoaded, Rule: "loaded on host"}, "loaded on host", `{"kind":"host-loaded","rule":"loaded on host"}`},
		{Reason{Kind: RootDevice, Rule: "root device chain (vda1 ← vda ← virtio_blk)"}, "root device chain (vda1 ← vda ← virtio_blk)",
			`{"kind":"root-device","rule":"root device chain (vda1 ← vda ← virtio_blk)"}`},
		{Reason{Kind: Dependency, Parent: "ext4"}, "dependency of ext4", `{"kind":"dependency","parent":"ext4"}`},
		{Reason{Kind: SoftdepPre, Parent: "ext4"}, "softdep of ext4", `{"kind":"softdep-pre","parent":"ext4"}`},
		{Reason{Kind: SoftdepPost, Parent: "mpls_iptunnel"}, "softdep of mpls_iptunnel", `{"kind":"softdep-post","parent":"mpls_iptunnel"}`},
		{Reason{Kind: Weakdep, Parent: "i915"}, "weakdep of i915", `{"kind":"weakdep","parent":"i915"}`},
	} {
		if got := tc.r.String(); got != tc.want {
			t.Errorf("%#v.String() = %q, want %q", tc.r, got, tc.want)
		}
		b, err := json.Marshal(tc.r)
		if err != nil || string(b) != tc.json {
			t.Errorf("json.Marshal(%#v) = %s, %v; want %s", tc.r, b, err, tc.json)
		}
		var back Reason
		if err := json.Unmarshal(b, &back); err != nil || back != tc.r {
			t.Errorf("json.Unmarshal(%s) = %#v, %v; want %#v", b, back, err, tc.r)
		}
	}
	if _, err := json.Marshal(Reason{Kind: 200}); err == nil {
		t.Errorf("json.Marshal(kind 200) = nil error, want one")
	}
	var r Reason
	if err := json.Unmarshal([]byte(`{"kind":"guess"}`), &r); err == nil {
		t.Errorf(`json.Unmarshal(kind "guess") = nil error, want one`)
	}
}

func TestWhy(t *testing.T) {
	host := Reason{Kind: HostLoaded, Rule: "loaded on host"}
	rule := Reason{Kind: Included, Rule: "virtio.*"}
	dep := func(p string) Reason { return Reason{Kind: Dependency, Parent: p} }
	soft := Reason{Kind: SoftdepPre, Parent: "ext4"}
	// Sorted by name, as Resolve makes them; a and b depend on each other.
	s := &Set{
		Modules: []Module{
			{Name: "a", Reasons: []Reason{dep("b")}},
			{Name: "b", Reasons: []Reason{dep("a"), rule}},
			{Name: "crc32c", Reasons: []Reason{soft}},
			{Name: "ext4", Reasons: []Reason{host}},
			{Name: "virtio", Reasons: []Reason{dep("virtio_blk"), dep("virtio_pci"), rule}},
			{Name: "virtio_blk", Reasons: []Reason{rule, host}},
			{Name: "virtio_pci", Reasons: []Reason{dep("gone"), rule}},
			{Name: "virtio_ring", Reasons: []Reason{dep("virtio_blk"), dep("virtio")}},
		},
		Builtins: []Builtin{{Name: "crc16", Reasons: []Reason{dep("ext4")}}},
	}
	for _, tc := range []struct {
		name string
		want [][]Reason
	}{
		{"ext4", [][]Reason{{host}}},
		{"crc32c", [][]Reason{{soft, host}}},
		{"crc16", [][]Reason{{dep("ext4"), host}}},
		{"virtio_ring", [][]Reason{
			{dep("virtio_blk"), rule},
			{dep("virtio_blk"), host},
			{dep("virtio"), dep("virtio_blk"), rule},
			{dep("virtio"), dep("virtio_blk"), host},
			{dep("virtio"), dep("virtio_pci"), dep("gone")}, // not in the set: the chain ends
			{dep("virtio"), dep("virtio_pci"), rule},
			{dep("virtio"), rule},
		}},
		{"a", [][]Reason{{dep("b"), dep("a")}, {dep("b"), rule}}}, // a cycle ends at a module already on the chain
	} {
		got, err := s.Why(tc.name)
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Why(%s) = %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	if _, err := s.Why("nvme"); err == nil {
		t.Errorf("Why(nvme), not in the set = nil error, want one")
	}
}
