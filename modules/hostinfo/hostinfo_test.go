package hostinfo

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/mountinfo"
)

func TestParseModules(t *testing.T) {
	in := "virtio_blk 24576 2 - Live 0x0000000000000000\nusb-storage 81920 1 uas, Live 0x0\n\n"
	got, err := ParseModules(strings.NewReader(in))
	if want := []string{"virtio_blk", "usb_storage"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("ParseModules = %q, %v, want %q", got, err, want)
	}
}

func TestRootMount(t *testing.T) {
	ext4 := mountinfo.Mount{ID: 22, Parent: 1, Dev: "254:1", Root: "/", MountPoint: "/", FSType: "ext4", Source: "/dev/vda1"}
	dev := mountinfo.Mount{ID: 23, Parent: 22, Dev: "0:5", Root: "/", MountPoint: "/dev", FSType: "devtmpfs", Source: "devtmpfs"}
	overlay := mountinfo.Mount{ID: 31, Parent: 22, Dev: "0:34", Root: "/", MountPoint: "/", FSType: "overlay", Source: "overlay"}
	for _, tc := range []struct {
		name    string
		ms      []mountinfo.Mount
		want    mountinfo.Mount
		wantErr bool
	}{
		{"one root", []mountinfo.Mount{ext4, dev}, ext4, false},
		{"a later mount on / hides the first", []mountinfo.Mount{ext4, dev, overlay}, overlay, false},
		{"no mount on /", []mountinfo.Mount{dev}, mountinfo.Mount{}, true},
		{"empty table", nil, mountinfo.Mount{}, true},
	} {
		got, err := RootMount(tc.ms)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("%s: RootMount = %+v, %v, want %+v (error: %v)", tc.name, got, err, tc.want, tc.wantErr)
		}
	}
}

// sysfs is a fake /sys: symbolic links (relative, as the kernel makes
// them) and attribute files, written the way the kernel lays them out.
type sysfs struct {
	links map[string]string
	files map[string]string
}

func (s sysfs) write(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, target := range s.links {
		dst := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, dst); err != nil {
			t.Fatal(err)
		}
	}
	for p, c := range s.files {
		dst := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, []byte(c+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func merge(parts ...sysfs) sysfs {
	out := sysfs{links: map[string]string{}, files: map[string]string{}}
	for _, p := range parts {
		for k, v := range p.links {
			out.links[k] = v
		}
		for k, v := range p.files {
			out.files[k] = v
		}
	}
	return out
}

// virtioDisk is a virtio-blk disk "name" (virtio device vdev) with one
// partition, as Linux 6.1 lays it out.
func virtioDisk(name, vdev, pciDev, majmin string) sysfs {
	pci := "devices/pci0000:00/" + pciDev
	disk := pci + "/" + vdev + "/block/" + name
	return sysfs{
		links: map[string]string{
			"dev/block/" + majmin:                  "../../" + disk + "/" + name + "1",
			"class/block/" + name + "1":            "../../" + disk + "/" + name + "1",
			disk + "/device":                       "../../../" + vdev,
			pci + "/" + vdev + "/driver":           "../../../../bus/virtio/drivers/virtio_blk",
			"bus/virtio/drivers/virtio_blk/module": "../../../../module/virtio_blk",
			pci + "/driver":                        "../../../bus/pci/drivers/virtio-pci",
			"bus/pci/drivers/virtio-pci/module":    "../../../../module/virtio_pci",
		},
		files: map[string]string{
			disk + "/dev":                     strings.Replace(majmin, ":1", ":0", 1),
			disk + "/" + name + "1/dev":       majmin,
			disk + "/" + name + "1/partition": "1",
			pci + "/" + vdev + "/modalias":    "virtio:d00000002v00001AF4",
			pci + "/modalias":                 "pci:v00001AF4d00001001sv00001AF4sd00000002bc01sc00i00",
		},
	}
}

// dmStack is dm-1 (253:1) on dm-0 on virtioDisk's vda1, each given as
// {dm/uuid, dm/name}; an empty name leaves dm/name out.
func dmStack(dm1, dm0 [2]string) sysfs {
	const dir = "devices/virtual/block/"
	s := sysfs{
		links: map[string]string{
			"dev/block/253:1":        "../../" + dir + "dm-1",
			dir + "dm-1/slaves/dm-0": "../../dm-0",
			dir + "dm-0/slaves/vda1": "../../../../pci0000:00/0000:00:04.0/virtio1/block/vda/vda1",
		},
		files: map[string]string{},
	}
	for dev, attrs := range map[string][2]string{"dm-1": dm1, "dm-0": dm0} {
		s.files[dir+dev+"/dm/uuid"] = attrs[0]
		if attrs[1] != "" {
			s.files[dir+dev+"/dm/name"] = attrs[1]
		}
	}
	return s
}

func TestRootChain(t *testing.T) {
	vda := virtioDisk("vda", "virtio1", "0000:00:04.0", "254:1")
	vdb := virtioDisk("vdb", "virtio2", "0000:00:05.0", "254:17")
	dm := dmStack([2]string{"CRYPT-LUKS2-0123456789abcdef-root", "root"}, [2]string{"LVM-abcdefgh", ""})
	md := sysfs{
		links: map[string]string{
			"dev/block/9:0":                         "../../devices/virtual/block/md0",
			"devices/virtual/block/md0/slaves/vda1": "../../../../pci0000:00/0000:00:04.0/virtio1/block/vda/vda1",
			"devices/virtual/block/md0/slaves/vdb1": "../../../../pci0000:00/0000:00:05.0/virtio2/block/vdb/vdb1",
		},
		files: map[string]string{"devices/virtual/block/md0/md/level": "raid1"},
	}
	// A builtin driver (no module link) and a device with no driver.
	builtin := sysfs{
		links: map[string]string{
			"dev/block/8:1": "../../devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1",
			"devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/device": "../../../0:0:0:0",
			"devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/driver":           "../../../../../../../bus/scsi/drivers/sd",
			"bus/scsi/drivers/sd/module":             "../../../../module/sd_mod",
			"devices/pci0000:00/0000:00:1f.2/driver": "../../../bus/pci/drivers/ahci",
		},
		files: map[string]string{
			"devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/block/sda/sda1/partition": "1",
			"devices/pci0000:00/0000:00:1f.2/modalias":                                                "pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01",
			"devices/pci0000:00/0000:00:1f.2/ata1/host0/target0:0:0/0:0:0:0/modalias":                 "scsi:t-0x00",
			"devices/platform/foo/modalias":                                                           "platform:foo",
		},
	}
	nvme := sysfs{
		links: map[string]string{
			"dev/block/259:1": "../../devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1/nvme0n1p1",
			"devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1/device": "../../nvme-subsys0",
			"devices/virtual/nvme-subsystem/nvme-subsys0/nvme0":          "../../../pci0000:00/0000:00:06.0/nvme/nvme0",
			"devices/pci0000:00/0000:00:06.0/driver":                     "../../../bus/pci/drivers/nvme",
			"bus/pci/drivers/nvme/module":                                "../../../../module/nvme",
		},
		files: map[string]string{
			"devices/virtual/nvme-subsystem/nvme-subsys0/nvme0n1/nvme0n1p1/partition": "1",
		},
	}
	sys := merge(vda, vdb, dm, md, builtin, nvme).write(t)
	chain := "vda1 ← vda ← virtio1 ← virtio_blk"
	cases := []struct {
		name  string
		root  mountinfo.Mount
		want  []Need // in order
		wantE bool
	}{
		{"virtio partition", mountinfo.Mount{Dev: "254:1", FSType: "ext4", Source: "/dev/vda1"}, []Need{
			{"fs-ext4", "root filesystem ext4", RootFS},
			{"virtio_blk", "root device chain (" + chain + ")", RootDriver},
			{"virtio_pci", "root device chain (vda1 ← vda ← 0000:00:04.0 ← virtio_pci)", RootDriver},
		}, false},
		{"btrfs by source", mountinfo.Mount{Dev: "0:33", FSType: "btrfs", Source: "/dev/vda1"}, []Need{
			{"fs-btrfs", "root filesystem btrfs", RootFS},
			{"virtio_blk", "root device chain (" + chain + ")", RootDriver},
			{"virtio_pci", "root device chain (vda1 ← vda ← 0000:00:04.0 ← virtio_pci)", RootDriver},
		}, false},
		{"nfs", mountinfo.Mount{Dev: "0:50", FSType: "nfs4", Source: "server:/export"}, []Need{
			{"fs-nfs4", "root filesystem nfs4", RootFS},
		}, false},
		{"crypt on lvm", mountinfo.Mount{Dev: "253:1", FSType: "xfs", Source: "/dev/mapper/root"}, []Need{
			{"fs-xfs", "root filesystem xfs", RootFS},
			{"dm_mod", "root device chain (dm-1 ← device-mapper)", RootLayer},
			{"dm_crypt", "root device chain (dm-1 ← dm-crypt root)", RootLayer},
			{"dm_mod", "root device chain (dm-1 ← dm-0 ← device-mapper)", RootLayer},
			{"virtio_blk", "root device chain (dm-1 ← dm-0 ← " + chain + ")", RootDriver},
			{"virtio_pci", "root device chain (dm-1 ← dm-0 ← vda1 ← vda ← 0000:00:04.0 ← virtio_pci)", RootDriver},
		}, false},
		{"md raid1", mountinfo.Mount{Dev: "9:0", FSType: "ext4", Source: "/dev/md0"}, []Need{
			{"fs-ext4", "root filesystem ext4", RootFS},
			{"md_mod", "root device chain (md0 ← md)", RootLayer},
			{"md-raid1", "root device chain (md0 ← md raid1)", RootLayer},
			{"virtio_blk", "root device chain (md0 ← " + chain + ")", RootDriver},
			{"virtio_pci", "root device chain (md0 ← vda1 ← vda ← 0000:00:04.0 ← virtio_pci)", RootDriver},
			{"virtio_blk", "root device chain (md0 ← vdb1 ← vdb ← virtio2 ← virtio_blk)", RootDriver},
			{"virtio_pci", "root device chain (md0 ← vdb1 ← vdb ← 0000:00:05.0 ← virtio_pci)", RootDriver},
		}, false},
		{"builtin driver", mountinfo.Mount{Dev: "8:1", FSType: "ext4", Source: "/dev/sda1"}, []Need{
			{"fs-ext4", "root filesystem ext4", RootFS},
			{"sd_mod", "root device chain (sda1 ← sda ← 0:0:0:0 ← sd_mod)", RootDriver},
			{"pci:v00008086d00002922sv00001AF4sd00001100bc01sc06i01", "root device chain (sda1 ← sda ← 0000:00:1f.2 ← driver ahci builtin, modalias)", RootModalias},
		}, false},
		{"nvme multipath", mountinfo.Mount{Dev: "259:1", FSType: "ext4", Source: "/dev/nvme0n1p1"}, []Need{
			{"fs-ext4", "root filesystem ext4", RootFS},
			{"nvme", "root device chain (nvme0n1p1 ← nvme0n1 ← nvme-subsys0 ← 0000:00:06.0 ← nvme)", RootDriver},
		}, false},
		{"unknown device", mountinfo.Mount{Dev: "7:0", FSType: "ext4", Source: "/dev/loop0"}, nil, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RootChain(Dirs{Sys: sys}, tc.root)
			if (err != nil) != tc.wantE {
				t.Fatalf("RootChain(%+v) error = %v, want error %v", tc.root, err, tc.wantE)
			}
			if !tc.wantE && !reflect.DeepEqual(got, tc.want) {
				t.Errorf("RootChain(%+v) =\n%s\nwant\n%s", tc.root, show(got), show(tc.want))
			}
		})
	}
}

func show(ns []Need) string {
	var b strings.Builder
	for _, n := range ns {
		b.WriteString("  " + n.Name + " | " + n.Reason + "\n")
	}
	return b.String()
}

func TestDetect(t *testing.T) {
	root := t.TempDir()
	proc := filepath.Join(root, "proc")
	write := func(p, c string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	sys := virtioDisk("vda", "virtio1", "0000:00:04.0", "254:1").write(t)
	if _, err := Detect(Dirs{Proc: proc, Sys: sys}); err == nil {
		t.Errorf("Detect with no proc/modules = nil error")
	}
	write(filepath.Join(proc, "modules"), "virtio_blk 1 0 - Live 0x0\nnot-here 1 0 - Live 0x0\n")
	if _, err := Detect(Dirs{Proc: proc, Sys: sys}); err == nil {
		t.Errorf("Detect with no mountinfo = nil error")
	}
	write(filepath.Join(proc, "1", "mountinfo"), "1 0 254:1 / / ro - ext4 /dev/vda1 ro\n")
	h, err := Detect(Dirs{Proc: proc, Sys: sys})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"virtio_blk", "not_here"}; !reflect.DeepEqual(h.Loaded, want) {
		t.Errorf("Detect: Loaded = %q, want %q", h.Loaded, want)
	}
	if got, want := h.Modules(Loaded, RootDriver), []string{"not_here", "virtio_blk", "virtio_pci"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Host.Modules(Loaded, RootDriver) = %q, want %q", got, want)
	}
	if h.Needs[0] != (Need{"virtio_blk", "loaded on host", Loaded}) || !slices.ContainsFunc(h.Needs, func(n Need) bool { return n.Kind == RootFS && n.Name == "fs-ext4" }) {
		t.Errorf("Detect: Needs = %+v", h.Needs)
	}
}
