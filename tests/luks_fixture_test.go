package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Fixture identities of the device-mapper tests.
const (
	luksPassphrase = "pkginitrd-test"
	luksUUID       = "3f1c6a2e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
	lvmLuksUUID    = "7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c0d"
)

// dmDisks are raw disks holding the fixture root (ext4, rootUUID) behind
// device-mapper layers.
type dmDisks struct {
	luks    string // LUKS2 (luksUUID, luksPassphrase) around the filesystem
	lvm     string // PV of VG "vg" with LV "root" holding the filesystem
	lvmLuks string // LUKS2 (lvmLuksUUID) around a PV of VG "vgc", LV "root"
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

// makeDMDisks builds the LUKS, LVM and LVM-on-LUKS disks without
// device-mapper on the host: the ext4 image is made here and attached as a
// fourth disk to a helper VM (a --generic pkginitrd image, which carries
// cryptsetup and lvm), and the test types the commands that format the
// other three and copy the filesystem in into its emergency shell. The
// LUKS key derivation is cheap PBKDF2 so that unlocking is quick under TCG.
func makeDMDisks(t *testing.T, e *env) dmDisks {
	t.Helper()
	return makeDMDisksFrom(t, e, fixtureRoot(t))
}

// makeDMDisksFrom is makeDMDisks with the filesystem holding root (a
// fixtureRootWith tree, for instance).
func makeDMDisksFrom(t *testing.T, e *env, root string) dmDisks {
	t.Helper()
	fs := makeFS(t, root, fsSpec{"ext4", rootUUID, "pkgroot", 16})
	d := dmDisks{
		luks:    emptyDisk(t, "luks.img", 40),
		lvm:     emptyDisk(t, "lvm.img", 24),
		lvmLuks: emptyDisk(t, "lvm-luks.img", 48),
	}
	kernel, initrd := buildImage(t, e, "--generic")
	v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, disks: []string{d.luks, d.lvm, d.lvmLuks, fs},
		cmdline: "root=LABEL=no-such-root rd.timeout=1 rd.luks=0 rd.lvm=0 rd.modules-load=dm_crypt,xts,algif_skcipher,algif_hash"})
	v.expect(`(?i)emergency shell`, bootTimeout)
	time.Sleep(2 * time.Second)
	script := []string{
		`export DM_DISABLE_UDEV=1 P=` + luksPassphrase + ` C='activation{udev_sync=0 udev_rules=0} devices{use_devicesfile=0 obtain_device_list_from_udev=0} backup{backup=0 archive=0}'`,
		`luks() { echo -n $P | cryptsetup luksFormat --batch-mode --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --disable-locks --uuid $2 --key-file=- $1 && echo -n $P | cryptsetup open --disable-locks --key-file=- $1 $3; }`,
		`lv() { lvm pvcreate --config "$C" $1 && lvm vgcreate --config "$C" $2 $1 && lvm lvcreate --config "$C" -Wn -Zn -y -n root -L 16m $2; }`,
		`copy() { busybox dd if=/dev/vdd of=$1 bs=1M 2>/dev/null; }`,
		`luks /dev/vda ` + luksUUID + ` x && copy /dev/mapper/x && cryptsetup close x` +
			` && lv /dev/vdb vg && copy /dev/vg/root && lvm vgchange --config "$C" -an vg` +
			` && luks /dev/vdc ` + lvmLuksUUID + ` y && lv /dev/mapper/y vgc && copy /dev/vgc/root && lvm vgchange --config "$C" -an vgc && cryptsetup close y` +
			` && busybox sync && echo FIXTURE-$((6*7)) || echo FIXTURE-FAIL$((0+1))`,
	}
	v.send(strings.Join(script, "\n") + "\n")
	if m := v.expect(`FIXTURE-(42|FAIL1)`, 4*time.Minute); m[1] != "42" {
		t.Fatal("making the LUKS/LVM fixtures failed in the helper VM (see the console output)")
	}
	v.send("busybox poweroff -f\n")
	v.waitExit(time.Minute)
	return d
}
