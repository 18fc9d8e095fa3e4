package tests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBootDM boots roots on LUKS2, LVM and LVM on LUKS with the --generic
// image (which has the luks and lvm features), typing the passphrase at
// stage0's prompt on the serial console.
func TestBootDM(t *testing.T) {
	e := setup(t)
	kernel, initrd := buildImage(t, e, "--generic")
	keyFile := filepath.Join(t.TempDir(), "root.key")
	writeFile(t, keyFile, []byte(luksPassphrase), 0o600)
	const keyPath = "/etc/pkginitrd/keys/root.key"
	_, keyInitrd := buildImage(t, e, "--generic", "--include", keyFile+":"+keyPath)
	disks := makeDMDisks(t, e)
	const wrongPassphrase = "not-the-passphrase"

	// typePassphrase waits for the prompt's announcement and types pass.
	typePassphrase := func(v *vm, pass string) {
		t.Helper()
		v.expect(`is locked; enter its passphrase`, bootTimeout)
		time.Sleep(2 * time.Second)
		v.send(pass + "\n")
	}
	cases := []struct {
		name    string
		disk    string
		initrd  string
		cmdline string
		typing  func(v *vm)
		wantLog string // a console line (after the typing) before the root's report
		wantDev string // prefix of the root device in /proc/mounts
	}{
		{"luks-passphrase", disks.luks, initrd, "root=UUID=" + rootUUID,
			func(v *vm) { typePassphrase(v, luksPassphrase) }, `unlocked .*name=luks-` + luksUUID, "/dev/dm-"},
		{"luks-wrong-then-right", disks.luks, initrd, "rd.luks.name=" + luksUUID + "=cryptroot root=/dev/mapper/cryptroot",
			func(v *vm) {
				typePassphrase(v, wrongPassphrase)
				v.expect(`wrong passphrase for LUKS container UUID=`+luksUUID+`.*try 1 of 3`, time.Minute)
				time.Sleep(2 * time.Second)
				v.send(luksPassphrase + "\n")
			}, `found root device root=/dev/mapper/cryptroot .*DM=cryptroot TYPE=ext4`, "/dev/dm-"},
		{"luks-keyfile", disks.luks, keyInitrd, "root=UUID=" + rootUUID + " rd.luks.uuid=luks-" + luksUUID + " rd.luks.key=" + keyPath,
			nil, `unlocking with keyfile`, "/dev/dm-"},
		{"lvm-path", disks.lvm, initrd, "root=/dev/vg/root", nil, `found root device root=/dev/vg/root .*DM=vg-root`, "/dev/dm-"},
		{"lvm-uuid", disks.lvm, initrd, "root=UUID=" + rootUUID, nil, `found root device root=UUID=.*DM=vg-root`, "/dev/dm-"},
		{"lvm-on-luks", disks.lvmLuks, initrd, "root=/dev/mapper/vgc-root rd.luks.uuid=" + lvmLuksUUID,
			func(v *vm) { typePassphrase(v, luksPassphrase) }, `found root device root=/dev/mapper/vgc-root .*DM=vgc-root`, "/dev/dm-"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := bootVM(t, vmConfig{kernel: kernel, initrd: tc.initrd, cmdline: tc.cmdline, disks: []string{tc.disk}})
			if tc.typing != nil {
				tc.typing(v)
			}
			if tc.wantLog != "" {
				v.expect(tc.wantLog, bootTimeout)
			}
			got := expectRoot(t, v)
			if all := v.tail(1 << 20); strings.Contains(all, luksPassphrase) || strings.Contains(all, wrongPassphrase) {
				t.Errorf("a passphrase appears on the console (echo not off?)")
			}
			if tc.typing == nil && strings.Contains(v.tail(1<<20), "enter its passphrase") {
				t.Errorf("stage0 asked for a passphrase; want the boot to need none")
			}
			f := strings.Fields(got["root"])
			if len(f) != 3 || !strings.HasPrefix(f[0], tc.wantDev) || f[1] != "ext4" {
				t.Errorf("root mount = %q, want %s* ext4", got["root"], tc.wantDev)
			}
		})
	}

	t.Run("missing-keyfile", func(t *testing.T) {
		v := bootVM(t, vmConfig{kernel: kernel, initrd: initrd, disks: []string{disks.luks},
			cmdline: "root=UUID=" + rootUUID + " rd.luks.key=/etc/no-such.key"})
		v.expect(`rd\.luks\.key=/etc/no-such\.key: cannot read the keyfile`, bootTimeout)
		v.expect(`(?i)emergency shell`, time.Minute)
		time.Sleep(2 * time.Second)
		v.send("echo SHELL-$((40+2))\n")
		v.expect(`SHELL-42`, time.Minute)
	})
}
