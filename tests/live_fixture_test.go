package tests

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// liveReport are the extra lines the live fixture root's init prints
// before "done": whether / is writable, what is mounted where the live
// root promises things, what the persistent file held (then it writes
// it), and whether a write larger than a small tmpfs upper fails.
const liveReport = `$bb echo "` + marker + ` write=$($bb touch /pkginitrd-write-test 2>/dev/null && $bb echo ok || $bb echo fail)"
for d in /run/initramfs/live /run/rootfsbase /run/initramfs/overlay /run/initramfs/overlayfs; do
  $bb echo "` + marker + ` mount $d=$($bb awk -v d=$d '$2==d{print $3}' /proc/mounts | $bb tail -n1)"
done
$bb echo "` + marker + ` lower opts=$($bb awk '$2=="/run/rootfsbase"{print $4}' /proc/mounts | $bb tail -n1)"
$bb echo "` + marker + ` tmpfs size=$($bb awk '$2=="/run/initramfs/overlay"{print $4}' /proc/mounts | $bb tail -n1 | $bb tr , '\n' | $bb grep '^size=')"
$bb echo "` + marker + ` loop backing=$($bb cat /sys/block/loop*/loop/backing_file 2>/dev/null | $bb tr '\n' ' ')"
[ -f /run/initramfs/squashed.img ] && $bb echo "` + marker + ` ramcopy=yes"
$bb echo "` + marker + ` persist=$($bb cat /persist.txt 2>/dev/null || $bb echo none)"
$bb echo "written-by-first-boot" > /persist.txt && $bb sync
if $bb grep -q pkgtest.bigwrite /proc/cmdline; then
  $bb echo "` + marker + ` bigwrite=$($bb dd if=/dev/zero of=/big bs=1M count=16 2>/dev/null && $bb echo ok || $bb echo fail)"
fi
`

// liveRoot is fixtureRoot with liveReport added to its init.
func liveRoot(t *testing.T) string {
	t.Helper()
	return fixtureRootWith(t, liveReport)
}

// makeSquashfs packs root into a squashfs image.
func makeSquashfs(t *testing.T, root string) string {
	t.Helper()
	if _, err := exec.LookPath("mksquashfs"); err != nil {
		t.Fatal("live tests need mksquashfs (apt-get install squashfs-tools)")
	}
	img := filepath.Join(t.TempDir(), "root.squashfs")
	run(t, "mksquashfs", root, img, "-noappend", "-quiet", "-all-root", "-no-progress")
	return img
}

// garbage writes n random bytes: a "squashfs" no kernel will mount.
func garbage(t *testing.T, n int) string {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	p := filepath.Join(t.TempDir(), "garbage.img")
	writeFile(t, p, b, 0o644)
	return p
}

// isoDate fixes the ISO's creation time, hence its UUID (isoUUID).
const (
	isoDate = "2024010203040500"
	isoUUID = "2024-01-02-03-04-05-00"
)

// makeISO writes an iso9660 image with volume label label; files maps
// paths in the image to host files.
func makeISO(t *testing.T, label string, files map[string]string) string {
	t.Helper()
	if _, err := exec.LookPath("xorriso"); err != nil {
		t.Fatal("live tests need xorriso (apt-get install xorriso)")
	}
	iso := filepath.Join(t.TempDir(), "live.iso")
	args := []string{"-as", "mkisofs", "-quiet", "-R", "-J", "-V", label, "--modification-date=" + isoDate, "-o", iso, "-graft-points"}
	for dst, src := range files {
		args = append(args, dst+"="+src)
	}
	if len(files) == 0 {
		empty := t.TempDir()
		args = append(args, "README="+writeTemp(t, empty, "README", "no image here\n"))
	}
	run(t, "xorriso", args...)
	return iso
}

func writeTemp(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	writeFile(t, p, []byte(content), 0o644)
	return p
}

// makeVfat makes a FAT32 image labelled label holding files (name → host
// path) at its top level.
func makeVfat(t *testing.T, label string, sizeMB int64, files map[string]string) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "vfat.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(sizeMB << 20); err != nil {
		t.Fatal(err)
	}
	f.Close()
	run(t, "mkfs.vfat", "-F", "32", "-n", label, img)
	for name, src := range files {
		run(t, "mcopy", "-i", img, src, "::/"+name)
	}
	return img
}

// dirWith returns a temporary directory holding files (name → host path),
// for makeFS.
func dirWith(t *testing.T, files map[string]string) string {
	t.Helper()
	d := t.TempDir()
	for name, src := range files {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(d, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(d, name), b, 0o644)
	}
	return d
}

// cdrom returns the qemu arguments attaching iso as an IDE CD-ROM (sr0).
func cdrom(iso string) []string {
	return []string{"-drive", "file=" + iso + ",media=cdrom,if=ide,readonly=on"}
}
