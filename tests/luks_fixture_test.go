package tests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// Fixture identities of the device-mapper tests.
const (
	luksPassphrase = "pkginitrd-test"
	luksUUID       = "3f1c6a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
	lvmLuksUUID    = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
	luks1UUID      = "1d2e3f40-5162-4738-894a-5b6c7d8e9f01"
	luksLVMUUID    = "c0ffee00-1234-4abc-9def-0123456789ab"
)

// dmDisks are raw disks holding the fixture root (ext4, rootUUID) behind
// device-mapper layers. Every test gets its own copies: they may be written.
type dmDisks struct {
	luks    string // LUKS2 (luksUUID, luksPassphrase) around the filesystem
	lvm     string // PV of VG "vg" with LV "root" holding the filesystem
	lvmLuks string // LUKS2 (lvmLuksUUID) around a PV of VG "vgc", LV "root"
	luks1   string // LUKS1 (luks1UUID) around the filesystem
	luksLVM string // PV of VG "vgl" whose LV "root" is LUKS2 (luksLVMUUID) around the filesystem
}

// emptyDisk makes a sparse raw disk of sizeMB.
func emptyDisk(t *testing.T, name string, sizeMB int64) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(sizeMB << 20); err != nil {
		t.Fatal(err)
	}
	return p
}

// dmFixtureScript formats the disks in the helper VM: vda luks, vdb lvm,
// vdc lvmLuks, vdd the ext4 image to copy in, vde luks1, vdf luksLVM.
func dmFixtureScript() string {
	return strings.Join([]string{
		`export DM_DISABLE_UDEV=1 P=` + luksPassphrase + ` C='activation{udev_sync=0 udev_rules=0} devices{use_devicesfile=0 obtain_device_list_from_udev=0} backup{backup=0 archive=0}'`,
		`luks() { echo -n $P | cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --disable-locks --uuid $2 --key-file=- $1 && echo -n $P | cryptsetup open --disable-locks --key-file=- $1 $3; }`,
		`luks1() { echo -n $P | cryptsetup luksFormat --batch-mode --type luks1 --pbkdf-force-iterations 1000 --disable-locks --uuid $2 --key-file=- $1 && echo -n $P | cryptsetup open --disable-locks --key-file=- $1 $3; }`,
		`lv() { lvm pvcreate --config "$C" $1 && lvm vgcreate --config "$C" $2 $1 && lvm lvcreate --config "$C" -Wn -Zn -y -n root -L ${3:-16m} $2; }`,
		`copy() { busybox dd if=/dev/vdd of=$1 bs=1M 2>/dev/null; }`,
		`luks /dev/vda ` + luksUUID + ` x && copy /dev/mapper/x && cryptsetup close x` +
			` && lv /dev/vdb vg && copy /dev/vg/root && lvm vgchange --config "$C" -an vg` +
			` && luks /dev/vdc ` + lvmLuksUUID + ` y && lv /dev/mapper/y vgc && copy /dev/vgc/root && lvm vgchange --config "$C" -an vgc && cryptsetup close y` +
			` && luks1 /dev/vde ` + luks1UUID + ` z && copy /dev/mapper/z && cryptsetup close z` +
			` && lv /dev/vdf vgl 36m && luks /dev/vgl/root ` + luksLVMUUID + ` w && copy /dev/mapper/w && cryptsetup close w && lvm vgchange --config "$C" -an vgl` +
			` && busybox sync && echo FIXTURE-$((6*7)) || echo FIXTURE-FAIL$((0+1))`,
	}, "\n") + "\n"
}

type diskSize struct {
	name   string
	sizeMB int64
}

// dmDiskSizes are the fixture disks, in the helper VM's order (vdd, the
// filesystem to copy, sits between lvmLuks and luks1), with their sizes.
func dmDiskSizes() []diskSize {
	return []diskSize{{"luks.img", 40}, {"lvm.img", 24}, {"lvm-luks.img", 48}, {"luks1.img", 24}, {"luks-lvm.img", 48}}
}

// makeDMDisksFrom builds the LUKS, LVM and LVM-on-LUKS disks without
// device-mapper on the host: the ext4 image is made here and attached as a
// fourth disk to a helper VM (a --generic pkginitrd image, which carries
// cryptsetup and lvm), and the test types the commands that format the
// other three and copy the filesystem in into its emergency shell. The
// LUKS key derivation is cheap PBKDF2 so that unlocking is quick under TCG.
// The filesystem holds root (fixtureRoot, or a fixtureRootWith tree). The disks are made once per
// (script, root tree, kernel) and cached under the test cache's fixtures/
// directory; each call returns fresh copies.
func makeDMDisksFrom(t *testing.T, e *env, root string) dmDisks {
	t.Helper()
	kernel, initrd := buildImage(t, e, "--generic")
	script := dmFixtureScript()
	h := sha256.New()
	fmt.Fprintf(h, "dm-fixtures v1\n%s\n%v\nroot %s\n", script, dmDiskSizes(), treeHash(t, root))
	fmt.Fprintf(h, "kernel %s\n", fileHash(t, kernel))
	dir := filepath.Join(fixtureCacheDir(e), "dm-"+hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, "done")); err != nil {
		buildDMDisks(t, kernel, initrd, root, script, dir)
		pruneFixtures(t, filepath.Dir(dir), "dm-", 14*24*time.Hour)
	} else {
		t.Logf("LUKS/LVM fixtures from the cache %s", dir)
		now := time.Now()
		os.Chtimes(filepath.Join(dir, "done"), now, now) // marks it used, for pruneFixtures
	}
	out := make([]string, len(dmDiskSizes()))
	for i, d := range dmDiskSizes() {
		out[i] = filepath.Join(t.TempDir(), d.name)
		copySparse(t, filepath.Join(dir, d.name), out[i])
	}
	return dmDisks{luks: out[0], lvm: out[1], lvmLuks: out[2], luks1: out[3], luksLVM: out[4]}
}

// fixtureCacheDir is where formatted fixture disks are kept between runs.
func fixtureCacheDir(e *env) string {
	return filepath.Join(filepath.Dir(e.cacheDir), "fixtures")
}

// buildDMDisks runs the helper VM and stores the disks in dir (atomically:
// built in a temporary directory renamed into place).
func buildDMDisks(t *testing.T, kernel, initrd, root, script, dir string) {
	t.Helper()
	fsImg := makeFS(t, root, fsSpec{"ext4", rootUUID, "pkgroot", 16})
	var disks []string
	for _, d := range dmDiskSizes() {
		disks = append(disks, emptyDisk(t, d.name, d.sizeMB))
	}
	// vda..vdc, vdd = the filesystem, vde, vdf.
	vmDisks := append(append(append([]string(nil), disks[:3]...), fsImg), disks[3:]...)
	v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, disks: vmDisks,
		cmdline: "root=LABEL=no-such-root rd.timeout=1 rd.luks=0 rd.lvm=0 rd.modules-load=dm_crypt,xts,algif_skcipher,algif_hash"})
	v.expect(`(?i)emergency shell`, bootTimeout)
	time.Sleep(2 * time.Second)
	v.send(script)
	if m := v.expect(`FIXTURE-(42|FAIL1)`, 6*time.Minute); m[1] != "42" {
		t.Fatal("making the LUKS/LVM fixtures failed in the helper VM (see the console output)")
	}
	v.send("busybox poweroff -f\n")
	v.waitExit(time.Minute)

	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-dm-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, d := range dmDiskSizes() {
		copySparse(t, disks[i], filepath.Join(tmp, d.name))
	}
	writeFile(t, filepath.Join(tmp, "done"), []byte(script), 0o644)
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "done")); serr != nil {
			t.Fatalf("store the fixtures in %s: %v", dir, err)
		} // another process stored the same fixtures first
	}
	t.Logf("LUKS/LVM fixtures stored in %s", dir)
}

// pruneFixtures removes the cached fixture directories named prefix* whose
// "done" file was not touched (made or used) for maxAge: those of older
// scripts, roots and kernels.
func pruneFixtures(t *testing.T, cache, prefix string, maxAge time.Duration) {
	t.Helper()
	old, _ := filepath.Glob(filepath.Join(cache, prefix+"*"))
	for _, d := range old {
		if info, err := os.Stat(filepath.Join(d, "done")); err == nil && time.Since(info.ModTime()) > maxAge {
			if err := os.RemoveAll(d); err != nil {
				t.Logf("prune the old fixtures %s: %v", d, err)
			}
		}
	}
}

// treeHash hashes what a filesystem made from root contains: paths, types,
// permissions, file contents and link targets (not times, which differ on
// every run).
func treeHash(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	var paths []string
	err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		t.Fatalf("hash %s: %v", root, err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		info, err := os.Lstat(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(h, "%s %v\n", rel, info.Mode())
		switch {
		case info.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(h, "%d\n", len(b))
			h.Write(b)
		case info.Mode()&fs.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			fmt.Fprintf(h, "-> %s\n", target)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

func fileHash(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatalf("hash %s: %v", p, err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// copySparse copies a raw disk image, leaving blocks of zeros as holes.
func copySparse(t *testing.T, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(dst)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	buf := make([]byte, 64<<10)
	zero := make([]byte, len(buf))
	for off := int64(0); ; {
		n, err := io.ReadFull(in, buf)
		if n > 0 && !bytes.Equal(buf[:n], zero[:n]) {
			if _, werr := out.WriteAt(buf[:n], off); werr != nil {
				t.Fatalf("copy %s to %s: %v", src, dst, werr)
			}
		}
		off += int64(n)
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			t.Fatalf("copy %s: %v", src, err)
		}
	}
	if err := out.Truncate(info.Size()); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatalf("copy to %s: %v", dst, err)
	}
}
