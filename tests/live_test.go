package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/internal/blkid"
)

const liveLabel = "PKGLIVE"

// liveWant are the facts a live boot must report; "" values must be absent
// or empty, "*" any non-empty value.
type liveWant map[string]string

func checkLive(t *testing.T, got map[string]string, want liveWant) {
	t.Helper()
	t.Logf("root: %s; upper tmpfs: %s; lower: %s; medium: %s; loop: %s", got["root"], got["mount /run/initramfs/overlay"], got["mount /run/rootfsbase"], got["mount /run/initramfs/live"], got["loop backing"])
	if f := strings.Fields(got["root"]); len(f) < 2 || f[1] != "overlay" {
		t.Errorf("root mount = %q, want an overlay", got["root"])
	}
	if lo := got["lower opts"]; lo != "ro" && !strings.HasPrefix(lo, "ro,") {
		t.Errorf("lower layer /run/rootfsbase mounted with %q, want read-only", lo)
	}
	if got["write"] != "ok" {
		t.Errorf("root reports write=%q, want ok (the overlay root must be writable)", got["write"])
	}
	for k, w := range want {
		switch g := got[k]; {
		case w == "*" && g == "":
			t.Errorf("root reports %s=%q, want a value", k, g)
		case w != "*" && g != w:
			t.Errorf("root reports %s=%q, want %q", k, g, w)
		}
	}
}

func TestLiveBoot(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	root := liveRoot(t)
	sq := makeSquashfs(t, root)
	iso := makeISO(t, liveLabel, map[string]string{"LiveOS/squashfs.img": sq})
	isoCustom := makeISO(t, liveLabel, map[string]string{"images/root.sfs": sq})
	partExt4 := makeDisk(t, partSpec{label: "spare"}, partSpec{label: "stick", image: makeFS(t, dirWith(t, map[string]string{"root-fs.squashfs": sq}), fsSpec{"ext4", rootUUID, "THIS-LAND", 32})})
	partVfat := makeDisk(t, partSpec{label: "stick", image: makeVfat(t, "THIS-LAND", 40, map[string]string{"root-fs.squashfs": sq})})

	onISO := liveWant{"mount /run/initramfs/live": "iso9660", "mount /run/rootfsbase": "squashfs", "mount /run/initramfs/overlay": "tmpfs"}
	cases := []struct {
		name    string
		cmdline string
		iso     string
		disks   []string
		want    liveWant
	}{
		{"cdlabel", "root=live:CDLABEL=" + liveLabel + " rd.live.image rd.live.overlay.size=8 pkgtest.bigwrite", iso, nil,
			merge(onISO, liveWant{"tmpfs size": "size=8192k", "bigwrite": "fail", "loop backing": "/run/initramfs/live/LiveOS/squashfs.img "})},
		{"label-custom-paths", "root=live:LABEL=" + liveLabel + " rd.live.dir=/images rd.live.squashimg=root.sfs", isoCustom, nil,
			merge(onISO, liveWant{"loop backing": "/run/initramfs/live/images/root.sfs "})},
		{"uuid", "root=live:UUID=" + isoUUID, iso, nil, onISO},
		{"dev-sr0", "root=live:/dev/sr0", iso, nil, onISO},
		{"partition-ext4-toplevel", "root=live:LABEL=THIS-LAND rd.live.squashimg=root-fs.squashfs", "", []string{partExt4},
			liveWant{"mount /run/initramfs/live": "ext4", "mount /run/rootfsbase": "squashfs", "loop backing": "/run/initramfs/live/root-fs.squashfs "}},
		{"partition-vfat-dir", "root=live:LABEL=THIS-LAND rd.live.dir=/ rd.live.squashimg=root-fs.squashfs", "", []string{partVfat},
			liveWant{"mount /run/initramfs/live": "vfat", "mount /run/rootfsbase": "squashfs"}},
		{"ram", "root=live:CDLABEL=" + liveLabel + " rd.live.image rd.live.ram=1", iso, nil,
			liveWant{"mount /run/initramfs/live": "", "mount /run/rootfsbase": "squashfs", "ramcopy": "yes", "loop backing": "/run/initramfs/squashed.img "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := vmConfig{kernel: kernel, initrd: initrd, cmdline: tc.cmdline, disks: tc.disks}
			if tc.iso != "" {
				c.extraArgs = cdrom(tc.iso)
			}
			checkLive(t, expectRoot(t, bootVM(t, c)), tc.want)
		})
	}
}

func merge(ws ...liveWant) liveWant {
	out := liveWant{}
	for _, w := range ws {
		for k, v := range w {
			out[k] = v
		}
	}
	return out
}

// TestLivePersistentOverlay boots the live ISO twice with its upper layer
// on an ext4 partition: what the first boot wrote is there in the second.
// The first boot uses dracut's rd.live.overlay=, the second dracut-ng's
// rd.overlay=.
func TestLivePersistentOverlay(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	iso := makeISO(t, liveLabel, map[string]string{"LiveOS/squashfs.img": makeSquashfs(t, liveRoot(t))})
	disk := makeDisk(t, partSpec{label: "persist", image: makeFS(t, t.TempDir(), fsSpec{"ext4", rootUUID, "PERSIST", 32})})
	for i, tc := range []struct{ cmdline, persist string }{
		{"root=live:CDLABEL=" + liveLabel + " rd.live.image rd.live.overlay=LABEL=PERSIST", "none"},
		{"root=live:CDLABEL=" + liveLabel + " rd.live.image rd.overlay=LABEL=PERSIST", "written-by-first-boot"},
	} {
		v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, cmdline: tc.cmdline, disks: []string{disk}, extraArgs: cdrom(iso)})
		got := expectRoot(t, v)
		checkLive(t, got, liveWant{"persist": tc.persist, "mount /run/initramfs/overlayfs": "ext4", "mount /run/initramfs/overlay": ""})
		wantUpper := "upperdir=/run/initramfs/overlayfs/LiveOS/overlay-" + liveLabel + "-" + isoUUID
		if !strings.Contains(got["root"], wantUpper) {
			t.Errorf("boot %d: root mount %q lacks %s", i+1, got["root"], wantUpper)
		}
	}
}

// TestOverlayRoot boots ordinary roots as the lower layer of an overlay.
func TestOverlayRoot(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	root := liveRoot(t)
	ext4 := makeDisk(t, partSpec{label: "rootpart", uuid: rootPartUUID, image: makeFS(t, root, fsSpec{"ext4", rootUUID, "pkgroot", 64})})
	squash := makeDisk(t, partSpec{label: "rootpart", uuid: rootPartUUID, image: makeSquashfs(t, root)})
	for _, tc := range []struct {
		name, cmdline, disk, lower string
	}{
		{"volatile-ext4", "root=UUID=" + rootUUID + " rw systemd.volatile=overlay", ext4, "ext4"},
		{"rd.overlay-squashfs", "root=PARTUUID=" + rootPartUUID + " rd.overlay=tmpfs:size=16m", squash, "squashfs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := expectRoot(t, bootVM(t, vmConfig{kernel: kernel, initrd: initrd, cmdline: tc.cmdline, disks: []string{tc.disk}}))
			checkLive(t, got, liveWant{"mount /run/rootfsbase": tc.lower, "mount /run/initramfs/overlay": "tmpfs"})
			if tc.lower == "ext4" && !strings.Contains(got["root"], "upperdir=/run/initramfs/overlay/upper") {
				t.Errorf("root mount %q: want the upper on the tmpfs", got["root"])
			}
		})
	}
}

// TestLiveBadInput checks that broken live media end in the emergency
// shell with a message naming the culprit.
func TestLiveBadInput(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	for _, tc := range []struct {
		name, cmdline, iso string
		want               []string // console lines, in order
	}{
		{"missing-image", "root=live:CDLABEL=" + liveLabel + " rd.live.image",
			makeISO(t, liveLabel, nil),
			[]string{`live image squashfs\.img not found on the live medium /dev/sr0 .*/run/initramfs/live/LiveOS/squashfs\.img`}},
		{"corrupt-image", "root=live:CDLABEL=" + liveLabel + " rd.live.image",
			makeISO(t, liveLabel, map[string]string{"LiveOS/squashfs.img": garbage(t, 1<<20)}),
			[]string{`live image /run/initramfs/live/LiveOS/squashfs\.img is not a squashfs image`}},
		{"missing-medium", "root=live:CDLABEL=NO-SUCH-DISC rd.timeout=3", "",
			[]string{`timed out waiting for the root device live:CDLABEL=NO-SUCH-DISC`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := vmConfig{kernel: kernel, initrd: initrd, cmdline: tc.cmdline}
			if tc.iso != "" {
				c.extraArgs = cdrom(tc.iso)
			}
			v := bootVM(t, c)
			for _, re := range tc.want {
				v.expect(re, bootTimeout)
			}
			v.expect(`(?i)emergency shell`, time.Minute)
			time.Sleep(2 * time.Second)
			v.send("echo SHELL-$((40+2))\n")
			v.expect(`SHELL-42`, time.Minute)
		})
	}
}

// TestMkliveiso builds a hybrid ISO with tools/mkliveiso, checks what is
// in it, and boots it through SeaBIOS from a CD-ROM drive.
func TestMkliveiso(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	iso := filepath.Join(t.TempDir(), "live.iso")
	out := run(t, "../tools/mkliveiso", "-l", "MKLIVE-1", "-a", "console=ttyS0 panic=-1", "-c", "gzip", "-o", iso, liveRoot(t), kernel, initrd)
	t.Log(strings.TrimSpace(out))

	f, err := os.Open(iso)
	if err != nil {
		t.Fatal(err)
	}
	info, err := blkid.Probe(f)
	mbr := make([]byte, 512)
	if _, rerr := f.ReadAt(mbr, 0); rerr != nil {
		t.Fatal(rerr)
	}
	f.Close()
	if err != nil || info.Type != "iso9660" || info.Label != "MKLIVE-1" {
		t.Errorf("blkid.Probe(iso) = %+v, %v; want iso9660 labelled MKLIVE-1", info, err)
	}
	if mbr[510] != 0x55 || mbr[511] != 0xAA {
		t.Errorf("ISO has no MBR boot signature (%#x %#x): not isohybrid", mbr[510], mbr[511])
	}
	list := run(t, "xorriso", "-indev", iso, "-find", "/", "-type", "f")
	for _, want := range []string{"'/LiveOS/squashfs.img'", "'/boot/vmlinuz'", "'/boot/initrd.img'", "'/isolinux/isolinux.bin'", "'/isolinux/ldlinux.c32'"} {
		if !strings.Contains(list, want) {
			t.Errorf("ISO lacks %s; it holds:\n%s", want, list)
		}
	}
	x := t.TempDir()
	run(t, "xorriso", "-osirrox", "on", "-indev", iso, "-extract", "/isolinux/isolinux.cfg", filepath.Join(x, "isolinux.cfg"), "-extract", "/LiveOS/squashfs.img", filepath.Join(x, "squashfs.img"))
	cfg, err := os.ReadFile(filepath.Join(x, "isolinux.cfg"))
	if err != nil || !strings.Contains(string(cfg), "APPEND root=live:CDLABEL=MKLIVE-1 rd.live.image console=ttyS0 panic=-1") {
		t.Errorf("isolinux.cfg = %q, %v; want the live boot entry", cfg, err)
	}
	if l := run(t, "unsquashfs", "-l", filepath.Join(x, "squashfs.img")); !strings.Contains(l, "squashfs-root/sbin/init") {
		t.Errorf("squashfs.img lacks /sbin/init:\n%s", l)
	}

	v := bootVM(t, vmConfig{extraArgs: cdrom(iso)})
	v.expect(`ISOLINUX`, bootTimeout) // the firmware booted the CD's boot loader
	got := expectRoot(t, v)
	checkLive(t, got, liveWant{"mount /run/initramfs/live": "iso9660", "mount /run/rootfsbase": "squashfs"})
}
