package tests

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pkginitrd/pkginitrd/internal/testdeb"
)

// marker is printed by the fixture root's init; tests assert on its lines.
const marker = "PKGINITRD-E2E:"

// rootInit is the fixture root's /sbin/init: it reports what the real root
// sees after stage0 handed over, then powers off.
const rootInit = `#!/bin/busybox sh
export PATH=/bin
bb=/bin/busybox
$bb echo "` + marker + ` pid=$$"
$bb echo "` + marker + ` root=$($bb awk '$2=="/"{print $1" "$3" "$4}' /proc/mounts | $bb tail -n1)"
$bb echo "` + marker + ` rootpath=$($bb awk '$5=="/"{print $4}' /proc/self/mountinfo | $bb tail -n1)"
for d in /dev /proc /sys /run; do
  $bb echo "` + marker + ` mount $d=$($bb awk -v d=$d '$2==d{print $3}' /proc/mounts | $bb tail -n1)"
done
[ -s /run/initramfs/boot.log ] && $bb echo "` + marker + ` bootlog=yes"
$bb echo "` + marker + ` args=$*"
$bb echo "` + marker + ` done"
$bb poweroff -f
`

// fixtureRoot makes a minimal root tree: Debian's static busybox and the
// marker init. name distinguishes roots in console output.
func fixtureRoot(t *testing.T) string {
	t.Helper()
	deb := testdeb.Deb(t, "busybox-static")
	x := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "-x", deb, x).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x %s: %v\n%s", deb, err, out)
	}
	root := t.TempDir()
	for _, d := range []string{"bin", "sbin", "dev", "proc", "sys", "run", "tmp", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	bb, err := os.ReadFile(filepath.Join(x, "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(root, "bin", "busybox"), bb, 0o755)
	writeFile(t, filepath.Join(root, "sbin", "init"), []byte(rootInit), 0o755)
	return root
}

// fixtureRootWith is fixtureRoot whose init also runs script just before it
// reports "done" (extra report lines, recording the guest, ...).
func fixtureRootWith(t *testing.T, script string) string {
	t.Helper()
	root := fixtureRoot(t)
	done := `$bb echo "` + marker + ` done"`
	if !strings.Contains(rootInit, done) {
		t.Fatalf("rootInit has no %q line to insert a script before", done)
	}
	writeFile(t, filepath.Join(root, "sbin", "init"), []byte(strings.Replace(rootInit, done, script+done, 1)), 0o755)
	return root
}

func writeFile(t *testing.T, p string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// fsSpec describes a root filesystem to make.
type fsSpec struct {
	fstype string // ext4, xfs, btrfs
	uuid   string
	label  string
	sizeMB int64
}

// makeFS writes a filesystem image containing root and returns its path.
func makeFS(t *testing.T, root string, s fsSpec) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), s.fstype+".img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(s.sizeMB << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	switch s.fstype {
	case "ext4":
		run(t, "mkfs.ext4", "-q", "-F", "-U", s.uuid, "-L", s.label, "-d", root, img)
	case "xfs":
		proto := filepath.Join(t.TempDir(), "proto")
		writeFile(t, proto, []byte(xfsProto(t, root)), 0o644)
		run(t, "mkfs.xfs", "-q", "-f", "-m", "uuid="+s.uuid, "-L", s.label, "-p", proto, img)
	case "btrfs":
		run(t, "mkfs.btrfs", "-q", "-f", "-U", s.uuid, "-L", s.label, "--rootdir", root, img)
	default:
		t.Fatalf("makeFS: unknown type %s", s.fstype)
	}
	return img
}

// xfsProto renders root as an mkfs.xfs protofile (see mkfs.xfs(8) -p).
func xfsProto(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("/dev/null\n0 0\nd--755 0 0\n")
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			p := filepath.Join(dir, e.Name())
			info, err := os.Lstat(p)
			if err != nil {
				t.Fatal(err)
			}
			perm := fmt.Sprintf("%03o", info.Mode().Perm())
			switch {
			case info.IsDir():
				fmt.Fprintf(&b, "%s d--%s 0 0\n", e.Name(), perm)
				walk(p, depth+1)
				b.WriteString("$\n")
			case info.Mode().IsRegular():
				fmt.Fprintf(&b, "%s ---%s 0 0 %s\n", e.Name(), perm, p)
			default:
				t.Fatalf("xfsProto: %s: unsupported type", p)
			}
		}
	}
	walk(root, 0)
	b.WriteString("$\n")
	return b.String()
}

// partSpec is one GPT partition of a fixture disk.
type partSpec struct {
	label string // PARTLABEL
	uuid  string // PARTUUID
	image string // contents (a filesystem image), or "" for an empty partition
	// sizeMB is the size of an empty partition (default 1 MiB).
	sizeMB int64
}

// makeDisk assembles a GPT disk from partition images.
func makeDisk(t *testing.T, parts ...partSpec) string {
	t.Helper()
	const sector = 512
	start := int64(2048) // 1 MiB alignment
	type placed struct {
		partSpec
		first, last int64
	}
	var ps []placed
	for _, p := range parts {
		size := int64(1 << 20)
		if p.sizeMB > 0 {
			size = p.sizeMB << 20
		}
		if p.image != "" {
			info, err := os.Stat(p.image)
			if err != nil {
				t.Fatal(err)
			}
			size = info.Size()
		}
		n := (size + sector - 1) / sector
		ps = append(ps, placed{p, start, start + n - 1})
		start += (n + 2047) / 2048 * 2048
	}
	disk := filepath.Join(t.TempDir(), "disk.img")
	f, err := os.Create(disk)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate((start + 2048) * sector); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.image == "" {
			continue
		}
		src, err := os.Open(p.image)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.Copy(io.NewOffsetWriter(f, p.first*sector), src)
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	f.Close()
	args := []string{"-o"}
	for i, p := range ps {
		n := i + 1
		args = append(args, fmt.Sprintf("-n%d:%d:%d", n, p.first, p.last), fmt.Sprintf("-c%d:%s", n, p.label))
		if p.uuid != "" {
			args = append(args, fmt.Sprintf("-u%d:%s", n, p.uuid))
		}
	}
	run(t, "sgdisk", append(args, disk)...)
	return disk
}

// isDMSource reports whether a mount source names a device-mapper device:
// /dev/dm-N, /dev/mapper/NAME or an LV's /dev/VG/LV (stage0 mounts by the
// path the command line or fstab named).
func isDMSource(src string) bool {
	if strings.HasPrefix(src, "/dev/dm-") || strings.HasPrefix(src, "/dev/mapper/") {
		return true
	}
	vg, lv, ok := strings.Cut(strings.TrimPrefix(src, "/dev/"), "/")
	return ok && strings.HasPrefix(src, "/dev/") && vg != "disk" && lv != "" && !strings.Contains(lv, "/")
}
