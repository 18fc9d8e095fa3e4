package pipeline

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/backends"
	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
	"github.com/pkginitrd/pkginitrd/modules"
	"github.com/pkginitrd/pkginitrd/modules/hostinfo"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
)

// recordingBackend is debBackend that remembers the packages asked for.
type recordingBackend struct {
	debBackend
	asked *[]string
}

func (b recordingBackend) Fetch(ctx context.Context, req backends.Request) ([]backends.Package, error) {
	*b.asked = append(*b.asked, req.Packages...)
	return b.debBackend.Fetch(ctx, req)
}

// lvmOnLUKSSysroot writes a recorded system (proc/ and sys/, as
// tests/hostonly_record_test.go records them) whose root is an ext4 LV
// (mounted, as stage0 does, from /dev/dm-1)
// vgc/root on a LUKS2 container on a virtio disk, with the guest's
// /proc/crypto naming the aes-xts-plain64 cipher's modules.
func lvmOnLUKSSysroot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	pci := "sys/devices/pci0000:00/0000:00:04.0"
	disk := pci + "/virtio1/block/vda"
	links := map[string]string{
		"sys/dev/block/253:1":                        "../../devices/virtual/block/dm-1",
		"sys/class/block/dm-1":                       "../../devices/virtual/block/dm-1",
		"sys/devices/virtual/block/dm-1/slaves/dm-0": "../../dm-0",
		"sys/devices/virtual/block/dm-0/slaves/vda":  "../../../../pci0000:00/0000:00:04.0/virtio1/block/vda",
		disk + "/device":                             "../../../virtio1",
		pci + "/virtio1/driver":                      "../../../../bus/virtio/drivers/virtio_blk",
		"sys/bus/virtio/drivers/virtio_blk/module":   "../../../../module/virtio_blk",
		pci + "/driver":                              "../../../bus/pci/drivers/virtio-pci",
	}
	files := map[string]string{
		"sys/devices/virtual/block/dm-1/dm/uuid": "LVM-Zq3kR1wYpE2cT7vB9nM0aS5dF6gH8jK1Lq4wE7rT2yU5iO8pA3sD6fG9hJ2kL5zX",
		"sys/devices/virtual/block/dm-1/dm/name": "vgc-root",
		"sys/devices/virtual/block/dm-0/dm/uuid": "CRYPT-LUKS2-7a8b9c0d1e2f4a3b8c4d5e6f7a8b9c0d-luks-7a8b9c0d",
		"sys/devices/virtual/block/dm-0/dm/name": "luks-7a8b9c0d",
		disk + "/dev":                            "254:0",
		pci + "/virtio1/modalias":                "virtio:d00000002v00001AF4",
		pci + "/modalias":                        "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
		"proc/modules":                           "virtio_blk 1 0 - Live 0x0\ndm_crypt 1 0 - Live 0x0\n",
		"proc/self/mountinfo":                    "20 1 253:1 / / ro,relatime - ext4 /dev/dm-1 ro\n",
		"proc/crypto": "name : xts(aes)\ndriver : xts-aes-aesni\nmodule : aesni_intel\ntype : skcipher\n\n" +
			"name : xts(aes)\ndriver : xts(ecb(aes-generic))\nmodule : xts\ntype : skcipher\n\n" +
			"name : aes\ndriver : aes-generic\nmodule : kernel\ntype : cipher\n\n" +
			"name : sha256\ndriver : sha256-avx2\nmodule : sha256_ssse3\ntype : shash\n",
	}
	for p, target := range links {
		writeFile(t, filepath.Join(root, p), "")
		os.Remove(filepath.Join(root, p))
		if err := os.Symlink(target, filepath.Join(root, p)); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range files {
		writeFile(t, filepath.Join(root, p), c)
	}
	return root
}

func writeFile(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHostOnlyLUKSLVM builds a host-only image for a recorded LVM-on-LUKS
// host: the image gets the luks and lvm features (so cryptsetup and lvm2
// are asked for), dm_mod, dm_crypt and the cipher's modules, which stage0
// force-loads, and the host's root; the host is detected once.
func TestHostOnlyLUKSLVM(t *testing.T) {
	opts := testOptions(t)
	sysroot := lvmOnLUKSSysroot(t)
	opts.Generic = false
	opts.ProcDir, opts.SysDir = filepath.Join(sysroot, "proc"), filepath.Join(sysroot, "sys")
	var asked []string
	opts.Backend = recordingBackend{opts.Backend.(debBackend), &asked}
	var logs bytes.Buffer
	opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	res, err := Run(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	// Detection reads every LUKS header under the root from /dev (up to
	// 4 MiB each on a live host): once per build, not once per use.
	if n := strings.Count(logs.String(), `msg="host-only detection"`); n != 1 {
		t.Errorf("Run(host-only) logged %d host-only detections, want 1:\n%s", n, logs.String())
	}
	for _, p := range []string{"cryptsetup-bin", "lvm2"} {
		if !slices.Contains(asked, p) {
			t.Errorf("host-only build of an LVM-on-LUKS host asked for packages %q, want %s among them", asked, p)
		}
	}
	var mods []string
	for _, m := range res.Manifest.Modules {
		mods = append(mods, m.Name)
	}
	for _, m := range []string{"dm_mod", "dm_crypt", "aesni_intel", "xts", "virtio_blk", "ext4"} {
		if !slices.Contains(mods, m) {
			t.Errorf("host-only image modules %q lack %s", mods, m)
		}
	}
	if slices.Contains(mods, "sha256_ssse3") {
		t.Errorf("host-only image has sha256_ssse3, a hash /proc/crypto lists but dm-crypt's cipher does not use")
	}

	x := extractImage(t, opts.Output)
	var conf *bootconf.Config
	if cf, err := os.Open(filepath.Join(x, bootconf.Path)); err == nil {
		conf, err = bootconf.Parse(cf)
		cf.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	if conf == nil {
		t.Fatalf("image has no %s", bootconf.Path)
	}
	if !conf.HasFeature("luks") || !conf.HasFeature("lvm") {
		t.Errorf("bootconf features = %q, want luks and lvm", conf.Features)
	}
	for _, m := range []string{"aesni_intel", "xts"} {
		if !slices.Contains(conf.ForceLoad, m) {
			t.Errorf("bootconf force_load = %q, want %s (the kernel would request it through modprobe)", conf.ForceLoad, m)
		}
	}
	if conf.Root.Device != "/dev/mapper/vgc-root" || conf.Root.FSType != "ext4" {
		t.Errorf("bootconf root = %+v, want /dev/mapper/vgc-root ext4", conf.Root)
	}
}

// TestHostHelpers checks that what a host-only image takes from the host
// comes from one detection (a *hostinfo.Host), not from reading the host
// again: the proc and sys directories given here do not exist.
func TestHostHelpers(t *testing.T) {
	h := &hostinfo.Host{
		Root:   mountinfo.Mount{ID: 20, Parent: 1, Dev: "253:1", Root: "/", MountPoint: "/", FSType: "ext4", Source: "/dev/dm-1"},
		Layers: []string{hostinfo.LayerLVM, hostinfo.LayerCrypt, hostinfo.LayerMD},
		Needs: []hostinfo.Need{
			{Name: "virtio_blk", Reason: "loaded on host", Kind: hostinfo.Loaded},
			{Name: "fs-ext4", Reason: "root filesystem ext4", Kind: hostinfo.RootFS},
			{Name: "dm_mod", Reason: "root device chain", Kind: hostinfo.RootLayer},
			{Name: "virtio_pci", Reason: "root device chain", Kind: hostinfo.RootDriver},
			{Name: "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", Reason: "root device chain", Kind: hostinfo.RootModalias},
			{Name: "crypto-aes", Reason: "root device chain", Kind: hostinfo.RootCrypto},
			{Name: "dm_raid", Reason: "root device chain", Kind: hostinfo.RootTarget},
		},
	}
	want := []modules.Want{
		{Name: "virtio_blk", Reason: modules.Reason{Kind: modules.HostLoaded, Rule: "loaded on host"}, IfMissing: modules.MissingWarn},
		{Name: "fs-ext4", Reason: modules.Reason{Kind: modules.RootDevice, Rule: "root filesystem ext4"}, IfMissing: modules.MissingError},
		{Name: "dm_mod", Reason: modules.Reason{Kind: modules.RootDevice, Rule: "root device chain"}, IfMissing: modules.MissingError},
		{Name: "virtio_pci", Reason: modules.Reason{Kind: modules.RootDevice, Rule: "root device chain"}, IfMissing: modules.MissingError},
		{Name: "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00", Reason: modules.Reason{Kind: modules.RootDevice, Rule: "root device chain"}, IfMissing: modules.MissingIgnore},
		{Name: "crypto-aes", Reason: modules.Reason{Kind: modules.RootDevice, Rule: "root device chain"}, IfMissing: modules.MissingWarn, ForceLoad: true},
		{Name: "dm_raid", Reason: modules.Reason{Kind: modules.RootDevice, Rule: "root device chain"}, IfMissing: modules.MissingWarn, ForceLoad: true},
	}
	if got := hostWants(h); !reflect.DeepEqual(got, want) {
		t.Errorf("hostWants = %+v, want %+v", got, want)
	}

	missing := filepath.Join(t.TempDir(), "missing")
	if got, want := hostRoot(h, filepath.Join(missing, "proc"), filepath.Join(missing, "sys")), (bootconf.Root{Device: "/dev/dm-1", FSType: "ext4"}); got != want {
		t.Errorf("hostRoot(recorded, no sysfs) = %+v, want %+v", got, want)
	}
}

func TestRootFromMount(t *testing.T) {
	for _, tc := range []struct {
		m    mountinfo.Mount
		want bootconf.Root
	}{
		{mountinfo.Mount{Source: "/dev/vda2", FSType: "ext4", Root: "/"}, bootconf.Root{Device: "/dev/vda2", FSType: "ext4"}},
		{mountinfo.Mount{Source: "/dev/nvme0n1p3", FSType: "btrfs", Root: "/@"}, bootconf.Root{Device: "/dev/nvme0n1p3", FSType: "btrfs", Flags: "subvol=/@"}},
		{mountinfo.Mount{Source: "server:/export", FSType: "nfs", Root: "/"}, bootconf.Root{}},
		{mountinfo.Mount{Source: "overlay", FSType: "overlay", Root: "/"}, bootconf.Root{}},
	} {
		if got := rootFromMount(tc.m, false); got != tc.want {
			t.Errorf("rootFromMount(%+v) = %+v, want %+v", tc.m, got, tc.want)
		}
	}
}
