package tests

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestSystemdInstalled boots a Debian bookworm system with systemd as PID
// 1, laid out as Debian's installer does for "guided, encrypted LVM", with
// a --generic image and the command line a user of a generic image writes
// (rd.luks.uuid=, rd.lvm.lv= naming only the root volume). The root's own
// report unit must find the system "running" with no failed unit and no
// failed or timed-out job (the swap volume the command line did not name
// activated by the root's udev and LVM), and after systemd's poweroff
// through /run/initramfs/shutdown the root filesystem must be clean on
// the disk. The usr case puts /usr on its own logical volume, which stage0
// mounts from the root's fstab.
func TestSystemdInstalled(t *testing.T) {
	e := setup(t)
	if _, err := exec.LookPath("debootstrap"); err != nil {
		t.Fatalf("TestSystemdInstalled needs debootstrap (apt-get install debootstrap)")
	}
	kernel, initrd := buildImage(t, e, "--generic")
	vg := strings.ReplaceAll(sysVG, "-", "--")
	for _, tc := range []struct {
		name string
		usr  bool
	}{{"encrypted-lvm", false}, {"separate-usr", true}} {
		t.Run(tc.name, func(t *testing.T) {
			disk := systemdDisk(t, e, tc.usr)
			cmdline := fmt.Sprintf("rd.luks.uuid=%s rd.lvm.lv=%s/root root=/dev/mapper/%s-root", sysLUKSUUID, sysVG, vg)
			v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, disks: []string{disk}, cmdline: cmdline})
			typePassphrase(v, luksPassphrase)
			got := map[string][]string{}
			for {
				m := v.expect(marker+` ([\w-]+)(?:=(.*))?$`, 8*time.Minute)
				if m[1] == "report-done" {
					break
				}
				if m[1] == "state" {
					t.Logf("%s: qemu start to %q: %s", tc.name, m[2], time.Since(v.started).Round(100*time.Millisecond))
				}
				got[m[1]] = append(got[m[1]], m[2])
			}
			t.Logf("%s: systemd-analyze: %s", tc.name, strings.Join(got["analyze"], ""))
			checkSystemdReport(t, got, vg, tc.usr)
			for _, re := range []string{`pkginitrd: shutdown: unmounted /oldroot type=ext4`, `pkginitrd: shutdown: powering off`, `reboot: Power down`} {
				v.expect(re, 3*time.Minute)
			}
			v.waitExit(time.Minute)
			console := v.tail(1 << 20)
			for _, bad := range []string{"Please enter passphrase", "Kernel panic", "pkginitrd: error", "pkginitrd: warning"} {
				if strings.Contains(console, bad) {
					t.Errorf("the console shows %q", bad)
				}
			}
			checkSystemdDiskClean(t, e, disk, tc.usr)
		})
	}
}

// checkSystemdReport checks what the report unit printed.
func checkSystemdReport(t *testing.T, got map[string][]string, vg string, usr bool) {
	t.Helper()
	// findmnt pads its columns: one space between fields.
	one := func(k string) string { return strings.Join(strings.Fields(strings.Join(got[k], " | ")), " ") }
	if s := one("state"); s != "running" {
		t.Errorf("systemctl is-system-running = %q, want running", s)
	}
	for _, k := range []string{"failed-unit", "journal"} {
		for _, l := range got[k] {
			t.Errorf("%s: %s", k, l)
		}
	}
	if s := one("swap"); !strings.HasPrefix(s, "/dev/") {
		t.Errorf("swap in use = %q, want the swap_1 volume", s)
	}
	if r := one("root"); !regexp.MustCompile(`^/dev/mapper/` + vg + `-root ext4 rw,.*errors=remount-ro`).MatchString(r) {
		t.Errorf("root = %q, want /dev/mapper/%s-root ext4 rw with errors=remount-ro from fstab", r, vg)
	}
	if u := one("usr"); usr != strings.HasPrefix(u, "/dev/mapper/"+vg+"-usr ext4 rw") {
		t.Errorf("usr mount = %q (separate /usr: %v)", u, usr)
	}
	if b := one("boot"); b != "ext4" {
		t.Errorf("/boot = %q, want ext4 mounted", b)
	}
	if c := one("cryptsetup"); c != "active" {
		t.Errorf("systemd-cryptsetup@%s = %q, want active (the container stage0 opened, found by its crypttab name)", sysCrypt, c)
	}
	if f := one("fsck-root"); f == "failed" {
		t.Errorf("systemd-fsck-root.service = %q", f)
	}
}

// checkSystemdDiskClean copies the first megabyte of the root (and /usr)
// volumes out in a helper VM and checks their ext4 superblocks: unmounted
// cleanly by the shutdown.
func checkSystemdDiskClean(t *testing.T, e *env, disk string, usr bool) {
	t.Helper()
	vols := []string{"root"}
	if usr {
		vols = append(vols, "usr")
	}
	var scratch []string
	cmds := openLVMOnLUKS("/dev/vda2", "y", sysVG)
	for i, lv := range vols {
		scratch = append(scratch, emptyDisk(t, lv+"-head.img", 1))
		cmds = append(cmds, fmt.Sprintf("busybox dd if=/dev/%s/%s of=/dev/vd%c bs=1M count=1 2>/dev/null", sysVG, lv, 'b'+i))
	}
	cmds = append(cmds, closeLVMOnLUKS("y", sysVG)...)
	v := dmShell(t, e, append([]string{disk}, scratch...)...)
	shellScript(t, v, "copying the volumes' superblocks out", 3*time.Minute, append(cmds, "busybox sync")...)
	powerOffShell(t, v)
	for i, lv := range vols {
		if s := superblockState(t, scratch[i]); !s.clean() {
			t.Errorf("after the poweroff the %s filesystem is not clean: state %q, features %q", lv, s.state, s.features)
		}
	}
}

// superblockState reads the state and the journal features from the ext4
// superblock at the start of image (a copy of a volume's first megabyte:
// dumpe2fs would also read the journal): s_state at 0x3A (bit 0 clean, bit
// 1 errors), has_journal in s_feature_compat (0x5C, 0x4), needs_recovery
// in s_feature_incompat (0x60, 0x4).
func superblockState(t *testing.T, image string) ext4State {
	t.Helper()
	b, err := os.ReadFile(image)
	if err != nil || len(b) < 2048 {
		t.Fatalf("read the superblock copy %s: %v", image, err)
	}
	sb := b[1024:]
	if binary.LittleEndian.Uint16(sb[0x38:]) != 0xEF53 {
		t.Fatalf("%s: no ext4 superblock", image)
	}
	s := ext4State{image: image, state: "not clean"}
	switch st := binary.LittleEndian.Uint16(sb[0x3A:]); {
	case st&2 != 0:
		s.state = "errors"
	case st&1 != 0:
		s.state = "clean"
	}
	if binary.LittleEndian.Uint32(sb[0x5C:])&4 != 0 {
		s.features = append(s.features, "has_journal")
	}
	if binary.LittleEndian.Uint32(sb[0x60:])&4 != 0 {
		s.features = append(s.features, "needs_recovery")
	}
	t.Logf("%s: state %q, features %q", filepath.Base(image), s.state, s.features)
	return s
}
