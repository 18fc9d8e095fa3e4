package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pkginitrd/pkginitrd/modules/hostinfo"
	"github.com/pkginitrd/pkginitrd/stage0/bootconf"
)

// rootBus is one way to attach the root disk to a guest.
type rootBus struct {
	name string
	// qemu arguments attaching disk as the root disk; nil = first virtio disk.
	args func(disk string) []string
	// modules host-only detection must find in the root device chain.
	want []string
}

var rootBuses = []rootBus{ //nolint:gochecknoglobals // constant table
	{"virtio-blk", nil, []string{"virtio_blk", "virtio_pci", "fs-ext4"}},
	{"nvme", func(d string) []string {
		return []string{"-drive", "id=root,if=none,format=raw,file=" + d, "-device", "nvme,serial=pkgroot,drive=root"}
	}, []string{"nvme", "fs-ext4"}},
	{"ahci", func(d string) []string {
		return []string{"-drive", "id=root,if=none,format=raw,file=" + d, "-device", "ahci,id=ahci", "-device", "ide-hd,bus=ahci.0,drive=root"}
	}, []string{"ahci", "sd_mod", "fs-ext4"}},
	{"usb-storage", func(d string) []string {
		return []string{"-drive", "id=root,if=none,format=raw,file=" + d, "-device", "qemu-xhci,id=xhci", "-device", "usb-storage,bus=xhci.0,drive=root"}
	}, []string{"usb_storage", "xhci_pci", "usbcore", "sd_mod", "fs-ext4"}},
}

// guestDisk is the root disk of the host-only tests.
func guestDisk(t *testing.T) string {
	img := makeFS(t, recorderRoot(t), fsSpec{"ext4", rootUUID, "pkgroot", 64})
	return makeDisk(t, partSpec{label: "rootpart", uuid: rootPartUUID, image: img})
}

// bootConfig attaches disk on bus b, plus the record disk when rec != "".
func bootConfig(kernel, initrd, disk, rec string, b rootBus) vmConfig {
	c := vmConfig{kernel: kernel, initrd: initrd, cmdline: "root=PARTUUID=" + rootPartUUID}
	if b.args == nil {
		c.disks = []string{disk}
	} else {
		c.extraArgs = b.args(disk)
	}
	if rec != "" {
		c.disks = append(c.disks, rec)
	}
	return c
}

// recordGuest boots the generic image on a root disk attached on bus b and
// returns the sysroot recorded from the guest.
func recordGuest(t *testing.T, e *env, b rootBus, disk string) string {
	t.Helper()
	kernel, initrd := buildImage(t, e, "--generic")
	rec := recordDisk(t)
	v := bootVM(t, bootConfig(kernel, initrd, disk, rec, b))
	got := expectRoot(t, v)
	if got["recorded"] == "" {
		t.Fatalf("the guest recorded nothing (no record disk found?): %q", got)
	}
	return extractRecording(t, rec)
}

// TestHostOnlyDetection records real guests whose root disk is on each bus
// and checks that host-only detection finds the bus's driver modules, and
// that `pkginitrd modules --sysroot` resolves them with root-chain reasons.
func TestHostOnlyDetection(t *testing.T) {
	e := setup(t)
	for _, b := range rootBuses {
		t.Run(b.name, func(t *testing.T) {
			sysroot := recordGuest(t, e, b, guestDisk(t))
			h, err := hostinfo.Detect(hostinfo.Dirs{Proc: filepath.Join(sysroot, "proc"), Sys: filepath.Join(sysroot, "sys")})
			if err != nil {
				t.Fatalf("Detect(recorded %s guest): %v", b.name, err)
			}
			chain := h.Modules(hostinfo.RootDriver, hostinfo.RootFS, hostinfo.RootLayer)
			for _, w := range b.want {
				if !slices.Contains(chain, w) {
					t.Errorf("Detect(recorded %s guest) root chain = %q, want %s in it", b.name, chain, w)
				}
			}
			if len(h.Loaded) == 0 || h.Root.FSType != "ext4" {
				t.Errorf("Detect(recorded %s guest): %d loaded modules, root %+v; want some loaded, ext4 root", b.name, len(h.Loaded), h.Root)
			}
			for _, n := range h.Needs {
				if n.Kind != hostinfo.Loaded {
					t.Logf("%s: %s: %s", b.name, n.Name, n.Reason)
				}
			}

			out := pkginitrd(t, e, "modules", "--kernel-package", "linux-image-amd64", "--cache-dir", e.cacheDir, "--sysroot", sysroot)
			for _, w := range b.want {
				if strings.HasPrefix(w, "fs-") {
					continue
				}
				re := regexp.MustCompile(`(?m)^` + w + `\s+\d+\s+.*root device chain \(.*` + w + `\)`)
				if !re.MatchString(out) {
					t.Errorf("pkginitrd modules --sysroot (%s) does not list %s with its root device chain:\n%s", b.name, w, out)
				}
			}
			if !regexp.MustCompile(`(?m)^ext4\s+\d+\s+.*root filesystem ext4`).MatchString(out) {
				t.Errorf("pkginitrd modules --sysroot (%s) does not give ext4 the reason root filesystem ext4:\n%s", b.name, out)
			}
			why := pkginitrd(t, e, "modules", "--kernel-package", "linux-image-amd64", "--cache-dir", e.cacheDir, "--sysroot", sysroot, "--why", "crc16")
			if !strings.Contains(why, "dependency of ext4") || !strings.Contains(why, "root filesystem ext4") {
				t.Errorf("modules --why crc16 does not follow the chain back to the root filesystem:\n%s", why)
			}
		})
	}
}

// TestHostOnlyBoot builds a host-only image from a recorded virtio guest
// (no --generic) and boots the same guest layout with it.
func TestHostOnlyBoot(t *testing.T) {
	e := setup(t)
	b := rootBuses[0]
	disk := guestDisk(t)
	sysroot := recordGuest(t, e, b, disk)
	kernel, initrd := buildImage(t, e, "--sysroot", sysroot)
	_, generic := buildImage(t, e, "--generic")
	// No root= on the command line: a host-only image carries the host's root.
	c := bootConfig(kernel, initrd, disk, "", b)
	c.cmdline = ""
	v := bootVM(t, c)
	got := expectRoot(t, v)
	if f := strings.Fields(got["root"]); len(f) != 3 || f[0] != "/dev/vda1" || f[1] != "ext4" {
		t.Errorf("host-only boot: root mount = %q, want /dev/vda1 ext4", got["root"])
	}

	hostCount := moduleCount(t, pkginitrd(t, e, "modules", "--kernel-package", "linux-image-amd64", "--cache-dir", e.cacheDir, "--sysroot", sysroot))
	genCount := moduleCount(t, pkginitrd(t, e, "modules", "--kernel-package", "linux-image-amd64", "--cache-dir", e.cacheDir, "--generic"))
	hostSize, genSize := fileSize(t, initrd), fileSize(t, generic)
	t.Logf("host-only image: %d bytes, %d modules; generic image: %d bytes, %d modules", hostSize, hostCount, genSize, genCount)
	if hostCount >= genCount || hostSize >= genSize {
		t.Errorf("host-only image (%d bytes, %d modules) is not smaller than the generic one (%d bytes, %d modules)", hostSize, hostCount, genSize, genCount)
	}
}

// TestHostOnlyLUKSLVM records a guest whose root is an LV (vgc/root) on a
// LUKS2 container, checks that detection finds the device-mapper and
// cipher modules and the luks and lvm layers, then builds a host-only
// image from the recording and boots the same guest with it: no root= on
// the command line, the passphrase typed at stage0's prompt.
func TestHostOnlyLUKSLVM(t *testing.T) {
	e := setup(t)
	disks := makeDMDisksFrom(t, e, recorderRoot(t))
	kernel, generic := buildImage(t, e, "--generic")
	typePassphrase := func(v *vm) {
		t.Helper()
		v.expect(`is locked; enter its passphrase`, bootTimeout)
		time.Sleep(2 * time.Second)
		v.send(luksPassphrase + "\n")
	}

	rec := recordDisk(t)
	v := bootVM(t, vmConfig{kernel: kernel, initrd: generic, disks: []string{disks.lvmLuks, rec},
		cmdline: "root=/dev/mapper/vgc-root rd.luks.uuid=" + lvmLuksUUID})
	typePassphrase(v)
	if got := expectRoot(t, v); got["recorded"] == "" {
		t.Fatalf("the LVM-on-LUKS guest recorded nothing: %q", got)
	}
	sysroot := extractRecording(t, rec)

	h, err := hostinfo.Detect(hostinfo.Dirs{Proc: filepath.Join(sysroot, "proc"), Sys: filepath.Join(sysroot, "sys")})
	if err != nil {
		t.Fatalf("Detect(recorded LVM-on-LUKS guest): %v", err)
	}
	for _, n := range h.Needs {
		if n.Kind != hostinfo.Loaded {
			t.Logf("detected: %s: %s", n.Name, n.Reason)
		}
	}
	if !slices.Contains(h.Layers, hostinfo.LayerCrypt) || !slices.Contains(h.Layers, hostinfo.LayerLVM) {
		t.Errorf("Detect(recorded LVM-on-LUKS guest).Layers = %q, want crypt and lvm", h.Layers)
	}
	layers := h.Modules(hostinfo.RootLayer)
	for _, m := range []string{"dm_mod", "dm_crypt"} {
		if !slices.Contains(layers, m) {
			t.Errorf("Detect(recorded LVM-on-LUKS guest) root layers = %q, want %s", layers, m)
		}
	}
	// The guest's /proc/crypto names the modules of the cipher
	// (aes-xts-plain64): xts at least (aes may be built in).
	ciphers := h.Modules(hostinfo.RootCrypto)
	if !slices.Contains(ciphers, "xts") {
		t.Errorf("Detect(recorded LVM-on-LUKS guest) cipher modules = %q, want xts", ciphers)
	}

	_, initrd := buildImage(t, e, "--sysroot", sysroot)
	x := t.TempDir()
	run(t, e.bin, "inspect", "--extract", x, initrd)
	for _, p := range []string{"usr/sbin/cryptsetup", "usr/sbin/lvm"} {
		if _, err := os.Stat(filepath.Join(x, p)); err != nil {
			t.Errorf("host-only image of an LVM-on-LUKS guest lacks %s: %v", p, err)
		}
	}
	// The guest mounted its root from /dev/dm-N; the image names the LV.
	cf, err := os.Open(filepath.Join(x, bootconf.Path))
	if err != nil {
		t.Fatal(err)
	}
	conf, err := bootconf.Parse(cf)
	cf.Close()
	if err != nil {
		t.Fatal(err)
	}
	if conf.Root.Device != "/dev/mapper/vgc-root" || !conf.HasFeature("luks") || !conf.HasFeature("lvm") || !slices.Contains(conf.ForceLoad, "xts") {
		t.Errorf("host-only image config: root %+v, features %q, force_load %q; want /dev/mapper/vgc-root, luks and lvm, xts (recorded root %s)",
			conf.Root, conf.Features, conf.ForceLoad, h.Root.Source)
	}
	v = bootVM(t, vmConfig{kernel: kernel, initrd: initrd, disks: []string{disks.lvmLuks}})
	typePassphrase(v)
	got := expectRoot(t, v)
	if f := strings.Fields(got["root"]); len(f) != 3 || !isDMSource(f[0]) || f[1] != "ext4" {
		t.Errorf("host-only LVM-on-LUKS boot: root mount = %q, want a device-mapper device, ext4", got["root"])
	}
	if strings.Contains(v.tail(1<<20), luksPassphrase) {
		t.Errorf("the passphrase appears on the console")
	}

	hostCount := moduleCount(t, pkginitrd(t, e, "modules", "--kernel-package", "linux-image-amd64", "--cache-dir", e.cacheDir, "--sysroot", sysroot))
	genCount := moduleCount(t, pkginitrd(t, e, "modules", "--kernel-package", "linux-image-amd64", "--cache-dir", e.cacheDir, "--generic"))
	hostSize, genSize := fileSize(t, initrd), fileSize(t, generic)
	t.Logf("host-only LVM-on-LUKS image: %d bytes, %d modules; generic image: %d bytes, %d modules", hostSize, hostCount, genSize, genCount)
	if hostCount >= genCount || hostSize >= genSize {
		t.Errorf("host-only image (%d bytes, %d modules) is not smaller than the generic one (%d bytes, %d modules)", hostSize, hostCount, genSize, genCount)
	}
}

func pkginitrd(t *testing.T, e *env, args ...string) string {
	t.Helper()
	out, err := exec.Command(e.bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("pkginitrd %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// moduleCount reads "kernel K: N modules, …" from pkginitrd modules.
func moduleCount(t *testing.T, out string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^kernel \S+: (\d+) modules,`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("pkginitrd modules printed no summary line:\n%s", out)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

func fileSize(t *testing.T, p string) int64 {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
