package cli

import (
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/modules"
)

// TestWhyLines prints modules.Set.Why's chains as a tree: a reason shared
// by consecutive chains once, each parent's reasons indented below it.
func TestWhyLines(t *testing.T) {
	host := modules.Reason{Kind: modules.HostLoaded, Rule: "loaded on host"}
	rule := modules.Reason{Kind: modules.Included, Rule: "virtio.*"}
	dep := func(p string) modules.Reason { return modules.Reason{Kind: modules.Dependency, Parent: p} }
	set := &modules.Set{
		Modules: []modules.Module{
			{Name: "virtio", Rel: "kernel/drivers/virtio/virtio.ko", Size: 10, Reasons: []modules.Reason{dep("virtio_blk"), rule}},
			{Name: "virtio_blk", Reasons: []modules.Reason{rule, host}},
			{Name: "virtio_ring", Rel: "kernel/drivers/virtio/virtio_ring.ko", Size: 20, Reasons: []modules.Reason{dep("virtio_blk"), dep("virtio")}},
		},
		Builtins: []modules.Builtin{{Name: "crc16", Reasons: []modules.Reason{dep("virtio")}}},
	}
	for _, tc := range []struct{ name, want string }{
		{"virtio_ring", `virtio_ring (kernel/drivers/virtio/virtio_ring.ko, 20 bytes):
  ← dependency of virtio_blk
    ← include rule virtio.*
    ← loaded on host
  ← dependency of virtio
    ← dependency of virtio_blk
      ← include rule virtio.*
      ← loaded on host
    ← include rule virtio.*`},
		{"crc16", `crc16 is built into the kernel (not copied):
  ← dependency of virtio
    ← dependency of virtio_blk
      ← include rule virtio.*
      ← loaded on host
    ← include rule virtio.*`},
	} {
		lines, err := whyLines(set, tc.name)
		if got := strings.Join(lines, "\n"); err != nil || got != tc.want {
			t.Errorf("whyLines(%s) = %v\n%s\nwant\n%s", tc.name, err, got, tc.want)
		}
	}
	if _, err := whyLines(set, "nvme"); err == nil || !strings.Contains(err.Error(), "nvme is not in the set") {
		t.Errorf("whyLines(nvme) error = %v, want one saying it is not in the set", err)
	}
}
