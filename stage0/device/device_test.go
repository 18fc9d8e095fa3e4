package device

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testenv"
	"github.com/pkginitrd/pkginitrd/stage0/cmdline"
)

func run(t testing.TB, stdin, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func sparse(t testing.TB, p string, size int64) {
	t.Helper()
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

func write(t testing.TB, p, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// fakeBlock adds a block device to a fake sysfs: its directory under
// devices/ (partitions nested in their disk's, as the kernel does) and the
// class/block symlink.
type fakeBlock struct {
	name, devpath string // devpath relative to sys/devices
	devno         string
	sectors       int64
	partition     int
	dmName        string
	sectorSize    string
}

func (b fakeBlock) add(t testing.TB, sys string) {
	t.Helper()
	dir := filepath.Join(sys, "devices", b.devpath)
	write(t, filepath.Join(dir, "dev"), b.devno+"\n")
	write(t, filepath.Join(dir, "size"), itoa(b.sectors)+"\n")
	write(t, filepath.Join(dir, "ro"), "0\n")
	ue := "MAJOR=" + strings.Split(b.devno, ":")[0] + "\nDEVNAME=" + b.name + "\n"
	if b.partition != 0 {
		write(t, filepath.Join(dir, "partition"), itoa(int64(b.partition))+"\n")
		ue += "DEVTYPE=partition\n"
	} else {
		ue += "DEVTYPE=disk\n"
		ss := b.sectorSize
		if ss == "" {
			ss = "512"
		}
		write(t, filepath.Join(dir, "queue", "logical_block_size"), ss+"\n")
	}
	if b.dmName != "" {
		write(t, filepath.Join(dir, "dm", "name"), b.dmName+"\n")
	}
	write(t, filepath.Join(dir, "uevent"), ue)
	link := filepath.Join(sys, "class", "block", b.name)
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(filepath.Dir(link), dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(rel, link); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// fixture builds a fake /sys and /dev with real images behind the nodes:
//
//	vda    GPT disk: vda1 vfat "EFI" (PARTLABEL "EFI System"), vda2 ext4 "rootfs" (PARTLABEL "root fs")
//	sdb    MBR disk 0x1234abcd: sdb1 btrfs
//	vdc    whole-disk swap
//	dm-0   ext4 "mapped", /dev/mapper/cryptroot -> ../dm-0
//	loop0  empty (size 0), must be skipped
func fixture(t testing.TB) (sys, dev string) {
	t.Helper()
	root := t.TempDir()
	sys, dev = filepath.Join(root, "sys"), filepath.Join(root, "dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		t.Fatal(err)
	}
	const mib = 1 << 20
	sgdisk := testenv.NeedTool(t, "sgdisk", "gdisk")
	sfdisk := testenv.NeedTool(t, "sfdisk", "fdisk")

	sparse(t, filepath.Join(dev, "vda"), 64*mib)
	run(t, "", sgdisk,
		"-n", "1:2048:+16M", "-t", "1:ef00", "-c", "1:EFI System", "-u", "1:aaaaaaaa-bbbb-4ccc-9ddd-eeeeeeeeeeee",
		"-n", "2:0:0", "-c", "2:root fs", "-u", "2:6E2C3A1E-1111-4A2B-8C3D-0123456789AB", filepath.Join(dev, "vda"))
	sparse(t, filepath.Join(dev, "vda1"), 16*mib)
	run(t, "", testenv.NeedTool(t, "mkfs.vfat", "dosfstools"), "-F", "16", "-i", "1234abcd", "-n", "EFI", filepath.Join(dev, "vda1"))
	sparse(t, filepath.Join(dev, "vda2"), 32*mib)
	run(t, "", testenv.NeedTool(t, "mkfs.ext4", "e2fsprogs"), "-q", "-F", "-U", "3a1f5f0e-7a0e-4f0b-9d55-0a6c6c1f2b11", "-L", "rootfs", filepath.Join(dev, "vda2"))

	sparse(t, filepath.Join(dev, "sdb"), 200*mib)
	run(t, "label: dos\nlabel-id: 0x1234abcd\n,,83\n", sfdisk, "-q", filepath.Join(dev, "sdb"))
	sparse(t, filepath.Join(dev, "sdb1"), 150*mib)
	run(t, "", testenv.NeedTool(t, "mkfs.btrfs", "btrfs-progs"), "-q", "-f", "-U", "8c3d0e5f-2222-4333-9444-a55566667777", "-L", "data", filepath.Join(dev, "sdb1"))

	sparse(t, filepath.Join(dev, "vdc"), 16*mib)
	run(t, "", testenv.NeedTool(t, "mkswap", "util-linux"), "-U", "9d4e1f60-3333-4444-a555-b66677778888", filepath.Join(dev, "vdc"))

	sparse(t, filepath.Join(dev, "dm-0"), 32*mib)
	run(t, "", testenv.NeedTool(t, "mkfs.ext4", "e2fsprogs"), "-q", "-F", "-L", "mapped", "-U", "0b0b0b0b-7a0e-4f0b-9d55-0a6c6c1f2b11", filepath.Join(dev, "dm-0"))
	if err := os.MkdirAll(filepath.Join(dev, "mapper"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../dm-0", filepath.Join(dev, "mapper", "cryptroot")); err != nil {
		t.Fatal(err)
	}

	vda := "pci0000:00/0000:00:04.0/virtio1/block/vda"
	for _, b := range []fakeBlock{
		{name: "vda", devpath: vda, devno: "254:0", sectors: 64 * 2048},
		{name: "vda1", devpath: vda + "/vda1", devno: "254:1", sectors: 16 * 2048, partition: 1},
		{name: "vda2", devpath: vda + "/vda2", devno: "254:2", sectors: 32 * 2048, partition: 2},
		{name: "sdb", devpath: "pci0000:00/0000:00:05.0/host0/target0:0:0/0:0:0:0/block/sdb", devno: "8:16", sectors: 200 * 2048},
		{name: "sdb1", devpath: "pci0000:00/0000:00:05.0/host0/target0:0:0/0:0:0:0/block/sdb/sdb1", devno: "8:17", sectors: 150 * 2048, partition: 1},
		{name: "vdc", devpath: "pci0000:00/0000:00:06.0/virtio2/block/vdc", devno: "254:16", sectors: 16 * 2048},
		{name: "dm-0", devpath: "virtual/block/dm-0", devno: "253:0", sectors: 32 * 2048, dmName: "cryptroot"},
		{name: "loop0", devpath: "virtual/block/loop0", devno: "7:0", sectors: 0},
	} {
		b.add(t, sys)
	}
	return sys, dev
}

func TestScan(t *testing.T) {
	sys, dev := fixture(t)
	devs, err := Scan(sys, dev)
	if err != nil {
		t.Fatalf("Scan = %v", err)
	}
	type row struct {
		Name, Node, Parent, Type, UUID, Label, PartUUID, PartLabel, PTType string
		Part                                                               int
	}
	var got []row
	for _, d := range devs {
		if d.Err != nil {
			t.Errorf("Scan: %s: %v", d.Name, d.Err)
		}
		r := row{Name: d.Name, Node: strings.TrimPrefix(d.Node, dev), Parent: d.Parent, Part: d.Partition, PartUUID: d.PartUUID(), PartLabel: d.PartLabel()}
		if d.Info != nil {
			r.Type, r.UUID, r.Label = d.Info.Type, d.Info.UUID, d.Info.Label
		}
		if d.Table != nil {
			r.PTType = d.Table.Type
		}
		got = append(got, r)
	}
	want := []row{
		{Name: "dm-0", Node: "/dm-0", Type: "ext4", UUID: "0b0b0b0b-7a0e-4f0b-9d55-0a6c6c1f2b11", Label: "mapped"},
		{Name: "sdb", Node: "/sdb", PTType: "dos"},
		{Name: "sdb1", Node: "/sdb1", Parent: "sdb", Part: 1, Type: "btrfs", UUID: "8c3d0e5f-2222-4333-9444-a55566667777", Label: "data", PartUUID: "1234abcd-01"},
		{Name: "vda", Node: "/vda", PTType: "gpt"},
		{Name: "vda1", Node: "/vda1", Parent: "vda", Part: 1, Type: "vfat", UUID: "1234-ABCD", Label: "EFI", PartUUID: "aaaaaaaa-bbbb-4ccc-9ddd-eeeeeeeeeeee", PartLabel: "EFI System"},
		{Name: "vda2", Node: "/vda2", Parent: "vda", Part: 2, Type: "ext4", UUID: "3a1f5f0e-7a0e-4f0b-9d55-0a6c6c1f2b11", Label: "rootfs", PartUUID: "6e2c3a1e-1111-4a2b-8c3d-0123456789ab", PartLabel: "root fs"},
		{Name: "vdc", Node: "/vdc", Type: "swap", UUID: "9d4e1f60-3333-4444-a555-b66677778888"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Scan =\n%+v\nwant\n%+v", got, want)
	}
	if s := devs[5].String(); !strings.Contains(s, "vda2 (254:2, 32.0 MiB) TYPE=ext4 UUID=3a1f5f0e") || !strings.Contains(s, `PARTLABEL="root fs"`) {
		t.Errorf("Device.String() = %q", s)
	}
}

func TestResolve(t *testing.T) {
	testenv.NeedRoot(t, "mknod of a block device")
	sys, dev := fixture(t)
	devs, err := Scan(sys, dev)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("vda2", filepath.Join(dev, "root")); err != nil {
		t.Fatal(err)
	}
	// A real block node named differently from the kernel: matched by rdev.
	if err := syscall.Mknod(filepath.Join(dev, "altname"), syscall.S_IFBLK|0o600, int(253<<8)); err != nil {
		t.Fatalf("mknod block device (the test runs as root): %v", err)
	}
	for _, tc := range []struct {
		ref  string
		want string // device name, "" for no match
	}{
		{"UUID=3a1f5f0e-7a0e-4f0b-9d55-0a6c6c1f2b11", "vda2"},
		{"UUID=3A1F5F0E-7A0E-4F0B-9D55-0A6C6C1F2B11", "vda2"},
		{"UUID=1234-abcd", "vda1"},
		{"UUID=00000000-0000-0000-0000-000000000000", ""},
		{"LABEL=rootfs", "vda2"},
		{"LABEL=ROOTFS", ""},
		{"LABEL=data", "sdb1"},
		{"PARTUUID=6e2c3a1e-1111-4a2b-8c3d-0123456789ab", "vda2"},
		{"PARTUUID=AAAAAAAA-BBBB-4CCC-9DDD-EEEEEEEEEEEE/PARTNROFF=1", "vda2"},
		{"PARTUUID=1234abcd-01", "sdb1"},
		{"PARTLABEL=root fs", "vda2"},
		{"PARTLABEL=EFI System", "vda1"},
		{"/dev/vda2", "vda2"},
		{"/dev/vdz", ""},
		{"/dev/disk/by-label/rootfs", "vda2"},
		{`/dev/disk/by-partlabel/root\x20fs`, "vda2"},
		{"/dev/disk/by-uuid/9d4e1f60-3333-4444-a555-b66677778888", "vdc"},
		{"/dev/mapper/cryptroot", "dm-0"},
		{"/dev/root", "vda2"},
		{"/dev/altname", "dm-0"},
		{"254:2", "vda2"},
		{"8:17", "sdb1"},
	} {
		ref, err := cmdline.ParseDeviceRef(tc.ref)
		if err != nil {
			t.Fatalf("ParseDeviceRef(%q) = %v", tc.ref, err)
		}
		d, err := Resolve(dev, devs, ref)
		if err != nil {
			t.Errorf("Resolve(%q) error %v", tc.ref, err)
			continue
		}
		got := ""
		if d != nil {
			got = d.Name
		}
		if got != tc.want {
			t.Errorf("Resolve(%q) = %q, want %q", tc.ref, got, tc.want)
		}
	}
	for _, bad := range []string{"", "live:LABEL=x"} {
		ref, _ := cmdline.ParseDeviceRef(bad)
		if d, err := Resolve(dev, devs, ref); err == nil {
			t.Errorf("Resolve(%q) = %v, nil; want an error", bad, d)
		}
	}
}

func TestFindBootLabelFallback(t *testing.T) {
	sys, dev := fixture(t)
	devs, err := Scan(sys, dev)
	if err != nil {
		t.Fatal(err)
	}
	for i := range devs {
		if devs[i].Name == "vda1" {
			devs[i].Info.LabelFATBoot = devs[i].Info.Label
			devs[i].Info.Label = ""
		}
	}
	if m := Find(devs, cmdline.DeviceRef{Kind: cmdline.Label, Value: "EFI"}); len(m) != 1 || m[0].Name != "vda1" {
		t.Errorf("Find(LABEL=EFI) with only a boot-sector label = %v, want vda1", m)
	}
}

func readLinks(t *testing.T, dev string) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := filepath.Walk(filepath.Join(dev, "disk"), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dev, p)
			got[rel] = target
			// The link must resolve to the node.
			if _, err := os.Stat(p); err != nil {
				t.Errorf("link %s -> %s dangles: %v", rel, target, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestLink(t *testing.T) {
	sys, dev := fixture(t)
	devs, err := Scan(sys, dev)
	if err != nil {
		t.Fatal(err)
	}
	// A stale link from an earlier call and a label that needs escaping.
	write(t, filepath.Join(dev, "disk", "by-uuid", "placeholder"), "")
	for i := range devs {
		if devs[i].Name == "sdb1" {
			devs[i].Info.Label = "my data/1"
		}
	}
	if err := Link(dev, devs); err != nil {
		t.Fatalf("Link = %v", err)
	}
	want := map[string]string{
		"disk/by-uuid/0b0b0b0b-7a0e-4f0b-9d55-0a6c6c1f2b11":     "../../dm-0",
		"disk/by-uuid/1234-ABCD":                                "../../vda1",
		"disk/by-uuid/3a1f5f0e-7a0e-4f0b-9d55-0a6c6c1f2b11":     "../../vda2",
		"disk/by-uuid/8c3d0e5f-2222-4333-9444-a55566667777":     "../../sdb1",
		"disk/by-uuid/9d4e1f60-3333-4444-a555-b66677778888":     "../../vdc",
		"disk/by-label/mapped":                                  "../../dm-0",
		"disk/by-label/EFI":                                     "../../vda1",
		"disk/by-label/rootfs":                                  "../../vda2",
		`disk/by-label/my\x20data\x2f1`:                         "../../sdb1",
		"disk/by-partuuid/aaaaaaaa-bbbb-4ccc-9ddd-eeeeeeeeeeee": "../../vda1",
		"disk/by-partuuid/6e2c3a1e-1111-4a2b-8c3d-0123456789ab": "../../vda2",
		"disk/by-partuuid/1234abcd-01":                          "../../sdb1",
		`disk/by-partlabel/EFI\x20System`:                       "../../vda1",
		`disk/by-partlabel/root\x20fs`:                          "../../vda2",
	}
	if got := readLinks(t, dev); !reflect.DeepEqual(got, want) {
		t.Errorf("Link made\n%v\nwant\n%v", sorted(got), sorted(want))
	}

	// vda disappears: its links go, the others stay; calling again is a no-op.
	var rest []Device
	for _, d := range devs {
		if d.Name != "vda1" && d.Name != "vda2" && d.Name != "vda" {
			rest = append(rest, d)
		}
	}
	for i := 0; i < 2; i++ {
		if err := Link(dev, rest); err != nil {
			t.Fatalf("Link(after removal) = %v", err)
		}
	}
	got := readLinks(t, dev)
	for k := range want {
		if strings.Contains(want[k], "vda") {
			delete(want, k)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Link after removal made\n%v\nwant\n%v", sorted(got), sorted(want))
	}
}

func sorted(m map[string]string) []string {
	var s []string
	for k, v := range m {
		s = append(s, k+" -> "+v)
	}
	sort.Strings(s)
	return s
}

// BenchmarkScanAndResolve is the work done on every block uevent while
// waiting for the root: list, probe, link, resolve.
func BenchmarkScanAndResolve(b *testing.B) {
	sys, dev := fixture(b)
	ref, _ := cmdline.ParseDeviceRef("PARTLABEL=root fs")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		devs, err := Scan(sys, dev)
		if err != nil {
			b.Fatal(err)
		}
		if err := Link(dev, devs); err != nil {
			b.Fatal(err)
		}
		if d, _ := Resolve(dev, devs, ref); d == nil {
			b.Fatal("root not found")
		}
	}
}
