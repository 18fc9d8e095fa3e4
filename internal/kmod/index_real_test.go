package kmod_test

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/kmod"
	"github.com/pkginitrd/pkginitrd/internal/kmod/kmodtest"
	"github.com/pkginitrd/pkginitrd/internal/testdeb"
	"github.com/pkginitrd/pkginitrd/internal/testenv"
)

// TestIndexAgainstModprobe reads the index files depmod writes for the real
// Debian kernel and checks Lookup, Match and LoadOrder against what the
// system's modprobe resolves on the same files.
func TestIndexAgainstModprobe(t *testing.T) {
	root, kver := testdeb.Kernel(t)
	base, view := kmodtest.DepmodView(t, filepath.Join(root, "lib", "modules", kver))
	x, err := kmod.ReadIndex(view)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(x.Modules()); n < 1000 {
		t.Fatalf("ReadIndex(%s) has %d modules, want thousands", view, n)
	}

	// modprobe -R resolves a name or modalias to module names.
	resolve := func(name string) []string {
		var stderr bytes.Buffer
		cmd := exec.Command(testenv.NeedTool(t, "modprobe", "kmod"), "-C", t.TempDir(), "-d", base, "-S", kver, "-R", name)
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			if strings.Contains(stderr.String(), "not found") {
				return nil
			}
			t.Fatalf("%s: %v: %s", strings.Join(cmd.Args, " "), err, stderr.String())
		}
		var mods []string
		for _, f := range strings.Fields(string(out)) {
			if n := kmod.Normalize(f); !slices.Contains(mods, n) {
				mods = append(mods, n)
			}
		}
		sort.Strings(mods)
		return mods
	}
	modaliases := []string{
		"virtio:d00000002v00001AF4",                             // virtio-blk device
		"virtio:d00000008v00001AF4",                             // virtio-scsi
		"pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", // q35 AHCI controller
		"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", // legacy virtio-blk PCI
		"pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02", // qemu NVMe
		"pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30", // qemu xHCI
		"usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00",     // USB mass storage
		"scsi:t-0x00",        // disk
		"scsi:t-0x05",        // CD-ROM
		"acpi:PNP0A03:",      // no module
		"platform:leds-gpio", // dash in an alias
		"cpu:type:x86,ven0000fam0006mod003A:feature:,0000,0001,0002,0003,0004,0005,0006,0007,0008,0009,000B,000C,000D,000E,000F,0010,0011,0013,0015,0016,0017,0018,0019,001A,001B,001C,001D,001F,002B,0034,003B,003D,0068,006F,0070,0072,0074,0075,0076,0078,007C,0080,0081,0082,0083,0084,0087,0088,0089,008D,008E,008F,0093,0094,0096,0097,0098,0099,009E,00C0,00C8,0121,0127,0129,012D,0132,0133,0134,0135,0137,0139,013B,013C,013E,0200,0201,0202,0203,0204,0205,0206,020A,020B,020C,020D,020E,0214,0215,021B,021C,021D,021E", // x86 CPU
	}
	for _, a := range modaliases {
		if got, want := x.Match(a), resolve(a); !reflect.DeepEqual(got, want) {
			t.Errorf("Match(%q) = %q, modprobe -R says %q", a, got, want)
		}
	}
	for _, name := range []string{"crypto-crc32c", "fs-ext4", "ext4", "dm-crypt", "usb-storage", "crc32c", "sha256", "blake2b-256"} {
		got, _ := x.Lookup(name)
		if want := resolve(name); !reflect.DeepEqual(got, want) {
			t.Errorf("Lookup(%q) = %q, modprobe -R says %q", name, got, want)
		}
	}
	for _, name := range []string{"sha256_generic", "crc-ccitt", "unix"} {
		if mods, builtin := x.Lookup(name); len(mods) > 0 || !builtin {
			t.Errorf("Lookup(%q) = %q, %v, want a builtin", name, mods, builtin)
		}
	}

	for _, name := range []string{"virtio_blk", "ext4", "btrfs", "xfs", "nvme", "ahci", "dm_crypt", "dm_raid", "usb_storage", "uas", "squashfs", "overlay", "isofs"} {
		got, err := x.LoadOrder(name)
		if err != nil {
			t.Errorf("LoadOrder(%s): %v", name, err)
			continue
		}
		want, _ := kmodtest.ShowDepends(t, base, kver, name)
		if !sameSet(got, want) {
			t.Errorf("LoadOrder(%s) = %q, modprobe --show-depends loads %q", name, got, want)
		}
		checkOrder(t, x, got)
	}
	if got, err := x.LoadOrder("virtio_blk"); err != nil || !reflect.DeepEqual(got, []string{"virtio", "virtio_ring", "virtio_blk"}) &&
		!reflect.DeepEqual(got, []string{"virtio_ring", "virtio", "virtio_blk"}) {
		t.Errorf("LoadOrder(virtio_blk) = %q, %v, want virtio and virtio_ring, then virtio_blk", got, err)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	sort.Strings(a)
	sort.Strings(b)
	return reflect.DeepEqual(a, b)
}

// checkOrder verifies that every module comes after its hard dependencies
// and its soft pre-dependencies that are in the list.
func checkOrder(t *testing.T, x *kmod.Index, order []string) {
	t.Helper()
	pos := map[string]int{}
	for i, m := range order {
		if _, dup := pos[m]; dup {
			t.Errorf("load order %q has %s twice", order, m)
		}
		pos[m] = i
	}
	for i, m := range order {
		pre, _ := x.SoftDeps(m)
		for _, d := range x.Deps(m) {
			if j, ok := pos[d]; !ok || j > i {
				t.Errorf("load order %q: %s before (or without) its dependency %s", order, m, d)
			}
		}
		for _, d := range pre {
			if j, ok := pos[d]; ok && j > i {
				t.Errorf("load order %q: %s before its softdep pre %s", order, m, d)
			}
		}
	}
}

// BenchmarkReadIndexMatch is stage0's work at boot on a full module tree:
// read the index of all 4000 modules, then match a typical coldplug batch
// of modaliases and plan their loading.
func BenchmarkReadIndexMatch(b *testing.B) {
	root, kver := testdeb.Kernel(b)
	_, view := kmodtest.DepmodView(b, filepath.Join(root, "lib", "modules", kver))
	modaliases := []string{
		"virtio:d00000002v00001AF4",
		"pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
		"pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
		"pci:v00001B36d00000010sv00001AF4sd00001100bc01sc08i02",
		"pci:v00001B36d0000000Dsv00001AF4sd00001100bc0Csc03i30",
		"usb:v0781p5567d0100dc00dsc00dp00ic08isc06ip50in00",
		"scsi:t-0x00", "scsi:t-0x05", "acpi:PNP0A03:", "platform:serial8250",
	}
	for b.Loop() {
		x, err := kmod.ReadIndex(view)
		if err != nil {
			b.Fatal(err)
		}
		var mods []string
		for _, a := range modaliases {
			mods = append(mods, x.Match(a)...)
		}
		if _, err := x.LoadPlan(mods...); err != nil {
			b.Fatal(err)
		}
	}
}
